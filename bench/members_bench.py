"""Benchmark: audlang `members` against the same segment written by hand in SQL, on the same engine.

For a set of representative segments, each run in the same process and round:
- hand: the hand-written SQL executed by the engine's own driver, rows fetched;
- audlang: `evaluate.members` (compile + execute + fetch through SQLAlchemy), rows fetched;
both answers must be equal. Then, with --processes (DuckDB), whole processes: `audlang members NAME`
against `python -c <the hand query, run by the duckdb module, writing the same csv or json>`, byte for
byte the same output, for the csv of ids, csv with --fields, json with --fields and a --limit. The two
commands run in turn (A B A B …, after a warm-up each); the figure is the median of the pairs' ratios.
`audlang members` runs twice over: as installed (its query started early from the last run's, kept in
a cache folder: a temporary one here), and with the cache off (AUDLANG_CACHE_DIR=""), as a first run is.
Both commands get the environment of a user's shell: PYTHONUNBUFFERED and PYTHONDONTWRITEBYTECODE unset
(an unbuffered stdout costs the hand-written csv a system call per row; without bytecode files audlang
compiles its modules at every start).

Usage:
  python bench/members_bench.py duckdb  [--customers 1000000] [--warehouse FILE] [--processes [--runs 9]]
  python bench/members_bench.py sqlite  --customers 50000
  python bench/members_bench.py postgresql --customers 50000 --url postgresql+psycopg://…
The warehouse is generated (audlang.datagen) when the file does not exist yet (by default in the
temporary folder, never in the repository).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from audlang import evaluate, examples, project, warehouse
from audlang.compile import AsOf
from audlang.datagen import generate

AS_OF = "2024-11-30"
T = "2024-12-01 00:00:00"

# The same segments as examples/retail, written by hand as a data engineer would.
HAND = {
    "Holiday Shoppers - SMS": """
        SELECT c.customer_id FROM customer_360 c
        WHERE c.sms_opt_in AND c.customer_id IN (
          SELECT customer_id FROM unified_transactions
          WHERE order_datetime >= '2023-11-01' AND order_datetime < '2024-01-01')
        ORDER BY 1""",
    "Big Spenders": f"""
        SELECT c.customer_id FROM customer_360 c JOIN (
          SELECT customer_id, SUM(order_revenue) AS revenue FROM unified_transactions
          WHERE order_datetime < '{T}' GROUP BY customer_id) o ON o.customer_id = c.customer_id
        WHERE o.revenue > 500 ORDER BY 1""",
    "Churn Prevention - Socks": f"""
        SELECT c.customer_id FROM customer_360 c
        WHERE c.predicted_lifecycle_status IN ('Active', 'Cooling down', 'At risk')
          AND c.customer_id IN (
            SELECT customer_id FROM unified_itemized_transactions
            WHERE product_name = 'Socks' AND order_datetime >= '2024-08-31' AND order_datetime < '{T}'
            GROUP BY customer_id HAVING SUM(item_quantity) = 1)
        ORDER BY 1""",
    "Cat Snack Buyers": f"""
        SELECT customer_id FROM unified_itemized_transactions
        WHERE product_collection = 'Cat snacks' AND order_datetime >= '2023-12-01' AND order_datetime < '{T}'
          AND customer_id IN (SELECT customer_id FROM customer_360)
        GROUP BY customer_id HAVING COUNT(DISTINCT order_id) >= 2 ORDER BY 1""",
    "Lapsed VIP": f"""
        SELECT c.customer_id FROM customer_360 c
        WHERE c.customer_id IN (SELECT customer_id FROM customer_tags WHERE tag = 'VIP')
          AND c.customer_id IN (SELECT customer_id FROM unified_transactions WHERE order_datetime < '{T}'
                                GROUP BY customer_id HAVING SUM(order_revenue) > 500)
          AND c.customer_id NOT IN (SELECT customer_id FROM unified_transactions
                                    WHERE order_datetime >= '2024-09-02' AND order_datetime < '{T}')
        ORDER BY 1""",
    "Cart Abandoners - Last Hour": f"""
        SELECT c.customer_id FROM customer_360 c
        WHERE c.sms_opt_in AND c.customer_id IN (
          SELECT customer_id FROM checkouts WHERE NOT completed
            AND started_at >= '2024-11-30 23:00:00' AND started_at < '{T}')
        ORDER BY 1""",
    "In-store Customers - Portland": """
        SELECT customer_id FROM customer_360
        WHERE contactable_phone AND postal IN ('97201', '97202', '97205', '97209') ORDER BY 1""",
    "Not Ordered in 3 Months": f"""
        SELECT c.customer_id FROM customer_360 c
        WHERE c.sms_opt_in
          AND c.customer_id IN (SELECT customer_id FROM unified_transactions WHERE order_datetime < '{T}')
          AND c.customer_id NOT IN (SELECT customer_id FROM unified_transactions
                                    WHERE order_datetime >= '2024-08-31' AND order_datetime < '{T}')
        ORDER BY 1""",
}


def best_of(fn, repeat: int):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("engine", choices=["duckdb", "sqlite", "postgresql"])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--warehouse", help="file for duckdb/sqlite (generated if missing)")
    parser.add_argument("--url", help="PostgreSQL URL (generated into when --generate)")
    parser.add_argument("--generate", action="store_true", help="(re)generate the warehouse first")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--processes", action="store_true", help="also time whole `audlang members` processes")
    parser.add_argument("--runs", type=int, default=9, help="pairs of whole processes per case")
    args = parser.parse_args()

    if args.engine == "postgresql":
        url = args.url
    else:
        default = Path(tempfile.gettempdir()) / f"audlang-bench-{args.engine}-{args.customers}.{args.engine}"
        path = Path(args.warehouse or default).resolve()
        url = f"{args.engine}:///{path}"
        args.generate = args.generate or not path.exists()
    if args.generate:
        start = time.perf_counter()
        counts = generate(url, customers=args.customers, seed=42)
        print(f"generated {counts} in {time.perf_counter() - start:.1f} s", file=sys.stderr)

    loaded = project.load([str(examples.example_path())])
    model = loaded.model
    as_of = AsOf.parse(AS_OF)
    engine = warehouse.connect(url)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"SQLAlchemy {sa.__version__}; engine {args.engine}, {args.customers:,} customers")
    print(f"{'segment':<32}{'members':>10}{'hand s':>10}{'audlang s':>11}{'ratio':>8}")
    ratios = []
    raw = engine.raw_connection()
    for name, sql in HAND.items():
        def hand(sql=sql):
            cursor = raw.cursor()
            cursor.execute(sql)
            rows = [r[0] for r in cursor.fetchall()]
            cursor.close()
            return rows

        def ours(name=name):
            _header, rows = evaluate.members(engine, url, model, name, as_of)
            return [r[0] for r in rows]

        ours()  # warm both the same way (caches, first-query costs)
        hand()
        hand_time, expected = best_of(hand, args.repeat)
        our_time, got = best_of(ours, args.repeat)
        assert got == expected, f"{name}: audlang {len(got)} members, hand-written {len(expected)}"
        ratios.append(our_time / hand_time)
        print(f"{name:<32}{len(got):>10,}{hand_time:>10.3f}{our_time:>11.3f}{our_time / hand_time:>8.2f}")
    raw.close()
    engine.dispose()  # DuckDB files take one writer process: let the subprocesses in
    geo = statistics.geometric_mean(ratios)
    print(f"{'geometric mean ratio':<63}{geo:>8.2f}   (target <= 1.2)")

    if args.processes and args.engine == "duckdb":
        whole_processes(path, url, args.runs)


# The hand-written side of the whole-process comparison: the duckdb module runs the query and Python's
# csv or json module writes the rows as `audlang members` writes them (money and dates as it prints them).
HAND_PROGRAM = r"""
import csv, datetime, decimal, json, sys
import duckdb
database, fmt, sql, header = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
conn = duckdb.connect(database, read_only=True)
conn.execute("SET enable_progress_bar = false")  # a query past 2 s would draw one on stdout
rows = conn.execute(sql).fetchall()
def plain(v):
    if isinstance(v, decimal.Decimal):
        return float(v) if v != v.to_integral_value() else int(v)
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat()
    return str(v)
