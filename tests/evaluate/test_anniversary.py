"""Anniversaries (SPEC §3.1) by example: the month-days a window covers, ``explain``'s facts, and
attempts to abuse the form (a text attribute, dates that are not dates, huge windows, a column of
NULLs), each a clear diagnostic or the right members, never a traceback. The oracle
(test_oracle_anniversary.py) compares generated cases with the reference on every engine."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from audlang import ast, explain
from audlang.cli import cli
from audlang.compile import AsOf, SegmentCompiler
from audlang.compile.compiler import anniversary_ranges
from audlang.project import analyze
from evaluate import text_tables
from evaluate.reference import Reference
from evaluate.test_oracle import TABLES, load, load_as_text

B = ast.Attribute("birthdate")


@pytest.mark.parametrize(("side", "count", "day", "ranges"), [
    ("month", None, "2024-02-10", ((201, 231),)),
    ("next", 1, "2024-12-31", ((1231, 1231),)),
    ("next", 10, "2024-12-28", ((101, 106), (1228, 1231))),  # across New Year
    ("last", 5, "2025-01-02", ((101, 102), (1229, 1231))),
    ("next", 1, "2023-02-28", ((228, 229),)),  # February 29 is February 28 in a common year
    ("next", 1, "2024-02-28", ((228, 228),)),  # … but not in a leap year
    ("next", 1, "2024-02-29", ((229, 229),)),
    ("last", 1, "2023-03-01", ((301, 301),)),
    ("last", 2, "2023-03-01", ((228, 301),)),
    ("next", 365, "2023-03-01", ((101, 228), (301, 1231))),  # … 2024-02-28: no February 29 in it
    ("next", 365, "2023-03-02", ((101, 229), (302, 1231))),  # … 2024-02-29
    ("next", 365, "2024-03-02", None),  # … 2025-03-01: February 28, 2025 stands for the 29th
    ("last", 365, "2024-02-29", ((101, 229), (302, 1231))),  # 2023-03-02 … 2024-02-29
    ("next", 366, "2024-02-29", None),
    ("last", 365_000, "2024-06-01", None),
])
def test_the_month_days_of_a_window(side, count, day, ranges):
    node = ast.Anniversary(B, side, count, "days" if count else None)
    assert anniversary_ranges(node, dt.date.fromisoformat(day)) == ranges


# ------------------------------------------------------------------ a small warehouse

CUSTOMERS = {  # customer -> birthdate, created_at
    "C1": (dt.date(2000, 2, 29), dt.datetime(2019, 2, 28, 23, 59, 59)),
    "C2": (dt.date(1990, 2, 28), dt.datetime(2020, 3, 1, 0, 0)),
    "C3": (dt.date(1985, 3, 1), None),
    "C4": (None, dt.datetime(2021, 12, 31, 23, 30)),
    "C5": (dt.date(1970, 1, 2), dt.datetime(2022, 1, 1, 0, 0, 1)),
}


def rows() -> dict:
    empty = {c: None for c, _ in TABLES["customer_360"]}
    customers = [{**empty, "customer_id": cid, "birthdate": b, "created_at": t, "sms_opt_in": True}
                 for cid, (b, t) in CUSTOMERS.items()]
    return {"customer_360": customers, **{name: [] for name in TABLES if name != "customer_360"}}


SEGMENTS = '''
segment "Next 2" < anniversary of birthdate within next 2 days >
segment "Next 3" < anniversary of birthdate within next 3 days >
segment "Not This Month" < not anniversary of birthdate in this month >
segment "Signed Up Around New Year" < anniversary of created_at within last 60 days >
segment "Every Date" < anniversary of birthdate within next 365000 days >
'''


@pytest.fixture
def duckdb_engine(tmp_path):
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    load(engine, rows())
    yield engine
    engine.dispose()


def members(engine, model, name, as_of) -> set[str]:
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(SegmentCompiler(model, as_of).segment(name))}


def test_the_spec_examples_on_duckdb(duckdb_engine):
    model, diagnostics = analyze({"a.aud": SEGMENTS})
    assert not diagnostics
    as_of = AsOf.parse("2023-02-27")  # a common year: C1's anniversary is 2023-02-28
    assert members(duckdb_engine, model, "Next 2", as_of) == {"C1", "C2"}
    assert members(duckdb_engine, model, "Next 3", as_of) == {"C1", "C2", "C3"}
    assert members(duckdb_engine, model, "Not This Month", as_of) == {"C3", "C4", "C5"}  # C4 has none
    assert members(duckdb_engine, model, "Every Date", as_of) == {"C1", "C2", "C3", "C5"}
    leap = AsOf.parse("2024-02-27")
    assert members(duckdb_engine, model, "Next 2", leap) == {"C2"}  # 2024-02-29 is the third day
    assert members(duckdb_engine, model, "Next 3", leap) == {"C1", "C2"}
    # timestamps on their UTC date: Dec 31 23:30 and Jan 1 00:00:01 are 2 and 1 days before 2025-01-02
    new_year = AsOf.parse("2025-01-02")
    assert members(duckdb_engine, model, "Signed Up Around New Year", new_year) == {"C4", "C5"}


def test_explain_shows_the_value_and_the_anniversary(duckdb_engine, tmp_path):
    model, _ = analyze({"a.aud": SEGMENTS})
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    got = explain.explain(duckdb_engine, url, model, "Next 2", "C1", AsOf.parse("2023-02-27"))
    assert got.member and got.condition.kind == "anniversary"
    assert got.condition.facts == {"attribute": "birthdate", "type": "date", "value": "2000-02-29",
                                   "next_anniversary": "2023-02-28"}
    assert explain.facts_text(got.condition) == "birthdate = 2000-02-29; next anniversary 2023-02-28"
    missing = explain.explain(duckdb_engine, url, model, "Not This Month", "C4", AsOf.parse("2023-02-27"))
    assert missing.member and missing.condition.children[0].facts["anniversary_this_year"] is None
    assert explain.facts_text(missing.condition.children[0]) == "birthdate is missing"
    last = explain.explain(duckdb_engine, url, model, "Signed Up Around New Year", "C4", AsOf.parse("2025-01-02"))
    assert last.condition.facts["last_anniversary"] == "2024-12-31"
    assert last.condition.value and last.member


# ------------------------------------------------------------------ abuse

def test_a_text_attribute_or_a_window_in_weeks_is_a_diagnostic_with_a_suggestion():
    _model, diagnostics = analyze({"a.aud": 'segment "S" < anniversary of email in this month >\n'
                                            'segment "W" < anniversary of birthdate within last 3 weeks >\n'})
    assert [(d.code, d.message, d.suggestion) for d in diagnostics] == [
        ("E131", "`email` is text; an anniversary is of a date or timestamp attribute",
         "the date attributes are `birthdate`, `created_at`, `first_order_date`, `last_order_date`"),
        ("E131", "anniversaries count days, not weeks", "write `within last 21 days`"),
    ]


def test_a_custom_text_column_is_refused_and_a_custom_date_column_works(duckdb_engine):
    mapping = 'table notes from "notes" <\n  note text = "note"\n  renewed_on date = "renewed_on"\n>\n'
    _m, diagnostics = analyze({"a.aud": mapping + 'segment "S" < anniversary of note within next 7 days >\n'})
    assert [(d.code, d.suggestion) for d in diagnostics] == [
        ("E131", "the date attributes are `birthdate`, `created_at`, `first_order_date`, `last_order_date`, "
                 "`renewed_on`")]
    model, diagnostics = analyze({"a.aud": mapping + 'segment "S" < anniversary of renewed_on within next 7 days >\n'})
    assert not diagnostics
    with duckdb_engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE notes (customer_id TEXT, note TEXT, renewed_on DATE)")
        conn.exec_driver_sql("INSERT INTO notes VALUES ('C1', 'x', DATE '2020-06-03'), ('C1', 'y', NULL), "
                             "('C2', 'z', DATE '2020-06-20'), ('C3', NULL, NULL)")
    assert members(duckdb_engine, model, "S", AsOf.parse("2024-06-01")) == {"C1"}  # any of the rows


def test_dates_that_are_not_dates_in_a_sqlite_text_table_are_missing():
    """A CSV import holds whatever text the file held: a birthdate of "not a date", "", "31/12/1990"
    (SQLite's ``date()`` is NULL) or "2023-02-30" (which ``date()`` lets through) is no day of the
    calendar, so it has no anniversary, even in a window that holds every month-day; ``not`` takes it in."""
    engine = sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool)
    data = rows()
    load_as_text(engine, data, text_tables.DECLARED["sqlite-untyped"])
    garbage = {"C2": "not a date", "C3": "", "C5": "31/12/1990", "C4": "2023-02-30"}
    with engine.begin() as conn:
        for cid, text in garbage.items():
            conn.execute(sa.text("UPDATE customer_360 SET birthdate = :t WHERE customer_id = :c"),
                         {"t": text, "c": cid})
    model, _ = analyze({"a.aud": SEGMENTS})
    as_of = AsOf.parse("2023-02-27")
    assert members(engine, model, "Next 3", as_of) == {"C1"}
    assert members(engine, model, "Every Date", as_of) == {"C1"}
    assert members(engine, model, "Not This Month", as_of) == {"C2", "C3", "C4", "C5"}
    engine.dispose()


def test_a_column_of_nulls_and_the_largest_window(duckdb_engine):
    with duckdb_engine.begin() as conn:
        conn.exec_driver_sql("UPDATE customer_360 SET birthdate = NULL, created_at = NULL")
    model, _ = analyze({"a.aud": SEGMENTS})
    as_of = AsOf.parse("8998-12-31")  # the last as-of date: the largest window ends past year 9999 in Python
    for name in ("Next 2", "Every Date", "Signed Up Around New Year"):
        assert members(duckdb_engine, model, name, as_of) == set(), name
    assert members(duckdb_engine, model, "Not This Month", as_of) == set(CUSTOMERS)
    reference = Reference(rows(), model, as_of.date, as_of.instant)
    assert reference.members("Every Date") == {"C1", "C2", "C3", "C5"}  # the reference reaches that far too


def test_the_cli_reports_and_prints_without_a_traceback(tmp_path):
    (tmp_path / "audlang.toml").write_text("")
    (tmp_path / "s.aud").write_text(
        'segment "Huge" < anniversary of birthdate within next 365001 days >\n'
        'segment "Typo" < anniversary of birthdat in this month >\n')
    result = CliRunner().invoke(cli, ["--project", str(tmp_path), "validate"], catch_exceptions=False)
    assert result.exit_code == 1
    assert "E118" in result.output and "365,001 days is out of range" in result.output
    assert "E101" in result.output and "did you mean `birthdate`?" in result.output
    assert "Traceback" not in result.output
    (tmp_path / "s.aud").write_text('segment "Soon" < anniversary of birthdate within next 10 days >\n')
    result = CliRunner().invoke(cli, ["--project", str(tmp_path), "sql", "Soon", "--as-of", "2024-12-28"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "BETWEEN 101 AND 106" in result.output and "BETWEEN 1228 AND 1231" in result.output
