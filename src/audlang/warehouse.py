"""The warehouse: a SQLAlchemy URL → an Engine, and database errors → one clear diagnostic.

The embedded default is a DuckDB file in the project (``target/warehouse.duckdb``).
Relative file paths in ``duckdb:///`` and ``sqlite:///`` URLs from
``audlang.toml`` are relative to the project folder. Passwords never appear
in messages: URLs are shown with ``render_as_string(hide_password=True)``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from audlang.diagnostics import AudlangError, Diagnostic

DEFAULT_WAREHOUSE = "duckdb:///target/warehouse.duckdb"
FILE_DIALECTS = ("duckdb", "sqlite")


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
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid URL>"


def _sqlite_functions(dbapi_connection, _record) -> None:
    """SQLite builds without the math extension get the functions haversine needs."""
    try:
        dbapi_connection.execute("SELECT asin(0.5), radians(1.0)").fetchone()
    except Exception:  # noqa: BLE001 - any failure means the functions are missing
        for name, fn in (("sin", math.sin), ("cos", math.cos), ("asin", math.asin), ("sqrt", math.sqrt),
                         ("radians", math.radians)):
            dbapi_connection.create_function(name, 1, fn, deterministic=True)


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
        raise AudlangError(Diagnostic.sourceless("E401", f"no driver for this database: {error}", shown(url)))
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_functions)
    if backend in FILE_DIALECTS:
        return engine  # an existing file opens; its errors surface (translated) at the first query
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except SQLAlchemyError as error:
        raise AudlangError(Diagnostic.sourceless("E403", f"cannot connect: {_reason(error)}", shown(url)))
    return engine


def _reason(error: SQLAlchemyError) -> str:
    orig = getattr(error, "orig", None) or error
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return re.sub(r"://[^@/\s]+@", "://***@", text)


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
    message = str(getattr(error, "orig", error))
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


def load_list(conn: sa.Connection, table_name: str, path: str) -> None:
    """Bulk-load an ``in list`` file's customer ids into ``table_name`` unless it is already there.

    The table is named by the file's content hash, so an edited file is a new table.
    """
    inspector = sa.inspect(conn)
    if inspector.has_table(table_name):
        return
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        ids = sorted({(row.get("customer_id") or "").strip() for row in reader} - {""})
    metadata = sa.MetaData()
    t = sa.Table(table_name, metadata, sa.Column("customer_id", sa.String, primary_key=True))
    metadata.create_all(conn)
    for start in range(0, len(ids), 10_000):
        conn.execute(t.insert(), [{"customer_id": i} for i in ids[start:start + 10_000]])


def csv_text(rows, header: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()