if fmt == "json":
    sys.stdout.write(json.dumps([dict(zip(header, r)) for r in rows], default=plain, indent=2) + "\n")
else:
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(header)
    w.writerows(["" if v is None else v if isinstance(v, str) else plain(v) for v in r] for r in rows)
"""
PROCESS_SEGMENT = "Big Spenders"
FIELDS = ["email", "predicted_clv", "created_at", "sms_opt_in", "latitude"]
#: (label, audlang members options, format, fields, limit)
PROCESS_CASES = [
    ("csv, ids", [], "csv", [], None),
    ("csv, --fields", ["--fields", ",".join(FIELDS)], "csv", FIELDS, None),
    ("json, --fields", ["--format", "json", "--fields", "loyalty_tier,predicted_clv"], "json",
     ["loyalty_tier", "predicted_clv"], None),
    ("csv, --limit 10", ["--limit", "10"], "csv", [], 10),
]


def hand_sql(fields: list[str], limit: int | None) -> str:
    ids = HAND[PROCESS_SEGMENT].strip().removesuffix("ORDER BY 1")
    sql = f"SELECT m.customer_id{''.join(f', p.{f}' for f in fields)} FROM ({ids}) m"
    if fields:
        sql += " LEFT JOIN customer_360 p ON p.customer_id = m.customer_id"
    return sql + " ORDER BY 1" + (f" LIMIT {limit}" if limit is not None else "")


def user_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")}
    return {**env, **extra}


def timed(command: list[str], env: dict[str, str]) -> tuple[float, bytes]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, check=True, env=env)
    return time.perf_counter() - start, done.stdout


def paired(a: list[str], b: list[str], env_a: dict[str, str], env_b: dict[str, str], runs: int):
    """A and B in turn after a warm-up each; their output must be the same bytes. Medians and ratios."""
    _t, out_a = timed(a, env_a)
    _t, out_b = timed(b, env_b)
    assert out_a == out_b, f"outputs differ: {len(out_a)} and {len(out_b)} bytes"
    times_a, times_b = [], []
    for _ in range(runs):
        times_a.append(timed(a, env_a)[0])
        times_b.append(timed(b, env_b)[0])
    ratios = [x / y for x, y in zip(times_a, times_b, strict=True)]
    return statistics.median(times_a), statistics.median(times_b), ratios, len(out_a)


def whole_processes(path: Path, url: str, runs: int) -> None:
    audlang = shutil.which("audlang")
    base = [audlang] if audlang else [sys.executable, "-m", "audlang"]
    print(f"\nwhole processes, {PROCESS_SEGMENT!r}, {runs} pairs after a warm-up each (median; ratio min-max):")
    print(f"{'case':<18}{'bytes':>11}{'hand s':>9}{'audlang s':>11}{'ratio':>7}{'range':>13}"
          f"{'cache off s':>13}{'ratio':>7}")
    with tempfile.TemporaryDirectory() as folder:
        examples.write_example(Path(folder) / "project")
        cache = Path(folder) / "cache"
        hand_env = user_environment()
        for label, options, fmt, fields, limit in PROCESS_CASES:
            ours = [*base, "--project", str(Path(folder) / "project"), "members", PROCESS_SEGMENT, "--as-of", AS_OF,
                    "--warehouse", url, *options]
            hand = [sys.executable, "-c", HAND_PROGRAM, str(path), fmt, hand_sql(fields, limit),
                    ",".join(["customer_id", *fields])]
            early_a, early_b, early_r, size = paired(ours, hand, user_environment(AUDLANG_CACHE_DIR=str(cache)),
                                                     hand_env, runs)
            cold_a, _cold_b, cold_r, _size = paired(ours, hand, user_environment(AUDLANG_CACHE_DIR=""), hand_env,
                                                    runs)
            print(f"{label:<18}{size:>11,}{early_b:>9.3f}{early_a:>11.3f}{statistics.median(early_r):>7.2f}"
                  f"{min(early_r):>7.2f}-{max(early_r):.2f}{cold_a:>13.3f}{statistics.median(cold_r):>7.2f}"
                  "   (target <= 1.2)")


if __name__ == "__main__":
    main()
