"""One function opens every engine audlang uses: ``open_engine(url, role)``.

The role says what the engine is for:

- ``Role.READ``: a command that only reads the warehouse (``members``, ``plan``, ``insights``,
  ``report``, ``explain``). A DuckDB file is opened read-only, so a notebook or BI tool that holds
  it read-only does not stop audlang, and an apply in flight is never disturbed by a reader;
- ``Role.WRITE``: ``apply``, which holds a DuckDB file for its whole run (one pooled connection);
- ``Role.STATE``: the state database (transactions and unique constraints needed: Spark is refused).

Every engine is hardened the same way (DuckDB reads no other file; Spark reads no file as a table),
gets audlang's SQL functions on SQLite, a UTC session on Spark and a connect timeout on PostgreSQL.

A DuckDB file that another process holds is waited for, a bounded time (``duckdb_files``).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from audlang import backends
from audlang.diagnostics import AudlangError, Diagnostic, shown_url
from audlang.warehouse.duckdb_files import waiting_for
from audlang.warehouse.errors import reason

DRIVER_HINTS = {"hive": "pip install 'audlang[spark]'", "databricks": "pip install databricks-sqlalchemy"}
#: Engines that cannot hold the state: no transactions or unique constraints to lock with.
NO_STATE = {"hive": "Spark SQL (hive://)", "databricks": "Databricks", "spark": "Spark SQL",
            "bigquery": "BigQuery", "trino": "Trino"}


class Role(enum.Enum):
    READ = "read"
    WRITE = "write"
    STATE = "state"


def open_engine(url: str, role: Role = Role.READ, must_exist: bool = True) -> Engine:
    """An Engine for ``url`` in ``role``; a server is checked to answer. Errors name the URL (masked)."""
    try:
        parsed = backends.with_driver(make_url(url))
    except ArgumentError:
        code = "E501" if role is Role.STATE else "E401"
        raise AudlangError(Diagnostic.sourceless(code, "not a database URL (expected e.g. duckdb:///file.duckdb, "
                                                 "sqlite:///file.db, postgresql+psycopg://user@host/db)",
                                                 shown_url(url))) from None
    backend = parsed.get_backend_name()
    if role is Role.STATE and backend in NO_STATE:
        raise AudlangError(Diagnostic.sourceless(
            "E502", f"{NO_STATE[backend]} cannot hold the audlang state (it needs transactions and unique "
            "constraints for the serial and the lock); keep the warehouse there and set `state` in audlang.toml, "
            "AUDLANG_STATE or --state to a PostgreSQL, SQLite or DuckDB URL", shown_url(url)))
    database = backends.database_file(parsed)
    if database is not None:
        if role is Role.STATE or not must_exist:
            os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
        elif not Path(database).exists():
            raise AudlangError(Diagnostic.sourceless(
                "E402", f"the warehouse file {database} does not exist; run `audlang demo` to build a "
                "synthetic one, or set `warehouse` in audlang.toml, AUDLANG_WAREHOUSE or --warehouse",
                shown_url(url)))
    options: dict = {}
    if backend == "postgresql" and "connect_timeout" not in parsed.query:
        options["connect_args"] = {"connect_timeout": 15}  # an unreachable server is an error, not a hang
    if backend == "duckdb" and database is not None:
        if role is Role.STATE:
            options["poolclass"] = NullPool  # a DuckDB state file is opened per transaction
        if role is Role.READ and Path(database).exists():
            parsed = parsed.update_query_dict({"access_mode": "read_only"})
    try:
        engine = sa.create_engine(parsed, **options)
    except (NoSuchModuleError, ImportError) as error:
        hint = f" ({DRIVER_HINTS[backend]})" if backend in DRIVER_HINTS else ""
        raise AudlangError(Diagnostic.sourceless("E501" if role is Role.STATE else "E401",
                                                 f"no driver for this database: {error}{hint}", shown_url(url))) \
            from None
    _configure(engine, url, database)
    if backend in backends.FILE_BACKENDS or role is Role.STATE:
        return engine  # a file opens; its errors surface (translated) at the first query
    _check_answers(engine, url, backend)
    return engine


def read_only(engine: Engine | sa.Connection) -> bool:
    """Whether this engine's database was opened read-only (a DuckDB file in ``Role.READ``)."""
    engine = engine.engine if isinstance(engine, sa.Connection) else engine
    return engine.dialect.name == "duckdb" and engine.url.query.get("access_mode") == "read_only"


