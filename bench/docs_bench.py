"""Benchmark: `audlang docs generate` for a project of 1,000 segments over a 20k-customer DuckDB warehouse.

Writes a synthetic project (every kind of condition of the example project, with
varied thresholds, windows, products and states; one segment in eight uses
earlier ones through `in segment`, up to several levels deep; 20 campaigns
and 10 destinations), builds the warehouse with audlang.datagen, then times
the whole command as a user runs it (`audlang docs generate`, a fresh process),
best of --repeat runs.

Usage:
  python bench/docs_bench.py [--segments 1000] [--customers 20000] [--repeat 3] [--folder DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from audlang.datagen import generate

AS_OF = "2024-11-30"

TEMPLATES = [
    'lifetime_revenue > {money}',
    'has_purchased spend > {money} within last {n} months and sms_opt_in',
    'has_purchased category "{category}" orders >= {small} within last {n} years',
    'has_purchased channel "{channel}" between 2024-0{month}-01 and 2024-0{month}-28',
    'predicted_lifecycle_status in ("Active", "{status}") and contactable_email',
    'state = "{state}" and loyalty_tier in ("Gold", "Platinum")',
    'not (state = "{state}") and email_opt_in',
    'tagged "VIP" and not has_purchased within last {days} days',
    'abandoned_checkout within last {n} days and sms_opt_in',
    'average_order_value >= {small}0 and days_since_last_order <= {days}',
    'created_at >= today - {n} months and email_opt_in',
    'email ends with "@gmail.com" and lifetime_orders >= {small}',
    'near store "PDX-01" within {n}0 miles and contactable_phone',
    'churn_score >= 0.{small} and contactable_email',
    'has_purchased collection "{collection}" quantity >= {small} within last 1 year',
]
VALUES = {
    "category": ["Shoes", "Accessories", "Apparel", "Pet"], "channel": ["store", "online", "app"],
    "status": ["Cooling down", "At risk", "Highly at risk", "Lost", "New"],
    "state": ["OR", "WA", "CA", "NY", "TX"], "collection": ["Cat snacks", "Dog treats"],
}


def write_project(folder: Path, segments: int, seed: int = 5) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "audlang.toml").write_text('name = "bench"\nwarehouse = "duckdb:///target/warehouse.duckdb"\n')
    (folder / "mappings.aud").write_text(
        'table churn_scores from "churn_scores" <\n  churn_score number = "score"\n>\n')
    names: list[str] = []
    per_file = 100
    for f in range(0, segments, per_file):
        lines = []
        for i in range(f, min(segments, f + per_file)):
            name = f"Segment {i:04d}"
            if names and rng.random() < 0.125:
                used = rng.sample(names[-200:], k=min(len(names[-200:]), rng.choice([1, 2])))
                joiner = rng.choice([" and ", " or "])
                condition = joiner.join(f'in segment "{u}"' for u in used) + " and sms_opt_in"
            else:
                condition = rng.choice(TEMPLATES).format(
                    money=rng.choice([100, 250, 500, 1000, 2000]), n=rng.randint(1, 6),
                    small=rng.randint(1, 5), days=rng.choice([30, 60, 90, 180]), month=rng.randint(1, 9),
                    **{k: rng.choice(v) for k, v in VALUES.items()})
            lines.append(f"# Benchmark segment {i}.\nsegment \"{name}\" < {condition} >\n")
            names.append(name)
        (folder / f"segments_{f // per_file:02d}.aud").write_text("\n".join(lines))
    destinations = [f'destination "File {d}" csv <\n  path = "target/exports/{d}-{{{{ group }}}}.csv"\n>\n'
                    for d in range(10)]
    campaigns = [f'campaign "Campaign {c}" <\n  audience segment "{names[c * 37 % len(names)]}"\n  holdout 10%\n'
                 f'  treatment "A" 45% to "File {c % 10}"\n  treatment "B" 45% to "File {(c + 1) % 10}"\n>\n'
                 for c in range(20)]
    (folder / "delivery.aud").write_text("\n".join(destinations + campaigns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--segments", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="audlang-docs-bench-"))
    write_project(folder, args.segments)
    database = folder / "target" / "warehouse.duckdb"
    if not database.exists():
        database.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        generate(f"duckdb:///{database}", customers=args.customers, seed=42)
        print(f"warehouse: {args.customers:,} customers in {time.perf_counter() - started:.1f}s")
    command = [sys.executable, "-m", "audlang", "--project", str(folder), "docs", "generate", "--as-of", AS_OF]
    check = subprocess.run([sys.executable, "-m", "audlang", "--project", str(folder), "validate"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        assert result.returncode == 0, result.stderr
    pages = len(list((folder / "target" / "docs" / "segments").glob("*.html")))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    print(f"project: {args.segments:,} segments, 20 campaigns, 10 destinations; {pages:,} segment pages")
    print(f"machine: {os.cpu_count()} cores, {cpu}; Python {platform.python_version()}, {platform.system()}")
    print(f"audlang docs generate (whole process): best {min(times):.1f}s, runs "
          + ", ".join(f"{t:.1f}s" for t in times))


if __name__ == "__main__":
    main()
