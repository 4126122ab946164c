"""Oracle for scores and percentiles (SPEC §3.1): compiled SQL on every engine equals the reference.

The machinery is ``test_oracle``'s: the generated warehouses (NULLs, ties, events on window edges),
the engines (DuckDB, SQLite in its three layouts, PostgreSQL; Spark SQL under the ``spark`` marker),
and both paths, each segment's own query and the shared facts computed once. What is generated here
is the project: two scores whose items hold negative and decimal points over tags, purchases,
attributes, ``in segment`` and another score, and two segments comparing them (``score "X" >= n``,
``between``) or ranking a score, a number attribute or a derived one (``lifetime_revenue``,
``average_order_value``, ``days_since_last_order``) in the top or bottom P% (P = 100, tiny P, P with
decimals). Six customers and money drawn from a few amounts make equal values at the edge of a
percentile common; missing values (``predicted_clv``; the average and the days of a customer without
orders) are left out of the population.
"""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

import attrs
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from audlang import ast
from audlang.compile import AsOf, SegmentCompiler
from audlang.compile.facts import SharedFacts
from audlang.diagnostics import Span
from audlang.project import analyze
from audlang.syntax.formatter import format_declaration
from audlang.warehouse.scratch import shared_facts
from evaluate import text_tables
from evaluate.reference import Reference
from helpers import WITH_SPARK
from evaluate.test_oracle import (  # noqa: F401  (``engines`` is the module's fixture, used by name)
    AS_OFS, SETTINGS, agree_on_engines, behaviour, conditions, engines, load, load_as_text, num, predicates,
    warehouses,
)

POINTS = [Decimal(p) for p in ("3", "2", "1", "-2", "-1.5", "0.1", "0.2", "0.25")]
THRESHOLDS = [Decimal(t) for t in ("-2", "-1.5", "0", "0.1", "0.3", "1", "1.2", "3", "3.1", "5")]
PERCENTS = [Decimal(p) for p in ("100", "50", "10", "20", "33.333333", "16.666667", "1", "0.000001", "99.999999")]
OPS = ["=", "!=", ">", ">=", "<", "<="]

item_conditions = st.one_of(predicates, behaviour, conditions)


