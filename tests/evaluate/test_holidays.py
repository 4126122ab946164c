"""The holiday table, 1990–2040: audlang's computus and weekday rules (``audlang.holidays``) against
dateutil's (the reference evaluator's, written separately), a few dates from the calendar as printed,
and the properties each rule promises (the weekday, the week of the month). Then the dates as the
language resolves them: ``easter of last year - 14 days`` and the other offsets, relative to the
as-of date, against the reference evaluator's own arithmetic."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference import date_of, holiday_date

from audlang import ast, holidays
from audlang.compile import AsOf
from audlang.compile.asof import resolve_date

YEARS = range(1990, 2041)

# Easter Sunday as the calendars print it (and US holidays of 2024 and 2025).
PRINTED = {
    ("easter", 1990): "1990-04-15", ("easter", 2000): "2000-04-23", ("easter", 2008): "2008-03-23",
    ("easter", 2011): "2011-04-24", ("easter", 2019): "2019-04-21", ("easter", 2024): "2024-03-31",
    ("easter", 2025): "2025-04-20", ("easter", 2038): "2038-04-25", ("easter", 2040): "2040-04-01",
    ("thanksgiving", 2024): "2024-11-28", ("black_friday", 2024): "2024-11-29",
    ("cyber_monday", 2024): "2024-12-02", ("mothers_day", 2024): "2024-05-12",
    ("fathers_day", 2024): "2024-06-16", ("memorial_day", 2024): "2024-05-27",
    ("labor_day", 2024): "2024-09-02", ("thanksgiving", 2025): "2025-11-27",
    ("memorial_day", 2021): "2021-05-31", ("labor_day", 2025): "2025-09-01",
}


@pytest.mark.parametrize("name", sorted(holidays.HOLIDAYS))
def test_every_holiday_of_1990_to_2040_matches_an_independent_computation(name):
    ours = {year: holidays.holiday(name, year) for year in YEARS}
    theirs = {year: holiday_date(name, year) for year in YEARS}
    assert ours == theirs


def test_the_printed_calendar():
    for (name, year), printed in PRINTED.items():
        assert holidays.holiday(name, year).isoformat() == printed, (name, year)


def test_each_rule_keeps_its_promise():
    for year in YEARS:
        easter = holidays.easter(year)
        assert easter.weekday() == 6 and dt.date(year, 3, 22) <= easter <= dt.date(year, 4, 25)
        thanksgiving = holidays.holiday("thanksgiving", year)
        assert thanksgiving.weekday() == 3 and thanksgiving.month == 11 and 22 <= thanksgiving.day <= 28
        assert holidays.holiday("black_friday", year) - thanksgiving == dt.timedelta(days=1)
        cyber = holidays.holiday("cyber_monday", year)
        assert cyber.weekday() == 0 and cyber - thanksgiving == dt.timedelta(days=4)
        mothers, fathers = holidays.holiday("mothers_day", year), holidays.holiday("fathers_day", year)
        assert mothers.weekday() == 6 and mothers.month == 5 and 8 <= mothers.day <= 14
        assert fathers.weekday() == 6 and fathers.month == 6 and 15 <= fathers.day <= 21
        memorial, labor = holidays.holiday("memorial_day", year), holidays.holiday("labor_day", year)
        assert memorial.weekday() == 0 and memorial.month == 5 and memorial.day >= 25
        assert labor.weekday() == 0 and labor.month == 9 and labor.day <= 7


def test_easter_is_right_across_the_gregorian_calendar():
    # dateutil's computus on every year the engines hold
    for year in range(1583, 10_000):
        assert holidays.easter(year) == holiday_date("easter", year), year


BASES = st.one_of(
    st.builds(ast.Today, st.integers(0, 400), st.sampled_from(["days", "weeks", "months", "years"])),
    st.builds(ast.SeasonalDate, st.integers(1, 12), st.integers(1, 28), st.integers(0, 30)),
    st.builds(ast.HolidayDate, st.sampled_from(sorted(holidays.HOLIDAYS)), st.integers(0, 30)),
    st.dates(dt.date(1990, 1, 1), dt.date(2040, 12, 31)).map(lambda d: ast.DateLiteral(d.isoformat())),
)
OFFSETS = st.builds(ast.DateOffset, BASES, st.integers(-400, 400),
                    st.sampled_from(["days", "weeks", "months", "years"]))


@given(value=st.one_of(BASES, OFFSETS), day=st.dates(dt.date(1990, 1, 1), dt.date(2040, 12, 31)))
def test_dates_resolve_as_the_reference_resolves_them(value, day):
    assert resolve_date(value, AsOf.of_date(day)) == date_of(value, day)


def test_offsets_clamp_to_the_end_of_the_month():
    as_of = AsOf.parse("2024-11-30")
    assert resolve_date(ast.DateOffset(ast.SeasonalDate(12, 31, 1), -1, "months"), as_of) == dt.date(2023, 11, 30)
    assert resolve_date(ast.DateOffset(ast.SeasonalDate(11, 1, 1), 1, "weeks"), as_of) == dt.date(2023, 11, 8)
    assert resolve_date(ast.DateOffset(ast.DateLiteral("2024-01-31"), 1, "months"), as_of) == dt.date(2024, 2, 29)
    assert resolve_date(ast.DateOffset(ast.DateLiteral("2024-02-29"), 1, "years"), as_of) == dt.date(2025, 2, 28)
    easter = ast.HolidayDate("easter", 1)
    assert resolve_date(ast.DateOffset(easter, -14, "days"), as_of) == dt.date(2023, 3, 26)
