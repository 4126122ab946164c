"""Benchmark: generate the synthetic warehouse into a DuckDB file (default 1,000,000 customers).

Prints the rows of each table, the seconds taken and the file's size.
Usage: python bench/datagen_bench.py [CUSTOMERS] [--out FILE] [--seed N]
(without --out the file goes to a temporary folder and is removed afterwards).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from audlang.datagen import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("customers", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, help="the DuckDB file to write (replaced if it exists)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="audlang-bench-") as folder:
        path = args.out or Path(folder) / "warehouse.duckdb"
        for leftover in (path, path.with_name(path.name + ".wal")):
            leftover.unlink(missing_ok=True)
        stages: dict[str, float] = {}
        start = time.perf_counter()

        def progress(stage: str, fraction: float) -> None:
            stages.setdefault(stage, time.perf_counter() - start)

        counts = generate(f"duckdb:///{path}", args.customers, seed=args.seed, progress=progress)
        seconds = time.perf_counter() - start
        size = path.stat().st_size

    print(f"datagen: {args.customers:,} customers into DuckDB on {platform.python_implementation()} "
          f"{platform.python_version()}, {os.cpu_count()} CPUs")
    for table, rows in counts.items():
        print(f"  {table:<31} {rows:>12,} rows")
    total = sum(counts.values())
    print(f"  {'total':<31} {total:>12,} rows")
    print("stages started at: " + ", ".join(f"{stage} {at:.1f}s" for stage, at in stages.items()))
    print(f"{seconds:.1f} s, {total / seconds:,.0f} rows/s, file {size / 2**20:,.0f} MiB")


if __name__ == "__main__":
    main()
