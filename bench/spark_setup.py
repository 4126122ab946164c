"""What the Spark benchmarks share: one synthetic warehouse as Parquet, the same rows in DuckDB, a Thrift server.

``bench/spark_bench.py`` (segment queries) and ``bench/spark_apply_bench.py`` (``audlang apply``) run
over the same files: ``<folder>/c<customers>/<table>.parquet``, written once by DuckDB
(``datagen.generate_parquet``) and kept for the next run; ``warehouse.duckdb`` beside them holds
the same rows loaded into DuckDB tables. The Spark Thrift server is ``tests/spark_server.py``,
started from the pyspark wheel, with its metastore, warehouse and logs in ``<folder>/c<N>/spark``.

Needs Java 17 and ``pip install -e '.[spark]'``.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import time
from pathlib import Path

import duckdb
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import spark_server  # noqa: E402

from audlang.datagen import TABLES, generate_parquet, register_spark  # noqa: E402

DEFAULT_FOLDER = "/tmp/spark-bench"
DRIVER_MEMORY = "6g"


def data_folder(folder: str | Path, customers: int) -> Path:
    return Path(folder).resolve() / f"c{customers}"


def parquet_warehouse(folder: Path, customers: int) -> dict[str, Path]:
    """``{table: path}`` of the Parquet files in ``folder``, generated first if any is missing."""
    parquet = {t: folder / f"{t}.parquet" for t in TABLES}
    if not all(p.exists() for p in parquet.values()):
        start = time.perf_counter()
        generate_parquet(folder, customers)
        print(f"generated {customers:,} customers as Parquet in {time.perf_counter() - start:.0f} s", flush=True)
    return parquet


def duckdb_warehouse(folder: Path, parquet: dict[str, Path]) -> Path:
    """``folder/warehouse.duckdb``: the Parquet files loaded into DuckDB tables (once)."""
    duck_file = folder / "warehouse.duckdb"
    if not duck_file.exists():
        partial = duck_file.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        with duckdb.connect(str(partial)) as con:
            con.execute("SET enable_progress_bar = false")
            for table, path in parquet.items():
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet('{path}')")
        partial.rename(duck_file)
    return duck_file


def start_spark(master: str, folder: Path) -> spark_server.SparkServer:
    """A Thrift server with a fresh metastore in ``folder/spark`` (what an earlier run left is removed)."""
    shutil.rmtree(folder / "spark", ignore_errors=True)
    start = time.perf_counter()
    server = spark_server.start(master, folder=folder / "spark", driver_memory=DRIVER_MEMORY)
    print(f"Spark Thrift server ({master}, {DRIVER_MEMORY} driver) up in {time.perf_counter() - start:.0f} s",
          flush=True)
    return server


def spark_database(server_url: str, name: str, parquet: dict[str, Path]) -> str:
    """A fresh Spark database ``name`` with the Parquet files registered as its tables; its ``hive://`` URL."""
    admin = sa.create_engine(server_url)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} CASCADE")
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    finally:
        admin.dispose()
    url = server_url.rsplit("/", 1)[0] + f"/{name}"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            register_spark(conn, parquet)
    finally:
        engine.dispose()
    return url


def machine() -> str:
    """The machine in one line: platform, processor, cores, memory, Python."""
    memory = ""
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB memory"
    return (f"{platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores{memory}; "
            f"Python {platform.python_version()}")
