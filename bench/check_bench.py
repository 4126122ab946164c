"""Benchmark: parse and check a generated project of N segments (default 10,000).

Prints the time to parse, to check and the total, per segment, against a
baseline measured in the same run: Lark's own parse of the same text to a
raw tree (no syntax tree, no checking), so the ratio shows what our stages
add on top of the parser. Usage: python bench/check_bench.py [N]
"""

from __future__ import annotations

import platform
import random
import statistics
import sys
import time

from audlang.check import check
from audlang.syntax import parse_source
from audlang.syntax.grammar import parser

ATTRIBUTE_TESTS = [
    "sms_opt_in", "contactable_phone", 'state in ("OR", "WA")', "lifetime_revenue > {n}",
    'predicted_lifecycle_status in ("Active", "At risk")', "birthdate > today - {n} years",
    'email ends with "@gmail.com"', "loyalty_tier is set", "days_since_last_order <= {n}",
    'not (city = "Portland")',
]
BEHAVIOUR = [
    "has_purchased within last {n} days", 'has_purchased product "Socks" quantity = 1 within last 3 months',
    'has_purchased collection "Cat snacks" orders >= 2 within last 1 year', 'tagged "VIP"',
    "abandoned_checkout within last {n} hours", "has_purchased between 2023-11-01 and 2023-12-31",
    'has_purchased spend > {n} since 2024-01-01', "not has_purchased within last 90 days",
]


def generate(count: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        clauses = []
        for _ in range(rng.randint(1, 4)):
            pool = ATTRIBUTE_TESTS if rng.random() < 0.5 else BEHAVIOUR
            clauses.append(rng.choice(pool).format(n=rng.randint(1, 500)))
        if i > 10 and rng.random() < 0.2:
            clauses.append(f'in segment "Segment {rng.randrange(i)}"')
        op = " or " if rng.random() < 0.2 else " and "
        out.append(f"# Segment number {i}.\nsegment \"Segment {i}\" < {op.join(clauses)} >\n")
    return "\n".join(out)


def timed(fn, repeat: int = 3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    text = generate(count)
    parser()  # build the parser once, as a long-lived process would
    lark_time, _ = timed(lambda: parser().parse(text))
    parse_time, (source, diagnostics) = timed(lambda: parse_source(text, "bench.aud"))
    assert not diagnostics, diagnostics[:3]
    check_time, (model, problems) = timed(lambda: check([source]))
    assert not [p for p in problems if p.is_error], problems[:3]
    total = parse_time + check_time
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}")
    print(f"{count:,} segments, {len(text) / 1e6:.1f} MB of source, {len(model.segments):,} checked")
    print(f"{'stage':<26}{'seconds':>10}{'µs/segment':>12}")
    print(f"{'lark raw parse (baseline)':<26}{lark_time:>10.3f}{lark_time / count * 1e6:>12.1f}")
    print(f"{'parse to syntax tree':<26}{parse_time:>10.3f}{parse_time / count * 1e6:>12.1f}")
    print(f"{'check':<26}{check_time:>10.3f}{check_time / count * 1e6:>12.1f}")
    print(f"{'parse + check':<26}{total:>10.3f}{total / count * 1e6:>12.1f}")
    print(f"ratio parse+check / lark baseline: {total / lark_time:.2f}")


if __name__ == "__main__":
    main()
