"""Benchmark: `audlang apply` of 111 fresh segments against the same segments written by hand, same run.

The segments are the shapes a retailer's project is made of (the seeds' use cases): purchases in a
window, spend and order counts, categories, brands and products, channels, tags, abandoned
checkouts, lifetime attributes, win-back (bought before, not lately), attribute filters. Each shape
comes with its hand-written SQL, parameters varied to 111 segments. In one run, on one synthetic
DuckDB warehouse (``audlang.datagen``, default 300k customers):

- ``one scan``: one ``GROUP BY customer_id`` scan of the orders into a table (the floor);
- ``hand``: the 111 hand-written queries as ``CREATE TABLE … AS`` run back to back in one DuckDB
  process (the warehouse copied fresh, the tables written into it);
- ``audlang``: ``audlang apply --auto-approve`` of the project in a fresh process, on a fresh copy of
  the warehouse (its plan preview included: that is the command a CI job runs).

``audlang`` runs in the environment of a user's shell: PYTHONUNBUFFERED and PYTHONDONTWRITEBYTECODE
unset (without bytecode files a fresh process compiles every module it imports; an installed package
has them). Every segment's member count from audlang's state must equal the hand query's. Prints the machine,
each time (median of ``--repeat``) and the ratios ``audlang / hand`` and ``audlang / one scan`` (medians of
the rounds' ratios: each round measures the three back to back).

Usage: python bench/apply_bench.py [--customers 300000] [--folder /tmp/apply-bench] [--repeat 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from audlang import ast, datagen
from audlang.compile.asof import AsOf, window_range

AS_OF = AsOf.parse("2024-11-30")
T = AS_OF.instant


def _ts(value: dt.datetime | None) -> str:
    return f"TIMESTAMP '{value:%Y-%m-%d %H:%M:%S}'" if value is not None else ""


def window_sql(column: str, days: int | None = None, since: str | None = None) -> tuple[str, str]:
    """(audlang window, hand SQL condition) for ``within last N days`` or ``since DATE``."""
    if days is not None:
        r = window_range(ast.WithinLast(days, "days"), AS_OF)
        text = f"within last {days} days"
    elif since is not None:
        r = window_range(ast.Since(ast.DateLiteral(since)), AS_OF)
        text = f"since {since}"
    else:
        r = window_range(None, AS_OF)
        text = ""
    low = f"{column} >= {_ts(r.low)} AND " if r.low is not None else ""
    return text, f"{low}{column} < {_ts(r.high)}"


def in_orders(where: str, having: str = "") -> str:
    group = f" GROUP BY customer_id HAVING {having}" if having else ""
    return (f"c.customer_id IN (SELECT customer_id FROM unified_transactions WHERE customer_id IS NOT NULL "
            f"AND {where}{group})")


def in_items(where: str, having: str = "") -> str:
    group = f" GROUP BY customer_id HAVING {having}" if having else ""
    return (f"c.customer_id IN (SELECT customer_id FROM unified_itemized_transactions WHERE customer_id IS NOT NULL "
            f"AND {where}{group})")


LIFETIME = (f"(SELECT customer_id, SUM(order_revenue) AS revenue, COUNT(order_id) AS orders, "
            f"MAX(order_datetime) AS last_order FROM unified_transactions WHERE order_datetime < {_ts(T)} "
            f"GROUP BY customer_id) d")

CATEGORIES = ["Accessories", "Apparel", "Beauty", "Gifts", "Home", "Pet Supplies", "Shoes", "Socks"]
BRANDS = ["Nike", "Adidas", "Hoka", "Bombas", "Patagonia", "Yeti", "Purina", "Kong", "Crocs", "Smartwool"]
STATES = ["OR", "WA", "CA", "NY", "TX"]


def shapes(rng: random.Random):
    """Each call: (audlang condition, hand WHERE over customer_360 c [, uses the lifetime join])."""
    days = rng.choice([7, 14, 30, 60, 90, 180, 365])
    w, ws = window_sql("order_datetime", days=days)
    since = rng.choice(["2023-11-01", "2024-01-01", "2024-06-01", "2024-09-01"])
    sw, sws = window_sql("order_datetime", since=since)
    category, brand, state = rng.choice(CATEGORIES), rng.choice(BRANDS), rng.choice(STATES)
    tag = rng.choice(datagen.TAGS)
    spend, orders = rng.choice([50, 100, 250, 500, 1000]), rng.choice([2, 3, 5])
    kw, kws = window_sql("started_at", days=rng.choice([1, 3, 7, 14]))
    yield (f"has_purchased {w} and sms_opt_in", f"{in_orders(ws)} AND c.sms_opt_in = true", False)
    yield (f"has_purchased spend > {spend} {w}", in_orders(ws, f"SUM(order_revenue) > {spend}"), False)
    yield (f"has_purchased orders >= {orders} {sw}", in_orders(sws, f"COUNT(DISTINCT order_id) >= {orders}"), False)
    yield (f'has_purchased category "{category}" {w}',
           in_items(f"product_category = '{category}' AND {ws}"), False)
    yield (f'has_purchased brand "{brand}" {sw} and contactable_email',
           f"{in_items(f'product_brand = {chr(39)}{brand}{chr(39)} AND {sws}')} AND c.contactable_email = true", False)
    yield (f'has_purchased category "{category}" quantity >= 2 {sw}',
           in_items(f"product_category = '{category}' AND {sws}", "SUM(item_quantity) >= 2"), False)
    yield (f'has_purchased channel "store" {w}', in_orders(f"channel = 'store' AND {ws}"), False)
    yield (f'tagged "{tag}" and sms_opt_in',
           f"c.customer_id IN (SELECT customer_id FROM customer_tags WHERE customer_id IS NOT NULL "
           f"AND tag = '{tag}') AND c.sms_opt_in = true", False)
    yield (f"abandoned_checkout {kw} and not has_purchased within last 7 days",
           f"c.customer_id IN (SELECT customer_id FROM checkouts WHERE customer_id IS NOT NULL AND "
           f"(completed IS NULL OR completed = false) AND {kws}) AND NOT "
           f"{in_orders(window_sql('order_datetime', days=7)[1])}", False)
    yield (f"lifetime_revenue > {spend * 2} and state = \"{state}\"",
           f"COALESCE(d.revenue, 0) > {spend * 2} AND c.state = '{state}'", True)
    yield (f"lifetime_orders >= {orders} and not has_purchased {w}",
           f"COALESCE(d.orders, 0) >= {orders} AND NOT {in_orders(ws)}", True)


def segments(count: int = 111, seed: int = 7) -> list[tuple[str, str, str]]:
    """``count`` segments: (name, audlang condition, hand SQL)."""
    rng = random.Random(seed)
    out: list[tuple[str, str, str]] = []
    while len(out) < count:
        for condition, where, lifetime in shapes(rng):
            if len(out) >= count:
                break
            source = f"customer_360 c LEFT JOIN {LIFETIME} ON d.customer_id = c.customer_id" if lifetime \
                else "customer_360 c"
            hand = f"SELECT DISTINCT c.customer_id FROM {source} WHERE c.customer_id IS NOT NULL AND {where}"
            out.append((f"Segment {len(out) + 1:03d}", condition, hand))
    return out


ONE_SCAN = ("CREATE TABLE one_scan AS SELECT customer_id, COUNT(*) AS orders, SUM(order_revenue) AS revenue "
            "FROM unified_transactions GROUP BY customer_id")


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_hand(database: Path, segs) -> tuple[float, dict[str, int]]:
    con = duckdb.connect(str(database))
    try:
        start = time.perf_counter()
        for i, (_name, _cond, hand) in enumerate(segs):
            con.execute(f"CREATE TABLE hand_{i} AS {hand}")
        seconds = time.perf_counter() - start
        counts = {name: con.execute(f"SELECT count(*) FROM hand_{i}").fetchone()[0]
                  for i, (name, _c, _h) in enumerate(segs)}
    finally:
        con.close()
    return seconds, counts


def run_one_scan(database: Path) -> float:
    con = duckdb.connect(str(database))
    try:
        return timed(lambda: con.execute(ONE_SCAN))
    finally:
        con.close()


def run_audlang(project: Path) -> tuple[float, dict[str, int]]:
    cmd = [sys.executable, "-m", "audlang", "--project", str(project), "apply", "--auto-approve", "--as-of",
           str(AS_OF)]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")}
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"audlang apply failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    listed = subprocess.run([sys.executable, "-m", "audlang", "--project", str(project), "state", "list",
                             "--format", "json"], capture_output=True, text=True)
    counts: dict[str, int] = {}
    if listed.returncode == 0:
        for row in json.loads(listed.stdout)["objects"]:
            if row.get("kind") == "segment":
                counts[row["name"]] = row.get("members")
    return seconds, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=300_000)
    parser.add_argument("--segments", type=int, default=111)
    parser.add_argument("--folder", default="/tmp/apply-bench")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    base = folder / f"warehouse-{args.customers}.duckdb"
    if not base.exists():
        print(f"generating {args.customers:,} customers …", flush=True)
        datagen.generate(f"duckdb:///{base}", args.customers)
    segs = segments(args.segments)
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"python {platform.python_version()}, duckdb {duckdb.__version__}")
    print(f"{args.customers:,} customers, {len(segs)} fresh segments, as of {AS_OF}")

    scans, hands, applies = [], [], []
    hand_counts: dict[str, int] = {}
    got: dict[str, int] = {}
    for _ in range(args.repeat):
        copy = folder / "hand.duckdb"
        shutil.copyfile(base, copy)
        scans.append(run_one_scan(copy))
        shutil.copyfile(base, copy)
        seconds, hand_counts = run_hand(copy, segs)
        hands.append(seconds)
        project = folder / "project"
        shutil.rmtree(project, ignore_errors=True)
        project.mkdir()
        shutil.copyfile(base, project / "warehouse.duckdb")
        (project / "audlang.toml").write_text('name = "bench"\nwarehouse = "duckdb:///warehouse.duckdb"\n')
        (project / "segments.aud").write_text(
            "\n".join(f'segment "{name}" < {cond} >' for name, cond, _h in segs) + "\n")
        seconds, got = run_audlang(project)
        applies.append(seconds)
    wrong = {n: (got.get(n), c) for n, c in hand_counts.items() if got and got.get(n) != c}
    scan, hand, apply = (statistics.median(x) for x in (scans, hands, applies))
    # each round's three figures are measured back to back: the median of the rounds' ratios
    to_hand = statistics.median(a / h for a, h in zip(applies, hands, strict=True))
    to_scan = statistics.median(a / s for a, s in zip(applies, scans, strict=True))
    print(f"one scan of orders      {scan:8.2f} s")
    print(f"hand CREATE TABLE × {len(segs)} {hand:8.2f} s   ({hand / scan:.1f} scans)")
    print(f"audlang apply           {apply:8.2f} s   ({to_hand:.2f}× hand, {to_scan:.1f}× one scan: medians of "
          f"the {len(applies)} rounds' ratios)")
    if not got:
        print("(member counts not read back from the state: `state list --format json` unavailable)")
    elif wrong:
        sys.exit(f"member counts differ from the hand queries: {dict(list(wrong.items())[:5])}")
    else:
        print(f"member counts equal the hand queries for all {len(segs)} segments")


if __name__ == "__main__":
    main()
