"""The warehouse: a SQLAlchemy URL → an Engine, and database errors → one clear diagnostic.

The embedded default is a DuckDB file in the project (``target/warehouse.duckdb``).
Relative file paths in ``duckdb:///`` and ``sqlite:///`` URLs from
``audlang.toml`` are relative to the project folder. Passwords never appear
in messages: URLs are shown by ``diagnostics.shown_url`` (password and query values masked).

Spark SQL (``hive://HOST:PORT/DATABASE``, PyHive through Spark's Thrift server;
Databricks SQL warehouses speak the same SQL): every session is set to UTC, so
zone-less timestamp columns mean UTC as SPEC §3 says; ``in list`` files load
with one multi-row INSERT per batch; membership (of segments, and of campaign
groups) is materialized by writing a new table and then swapping the view
readers use (``materialize_swap``, ``swap_generation``),
because Spark has no transactions. For the same reason the state store may
not live there (``state.store`` refuses it).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import logging
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from audlang.check.model import ListFile
from audlang.compile.compiler import list_table_name
from audlang.diagnostics import AudlangError, Diagnostic, shown_url
from audlang.files import UnsafeFile, read_regular

DEFAULT_WAREHOUSE = "duckdb:///target/warehouse.duckdb"
FILE_DIALECTS = ("duckdb", "sqlite")
SPARK_DIALECTS = ("hive", "databricks")
DRIVER_HINTS = {"hive": "pip install 'audlang[spark]'", "databricks": "pip install databricks-sqlalchemy"}


def resolve_url(cli_value: str | None, config_value: str | None, root: Path, env_var: str = "AUDLANG_WAREHOUSE",
                default: str | None = DEFAULT_WAREHOUSE) -> str | None:
    """``--flag`` over the environment over ``audlang.toml`` over the default; files relative to the project."""
    value = cli_value or os.environ.get(env_var) or config_value or default
    if value is None:
        return None
    if value is not config_value and value is not default:
        return value
    try:
        url = make_url(value)
    except ArgumentError:
        return value
    if url.get_backend_name() in FILE_DIALECTS and url.database and url.database != ":memory:":
        if not os.path.isabs(url.database):
            url = url.set(database=str(root / url.database))
    return url.render_as_string(hide_password=False)


def shown(url: str | URL) -> str:
    return shown_url(url)


def _sqlite_functions(dbapi_connection, _record) -> None:
    """audlang's own functions (campaign buckets, regular expressions for identifiers), and for SQLite
    builds without the math extension the functions haversine needs."""
    from audlang.compile.dialects import register_sqlite_functions

    register_sqlite_functions(dbapi_connection)
    try:
        dbapi_connection.execute("SELECT asin(0.5), radians(1.0)").fetchone()
    except Exception:  # noqa: BLE001 - any failure means the functions are missing
        for name, fn in (("sin", math.sin), ("cos", math.cos), ("asin", math.asin), ("sqrt", math.sqrt),
                         ("radians", math.radians)):
            dbapi_connection.create_function(name, 1, fn, deterministic=True)


def _spark_session(dbapi_connection, _record) -> None:
    """Spark compares a zone-less timestamp column with an instant in the session's time zone: make it UTC."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET spark.sql.session.timeZone=UTC")
        cursor.fetchall()
        # `csv.`/path`` in a table name would read a file of the server's: tables only
        cursor.execute("SET spark.sql.runSQLOnFiles=false")
        cursor.fetchall()
    finally:
        cursor.close()


def _duckdb_no_external_access(dbapi_connection, _record) -> None:
    """No DuckDB connection of audlang reads or writes files other than its database: a table name
    such as ``"/etc/passwd.csv"`` in a schema mapping would otherwise be read as a CSV file (DuckDB's
    replacement scans), and ``read_text`` reads any file. The setting holds for the whole database
    instance (every connection to the file in this process) and cannot be turned back on."""
    dbapi_connection.execute("SET enable_external_access = false")


def harden(engine: Engine) -> Engine:
    """The settings an untrusted project must not get around, on every connection of ``engine``."""
    backend = engine.dialect.name
    if backend == "duckdb":
        event.listen(engine, "connect", _duckdb_no_external_access)
    return engine


def _spark_fetch_size(_conn, cursor, *_args) -> None:
    """PyHive fetches 1,000 rows per Thrift round trip by default; members lists are long."""
    cursor.arraysize = 10_000


def spark_engine(engine_or_connection) -> bool:
    return engine_or_connection.dialect.name in SPARK_DIALECTS