def _configure(engine: Engine, url: str, database: str | None) -> None:
    backend = engine.dialect.name
    if backend == "duckdb":
        event.listen(engine, "connect", _duckdb_session)
        if database is not None:
            event.listen(engine, "do_connect", waiting_for(database, url))
    elif backend == "sqlite":
        event.listen(engine, "connect", _sqlite_functions)
    elif backend in backends.SPARK_BACKENDS:
        event.listen(engine, "connect", _spark_session)
        event.listen(engine, "before_cursor_execute", _spark_fetch_size)
        # Thrift logs a refused connection to stderr itself, then raises a non-DBAPI error.
        logging.getLogger("thrift").setLevel(logging.CRITICAL)


def harden(engine: Engine) -> Engine:
    """The settings an untrusted project must not get around and the functions audlang's SQL calls, on an
    engine made elsewhere (tests, tools)."""
    if engine.dialect.name == "duckdb":
        event.listen(engine, "connect", _duckdb_session)
    elif engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_functions)
    return engine


def _check_answers(engine: Engine, url: str, backend: str) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except SQLAlchemyError as error:
        raise AudlangError(Diagnostic.sourceless("E403", f"cannot connect: {reason(error)}", shown_url(url))) \
            from None
    except Exception as error:  # noqa: BLE001 - PyHive lets Thrift's transport errors through unwrapped
        if backend not in backends.SPARK_BACKENDS:
            raise
        raise AudlangError(Diagnostic.sourceless("E403", f"cannot connect: {error}", shown_url(url))) from None


# ------------------------------------------------------------------ per-connection settings


def _duckdb_session(dbapi_connection, _record) -> None:
    """No DuckDB connection of audlang reads or writes files other than its database: a table name
    such as ``"/etc/passwd.csv"`` in a schema mapping would otherwise be read as a CSV file (DuckDB's
    replacement scans), and ``read_text`` reads any file. The setting holds for the whole database
    instance and cannot be turned back on. The progress bar would draw on the user's terminal."""
    dbapi_connection.execute("SET enable_external_access = false")
    dbapi_connection.execute("SET enable_progress_bar = false")


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
    """Spark compares a zone-less timestamp column with an instant in the session's time zone: make it
    UTC. ``csv.`/path``` in a table name would read a file of the server's: tables only."""
    cursor = dbapi_connection.cursor()
    try:
        for setting in ("spark.sql.session.timeZone=UTC", "spark.sql.runSQLOnFiles=false"):
            cursor.execute(f"SET {setting}")
            cursor.fetchall()
    finally:
        cursor.close()


def _spark_fetch_size(_conn, cursor, *_args) -> None:
    """PyHive fetches 1,000 rows per Thrift round trip by default; members lists are long."""
    cursor.arraysize = 10_000


# ------------------------------------------------------------------ a lock that dies with its session


class SessionLock:
    """A PostgreSQL session advisory lock, held while its connection lives: a holder that died (its
    session ended) is told from a live one across machines. ``supported`` is False on engines without
    one (there a holder on this host whose process is gone is dead)."""

    def __init__(self, conn: sa.Connection | None, key: int, supported: bool):
        self.conn, self.key, self.supported = conn, key, supported

    def release(self) -> None:
        if self.conn is None:
            return
        with contextlib.suppress(SQLAlchemyError):
            self.conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            self.conn.commit()
        with contextlib.suppress(SQLAlchemyError):
            self.conn.close()
        self.conn = None


def session_lock(engine: Engine, key: int) -> SessionLock | None:
    """Take the session lock ``key``: a ``SessionLock``, or None when another session holds it."""
    if engine.dialect.name != "postgresql":
        return SessionLock(None, key, supported=False)
    conn = engine.connect()
    got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
    conn.commit()
    if not got:
        conn.close()
        return None
    return SessionLock(conn, key, supported=True)


def has_session_locks(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def prepare_connection(conn: sa.Connection) -> None:
    """audlang's SQL functions on a SQLite connection made by an engine of another's (a no-op elsewhere:
    engines opened here register them on connect)."""
    if conn.dialect.name == "sqlite":
        _sqlite_functions(conn.connection.driver_connection, None)
