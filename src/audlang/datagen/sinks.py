"""Where the generated warehouse goes: a DuckDB database, any SQLAlchemy database, Parquet files.

The tables are always built by ``build.build`` inside DuckDB: straight in the
target when the target is DuckDB, otherwise in an in-memory DuckDB from which
they are bulk-loaded by the engine layer (``audlang.warehouse.loading``, which
knows each engine's fast path: COPY into PostgreSQL, ``executemany`` into
SQLite, Core inserts elsewhere). This module only generates and reports
progress; it never asks which engine the target is.

- Parquet: one ``<table>.parquet`` file per table, written by DuckDB.
- Spark SQL (``hive://`` URLs, Spark's Thrift server): Parquet files written by
  DuckDB into a folder the Spark server can read, each registered as an
  external Spark table (``CREATE TABLE … USING parquet LOCATION …``): no row
  passes through the Thrift connection, and 1M customers load in seconds.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa

from audlang import backends
from audlang.datagen.build import DEFAULT_AS_OF, Progress, build
from audlang.datagen.schema import TABLES, sqlalchemy_tables
from audlang.warehouse import loading

# The share of the progress bar given to building when the data is then loaded elsewhere.
BUILD_SHARE = 0.5


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
        url = backends.with_driver(target)
        database = backends.database_file(url)
        if database is not None:
            Path(database).parent.mkdir(parents=True, exist_ok=True)  # e.g. target/warehouse.duckdb
        if backends.is_duckdb_file(url):
            with duckdb.connect(database) as con:
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
    if loading.takes_parquet(connection):
        if parquet_folder is None:
            raise ValueError("Spark reads the generated tables from Parquet files: pass parquet_folder, a folder "
                             "the Spark server can read")
        return generate_spark(connection, parquet_folder, customers, seed, as_of, progress)
    built_in = loading.duckdb_behind(connection)
    if built_in is not None:
        counts = build(built_in, customers, seed, as_of, progress)
        connection.commit()
        return counts
    with duckdb.connect() as source:
        counts = build(source, customers, seed, as_of, progress, weight=BUILD_SHARE)
        tables = sqlalchemy_tables()
        loading.load_tables(source, connection, tables, counts, _load_progress(tables, counts, progress))
    return counts


def _load_progress(tables: dict[str, sa.Table], counts: dict[str, int],
                   progress: Progress | None) -> loading.Report | None:
    """``progress`` over the load: the second part of the bar, in proportion to the rows loaded."""
    if progress is None:
        return None
    total = max(sum(counts.values()), 1)
    before, rows = {}, 0
    for table in tables:  # in the order they are loaded
        before[table] = rows
        rows += counts[table]

    def report(table: str, share: float) -> None:
        done = before[table] + share * counts[table]
        progress(f"load {table}", BUILD_SHARE + (1 - BUILD_SHARE) * done / total)

    return report


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
    report = None
    if progress is not None:
        order = {table: done for done, table in enumerate(paths, start=1)}

        def report(table: str, _share: float) -> None:
            progress(f"register {table}", 0.9 + 0.1 * order[table] / len(paths))

    loading.register_parquet(connection, paths, report)


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
