"""Oracle for anniversaries (SPEC §3.1): compiled SQL on every engine gives the reference's members.

The machinery is ``test_oracle``'s (its ``engines`` fixture, loading, SQLite's text layouts, the
shared-facts path); the data and as-of dates here are the edges anniversaries have: February 29
birthdates checked in common and leap years, D on February 28 and 29, windows across the turn of the
year (D in late December and early January, next and last), month-days just inside and outside each
window, windows of 365, 366 and more days, timestamps at and near midnight (SQLite's text layouts
also spell them with a +02:00 offset, another local date), and missing dates.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audlang import ast
from audlang.compile import AsOf, SegmentCompiler
from audlang.compile.facts import SharedFacts
from audlang.warehouse.scratch import shared_facts
from evaluate import text_tables
from evaluate.reference import Reference
from evaluate.test_oracle import (  # noqa: F401 (engines: the fixture)
    IDS, SETTINGS, _build_model, _flat, agree_on_engines, engines, load, load_as_text, predicates, warehouses,
)

AS_OFS = [AsOf.parse(d) for d in ("2023-12-31", "2024-01-01", "2024-12-27", "2025-01-03", "2024-02-28",
                                  "2024-02-29", "2023-02-28", "2023-03-01", "2025-02-28", "2024-03-01",
                                  "2024-06-15")] + [AsOf.parse("2024-12-31T23:30:00Z")]
COUNTS = [1, 2, 3, 7, 30, 60, 364, 365, 366, 367, 1000, 365_000]
#: how far from D a generated month-day lies: on and beside the edges of the windows of ``COUNTS``
OFFSETS = sorted({0} | {k + e for k in (1, 2, 3, 7, 30, 60, 365) for e in (-1, 0, 1)})
YEARS = [1960, 1988, 1995, 1996, 2000, 2001, 2023]
FIXED = [dt.date(2000, 2, 29), dt.date(1996, 2, 29), dt.date(1999, 2, 28), dt.date(1999, 3, 1),
         dt.date(1990, 12, 31), dt.date(1990, 1, 1), dt.date(2004, 2, 28)]


def _in_year(day: dt.date, year: int) -> dt.date:
    """``day``'s month and day in ``year`` (a leap year for February 29)."""
    if (day.month, day.day) == (2, 29) and year % 4:
        year = 2000
    return day.replace(year=year)


def born(as_of: AsOf):
    """A date whose month and day lie near D's (``OFFSETS`` either side), in some past year; or a fixed edge."""
    return st.none() | dates_near(as_of)


def dates_near(as_of: AsOf):
    near = st.builds(lambda k, sign, year: _in_year(as_of.date + dt.timedelta(days=sign * k), year),
                     st.sampled_from(OFFSETS), st.sampled_from([1, -1]), st.sampled_from(YEARS))
    return near | st.sampled_from(FIXED)


def instants(as_of: AsOf):
    """Timestamps on those dates at and near midnight (and at 23:30, the next day at +02:00)."""
    times = [dt.time(0, 0), dt.time(0, 0, 1), dt.time(23, 30), dt.time(23, 59, 59)]
    return st.none() | st.builds(lambda d, t: dt.datetime.combine(d, t), dates_near(as_of),
                                 st.sampled_from(times))


@st.composite
def anniversary_warehouses(draw, as_of: AsOf):
    """``test_oracle``'s warehouses (their orders, on the edges of D, make ``first_order_date`` and
    ``last_order_date``) with anniversary-edged birthdates and ``created_at``."""
    data = draw(warehouses(as_of))
    for row in data["customer_360"]:
        row["birthdate"] = draw(born(as_of))
        row["created_at"] = draw(instants(as_of))
    return data


