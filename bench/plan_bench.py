"""Benchmark: a no-change `plan` over N segments (default 1,000) on an embedded DuckDB warehouse.

Builds a synthetic warehouse (2,000 customers), writes N generated segments
(a tenth of them using another segment), applies them once, then times the
plan that follows, which finds nothing to do: loading and checking the
project, reading the state, and counting every segment's membership against
its deployed membership in the warehouse. Timed in process once, then as the
command (`audlang plan` in fresh processes, median of 5) beside `audlang validate`
of the same files (start-up, parse and check: the part that is not the warehouse's).
Usage: python bench/plan_bench.py [N]
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from audlang import datagen
from audlang.deploy import apply_plan, plan_project
from audlang.compile import AsOf
from audlang.project import load

CLAUSES = [
    "sms_opt_in", "contactable_phone", 'state in ("OR", "WA")', "lifetime_revenue > {n}",
    'predicted_lifecycle_status in ("Active", "At risk")', "loyalty_tier is set",
    "has_purchased within last {n} days", 'tagged "VIP"', "abandoned_checkout within last {n} days",
    "has_purchased spend > {n} since 2024-01-01", "not has_purchased within last 90 days",
]


def project_text(count: int, seed: int = 11) -> str:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        parts = [rng.choice(CLAUSES).format(n=rng.randint(2, 400)) for _ in range(rng.randint(1, 3))]
        if i >= 10 and rng.random() < 0.1:
            parts.append(f'in segment "Segment {rng.randrange(i):04d}"')
        out.append(f'segment "Segment {i:04d}" < {" and ".join(parts)} >')
    return "\n\n".join(out) + "\n"


def main(count: int = 1000, repeat: int = 5) -> None:
    as_of = AsOf.parse("2024-11-30")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = f"duckdb:///{folder / 'warehouse.duckdb'}"
        datagen.generate(url, customers=2000, seed=3)
        (folder / "audlang.toml").write_text(f'warehouse = "{url}"\n')
        (folder / "segments.aud").write_text(project_text(count))
        started = time.perf_counter()
        loaded = load(None, str(folder))
        first = plan_project(loaded, as_of=as_of)
        planned = time.perf_counter() - started
        started = time.perf_counter()
        apply_plan(first, url, root=folder, model=loaded.model)
        applied = time.perf_counter() - started
        started = time.perf_counter()
        loaded = load(None, str(folder))
        again = plan_project(loaded, as_of=as_of)
        elapsed = time.perf_counter() - started
        assert not again.has_changes, [a.name for a in again.actions][:5]
        # The command as CI runs it, in fresh processes; `validate` (start-up, parse, check) beside it.
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")}

        def command(*args: str) -> float:
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "audlang", "--project", str(folder), *args],
                                  capture_output=True, text=True, env=env)
            assert done.returncode == 0, done.stdout + done.stderr
            return time.perf_counter() - start

        plans, validates = [], []
        for _ in range(repeat):
            plans.append(command("plan", "--as-of", "2024-11-30", "--detailed-exitcode"))
            validates.append(command("validate"))
    print(f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
          f"{platform.python_version()}, DuckDB; load average {os.getloadavg()[0]:.1f}")
    print(f"first plan of {count:,} segments: {planned:.1f} s; apply: {applied:.1f} s")
    print(f"no-change plan of {count:,} segments, in process: {elapsed:.2f} s")
    plan_s, validate_s = statistics.median(plans), statistics.median(validates)
    print(f"`audlang plan`, no change, fresh process (median of {repeat}): {plan_s:.2f} s "
          f"(target <= 2 s); `audlang validate` of the same files: {validate_s:.2f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
