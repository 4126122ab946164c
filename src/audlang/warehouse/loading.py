"""Whole tables built in DuckDB, loaded into a warehouse the fastest way each engine allows.

The synthetic-data generator (``audlang.datagen``) builds its tables in DuckDB and asks this module
for everything that depends on the target engine:

- ``duckdb_behind(connection)``: a DuckDB warehouse is built in directly, nothing is loaded;
- ``takes_parquet(connection)``: Spark SQL (Thrift) gets whole tables as Parquet files written by
  DuckDB, registered by ``register_parquet`` as external tables read in place (no row passes through
  the Thrift connection: 1M customers load in seconds);
- ``load_tables(source, connection, tables, counts, report)`` everywhere else:

  - PostgreSQL: ``COPY … FROM STDIN (FORMAT csv)`` through psycopg (3) or psycopg2, from CSV files
    DuckDB writes into a temporary folder; the tables are ``ANALYZE``d afterwards;
  - SQLite: the driver's ``executemany`` in batches of 50,000 rows inside one transaction (DuckDB's
    sqlite extension would be faster but is downloaded on first use, which fails offline). SQLite
    has no date, timestamp, boolean or decimal storage: dates go in as ISO text ``YYYY-MM-DD``,
    timestamps as ``YYYY-MM-DD HH:MM:SS`` (whole seconds), booleans as 0/1 and decimals as REAL —
    what SQLAlchemy's SQLite types read back;
  - any other SQLAlchemy dialect: ``tables.bulk_insert`` in batches.

This module knows engines, not the generator: the caller passes the SQLAlchemy tables, and the
DuckDB ``source`` holds tables of the same names and columns.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa

from audlang.warehouse.tables import bulk_insert, traits

#: ``report(table, share)``: ``share`` (0.0 to 1.0) of ``table`` is in the warehouse.
Report = Callable[[str, float], None]

BATCH_ROWS = 50_000  # SQLite's executemany batches
GENERIC_BATCH_ROWS = 10_000  # Core insert batches (dicts of parameters: more memory per row)
COPY_CHUNK = 1 << 20  # bytes of CSV per write to COPY


def duckdb_behind(connection: sa.Connection) -> duckdb.DuckDBPyConnection | None:
    """The DuckDB database behind a duckdb-engine connection (tables are built there), else None."""
    if connection.dialect.name != "duckdb":
        return None
    driver = connection.connection.driver_connection
    return getattr(driver, "_ConnectionWrapper__c", driver)  # duckdb-engine wraps the DuckDB connection


def takes_parquet(connection: sa.Connection) -> bool:
    """Whether whole tables reach this warehouse as Parquet files it reads in place (Spark SQL's
    Thrift server, which can read a local folder), rather than as rows: see ``register_parquet``.
    Databricks reads no local folder: its rows go through ``load_tables``."""
    return connection.dialect.name == "hive"


def register_parquet(connection: sa.Connection, paths: Mapping[str, str | Path],
                     report: Report | None = None) -> None:
    """Register Parquet files (``{table: path}``) as external Spark tables, replacing tables of the same
    names; the files must stay in place and be readable by the Spark server."""
    driver = connection.execution_options(no_parameters=True)
    for table, path in paths.items():
        location = str(Path(path).resolve()).replace("\\", "\\\\").replace("'", "\\'")
        driver.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        driver.exec_driver_sql(f"CREATE TABLE {table} USING parquet LOCATION '{location}'")
        if report is not None:
            report(table, 1.0)
    connection.commit()


def load_tables(source: duckdb.DuckDBPyConnection, connection: sa.Connection, tables: Mapping[str, sa.Table],
                counts: Mapping[str, int], report: Report | None = None) -> None:
    """Copy ``tables`` from the DuckDB ``source`` into the warehouse, replacing tables of the same names.

    ``tables`` are created from their SQLAlchemy definitions (keys included) in order and dropped in
    reverse order; their indexes are created after the rows are in, which is much faster than
    maintaining them (where indexes help: ``traits``). ``counts`` are the rows of each table (for
    ``report``). Commits.
    """
    dialect = connection.dialect
    copy_driver = dialect.driver if dialect.name == "postgresql" and dialect.driver in ("psycopg", "psycopg2") \
        else None
    indexes = {name: list(table.indexes) for name, table in tables.items()}
    try:
        for table in tables.values():
            table.indexes.clear()
        for table in reversed(tables.values()):
            table.drop(connection, checkfirst=True)
        for table in tables.values():
            table.create(connection)
    finally:
        for name, table in tables.items():
            table.indexes.update(indexes[name])
    driver = connection.connection.driver_connection
    for name, table in tables.items():
        share = (lambda part, name=name: report(name, part)) if report is not None else (lambda part: None)
        if copy_driver is not None:
            _copy_postgresql(source, driver, copy_driver, table, share)
        elif dialect.name == "sqlite":
            _insert_sqlite(source, driver, table, counts[name], share)
        else:
            _insert_generic(source, connection, table, counts[name], share)
    if traits(connection).indexes_help:
        for name in tables:
            for index in indexes[name]:
                index.create(connection)
    connection.commit()
    if dialect.name == "postgresql":
        # Fresh tables have no statistics until autovacuum gets round to them.
        connection.execute(sa.text("ANALYZE " + ", ".join(tables)))
        connection.commit()


def _quote_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _columns(table: sa.Table) -> list[str]:
    return [column.name for column in table.columns]


def _copy_postgresql(source: duckdb.DuckDBPyConnection, driver: Any, driver_name: str, table: sa.Table,
                     share: Callable[[float], None]) -> None:
    copy_sql = f"COPY {table.name} ({', '.join(_columns(table))}) FROM STDIN (FORMAT csv)"
    with tempfile.TemporaryDirectory(prefix="audlang-load-") as folder:
        path = Path(folder) / f"{table.name}.csv"
        # DuckDB writes NULL as an empty field and an empty string as "", as COPY … csv reads them.
        source.execute(f"COPY (SELECT {', '.join(_columns(table))} FROM {table.name}) TO '{_quote_path(path)}' "
                       "(FORMAT csv, HEADER false)")
        size = max(path.stat().st_size, 1)
        with path.open("rb") as data, driver.cursor() as cursor:
            if driver_name == "psycopg":
                with cursor.copy(copy_sql) as copy:
                    while chunk := data.read(COPY_CHUNK):
                        copy.write(chunk)
                        share(data.tell() / size)
            else:  # psycopg2
                cursor.copy_expert(copy_sql, data, size=COPY_CHUNK)
    share(1.0)


def _select_for_sqlite(table: sa.Table) -> str:
    """The source's rows as SQLite stores what SQLAlchemy's SQLite types read back."""
    parts = []
    for column in table.columns:
        kind = column.type
        if isinstance(kind, sa.DateTime):
            parts.append(f"strftime({column.name}, '%Y-%m-%d %H:%M:%S')")
        elif isinstance(kind, sa.Date):
            parts.append(f"CAST({column.name} AS VARCHAR)")
        elif isinstance(kind, sa.Boolean):
            parts.append(f"CAST({column.name} AS INTEGER)")
        elif isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Float):  # DECIMAL: REAL in SQLite
            parts.append(f"CAST({column.name} AS DOUBLE)")
        else:
            parts.append(column.name)
    return f"SELECT {', '.join(parts)} FROM {table.name}"


def _insert_sqlite(source: duckdb.DuckDBPyConnection, driver: Any, table: sa.Table, count: int,
                   share: Callable[[float], None]) -> None:
    columns = _columns(table)
    insert = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    result = source.execute(_select_for_sqlite(table))
    cursor = driver.cursor()
    try:
        rows = 0
        while batch := result.fetchmany(BATCH_ROWS):
            cursor.executemany(insert, batch)
            rows += len(batch)
            share(rows / max(count, 1))
    finally:
        cursor.close()


def _insert_generic(source: duckdb.DuckDBPyConnection, connection: sa.Connection, table: sa.Table, count: int,
                    share: Callable[[float], None]) -> None:
    columns = _columns(table)
    result = source.execute(f"SELECT {', '.join(columns)} FROM {table.name}")
    rows = 0
    while batch := result.fetchmany(GENERIC_BATCH_ROWS):
        bulk_insert(connection, table, [dict(zip(columns, row, strict=True)) for row in batch], chunk=len(batch))
        rows += len(batch)
        share(rows / max(count, 1))
