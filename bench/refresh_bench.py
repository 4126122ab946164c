"""Benchmark: a segment's refresh costs what the segment costs, whatever else is deployed (DuckDB).

Builds a synthetic warehouse (default 300,000 customers) in a DuckDB file under /tmp, then times the
refresh (``warehouse.Membership.replace``: the new generation written, counted against the deployed
one, swapped in, committed) of segments of about 1,000, 30,000, 150,000 and 300,000 members, each
against the same compiled query written by hand as ``CREATE TABLE … AS`` in the same run, in two
copies of the warehouse: one with nothing else deployed, one with OTHERS (default 100) large
segments deployed beside. Each figure is the median of REPEATS (default 5) rounds; a round runs the
hand table and the refresh in turn in each copy, so the pairs and the two copies share the
machine's drift. Last, every deployed segment is refreshed once more (what an apply that refreshes
them all does), each after the same query as a hand table.

Usage: python bench/refresh_bench.py [--customers N] [--others N] [--repeats N] [--keep]
(--keep leaves the warehouse files in /tmp/audlang-refresh-bench for a second look).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import sqlalchemy as sa

from audlang import datagen, warehouse
from audlang.compile import AsOf, SegmentCompiler
from audlang.project import analyze
from audlang.warehouse.tables import create_table_as, drop_table

AS_OF = AsOf.parse("2024-11-30")
SIZES = (1_000, 30_000, 150_000, 300_000)
#: What the deployed segments are: large, overlapping, of every kind of condition.
OTHER_CLAUSES = ("lifetime_revenue > {n}", "not has_purchased within last {n} days", "customer_id is set",
                 "has_purchased within last {n} days or sms_opt_in", "email is set")


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} CPUs, {memory:.0f} GiB; "
            f"{platform.python_implementation()} {platform.python_version()}, DuckDB {duckdb.__version__}, "
            f"SQLAlchemy {sa.__version__}")


def thresholds(engine: sa.Engine) -> dict[int, float | None]:
    """The predicted CLV above which about ``size`` customers are (None: everyone)."""
    out: dict[int, float | None] = {}
    with engine.connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM customer_360")).scalar_one()
        for size in SIZES:
            out[size] = None if size >= total else conn.execute(sa.text(
                "SELECT predicted_clv FROM customer_360 WHERE predicted_clv IS NOT NULL ORDER BY predicted_clv DESC "
                "LIMIT 1 OFFSET :k"),
                {"k": size}).scalar_one()
    return out


def project_text(limits: dict[int, float | None], others: int) -> str:
    out = []
    for size, limit in limits.items():
        condition = "customer_id is set" if limit is None else f"predicted_clv > {limit}"
        out.append(f'segment "Size {size}" < {condition} >')
    for i in range(others):
        clause = OTHER_CLAUSES[i % len(OTHER_CLAUSES)].format(n=(i * 7) % 50 + 30 if i % 5 else i)
        out.append(f'segment "Other {i:03d}" < {clause} >')
    return "\n".join(out) + "\n"


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def refresh(engine: sa.Engine, name: str, query: sa.Select):
    mem = warehouse.for_bind(engine)
    with engine.begin() as conn:
        return mem.replace(conn, name, query)


def hand_table(engine: sa.Engine, query: sa.Select) -> None:
    with engine.begin() as conn:
        drop_table(conn, "bench_hand")
        create_table_as(conn, "bench_hand", query)


def measure(engines: dict[str, sa.Engine], queries: dict[int, sa.Select], repeats: int) -> dict:
    """{(state, size): (members, hand seconds, refresh seconds, refresh / hand)}, medians of ``repeats``
    rounds. A round times, for each state in turn, the hand ``CREATE TABLE … AS`` then the refresh: the
    pairs and the two states share the machine's drift."""
    out = {}
    for size, query in queries.items():
        members = {state: refresh(e, f"Size {size}", query).members for state, e in engines.items()}  # deployed
        rounds: dict[str, list[tuple[float, float]]] = {state: [] for state in engines}
        for _ in range(repeats):
            for state, e in engines.items():
                rounds[state].append((timed(lambda e=e, q=query: hand_table(e, q)),
                                      timed(lambda e=e, s=size, q=query: refresh(e, f"Size {s}", q))))
        for state, pairs in rounds.items():
            out[state, size] = (members[state], statistics.median(h for h, _ in pairs),
                                statistics.median(r for _, r in pairs), statistics.median(r / h for h, r in pairs))
    for e in engines.values():
        with e.begin() as conn:
            drop_table(conn, "bench_hand")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=300_000)
    parser.add_argument("--others", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the warehouses in /tmp/audlang-refresh-bench")
    args = parser.parse_args()

    folder = Path("/tmp/audlang-refresh-bench") if args.keep else Path(tempfile.mkdtemp(prefix="audlang-refresh-"))
    folder.mkdir(exist_ok=True)
    paths = {"alone": folder / "alone.duckdb", "beside": folder / "beside.duckdb"}
    for path in paths.values():
        for leftover in (path, path.with_name(path.name + ".wal")):
            leftover.unlink(missing_ok=True)
    load_before = os.getloadavg()[0]
    engines: dict[str, sa.Engine] = {}
    try:
        started = time.perf_counter()
        datagen.generate(f"duckdb:///{paths['alone']}", customers=args.customers, seed=42)
        generated = time.perf_counter() - started
        shutil.copy(paths["alone"], paths["beside"])
        engines = {state: warehouse.connect(f"duckdb:///{path}") for state, path in paths.items()}
        limits = thresholds(engines["alone"])
        model, diagnostics = analyze({"bench.aud": project_text(limits, args.others)})
        assert not [d for d in diagnostics if d.is_error], diagnostics
        compiler = SegmentCompiler(model, AS_OF)
        queries = {size: compiler.segment(f"Size {size}") for size in SIZES}
        others = {f"Other {i:03d}": compiler.segment(f"Other {i:03d}") for i in range(args.others)}

        deployed_rows, deploying = 0, time.perf_counter()
        for name, query in others.items():
            deployed_rows += refresh(engines["beside"], name, query).members
        deploying = time.perf_counter() - deploying
        figures = measure(engines, queries, args.repeats)
        # Every deployed segment refreshed once more (what an apply refreshing them all does), each after the
        # same query as a hand table.
        all_hand = all_refresh = 0.0
        for name, query in others.items():
            all_hand += timed(lambda q=query: hand_table(engines["beside"], q))
            all_refresh += timed(lambda n=name, q=query: refresh(engines["beside"], n, q))
    finally:
        for e in engines.values():
            e.dispose()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)

    print(machine())
    print(f"load average (1 min) {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print(f"warehouse: {args.customers:,} customers generated in {generated:.1f} s; {args.others} other segments "
          f"deployed beside in {deploying:.1f} s ({deployed_rows:,} rows, {deploying / max(args.others, 1):.2f} s "
          f"each)")
    print(f"refresh = Membership.replace (write the generation, count +/- against the deployed one, swap, "
          f"commit); hand = CREATE TABLE … AS of the same query; medians of {args.repeats} rounds")
    print(f"all {args.others} others refreshed once more: {all_refresh:.1f} s; the same queries as hand tables: "
          f"{all_hand:.1f} s (ratio {all_refresh / max(all_hand, 1e-9):.1f})")
    print(f"{'':>19} | {'nothing else deployed':^34} | {f'{args.others} others deployed':^34}")
    print(f"{'segment':>9} {'members':>9} | {'hand s':>7} {'refresh s':>9} {'ratio':>5} {'µs/member':>9} | "
          f"{'hand s':>7} {'refresh s':>9} {'ratio':>5} {'µs/member':>9}")
    for size in SIZES:
        row = f"{size:>9,} {figures['alone', size][0]:>9,}"
        for state in ("alone", "beside"):
            members, hand, again, ratio = figures[state, size]
            row += f" | {hand:>7.3f} {again:>9.3f} {ratio:>5.1f} {again / members * 1e6:>9.2f}"
        print(row)


if __name__ == "__main__":
    main()
