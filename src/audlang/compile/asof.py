"""The as-of date D and instant T (SPEC §3), and the calendar arithmetic on them.

Every date in a condition is resolved here, in Python, against the as-of date,
so the compiled SQL holds only bound date and timestamp parameters: no date
arithmetic is left for the database, and every engine sees the same bounds.
"""

from __future__ import annotations

import calendar
import datetime as dt

import attrs

from audlang import ast, holidays
from audlang.check.limits import AS_OF_MAX, AS_OF_MIN


@attrs.frozen
class AsOf:
    """D, the as-of date, and T, the instant before which events are seen (t < T)."""

    date: dt.date
    instant: dt.datetime  # naive UTC

    @classmethod
    def of_date(cls, day: dt.date) -> AsOf:
        return cls(day, dt.datetime.combine(day + dt.timedelta(days=1), dt.time()))

    @classmethod
    def of_instant(cls, instant: dt.datetime) -> AsOf:
        if instant.tzinfo is not None:
            instant = instant.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return cls(instant.date(), instant)

    @classmethod
    def parse(cls, text: str, what: str = "--as-of") -> AsOf:
        """``YYYY-MM-DD`` or an ISO timestamp such as ``2024-11-22T15:00:00Z`` (UTC when no zone); ``what``
        names the setting in the error (``--as-of``, ``as_of in audlang.toml``)."""
        text = text.strip()
        try:
            if len(text) == 10:
                day = dt.date.fromisoformat(text)
                instant = None
            else:
                instant = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
                day = instant.date()
        except ValueError:
            raise ValueError(f"{what} takes YYYY-MM-DD or an ISO timestamp such as 2024-11-22T15:00:00Z, "
                             f"not {text[:40]!r}") from None
        if not AS_OF_MIN <= day <= AS_OF_MAX:
            raise ValueError(f"{what} must lie between {AS_OF_MIN} and {AS_OF_MAX}, not {text[:40]}")
        return cls.of_date(day) if instant is None else cls.of_instant(instant)

    @classmethod
    def today(cls) -> AsOf:
        return cls.of_date(dt.datetime.now(dt.timezone.utc).date())

    def __str__(self) -> str:
        if self.instant == dt.datetime.combine(self.date + dt.timedelta(days=1), dt.time()):
            return self.date.isoformat()
        return self.instant.isoformat() + "Z"


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time())


def day_after(day: dt.date) -> dt.datetime:
    """The instant the day after ``day`` begins: the exclusive end of ``day``. For 9999-12-31, whose
    next day no engine holds, the last microsecond of the day (so ``t < end`` leaves out only it)."""
    if day == dt.date.max:
        return dt.datetime.max
    return midnight(day + dt.timedelta(days=1))


def minus(day: dt.date, count: int, unit: str) -> dt.date:
    """``day`` minus ``count`` units; calendar months and years, a missing day clamped to the month's end."""
    if unit == "days":
        return day - dt.timedelta(days=count)
    if unit == "weeks":
        return day - dt.timedelta(weeks=count)
    months = count * (12 if unit == "years" else 1)
    if unit not in ("months", "years"):
        raise ValueError(f"not a date unit: {unit}")
    index = day.year * 12 + (day.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def resolve_date(value: ast.Value, as_of: AsOf) -> dt.date:
    """A date value of the language → a calendar date, given the as-of date."""
    if isinstance(value, ast.DateLiteral):
        return dt.date.fromisoformat(value.text)
    if isinstance(value, ast.Today):
        return minus(as_of.date, value.minus, value.unit)
    if isinstance(value, ast.SeasonalDate):
        year = as_of.date.year - value.years_ago
        return dt.date(year, value.month, min(value.day, calendar.monthrange(year, value.month)[1]))
    if isinstance(value, ast.HolidayDate):
        return holidays.holiday(value.name, as_of.date.year - value.years_ago)
    if isinstance(value, ast.DateOffset):  # a negative count goes back, a positive one forward
        return minus(resolve_date(value.date, as_of), -value.count, value.unit)
    raise TypeError(f"not a date value: {value!r}")


@attrs.frozen
class TimeRange:
    """Events with ``low <= t < high`` (``low`` None: no lower bound)."""

    low: dt.datetime | None
    high: dt.datetime


def window_range(window: ast.Window | None, as_of: AsOf) -> TimeRange:
    """The half-open range of event timestamps a window admits (SPEC §3's table), never past T."""
    T = as_of.instant

    def day(value: ast.DateValue) -> dt.datetime:
        return midnight(resolve_date(value, as_of))

    def next_day(value: ast.DateValue) -> dt.datetime:
        return day_after(resolve_date(value, as_of))

    if window is None:
        return TimeRange(None, T)
    if isinstance(window, ast.InPeriods):
        raise TypeError("`in N of last M` is M periods, not one range of time: see period_starts")
    if isinstance(window, ast.Between):
        return TimeRange(day(window.low), min(next_day(window.high), T))
    if isinstance(window, ast.WithinLast):
        if window.unit == "hours":
            return TimeRange(T - dt.timedelta(hours=window.count), T)
        start = minus(as_of.date, window.count, window.unit) + dt.timedelta(days=1)
        return TimeRange(midnight(start), T)
    if isinstance(window, ast.Since):
        return TimeRange(day(window.date), T)
    if isinstance(window, ast.Before):
        return TimeRange(None, min(day(window.date), T))
    if isinstance(window, ast.After):
        return TimeRange(next_day(window.date), T)
    if isinstance(window, ast.On):
        return TimeRange(day(window.date), min(next_day(window.date), T))
    raise TypeError(f"not a window with one range: {window!r}")


def period_starts(window: ast.InPeriods, as_of: AsOf) -> list[dt.datetime]:
    """``in N of last M units`` (SPEC §3.1): the first instant of each period k = 1…M, where period k
    holds the dates d with D − k units < d ≤ D − (k − 1) units (period 1 ends at T). Each boundary is
    computed from D, so calendar months and years clamp as the other windows do (D = 03-31: period 1
    starts on 03-01 after 02-29, period 2 on 02-01 after 01-31)."""
    if window.unit == "hours":
        raise TypeError("`in N of last M` counts days, weeks, months or years")
    return [midnight(minus(as_of.date, k, window.unit) + dt.timedelta(days=1)) for k in range(1, window.periods + 1)]
