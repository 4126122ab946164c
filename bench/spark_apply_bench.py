"""Benchmark: ``audlang apply`` of the example project's segments on Spark SQL (local[2]) and on DuckDB, same run.

The warehouse is the one of ``bench/spark_bench.py`` (``bench/spark_setup.py``): the synthetic
customers written once as Parquet by DuckDB, the same rows loaded into a DuckDB file, and a Spark
Thrift server (``tests/spark_server.py``) that registers the Parquet files as external tables.

The project is a copy of ``examples/retail`` with its segments only: ``audlang.toml``,
``mappings.aud`` (the ``churn_scores`` table one segment reads), ``segments/`` and ``lists/``.
Its ``campaigns.aud`` and ``destinations.aud`` are left out: their syncs need API keys and would
call the destinations over the network, which is no part of the warehouse's work.

For each engine, ``--repeat`` times, in the same run:

- ``one scan``: one ``GROUP BY customer_id`` scan of the orders into a table (the baseline),
  DuckDB on a fresh copy of the warehouse file, Spark in a database of its own;
- ``apply``: ``python -m audlang --project <copy> apply --auto-approve --as-of 2024-11-30
  --warehouse <url> --state sqlite:///…`` timed as a whole process (start-up, plan preview with its
  shared facts pass, materialization, state), on fresh state: a fresh copy of the DuckDB file, a
  fresh Spark database, a new SQLite state file (Spark cannot hold the state; SQLite serves both).

Spark's first scan after the server starts (the JVM's warm-up) is run and reported apart, before
anything is timed. Each apply's output is kept in ``<folder>/c<N>/apply-runs/<engine>/apply/``.
Every segment's member count (``audlang state list --format json``) must be equal on both engines.
Prints the machine, the Spark master, the customers, the medians and the ratios; the machine's
load average at the start and the end shows what else was running.

Usage: python bench/spark_apply_bench.py [--customers 1000000] [--folder /tmp/spark-bench] [--repeat 1]
       [--master local[2]]
Needs Java 17 and ``pip install -e '.[spark]'``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import spark_setup
import sqlalchemy as sa

from audlang import examples

AS_OF = "2024-11-30"
#: The parts of the example project copied: everything the segments read, nothing that syncs.
PROJECT_PARTS = ("audlang.toml", "mappings.aud", "segments", "lists")
SCAN = ("SELECT customer_id, COUNT(*) AS orders, SUM(order_revenue) AS revenue FROM unified_transactions "
        "GROUP BY customer_id")


def segments_project(target: Path) -> Path:
    """A copy of the example project's segments (with their mappings and lists) in ``target``."""
    source = examples.example_path()
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for part in PROJECT_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part)
        else:
            shutil.copyfile(source / part, target / part)
    return target


def audlang(project: Path, *args: str) -> tuple[float, str]:
    """Run ``python -m audlang --project PROJECT ARGS…`` in a fresh process: (seconds, stdout)."""
    command = [sys.executable, "-m", "audlang", "--project", str(project), *args]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, NO_COLOR="1"))
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command[2:])} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def apply(project: Path, warehouse_url: str, run: Path) -> tuple[float, dict[str, int]]:
    """Time one fresh ``apply`` with its state in ``run/state.db``; then every segment's member count."""
    where = ("--warehouse", warehouse_url, "--state", f"sqlite:///{run / 'state.db'}")
    seconds, output = audlang(project, "apply", "--auto-approve", "--as-of", AS_OF, *where)
    (run / "apply.out").write_text(output)
    _, listed = audlang(project, "state", "list", "--format", "json", *where)
    counts = {row["name"]: row["members"] for row in json.loads(listed)["objects"] if row.get("kind") == "segment"}
    return seconds, counts


def timed(conn: sa.Connection | duckdb.DuckDBPyConnection, statement: str) -> float:
    start = time.perf_counter()
    if isinstance(conn, sa.Connection):
        conn.exec_driver_sql(statement)
    else:
        conn.execute(statement)
    return time.perf_counter() - start


