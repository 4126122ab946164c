"""Benchmark: the representative segments at 1M customers on Spark SQL (local[2]) and on DuckDB, same run.

The synthetic warehouse is written once as Parquet by DuckDB (``datagen.generate_parquet``);
DuckDB loads those files into its own tables, and a Spark Thrift server started from the
pyspark wheel (``tests/spark_server.py``, ``--master local[2]``) registers the same files as
external tables (``bench/spark_setup.py``, shared with ``bench/spark_apply_bench.py``). For each
segment, on each engine, in the same process:
- ``count``: the segment's members counted in the engine (the work of ``apply``: nothing leaves it);
- ``members``: ``evaluate.members`` — compile, run, fetch every id (through Thrift for Spark);
the answers must be equal. Spark's first query of a segment is reported apart (cold), then the
best of ``--repeat`` runs.

Usage: python bench/spark_bench.py [--customers 1000000] [--folder /tmp/spark-bench] [--repeat 2]
Needs Java 17 and ``pip install -e '.[spark]'``.
"""

from __future__ import annotations

import argparse
import sys
import time

import spark_setup
import sqlalchemy as sa

from audlang import evaluate, examples, project, warehouse
from audlang.compile import AsOf, SegmentCompiler

AS_OF = "2024-11-30"
SEGMENTS = ["Holiday Shoppers - SMS", "Big Spenders", "Churn Prevention - Socks", "Cat Snack Buyers", "Lapsed VIP",
            "Cart Abandoners - Last Hour", "In-store Customers - Portland", "Not Ordered in 3 Months",
            "Near Pearl Store", "High AOV Active"]


def best(fn, repeat: int):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--folder", default=spark_setup.DEFAULT_FOLDER)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()

    folder = spark_setup.data_folder(args.folder, args.customers)
    parquet = spark_setup.parquet_warehouse(folder, args.customers)
    duck_file = spark_setup.duckdb_warehouse(folder, parquet)

    project_dir = folder / "project"
    examples.write_example(project_dir)
    model = project.load(None, str(project_dir)).model
    as_of = AsOf.parse(AS_OF)

    server = spark_setup.start_spark(args.master, folder)
    try:
        spark_url = spark_setup.spark_database(server.url, "spark_bench", parquet)
        spark = warehouse.connect(spark_url)
        duck_url = f"duckdb:///{duck_file}"
        duck = warehouse.connect(duck_url)
        rows = []
        for name in SEGMENTS:
            query = SegmentCompiler(model, as_of).segment(name).subquery()
            count = sa.select(sa.func.count()).select_from(query)

            def counted(engine, count=count):
                with engine.connect() as conn:
                    return conn.execute(count).scalar_one()

            def members(engine, url, name=name):
                return [r[0] for r in evaluate.members(engine, url, model, name, as_of)[1]]

            cold_start = time.perf_counter()
            spark_count = counted(spark)
            cold = time.perf_counter() - cold_start
            spark_count_t, _ = best(lambda: counted(spark), args.repeat)
            duck_count_t, duck_count = best(lambda: counted(duck), args.repeat + 1)
            spark_members_t, spark_ids = best(lambda: members(spark, spark_url), args.repeat)
            duck_members_t, duck_ids = best(lambda: members(duck, duck_url), args.repeat + 1)
            equal = spark_ids == duck_ids and spark_count == duck_count == len(duck_ids)
            rows.append((name, len(duck_ids), cold, spark_count_t, duck_count_t, spark_members_t, duck_members_t,
                         equal))
            print(f"{name:32} {len(duck_ids):>9,}  spark cold {cold:5.2f}s  count {spark_count_t:5.2f}s / duckdb "
                  f"{duck_count_t:5.3f}s  members {spark_members_t:5.2f}s / {duck_members_t:5.3f}s  "
                  f"{'equal' if equal else 'DIFFERENT'}", flush=True)
        print()
        print(f"machine: {spark_setup.machine()}; {args.customers:,} customers, as of {AS_OF}")
        print("| segment | members | Spark cold | Spark count | DuckDB count | Spark members | DuckDB members "
              "| equal |")
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        for name, n, cold, sc, dc, sm, dm, equal in rows:
            print(f"| {name} | {n:,} | {cold:.2f} s | {sc:.2f} s | {dc:.3f} s | {sm:.2f} s | {dm:.3f} s | "
                  f"{'yes' if equal else 'NO'} |")
        if not all(r[-1] for r in rows):
            sys.exit("answers differ")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
