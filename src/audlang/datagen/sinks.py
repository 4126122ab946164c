"""Where the generated warehouse goes: a DuckDB database, any SQLAlchemy database, Parquet files.

The tables are always built by ``build.build`` inside DuckDB: straight in the
target when the target is DuckDB, otherwise in an in-memory DuckDB from which
they are bulk-loaded:

- PostgreSQL: ``COPY … FROM STDIN (FORMAT csv)`` through the psycopg (3) or
  psycopg2 driver, from CSV files DuckDB writes into a temporary folder.
- SQLite: the driver's ``executemany`` in batches of 50,000 rows inside one
  transaction. (DuckDB's sqlite extension would be faster but is downloaded on
  first use, which fails offline; the stdlib driver always works.) SQLite has no
  date, timestamp, boolean or decimal storage: dates are ISO text
  ``YYYY-MM-DD``, timestamps ``YYYY-MM-DD HH:MM:SS`` (whole seconds, UTC),
  booleans 0/1 and decimals REAL — what SQLAlchemy's SQLite types read back.
- Any other SQLAlchemy dialect: Core ``insert`` with batches of parameters.
- Parquet: one ``<table>.parquet`` file per table, written by DuckDB.
- Spark SQL (``hive://`` URLs, Spark's Thrift server): Parquet files written by
  DuckDB into a folder the Spark server can read, each registered as an
  external Spark table (``CREATE TABLE … USING parquet LOCATION …``): no row
  passes through the Thrift connection, and 1M customers load in seconds.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa

from audlang.datagen.build import DEFAULT_AS_OF, Progress, build
from audlang.datagen.schema import BOOLEAN, DATE, DECIMAL, TABLES, TIMESTAMP, sqlalchemy_tables

BATCH_ROWS = 50_000
# The share of the progress bar given to building when the data is then loaded elsewhere.
BUILD_SHARE = 0.5


def _duckdb_of(connection: Any) -> duckdb.DuckDBPyConnection:
    """The DuckDB connection behind a duckdb-engine DBAPI connection (or the connection itself)."""
    return getattr(connection, "_ConnectionWrapper__c", connection)


def generate(target: Any, customers: int, seed: int = 42, as_of: dt.date = DEFAULT_AS_OF,
             progress: Progress | None = None, parquet_folder: str | Path | None = None) -> dict[str, int]:
    """Build the synthetic warehouse in ``target``; return the number of rows of each table.

    ``target`` is a SQLAlchemy URL (string or ``URL``), a SQLAlchemy ``Engine`` or
    ``Connection``, or a ``duckdb`` connection. Tables of the same names are replaced.
    ``progress(stage, fraction)`` is called with the current stage's name and the
    fraction of the whole job done, from 0.0 to 1.0.

    Spark (a ``hive://`` target) reads the tables from Parquet files written into
    ``parquet_folder``, which must stay in place and be readable by the Spark server.
    """
    if isinstance(target, duckdb.DuckDBPyConnection):
        return build(target, customers, seed, as_of, progress)
    if isinstance(target, (str, sa.URL)):
        url = sa.make_url(target)
        if url.get_backend_name() in ("duckdb", "sqlite") and url.database not in (None, "", ":memory:"):
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)  # e.g. target/warehouse.duckdb
        if url.get_backend_name() == "duckdb":
            with duckdb.connect(url.database or ":memory:") as con:
                return build(con, customers, seed, as_of, progress)
        engine = sa.create_engine(url)
        try:
            with engine.connect() as connection:
                return _generate_into(connection, customers, seed, as_of, progress, parquet_folder)
        finally:
            engine.dispose()
    if isinstance(target, sa.Engine):
        with target.connect() as connection:
            return _generate_into(connection, customers, seed, as_of, progress, parquet_folder)
    if isinstance(target, sa.Connection):
        return _generate_into(target, customers, seed, as_of, progress, parquet_folder)
    raise TypeError(f"cannot generate into {type(target).__name__}: pass a URL, an Engine, a Connection "
                    "or a duckdb connection")


def _generate_into(connection: sa.Connection, customers: int, seed: int, as_of: dt.date,
                   progress: Progress | None, parquet_folder: str | Path | None = None) -> dict[str, int]:
    if connection.dialect.name == "hive":
        if parquet_folder is None:
            raise ValueError("Spark reads the generated tables from Parquet files: pass parquet_folder, a folder "
                             "the Spark server can read")
        return generate_spark(connection, parquet_folder, customers, seed, as_of, progress)
    if connection.dialect.name == "duckdb":
        counts = build(_duckdb_of(connection.connection.driver_connection), customers, seed, as_of, progress)
        connection.commit()
        return counts
    with duckdb.connect() as source:
        counts = build(source, customers, seed, as_of, progress, weight=BUILD_SHARE)
        _load(source, connection, counts, progress)
    return counts


def generate_parquet(folder: str | Path, customers: int, seed: int = 42, as_of: dt.date = DEFAULT_AS_OF,
                     progress: Progress | None = None) -> dict[str, Path]:
    """Write the same warehouse as ``<folder>/<table>.parquet`` files (for Spark and friends)."""
    return _write_parquet(folder, customers, seed, as_of, progress)[0]


def generate_spark(connection: sa.Connection, folder: str | Path, customers: int, seed: int = 42,
                   as_of: dt.date = DEFAULT_AS_OF, progress: Progress | None = None) -> dict[str, int]:
    """Build the warehouse as Parquet files in ``folder`` and register them as Spark tables.

    ``connection`` is a SQLAlchemy connection to Spark SQL (``hive://``). Tables of the same
    names are replaced; the files stay in ``folder`` (external tables read them in place).
    """
    folder = Path(folder).resolve()
    paths, counts = _write_parquet(folder, customers, seed, as_of, progress, weight=0.9)
    register_spark(connection, paths, progress)
    return counts


def register_spark(connection: sa.Connection, paths: dict[str, Path], progress: Progress | None = None) -> None:
    """Register Parquet files (``{table: path}``, as ``generate_parquet`` returns) as external Spark tables."""
    driver = connection.execution_options(no_parameters=True)
    for done, (table, path) in enumerate(paths.items(), start=1):
        location = str(Path(path).resolve()).replace("\\", "\\\\").replace("'", "\\'")
        driver.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        driver.exec_driver_sql(f"CREATE TABLE {table} USING parquet LOCATION '{location}'")
        if progress is not None:
            progress(f"register {table}", 0.9 + 0.1 * done / len(paths))
    connection.commit()


def _write_parquet(folder: str | Path, customers: int, seed: int, as_of: dt.date, progress: Progress | None,
                   weight: float = 1.0) -> tuple[dict[str, Path], dict[str, int]]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    scaled = None if progress is None else (lambda stage, fraction: progress(stage, weight * fraction))
    with duckdb.connect() as con:
        counts = build(con, customers, seed, as_of, scaled, weight=0.8)
        total = sum(counts.values())
        done = 0
        for table in TABLES:
            path = folder / f"{table}.parquet"
            con.execute(f"COPY {table} TO '{_quote(path)}' (FORMAT parquet, COMPRESSION zstd)")
            paths[table] = path
            done += counts[table]
            if scaled is not None:
                scaled(f"write {table}", 0.8 + 0.2 * done / total)
    return paths, counts


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


# -- loading into another database ------------------------------------------------------------------

def _load(source: duckdb.DuckDBPyConnection, connection: sa.Connection, counts: dict[str, int],
          progress: Progress | None) -> None:
    tables = sqlalchemy_tables()
    dialect = connection.dialect
    total = sum(counts.values())
    loaded = 0

    def report(table: str, share: float) -> None:
        """``share`` of ``table`` is loaded."""
        if progress is not None:
            done = loaded + share * counts[table]
            progress(f"load {table}", BUILD_SHARE + (1 - BUILD_SHARE) * done / total)

    # Indexes are created after the rows are in, which is much faster than maintaining them.
    indexes = [index for table in tables.values() for index in table.indexes]
    for table in tables.values():
        table.indexes.clear()
    for table in reversed(tables.values()):
        table.drop(connection, checkfirst=True)
    for table in tables.values():
        table.create(connection)
    driver = connection.connection.driver_connection
    for name, table in tables.items():
        if dialect.name == "postgresql" and dialect.driver in ("psycopg", "psycopg2"):
            _copy_postgresql(source, driver, dialect.driver, name, lambda share, name=name: report(name, share))
        elif dialect.name == "sqlite":
            _insert_sqlite(source, driver, name, counts[name], lambda share, name=name: report(name, share))
        else:
            _insert_generic(source, connection, table, counts[name], lambda share, name=name: report(name, share))
        loaded += counts[name]
    for index in indexes:
        index.create(connection)
    connection.commit()
    if dialect.name == "postgresql":
        # Fresh tables have no statistics until autovacuum gets round to them.
        connection.execute(sa.text("ANALYZE " + ", ".join(tables)))
        connection.commit()


def _copy_postgresql(source: duckdb.DuckDBPyConnection, driver: Any, driver_name: str, table: str,
                     report) -> None:
    columns = [column for column, _ in TABLES[table]]
    copy_sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT csv)"
    with tempfile.TemporaryDirectory(prefix="audlang-datagen-") as folder:
        path = Path(folder) / f"{table}.csv"
        # DuckDB writes NULL as an empty field and an empty string as "", as COPY … csv reads them.
        source.execute(f"COPY {table} TO '{_quote(path)}' (FORMAT csv, HEADER false)")
        size = max(path.stat().st_size, 1)
        with path.open("rb") as data, driver.cursor() as cursor:
            if driver_name == "psycopg":
                with cursor.copy(copy_sql) as copy:
                    while chunk := data.read(1 << 20):
                        copy.write(chunk)
                        report(data.tell() / size)
            else:  # psycopg2
                cursor.copy_expert(copy_sql, data, size=1 << 20)
    report(1.0)


def _select_for_sqlite(table: str) -> str:
    parts = []
    for column, kind in TABLES[table]:
        if kind == TIMESTAMP:
            parts.append(f"strftime({column}, '%Y-%m-%d %H:%M:%S')")
        elif kind == DATE:
            parts.append(f"CAST({column} AS VARCHAR)")
        elif kind == BOOLEAN:
            parts.append(f"CAST({column} AS INTEGER)")
        elif kind == DECIMAL:
            parts.append(f"CAST({column} AS DOUBLE)")
        else:
            parts.append(column)
    return f"SELECT {', '.join(parts)} FROM {table}"


def _insert_sqlite(source: duckdb.DuckDBPyConnection, driver: Any, table: str, count: int, report) -> None:
    columns = [column for column, _ in TABLES[table]]
    insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    result = source.execute(_select_for_sqlite(table))
    cursor = driver.cursor()
    try:
        rows = 0
        while batch := result.fetchmany(BATCH_ROWS):
            cursor.executemany(insert, batch)
            rows += len(batch)
            report(rows / max(count, 1))
    finally:
        cursor.close()


def _insert_generic(source: duckdb.DuckDBPyConnection, connection: sa.Connection, table: sa.Table,
                    count: int, report) -> None:
    columns = [column for column, _ in TABLES[table.name]]
    result = source.execute(f"SELECT {', '.join(columns)} FROM {table.name}")
    rows = 0
    while batch := result.fetchmany(BATCH_ROWS // 5):
        connection.execute(table.insert(), [dict(zip(columns, row)) for row in batch])
        rows += len(batch)
        report(rows / max(count, 1))