def duckdb_leg(duck_file: Path, project: Path, runs: Path) -> tuple[float, float, dict[str, int]]:
    """(one scan, apply, member counts) on DuckDB, each on a fresh copy of the warehouse file."""
    runs.mkdir(parents=True, exist_ok=True)
    copy = runs / "scan.duckdb"
    shutil.copyfile(duck_file, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute("SET enable_progress_bar = false")
        scan = timed(con, f"CREATE TABLE one_scan AS {SCAN}")
    copy.unlink()
    run = runs / "apply"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir()
    shutil.copyfile(duck_file, run / "warehouse.duckdb")
    seconds, counts = apply(project, f"duckdb:///{run / 'warehouse.duckdb'}", run)
    return scan, seconds, counts


def one_spark_scan(scan_url: str) -> float:
    """One scan of the orders into a Parquet table of the database ``scan_url``, dropped afterwards."""
    engine = sa.create_engine(scan_url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS one_scan")
            seconds = timed(conn, f"CREATE TABLE one_scan USING parquet AS {SCAN}")
            conn.exec_driver_sql("DROP TABLE one_scan")
    finally:
        engine.dispose()
    return seconds


def spark_leg(scan_url: str, server_url: str, parquet: dict[str, Path], project: Path, runs: Path,
              ) -> tuple[float, float, dict[str, int]]:
    """(one scan, apply, member counts) on Spark; apply into a fresh database with a fresh SQLite state."""
    scan = one_spark_scan(scan_url)
    run = runs / "apply"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    url = spark_setup.spark_database(server_url, "apply_bench", parquet)
    seconds, counts = apply(project, url, run)
    return scan, seconds, counts


def compare(duck: dict[str, int], spark: dict[str, int]) -> str:
    """The sentence on the member counts; exits non-zero when they differ."""
    if not duck or duck != spark:
        names = sorted(set(duck) | set(spark))
        different = [f"  {n}: DuckDB {duck.get(n)}, Spark {spark.get(n)}" for n in names if duck.get(n) != spark.get(n)]
        sys.exit("member counts differ between the engines:\n" + "\n".join(different or ["  (no segments)"]))
    return (f"member counts equal on both engines for all {len(duck)} segments "
            f"({sum(duck.values()):,} memberships in all)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--folder", default=spark_setup.DEFAULT_FOLDER,
                        help="where the generated data, the copies and Spark's files go (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    folder = spark_setup.data_folder(args.folder, args.customers)
    parquet = spark_setup.parquet_warehouse(folder, args.customers)
    duck_file = spark_setup.duckdb_warehouse(folder, parquet)
    with duckdb.connect(str(duck_file), read_only=True) as con:
        orders = con.execute("SELECT COUNT(*) FROM unified_transactions").fetchone()[0]
    project = segments_project(folder / "apply-project")

    server = spark_setup.start_spark(args.master, folder)
    try:
        scan_url = spark_setup.spark_database(server.url, "apply_bench_scan", parquet)
        cold = one_spark_scan(scan_url)
        duck_scans, duck_applies, spark_scans, spark_applies = [], [], [], []
        duck_counts: dict[str, int] = {}
        spark_counts: dict[str, int] = {}
        for _ in range(args.repeat):
            scan, seconds, duck_counts = duckdb_leg(duck_file, project, folder / "apply-runs" / "duckdb")
            duck_scans.append(scan)
            duck_applies.append(seconds)
            scan, seconds, spark_counts = spark_leg(scan_url, server.url, parquet, project,
                                                    folder / "apply-runs" / "spark")
            spark_scans.append(scan)
            spark_applies.append(seconds)
    finally:
        server.stop()

    duck_scan, duck_apply, spark_scan, spark_apply = (
        statistics.median(x) for x in (duck_scans, duck_applies, spark_scans, spark_applies))
    print()
    print(f"machine: {spark_setup.machine()}; shared with other work (load average {load_before:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end)")
    print(f"engines: DuckDB {duckdb.__version__}; Spark {importlib.metadata.version('pyspark')} (pyspark wheel), "
          f"master {args.master}, {spark_setup.DRIVER_MEMORY} driver, Thrift server settings of tests/spark_server.py")
    print(f"{args.customers:,} customers, {orders:,} orders, as of {AS_OF}; the example project's "
          f"{len(duck_counts)} segments ({', '.join(PROJECT_PARTS)}; no campaigns or destinations: their syncs "
          f"need API keys and the network); state in SQLite on both; median of {args.repeat}")
    print(f"Spark's first scan on the fresh server (its warm-up, not counted): {cold:.2f} s")
    print()
    print(f"| {'':40} | {'DuckDB':>8} | {'Spark':>8} | Spark / DuckDB |")
    print(f"|{'-' * 42}|{'-' * 9}:|{'-' * 9}:|{'-' * 15}:|")
    print(f"| {'one GROUP BY customer_id scan of orders':40} | {duck_scan:6.2f} s | {spark_scan:6.2f} s | "
          f"{spark_scan / duck_scan:13.1f}× |")
    print(f"| {'audlang apply (whole process)':40} | {duck_apply:6.2f} s | {spark_apply:6.2f} s | "
          f"{spark_apply / duck_apply:13.1f}× |")
    print(f"| {'apply / one scan':40} | {duck_apply / duck_scan:7.1f}× | {spark_apply / spark_scan:7.1f}× | "
          f"{'':14} |")
    print()
    print(compare(duck_counts, spark_counts))


if __name__ == "__main__":
    main()
