"""``audlang explain`` of the behaviour patterns (SPEC §3.1): the facts beside each verdict, on a
warehouse small enough to know them by hand, on every engine of the ``warehouse`` fixture and Spark."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from audlang import explain
from audlang.compile import AsOf
from audlang.project import analyze
from audlang.warehouse import connect
from evaluate.test_oracle import TABLES, create_spark_tables, load
from helpers import WITH_SPARK

pytestmark = pytest.mark.parametrize("warehouse", WITH_SPARK, indirect=True)

AS_OF = AsOf.parse("2024-03-31")
SOURCE = '''
segment "Favourite" < most_purchased category in ("Shoes", "Café ☕") within last 12 months >
segment "First" < first_purchased category "Shoes" within last 90 days >
segment "Regular" < has_purchased in 2 of last 3 months >
'''


def _row(table: str, **values) -> dict:
    return {c: values.get(c) for c, _ in TABLES[table]}


def _data() -> dict:
    """C1: Shoes in 2 orders, Socks in 2 (a tie), "Café ☕" in 1, a row without a category; orders on
    03-31 23:59:59, 02-29 (the clamped end of period 2) and 2023-11-15. C2: nothing."""
    orders = [("O1", dt.datetime(2024, 3, 31, 23, 59, 59)), ("O2", dt.datetime(2024, 2, 29)),
              ("O3", dt.datetime(2023, 11, 15))]
    items = [("O1", "Shoes"), ("O1", "Socks"), ("O2", "Shoes"), ("O2", "Socks"), ("O3", "Café ☕"), ("O3", None)]
    when = dict(orders)
    return {
        "customer_360": [_row("customer_360", customer_id="C1"), _row("customer_360", customer_id="C2")],
        "unified_transactions": [_row("unified_transactions", order_id=o, customer_id="C1", order_datetime=t)
                                 for o, t in orders],
        "unified_itemized_transactions": [
            _row("unified_itemized_transactions", order_id=o, customer_id="C1", order_datetime=when[o],
                 product_category=category) for o, category in items],
        "customer_tags": [], "checkouts": [], "stores": [],
    }


def loaded(name: str, url: str, data: dict) -> sa.Engine:
    """audlang's engine for ``url`` after loading ``data`` there (Spark: into Parquet tables)."""
    if name == "spark":
        engine = connect(url)
        create_spark_tables(engine)
        load(engine, data)
        return engine
    loader = sa.create_engine(url)
    load(loader, data)
    loader.dispose()
    return connect(url)


@pytest.fixture(scope="module")
def connection(warehouse):
    engine = loaded(warehouse.name, warehouse.url, _data())
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def model():
    model, diagnostics = analyze({"b.aud": SOURCE})
    assert not [d for d in diagnostics if d.is_error], diagnostics
    return model


def facts(connection, model, name: str, customer: str) -> tuple[bool, dict, str]:
    result = explain.explain(connection, str(connection.url), model, name, customer, AS_OF)
    assert result.condition.value == result.member
    return result.member, result.condition.facts, explain.facts_text(result.condition)


def test_most_purchased_shows_the_top_values_and_counts(connection, model):
    member, f, text = facts(connection, model, "Favourite", "C1")
    assert member is True
    assert f == {"field": "category", "top_orders": 2, "top_value": "Shoes", "top_values": 2,
                 "orders": {"Shoes": 2, "Café ☕": 1}}
    assert text == 'most ordered category: "Shoes", 2 orders (tied with 1 more); "Café ☕" 1'
    member, f, text = facts(connection, model, "Favourite", "C2")
    assert member is False and f["top_orders"] == 0 and text == "no category ordered in the window"


def test_first_purchased_shows_the_first_matching_order(connection, model):
    member, f, text = facts(connection, model, "First", "C1")
    assert member is True  # the first Shoes order (not the one of 03-31) is within the 90 days
    assert f == {"first_order": "2024-02-29"} and text == "first matching order 2024-02-29"


def test_in_periods_shows_how_many_periods_held_an_order(connection, model):
    member, f, text = facts(connection, model, "Regular", "C1")
    assert member is True
    assert f == {"periods_held": 2, "periods": 3, "needed": 2, "unit": "months"}
    assert text == "2 of the last 3 months held a matching order (at least 2 needed)"
    member, f, _text = facts(connection, model, "Regular", "C2")
    assert member is False and f["periods_held"] == 0


def test_empty_warehouse_answers_without_error(warehouse, model):
    empty = {**{t: [] for t in TABLES}, "customer_360": [_row("customer_360", customer_id="C9")]}
    engine = loaded(warehouse.name, warehouse.new_url(), empty)
    try:
        for name in ("Favourite", "First", "Regular"):
            member, _f, _text = facts(engine, model, name, "C9")
            assert member is False
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM unified_transactions")).scalar() == 0
    finally:
        engine.dispose()