A = ast.Attribute
anniversaries = st.one_of(
    st.builds(lambda a: ast.Anniversary(A(a), "month"), st.sampled_from(["birthdate", "created_at",
                                                                          "first_order_date"])),
    st.builds(lambda a, side, n: ast.Anniversary(A(a), side, n, "days"),
              st.sampled_from(["birthdate", "birthdate", "created_at", "first_order_date", "last_order_date"]),
              st.sampled_from(["next", "last"]), st.sampled_from(COUNTS)),
)
conditions = st.recursive(
    anniversaries | predicates,
    lambda inner: st.one_of(
        st.builds(ast.Not, inner),
        st.builds(lambda ops_: _flat(ast.And, ops_), st.lists(inner, min_size=2, max_size=3)),
        st.builds(lambda ops_: _flat(ast.Or, ops_), st.lists(inner, min_size=2, max_size=3)),
    ),
    max_leaves=4,
)
CASES = dict(data=st.data(), as_of=st.sampled_from(AS_OFS), first=anniversaries | conditions,
             second=st.none() | anniversaries | conditions)


def check_anniversaries(engines: dict, data, as_of: AsOf, first, second) -> None:
    """``test_oracle.check_engines`` over anniversary-edged data: each segment's own query, then the
    shared facts of both, on each engine (SQLite in its three layouts), equal to the reference."""
    model, text = _build_model([first, second])
    warehouse = data.draw(anniversary_warehouses(as_of))
    agree_on_engines(engines, model, text, warehouse, as_of)


@settings(max_examples=int(os.environ.get("AUDLANG_ANNIVERSARY_EXAMPLES", "40")), **SETTINGS)
@given(**CASES)
def test_anniversaries_equal_reference_on_every_engine(engines, data, as_of, first, second):
    check_anniversaries(engines, data, as_of, first, second)


@pytest.mark.parametrize("warehouse", ["spark"], indirect=True)
@pytest.mark.spark
@settings(max_examples=int(os.environ.get("AUDLANG_SPARK_EXAMPLES", "30")) // 4, **SETTINGS)
@given(**CASES)
def test_anniversaries_equal_reference_on_spark(engines, data, as_of, first, second):
    check_anniversaries(engines, data, as_of, first, second)


def test_the_edges_are_generated():
    """The data holds what the docstring promises: February 29 birthdates, and month-days on both
    sides of New Year when D is at the turn of the year."""
    assert dt.date(2000, 2, 29) in FIXED
    D = dt.date(2023, 12, 31)
    near = {_in_year(D + dt.timedelta(days=s * k), 2000) for k in OFFSETS for s in (1, -1)}
    assert dt.date(2000, 1, 1) in near and dt.date(2000, 12, 30) in near
    assert len(IDS) >= 6


def test_reference_reads_spec_examples():
    """The reference itself, on SPEC §3.1's rules, so that the oracle compares against the right thing."""
    from audlang.project import analyze

    model, diagnostics = analyze({"r.aud": 'segment "X" < birthdate is set >\n'})
    assert not diagnostics
    data = {"customer_360": [{"customer_id": "C1", "birthdate": dt.date(2000, 2, 29)}],
            "unified_transactions": []}

    def holds(side: str, count: int | None, day: str) -> bool:
        D = dt.date.fromisoformat(day)
        node = ast.Anniversary(A("birthdate"), side, count, "days" if count else None)
        return Reference(data, model, D, dt.datetime.combine(D + dt.timedelta(days=1), dt.time())).holds(node, "C1")

    assert holds("next", 1, "2023-02-28")  # February 29 is February 28 in a common year
    assert not holds("next", 1, "2023-03-01")
    assert holds("next", 1, "2024-02-29") and not holds("next", 1, "2024-02-28")
    assert holds("last", 1, "2023-02-28") and not holds("last", 1, "2024-02-28")
    assert holds("next", 2, "2024-02-28")
    assert holds("last", 365_000, "2023-06-01") and holds("next", 366, "2023-06-01")
    assert holds("month", None, "2023-02-01") and not holds("month", None, "2023-03-01")