def has_table(conn: sa.Connection, name: str) -> bool:
    """Whether the warehouse has this table or view (Spark through ``SHOW TABLES``)."""
    if spark_engine(conn):
        return _spark_has_table(conn, name)
    return sa.inspect(conn).has_table(name)


def connect(url: str, must_exist: bool = True) -> Engine:
    """An Engine for ``url``, checked to answer. Errors become diagnostics naming the URL."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise AudlangError(Diagnostic.sourceless("E401", "not a database URL (expected e.g. duckdb:///file.duckdb, "
                                                 "sqlite:///file.db, postgresql+psycopg://user@host/db)", shown(url)))
    backend = parsed.get_backend_name()
    if backend in FILE_DIALECTS and must_exist and parsed.database not in (None, "", ":memory:"):
        if not Path(parsed.database).exists():
            raise AudlangError(Diagnostic.sourceless(
                "E402", f"the warehouse file {parsed.database} does not exist; run `audlang demo` to build a "
                "synthetic one, or set `warehouse` in audlang.toml, AUDLANG_WAREHOUSE or --warehouse", shown(url)))
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    options = {}
    if backend == "postgresql" and "connect_timeout" not in parsed.query:
        options["connect_args"] = {"connect_timeout": 15}  # an unreachable server is an error, not a hang
    try:
        engine = sa.create_engine(parsed, **options)
    except (NoSuchModuleError, ImportError) as error:
        hint = f" ({DRIVER_HINTS[backend]})" if backend in DRIVER_HINTS else ""
        raise AudlangError(Diagnostic.sourceless("E401", f"no driver for this database: {error}{hint}", shown(url)))
    harden(engine)
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_functions)
    if backend in SPARK_DIALECTS:
        event.listen(engine, "connect", _spark_session)
        event.listen(engine, "before_cursor_execute", _spark_fetch_size)
    if backend in FILE_DIALECTS:
        return engine  # an existing file opens; its errors surface (translated) at the first query
    if backend in SPARK_DIALECTS:
        # Thrift logs a refused connection to stderr itself, then raises a non-DBAPI error.
        logging.getLogger("thrift").setLevel(logging.CRITICAL)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except SQLAlchemyError as error:
        raise AudlangError(Diagnostic.sourceless("E403", f"cannot connect: {_reason(error)}", shown(url)))
    except Exception as error:  # noqa: BLE001 - PyHive lets Thrift's transport errors through unwrapped
        if backend not in SPARK_DIALECTS:
            raise
        raise AudlangError(Diagnostic.sourceless("E403", f"cannot connect: {error}", shown(url))) from None
    return engine


def _reason(error: SQLAlchemyError) -> str:
    orig = getattr(error, "orig", None) or error
    text = _message(orig)
    text = text.strip().splitlines()[0] if text.strip() else type(orig).__name__
    return re.sub(r"://[^@/\s]+@", "://***@", text)


def _message(orig) -> str:
    """The database's own message. PyHive wraps Spark's in a Thrift response object with a Java stack."""
    status = getattr(orig.args[0], "status", None) if getattr(orig, "args", None) else None
    message = getattr(status, "errorMessage", None)
    if message:
        message = re.sub(r"^Error running query: (\[\w+\] )?", "", message)
        message = re.sub(r"^\s*org\.apache\.spark\.[\w.]+: ", "", message)
        return "\n".join(line for line in message.splitlines() if line.strip())
    return str(orig)


_MISSING_TABLE = [
    re.compile(r"Table with name (?P<name>[\w.\"]+) does not exist", re.I),  # duckdb
    re.compile(r"no such table: (?P<name>[\w.\"]+)", re.I),  # sqlite
    re.compile(r'relation "(?P<name>[\w.]+)" does not exist', re.I),  # postgresql
    re.compile(r"Table or view not found: (?P<name>[\w.`]+)", re.I),  # spark
    re.compile(r"TABLE_OR_VIEW_NOT_FOUND\].*?`(?P<name>[\w.`]+)`", re.I),
]
_MISSING_COLUMN = [
    re.compile(r'does not have a column named "(?P<name>\w+)"', re.I),  # duckdb
    re.compile(r'Referenced column "(?P<name>\w+)" not found', re.I),
    re.compile(r"no such column: (?P<name>[\w.]+)", re.I),
    re.compile(r'column (?P<name>[\w."]+) does not exist', re.I),
    re.compile(r"UNRESOLVED_COLUMN.*?`(?P<name>[\w.`]+)`", re.I),
    re.compile(r"Binder Error: .*column \"?(?P<name>\w+)\"? not found", re.I),
]


def translate(error: DBAPIError, url: str, model=None) -> AudlangError:
    """A database error raised while evaluating → one diagnostic, naming the table or column and the fix."""
    message = _message(getattr(error, "orig", None) or error)
    for pattern in _MISSING_TABLE:
        m = pattern.search(message)
        if m:
            name = m.group("name").strip('"`')
            logical = _logical_table(model, name)
            fix = (f'; if it has another name, map it: table {logical} from "schema.table"' if logical else "")
            return AudlangError(Diagnostic.sourceless(
                "E404", f"table {name} is missing from the warehouse{fix}", shown(url)))
    for pattern in _MISSING_COLUMN:
        m = pattern.search(message)
        if m:
            name = m.group("name").strip('"`').split(".")[-1]
            logical = _logical_column(model, name)
            fix = (f'; if it has another name, map it: table {logical[0]} < {logical[1]} = "actual_column" >'
                   if logical else "")
            return AudlangError(Diagnostic.sourceless(
                "E405", f"column {name} is missing from the warehouse{fix}", shown(url)))
    return AudlangError(Diagnostic.sourceless("E406", f"the database refused the query: {_reason(error)}",
                                              shown(url)))


def _logical_table(model, physical: str) -> str | None:
    if model is None:
        return None
    for info in model.data_model.tables.values():
        if info.physical.split(".")[-1] == physical.split(".")[-1]:
            return info.name
    return None


def _logical_column(model, physical: str) -> tuple[str, str] | None:
    if model is None:
        return None
    for info in model.data_model.tables.values():
        for logical, column in info.columns.items():
            if column == physical:
                return info.name, logical
    return None


@contextlib.contextmanager
def errors_translated(url: str, model=None) -> Iterator[None]:
    try:
        yield
    except DBAPIError as error:
        raise translate(error, url, model) from None
    except SQLAlchemyError as error:
        raise AudlangError(Diagnostic.sourceless("E406", f"database error: {_reason(error)}", shown(url))) from None


def load_list(conn: sa.Connection, listed: ListFile) -> None:
    """Bulk-load an ``in list`` file's customer ids into its table unless it is already there.

    The table is named by the file's content hash, so an edited file is a new table. The file is
    read as the checker read it (a regular file, not through a symlink, no larger than it was) and
    its content must still have the checked hash: a file swapped since is refused, never loaded.
    """
    table_name = list_table_name(listed.sha256)
    if spark_engine(conn):
        if _spark_has_table(conn, table_name):
            return
    elif sa.inspect(conn).has_table(table_name):
        return
    try:
        read = read_regular(listed.path, [os.path.dirname(listed.path)], max(listed.size, 1))
    except (OSError, UnsafeFile) as error:
        raise AudlangError(Diagnostic.sourceless(
            "E407", f"list file {listed.written} cannot be loaded: {error}", listed.written)) from None
    if hashlib.sha256(read.content).hexdigest() != listed.sha256:
        raise AudlangError(Diagnostic.sourceless(
            "E407", f"list file {listed.written} changed since it was checked; run the command again",
            listed.written))
    ids = list_ids(read.content, listed.written)
    if spark_engine(conn):
        _load_list_spark(conn, table_name, ids)
        return
    metadata = sa.MetaData()
    t = sa.Table(table_name, metadata, sa.Column("customer_id", sa.String, primary_key=True))
    metadata.create_all(conn)
    for start in range(0, len(ids), 10_000):
        conn.execute(t.insert(), [{"customer_id": i} for i in ids[start:start + 10_000]])


def list_ids(content: bytes, written: str) -> list[str]:
    """The distinct ``customer_id`` values of a list file's content, sorted (header names trimmed, as
    the checker reads them; any line ending)."""
    text = content.decode("utf-8-sig", "replace")
    try:
        rows = csv.reader(io.StringIO(text, newline=""))
        header = [name.strip() for name in next(rows, [])]
        column = header.index("customer_id")
        return sorted({row[column].strip() for row in rows if len(row) > column} - {""})
    except (csv.Error, ValueError) as error:
        raise AudlangError(Diagnostic.sourceless(
            "E407", f"list file {written} cannot be read as CSV: {str(error)[:120]}", written)) from None


def _load_list_spark(conn: sa.Connection, table_name: str, ids: list[str]) -> None:
    """Spark: no primary keys, and a row-by-row executemany is a Spark job per row; one INSERT per batch.

    The ids go in as Spark string literals (the same escaping as the compiled SQL). The table is
    written under a temporary name and renamed, so a crash never leaves a half-loaded list behind
    the final name (which ``has_table`` would then trust).
    """
    from audlang.compile.dialects import spark_string

    driver = conn.execution_options(no_parameters=True)
    partial = f"{table_name}_loading"
    driver.exec_driver_sql(f"DROP TABLE IF EXISTS {partial}")
    driver.exec_driver_sql(f"CREATE TABLE {partial} (customer_id STRING) USING parquet")
    for start in range(0, len(ids), 5_000):
        values = ", ".join(f"({spark_string(i)})" for i in ids[start:start + 5_000])
        driver.exec_driver_sql(f"INSERT INTO {partial} VALUES {values}")
    driver.exec_driver_sql(f"ALTER TABLE {partial} RENAME TO {table_name}")


# ------------------------------------------------------------------ materialized membership on Spark

SPARK_GENERATION_PREFIX = "audlang_gen_"


def materialize_swap(conn: sa.Connection, view: str, query: sa.Select, keep: int = 1,
                     columns: tuple[str, ...] = ("customer_id",)) -> int:
    """Materialize ``query`` behind the view ``view`` without transactions; return its rows.

    Spark has no transactions, so a DELETE + INSERT would show readers a half-written membership.
    Instead each refresh writes a new table ``audlang_gen_<view>_<n>`` in full (CREATE TABLE … AS
    SELECT, computed entirely in Spark), then points the view at it with ``CREATE OR REPLACE VIEW``
    (one catalog update: a reader sees the old membership or the new one, never a mix), then drops
    older generations, keeping ``keep`` of them for readers still scanning the previous one.
    ``view`` is an unquoted identifier (letters, digits, underscores); the view shows ``columns`` of
    the query (a segment's customer ids by default; campaigns' ``campaign, group_name, customer_id``).
    """
    table_name = swap_generation(conn, view, query, keep, columns)
    return int(conn.execute(sa.text(f"SELECT count(*) FROM {table_name}")).scalar_one())


def swap_generation(conn: sa.Connection, view: str, query: sa.Select, keep: int = 1,
                    columns: tuple[str, ...] = ("customer_id",)) -> str:
    """``materialize_swap`` without the count: returns the new generation's table name, for callers
    that count otherwise (campaigns count per group).

    A table (not a view) already under the view's name, with no generations behind it, is what an
    earlier write that was not a swap left there (campaigns did so before they swapped): it is read
    by ``query`` if it likes, then dropped before the view takes its name.
    """
    for name in (view, *columns):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"not a plain identifier: {name!r}")
    view = view.lower()  # Spark's catalog keeps names in lower case
    prefix = f"{SPARK_GENERATION_PREFIX}{view}_"
    generations = _spark_generations(conn, prefix)
    table_name = f"{prefix}{(max(generations) + 1) if generations else 1}"
    select_sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    driver = conn.execution_options(no_parameters=True)
    driver.exec_driver_sql(f"DROP TABLE IF EXISTS {table_name}")
    driver.exec_driver_sql(f"CREATE TABLE {table_name} USING parquet AS {select_sql}")
    if not generations and _spark_has_table(conn, view) and not _spark_has_view(conn, view):
        driver.exec_driver_sql(f"DROP TABLE {view}")
    driver.exec_driver_sql(f"CREATE OR REPLACE VIEW {view} AS SELECT {', '.join(columns)} FROM {table_name}")
    for old in sorted(generations)[: max(0, len(generations) - keep)]:
        driver.exec_driver_sql(f"DROP TABLE IF EXISTS {prefix}{old}")
    return table_name


def materialize_counted(conn: sa.Connection, view: str, query: sa.Select) -> dict[str, int]:
    """``materialize_swap`` for apply: also counts the change against the membership the view showed
    before (``members``, ``added``, ``removed``), in Spark, against the previous generation (kept).

    How apply calls it on a Spark warehouse (where ``audlang_membership`` rows cannot be deleted or
    updated: no transactions, no DELETE on Parquet tables): per segment, in dependency order,
    ``materialize_counted(conn, view_name(segment), compiler.segment(segment))`` with a compiler whose
    ``membership`` maps every segment to ``members_view(view_name(segment))``, so ``in segment`` reads
    what is materialized; a deleted segment is ``drop_materialized(conn, view_name(segment))``.
    """
    view = view.lower()
    had = _spark_has_table(conn, view)
    members = materialize_swap(conn, view, query)
    if not had:
        return {"members": members, "added": members, "removed": 0}
    prefix = f"{SPARK_GENERATION_PREFIX}{view}_"
    generations = sorted(_spark_generations(conn, prefix))
    if len(generations) < 2:
        return {"members": members, "added": members, "removed": 0}
    new, old = (sa.table(f"{prefix}{g}", sa.column("customer_id")) for g in (generations[-1], generations[-2]))
    count = lambda q: sa.select(sa.func.count()).select_from(q.subquery()).scalar_subquery()  # noqa: E731
    ids = lambda t: sa.select(t.c.customer_id)  # noqa: E731
    row = conn.execute(sa.select(count(sa.except_(ids(new), ids(old))).label("added"),
                                 count(sa.except_(ids(old), ids(new))).label("removed"))).one()
    return {"members": members, "added": int(row.added), "removed": int(row.removed)}


def members_view(view: str) -> sa.Select:
    """The ids behind a view made by ``materialize_swap`` (what ``in segment`` reads once materialized)."""
    t = sa.table(view.lower(), sa.column("customer_id"))
    return sa.select(t.c.customer_id.label("customer_id"))


def spark_has_view(conn: sa.Connection, view: str) -> bool:
    return _spark_has_table(conn, view)


def rename_materialized(conn: sa.Connection, old_view: str, new_view: str) -> None:
    """A renamed segment keeps its membership: its generations and view move to the new name."""
    old_view, new_view = old_view.lower(), new_view.lower()
    if old_view == new_view:
        return
    old_prefix, new_prefix = (f"{SPARK_GENERATION_PREFIX}{v}_" for v in (old_view, new_view))
    generations = sorted(_spark_generations(conn, old_prefix))
    driver = conn.execution_options(no_parameters=True)
    for g in generations:
        driver.exec_driver_sql(f"ALTER TABLE {old_prefix}{g} RENAME TO {new_prefix}{g}")
    if generations:
        driver.exec_driver_sql(f"CREATE OR REPLACE VIEW {new_view} AS SELECT customer_id FROM "
                               f"{new_prefix}{generations[-1]}")
    driver.exec_driver_sql(f"DROP VIEW IF EXISTS {old_view}")


def drop_materialized(conn: sa.Connection, view: str) -> None:
    """Remove a view made by ``materialize_swap`` and every generation behind it."""
    view = view.lower()
    prefix = f"{SPARK_GENERATION_PREFIX}{view}_"
    driver = conn.execution_options(no_parameters=True)
    driver.exec_driver_sql(f"DROP VIEW IF EXISTS {view}")
    for old in _spark_generations(conn, prefix):
        driver.exec_driver_sql(f"DROP TABLE IF EXISTS {prefix}{old}")


def _spark_has_table(conn: sa.Connection, name: str) -> bool:
    # PyHive's has_table runs DESCRIBE and misreads Spark 4's "not found" error.
    rows = conn.execution_options(no_parameters=True).exec_driver_sql(f"SHOW TABLES LIKE '{name}'").fetchall()
    return any((row[1] if len(row) > 1 else row[0]).lower() == name.lower() for row in rows)


def _spark_has_view(conn: sa.Connection, name: str) -> bool:
    rows = conn.execution_options(no_parameters=True).exec_driver_sql(f"SHOW VIEWS LIKE '{name}'").fetchall()
    return any((row[1] if len(row) > 1 else row[0]).lower() == name.lower() for row in rows)


def _spark_generations(conn: sa.Connection, prefix: str) -> list[int]:
    rows = conn.execution_options(no_parameters=True).exec_driver_sql(f"SHOW TABLES LIKE '{prefix}*'").fetchall()
    found = []
    for row in rows:
        name = row[1] if len(row) > 1 else row[0]  # (namespace, tableName, isTemporary)
        suffix = name[len(prefix):]
        if name.startswith(prefix) and suffix.isdigit():
            found.append(int(suffix))
    return found


def csv_text(rows, header: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def raw_rows(result) -> list[tuple]:
    """All rows of an executed result as the driver returns them: no per-row Row objects
    (a third of the time on a few hundred thousand ids)."""
    cursor = getattr(result, "cursor", None)
    if cursor is None:
        return [tuple(r) for r in result.fetchall()]
    try:
        return cursor.fetchall()
    finally:
        result.close()
