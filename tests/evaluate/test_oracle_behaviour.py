"""Oracle for the behaviour patterns of SPEC §3.1: ``first_purchased``, ``has_purchased … in N of last M
units`` and ``most_purchased``, compiled on every engine against the plain-Python reference.

The machinery is ``test_oracle``'s (engines, loading, the direct and the shared-facts paths); the data
is aimed at these forms: orders on the period boundaries of every unit (D on 01-31, 02-29 and 03-31, so
months clamp), at T and just after, first orders before and inside the windows, few field values so
the favourite ties often, values missing, rows without an order id, and values with quotes and
non-ASCII letters.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audlang import ast
from audlang.compile import AsOf
from audlang.compile.asof import minus
from evaluate import test_oracle as oracle
from evaluate.test_oracle import engines  # noqa: F401  (the fixture)

AS_OFS = [AsOf.parse("2024-01-31"), AsOf.parse("2024-02-29"), AsOf.parse("2024-03-31"),
          AsOf.parse("2024-03-31T15:30:00Z"), AsOf.parse("2023-12-31")]
UNITS = ["days", "weeks", "months", "years"]
PERIODS = [1, 2, 3, 6, 12]
#: few values per field, so that favourites tie; quotes and non-ASCII letters among them
VALUES = {
    "product": ["Socks", "Men's tee", "Café ☕"],
    "category": ["Accessories", "Shoes", 'Say "hi"', "back\\slash"],
    "collection": ["Cat snacks", "Dog treats"],
    "brand": ["Nike", "Acme"],
    "channel": ["online", "store"],
    "store": ["PDX-01", "SEA-01"],
}
COLUMNS = {"product": "product_name", "category": "product_category", "collection": "product_collection",
           "brand": "product_brand", "channel": "channel", "store": "store_id"}
IDS = oracle.IDS


def edges(as_of: AsOf) -> list[dt.datetime]:
    """The first and last instants of every period boundary the segments use, T and around it."""
    D, T = as_of.date, as_of.instant
    second = dt.timedelta(seconds=1)
    out = [T, T - second, T + second, dt.datetime.combine(D, dt.time(23, 59, 59))]
    for unit in UNITS:
        for k in range(0, 14):
            day = dt.datetime.combine(minus(D, k, unit), dt.time())
            out += [day, day + dt.timedelta(days=1), day + dt.timedelta(days=1) - second]
    return out


def moments(as_of: AsOf):
    return st.none() | st.sampled_from(edges(as_of)) | st.builds(
        dt.datetime.combine, st.integers(-800, 1).map(lambda k: as_of.date + dt.timedelta(days=k)),
        st.sampled_from([dt.time(0, 0), dt.time(9, 30)]))


def optional(values: list[str]):
    return st.none() | st.sampled_from(values)


@st.composite
def warehouses(draw, as_of: AsOf):
    """``test_oracle``'s warehouse with orders and items aimed at the behaviour patterns."""
    data = draw(oracle.warehouses(as_of))
    ts = moments(as_of)
    orders, items = [], []
    for n in range(draw(st.integers(0, 24))):
        order = {
            # every order has its id (lifetime_orders of orders without one is another question); some
            # itemized rows lack theirs
            "order_id": f"O{n}",
            "customer_id": draw(st.sampled_from(IDS[:4])) if draw(st.integers(0, 12)) else None,
            "order_datetime": draw(ts),
            "order_revenue": draw(oracle.money),
            "order_quantity": draw(st.none() | st.integers(0, 3)),
            "channel": draw(optional(VALUES["channel"])),
            "store_id": draw(optional(VALUES["store"])),
        }
        orders.append(order)
        for _ in range(draw(st.integers(0, 3))):
            items.append({
                "order_id": order["order_id"] if draw(st.integers(0, 7)) else None,
                "customer_id": order["customer_id"],
                "order_datetime": order["order_datetime"] if draw(st.integers(0, 5)) else draw(ts),
                **{COLUMNS[f]: draw(optional(VALUES[f])) for f in ("product", "category", "collection", "brand")},
                "item_quantity": draw(st.none() | st.integers(0, 3)),
                "item_revenue": draw(oracle.money),
            })
    return {**data, "unified_transactions": orders, "unified_itemized_transactions": items}


# ------------------------------------------------------------------ segments

s = ast.StringValue


def _filter(field: str, values: list[str]) -> ast.ItemFilter:
    return ast.ItemFilter(field, tuple(s(v) for v in values), len(values) > 1)


one_filter = st.sampled_from(list(VALUES)).flatmap(
    lambda field: st.lists(st.sampled_from(VALUES[field]), min_size=1, max_size=2, unique=True)
    .map(lambda values: _filter(field, values)))
filters = st.lists(one_filter, max_size=2).map(lambda fs: tuple({f.field: f for f in fs}.values()))
windows = oracle.windows.filter(lambda w: w is not None)
in_periods = st.sampled_from(PERIODS).flatmap(
    lambda m: st.builds(ast.InPeriods, st.integers(1, m), st.just(m), st.sampled_from(UNITS)))

forms = st.one_of(
    st.builds(lambda f, w: ast.FirstPurchased(f, None, w), filters, windows),
    st.builds(lambda f, w: ast.HasPurchased(f, None, w), filters, in_periods),
    st.builds(lambda f, w: ast.MostPurchased((f,), None, w), one_filter, oracle.windows),
)
conditions = st.one_of(
    forms,
    st.builds(ast.Not, forms),
    st.builds(lambda a, b: ast.And((a, b)), forms, forms | oracle.behaviour),
    st.builds(lambda a, b: ast.Or((a, b)), forms, oracle.behaviour | oracle.predicates),
)
CASES = dict(data=st.data(), as_of=st.sampled_from(AS_OFS), first=conditions, second=st.none() | conditions)


@settings(max_examples=int(os.environ.get("AUDLANG_BEHAVIOUR_EXAMPLES", "60")), **oracle.SETTINGS)
@given(**CASES)
def test_behaviour_patterns_equal_reference_on_every_engine(engines, data, as_of, first, second):
    oracle.check_engines(engines, data, as_of, first, second, warehouses)


@pytest.mark.parametrize("warehouse", ["spark"], indirect=True)
@pytest.mark.spark
@settings(max_examples=int(os.environ.get("AUDLANG_SPARK_EXAMPLES", "30")) // 3, **oracle.SETTINGS)
@given(**CASES)
def test_behaviour_patterns_equal_reference_on_spark(engines, data, as_of, first, second):
    oracle.check_engines(engines, data, as_of, first, second, warehouses)
