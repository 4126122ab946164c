"""Benchmark: audlang `members` against the same segment written by hand in SQL, on the same engine.

For a set of representative segments, each run in the same process and round:
- hand: the hand-written SQL executed by the engine's own driver, rows fetched;
- audlang: `evaluate.members` (compile + execute + fetch through SQLAlchemy), rows fetched;
both answers must be equal. Then whole processes: `audlang members NAME` against
`python -c <duckdb hand query>`, to show what process start-up adds.

Usage:
  python bench/members_bench.py duckdb  [--customers 1000000] [--warehouse FILE]
  python bench/members_bench.py sqlite  --customers 50000
  python bench/members_bench.py postgresql --customers 50000 --url postgresql+psycopg://…
The warehouse is generated (audlang.datagen) when the file does not exist yet.
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
    args = parser.parse_args()

    if args.engine == "postgresql":
        url = args.url
    else:
        path = Path(args.warehouse or f"bench-{args.engine}-{args.customers}.{args.engine}").resolve()
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
        audlang = shutil.which("audlang") or f"{sys.executable} -m audlang"
        with tempfile.TemporaryDirectory() as folder:
            examples.write_example(Path(folder))
            name = "Big Spenders"
            hand_cmd = [sys.executable, "-c",
                        "import duckdb,sys,csv;c=duckdb.connect(sys.argv[1],read_only=True);"
                        "w=csv.writer(sys.stdout);w.writerow(['customer_id']);"
                        "w.writerows(c.execute(sys.argv[2]).fetchall())", str(path), HAND[name]]
            our_cmd = [*audlang.split(), "--project", folder, "members", name, "--as-of", AS_OF, "--warehouse", url]
            hand_t, _ = best_of(lambda: subprocess.run(hand_cmd, capture_output=True, check=True), args.repeat)
            our_t, _ = best_of(lambda: subprocess.run(our_cmd, capture_output=True, check=True), args.repeat)
            print(f"whole processes, {name}: hand {hand_t:.3f} s, audlang members {our_t:.3f} s, "
                  f"ratio {our_t / hand_t:.2f}")


if __name__ == "__main__":
    main()