def items(extra: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(st.builds(ast.ScoreItem, st.sampled_from(POINTS), item_conditions | extra), max_size=4)


def score_tests(score: str) -> st.SearchStrategy:
    """Conditions on a score: comparisons, ranges, and the top or bottom P% of it."""
    return st.one_of(
        st.builds(lambda op, n: ast.ScoreCompare(score, op, num(n)), st.sampled_from(OPS), st.sampled_from(THRESHOLDS)),
        st.builds(lambda a, b: ast.ScoreCompare(score, "between", num(min(a, b)), num(max(a, b))),
                  st.sampled_from(THRESHOLDS), st.sampled_from(THRESHOLDS)),
        st.builds(lambda side, p: ast.Percentile(side, p, score=score), st.sampled_from(["top", "bottom"]),
                  st.sampled_from(PERCENTS)),
    )


attribute_percentiles = st.builds(
    lambda side, p, name: ast.Percentile(side, p, attribute=ast.Attribute(name)), st.sampled_from(["top", "bottom"]),
    st.sampled_from(PERCENTS), st.sampled_from(["predicted_clv", "lifetime_revenue", "lifetime_orders",
                                                "average_order_value", "days_since_last_order"]))


def uses(tests: st.SearchStrategy) -> st.SearchStrategy:
    """A test on its own, or combined with a generated condition by and, or, not."""
    return st.one_of(
        tests,
        st.builds(ast.Not, tests),
        st.builds(lambda a, b: ast.And((a, b)), tests, item_conditions),
        st.builds(lambda a, b: ast.Or((a, b)), tests, item_conditions),
    )


PROJECTS = dict(
    # "Plain" reads no segment; "Layered" reads segment "First" and score "Plain"
    plain=items(st.nothing()),
    layered=items(st.just(ast.InSegment("First")) | score_tests("Plain")),
    first=uses(score_tests("Plain") | attribute_percentiles),
    second=uses(score_tests("Layered") | score_tests("Plain") | attribute_percentiles),
)


def build(plain, layered, first, second):
    declarations = [ast.Score("Plain", tuple(plain)), ast.Segment("First", first),
                    ast.Score("Layered", tuple(layered)), ast.Segment("Second", second)]
    text = "\n\n".join("\n".join(format_declaration(
        attrs.evolve(d, span=Span("gen.aud", i * 10 + 1, 1, i * 10 + 1, 2)), [])) for i, d in enumerate(declarations))
    model, diagnostics = analyze({"gen.aud": text + "\n"})
    # The checker refuses some generated shapes of test_oracle's strategies (backward ranges, empty
    # windows, a fractional number of orders, a date offset of an offset): not SQL's business. Nothing
    # about the scores and percentiles themselves is refused.
    errors = [d for d in diagnostics if d.is_error]
    assume(not any(e.code == "E001" for e in errors))  # an unparsed score would be unknown (E137) too
    ours = [e for e in errors if e.code in ("E004", "E104", "E132", "E137", "E139")
            or (e.code == "E105" and "score" in e.message)]
    assert not ours, [str(e) for e in ours]
    assume(not errors)
    return model, text


def check_engines(engines: dict, data, as_of: AsOf, plain, layered, first, second) -> None:
    model, text = build(plain, layered, first, second)
    warehouse = data.draw(warehouses(as_of))
    agree_on_engines(engines, model, text, warehouse, as_of)


CASES = dict(data=st.data(), as_of=st.sampled_from(AS_OFS), **PROJECTS)


@settings(max_examples=int(os.environ.get("AUDLANG_SCORE_EXAMPLES", "60")), **SETTINGS)
@given(**CASES)
def test_scores_and_percentiles_equal_the_reference_on_every_engine(engines, data, as_of, plain, layered, first,
                                                                     second):
    check_engines(engines, data, as_of, plain, layered, first, second)


@pytest.mark.parametrize("warehouse", ["spark"], indirect=True)
@pytest.mark.spark
@settings(max_examples=int(os.environ.get("AUDLANG_SPARK_EXAMPLES", "30")) // 3, **SETTINGS)
@given(**CASES)
def test_scores_and_percentiles_equal_the_reference_on_spark(engines, data, as_of, plain, layered, first, second):
    check_engines(engines, data, as_of, plain, layered, first, second)


# ------------------------------------------------------------------ the edges, by hand

EDGE = '''
score "Points" <
  0.1 point if tagged "VIP"
  0.2 points if tagged "Staff"
  -1.5 points if not sms_opt_in
>
segment "Exactly" < score "Points" = 0.3 >
segment "Top Half" < predicted_clv in top 50% >
segment "Bottom Tiny" < predicted_clv in bottom 0.000001% >
segment "Everyone Ranked" < predicted_clv in top 100% >
segment "Top Score" < score "Points" in top 40% >
'''


@pytest.mark.parametrize("warehouse", WITH_SPARK, indirect=True)
def test_the_edges_of_scores_and_percentiles(engines):
    """Decimal points summing exactly (0.1 + 0.2 = 0.3 on SQLite too), ties at a percentile's edge all
    in, missing values out, P = 100 and a tiny P."""
    model, diagnostics = analyze({"edge.aud": EDGE})
    assert not [d for d in diagnostics if d.is_error]
    as_of = AS_OFS[0]
    base = {"state": None, "city": None, "email": None, "loyalty_tier": None, "birthdate": None,
            "created_at": None, "contactable_phone": None, "latitude": None, "longitude": None}
    clv = {"C1": Decimal("100"), "C2": Decimal("100"), "C3": Decimal("20"), "C4": Decimal("20"), "C5": None,
           "C6": Decimal("10.50")}
    data = {"customer_360": [{**base, "customer_id": c, "sms_opt_in": c != "C6", "predicted_clv": v}
                             for c, v in clv.items()],
            "unified_transactions": [], "unified_itemized_transactions": [], "checkouts": [], "stores": [],
            "customer_tags": [{"customer_id": c, "tag": t} for c, t in
                              (("C1", "VIP"), ("C1", "Staff"), ("C2", "VIP"), ("C2", "Staff"), ("C3", "VIP"))]}
    expected = {
        "Exactly": {"C1", "C2"},
        # 5 customers have a value; C1 and C2 have none better (0 < 2.5), C3 and C4 two (2 < 2.5)
        "Top Half": {"C1", "C2", "C3", "C4"},
        "Bottom Tiny": {"C6"},  # nobody smaller: 0 < 0.000005
        "Everyone Ranked": {"C1", "C2", "C3", "C4", "C6"},
        # scores 0.3, 0.3, 0.1, 0, 0, -1.5 (C6): C1, C2 have none better (0 × 100 < 40 × 6)
        "Top Score": {"C1", "C2", "C3"},
    }
    reference = Reference(data, model, as_of.date, as_of.instant)
    assert {name: reference.members(name) for name in expected} == expected
    compiler = SegmentCompiler(model, as_of)
    for engine_name, engine in engines.items():
        if engine_name in text_tables.DECLARED:
            load_as_text(engine, data, text_tables.DECLARED[engine_name])
        else:
            load(engine, data)
        facts = SharedFacts.collect(model, as_of, list(expected), follow_segments=True)
        with engine.connect() as conn, shared_facts(conn, facts):
            shared = SegmentCompiler(model, as_of, facts=facts)
            for name, members in expected.items():
                assert {r[0] for r in conn.execute(compiler.segment(name))} == members, (engine_name, name)
                assert {r[0] for r in conn.execute(shared.segment(name))} == members, (engine_name, name, "facts")


DERIVED_EDGE = '''
segment "Top Average" < average_order_value in top 40% >
segment "Bottom Average" < average_order_value in bottom 20% >
segment "Longest Away" < days_since_last_order in top 50% >
segment "Most Recent" < days_since_last_order in bottom 1% >
'''


@pytest.mark.parametrize("warehouse", WITH_SPARK, indirect=True)
def test_the_edges_of_derived_percentiles(engines):
    """Averages equal as fractions though written differently (20 / 3 and 40 / 6; 5.30 as one order and
    as 10.50 + 0.10) tie exactly; an average a hair below (6.66 < 20 / 3) ranks below; a customer whose
    orders have no revenue has no average; the days since the last order tie by date (two orders on
    one day at different hours), and the timestamps' hours do not split them."""
    model, diagnostics = analyze({"edge.aud": DERIVED_EDGE})
    assert not [d for d in diagnostics if d.is_error]
    as_of = AS_OFS[0]
    day = as_of.date
    base = {"state": None, "city": None, "email": None, "loyalty_tier": None, "birthdate": None,
            "created_at": None, "contactable_phone": None, "latitude": None, "longitude": None,
            "sms_opt_in": None, "predicted_clv": None}
    at = lambda days, hour=0: dt.datetime.combine(day - dt.timedelta(days=days), dt.time(hour))  # noqa: E731
    orders = [("C1", "20", at(3)), ("C1", "0", at(40)), ("C1", "0", at(41)),  # 20 / 3, last 3 days ago
              ("C2", "40", at(3, 23)), *(("C2", "0", at(50)) for _ in range(5)),  # 40 / 6, last 3 days ago
              ("C3", "6.66", at(10)),  # just below 20 / 3
              ("C4", "5.30", at(100)), ("C5", "10.50", at(100, 12)), ("C5", "0.10", at(200)),  # 5.30 both
              ("C6", None, at(1))]  # orders without revenue: no average; 1 day since
    data = {"customer_360": [{**base, "customer_id": c} for c in ("C1", "C2", "C3", "C4", "C5", "C6", "C7")],
            "unified_transactions": [
                {"order_id": f"O{i}", "customer_id": c, "order_datetime": when,
                 "order_revenue": None if r is None else Decimal(r), "order_quantity": 1, "channel": None,
                 "store_id": None} for i, (c, r, when) in enumerate(orders)],
            "unified_itemized_transactions": [], "checkouts": [], "stores": [], "customer_tags": []}
    expected = {
        # averages 20/3, 20/3, 6.66, 5.30, 5.30 (C6, C7 have none): C1, C2 none better (0 < 2); C3 two (2 ≥ 2)
        "Top Average": {"C1", "C2"},
        # C4, C5 none smaller (0 < 1); C3 two
        "Bottom Average": {"C4", "C5"},
        # days 3, 3, 10, 100, 100, 1 (C7 none): C4, C5 none greater; C3 two (2 < 3); C1, C2 three
        "Longest Away": {"C3", "C4", "C5"},
        "Most Recent": {"C6"},  # nobody fewer: 0 < 0.06
    }
    reference = Reference(data, model, as_of.date, as_of.instant)
    assert {name: reference.members(name) for name in expected} == expected
    compiler = SegmentCompiler(model, as_of)
    for engine_name, engine in engines.items():
        if engine_name in text_tables.DECLARED:
            load_as_text(engine, data, text_tables.DECLARED[engine_name])
        else:
            load(engine, data)
        facts = SharedFacts.collect(model, as_of, list(expected), follow_segments=True)
        with engine.connect() as conn, shared_facts(conn, facts):
            shared = SegmentCompiler(model, as_of, facts=facts)
            for name, members in expected.items():
                assert {r[0] for r in conn.execute(compiler.segment(name))} == members, (engine_name, name)
                assert {r[0] for r in conn.execute(shared.segment(name))} == members, (engine_name, name, "facts")


# Averages a double cannot tell apart: 1e12 + 1e-6 / 3 and 1e12 differ far below a double's 1.2e-4 step
# there, yet are different, and 20 / 3 written as 40 / 6 is the same. Revenue with 6 decimals (a
# NUMERIC(24, 6) column); SQLite's doubles hold 15 significant digits, so it is not among the engines.
NEAR_AVERAGES = {"A": ["1000000000000.000001", "1000000000000", "1000000000000"],  # 1e12 + 1e-6 / 3
                 "B": ["1000000000000"],  # 1e12
                 "C": ["2000000000000.000001", "2000000000000.000001", "1000000000000", "1000000000000",
                       "1000000000000", "1000000000000"],  # 1e12 + 2e-6 / 6, equal to A
                 "D": []}  # no orders: no average


@pytest.mark.parametrize("warehouse", ["duckdb", "postgresql", pytest.param("spark", marks=pytest.mark.spark)],
                         indirect=True)
def test_averages_closer_than_a_double_rank_exactly(warehouse):
    """``average_order_value`` ranks on whole numbers (docs/language.md, "Percentiles"): A and C tie at
    the top (nobody better), B is below them, though as doubles all three are 1e12."""
    import sqlalchemy as sa

    model, diagnostics = analyze({"near.aud": 'segment "Top" < average_order_value in top 34% >\n'
                                              'segment "Bottom" < average_order_value in bottom 33% >\n'})
    assert not [d for d in diagnostics if d.is_error]
    as_of = AS_OFS[0]
    when = dt.datetime.combine(as_of.date, dt.time(0)) - dt.timedelta(days=3)
    orders = [(f"O{c}{i}", c, Decimal(r)) for c, revenues in NEAR_AVERAGES.items() for i, r in enumerate(revenues)]
    assert float(sum(Decimal(r) for r in NEAR_AVERAGES["A"]) / 3) == float(Decimal(1e12))  # a double merges A, B
    if warehouse.name == "spark":
        from audlang.warehouse import connect

        engine = connect(warehouse.url)
    else:
        engine = sa.create_engine(warehouse.url)
    compiler = SegmentCompiler(model, as_of)
    # Written as SQL text: a Decimal bound through a driver may reach the engine as a double.
    people = ", ".join(f"('{c}')" for c in NEAR_AVERAGES)
    rows = ", ".join(f"('{o}', '{c}', TIMESTAMP '{when:%Y-%m-%d %H:%M:%S}', CAST('{r}' AS DECIMAL(24, 6)))"
                     for o, c, r in orders)
    with engine.begin() as conn:
        if warehouse.name == "spark":
            conn.exec_driver_sql(f"CREATE OR REPLACE TEMPORARY VIEW customer_360 AS SELECT * FROM VALUES {people} "
                                 "AS t(customer_id)")
            conn.exec_driver_sql("CREATE OR REPLACE TEMPORARY VIEW unified_transactions AS SELECT * FROM VALUES "
                                 f"{rows} AS t(order_id, customer_id, order_datetime, order_revenue)")
        else:
            conn.exec_driver_sql("DROP TABLE IF EXISTS customer_360")
            conn.exec_driver_sql("DROP TABLE IF EXISTS unified_transactions")
            conn.exec_driver_sql("CREATE TABLE customer_360 (customer_id TEXT)")
            conn.exec_driver_sql("CREATE TABLE unified_transactions (order_id TEXT, customer_id TEXT, "
                                 "order_datetime TIMESTAMP, order_revenue DECIMAL(24, 6))")
            conn.exec_driver_sql(f"INSERT INTO customer_360 VALUES {people}")
            conn.exec_driver_sql(f"INSERT INTO unified_transactions VALUES {rows}")
        stored = conn.exec_driver_sql("SELECT CAST(order_revenue AS VARCHAR(40)) FROM unified_transactions "
                                      "WHERE order_id = 'OA0'").scalar()
        assert Decimal(stored) == Decimal(NEAR_AVERAGES["A"][0])  # held exactly
        # 3 customers with an average: in the top 34%, fewer than 1.02 better (A, C: none; B: two); in
        # the bottom 33%, fewer than 0.99 smaller (B: none; A, C: one)
        assert {r[0] for r in conn.execute(compiler.segment("Top"))} == {"A", "C"}
        assert {r[0] for r in conn.execute(compiler.segment("Bottom"))} == {"B"}
    engine.dispose()
