"""The moving holidays of SPEC §3.1, as dates of a given year. Pure: imports nothing of ours.

``easter`` is the Western (Gregorian) Easter Sunday by the anonymous Gregorian computus (Meeus,
*Astronomical Algorithms*, ch. 8; valid for every Gregorian year); the others are the US rules:
Thanksgiving the fourth Thursday of November, Black Friday the day after, Cyber Monday the Monday
after, Mother's Day the second Sunday of May, Father's Day the third Sunday of June, Memorial Day the
last Monday of May, Labor Day the first Monday of September.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable

MONDAY, THURSDAY, SUNDAY = 0, 3, 6


def easter(year: int) -> dt.date:
    """Western Easter Sunday of ``year`` (the anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The ``n``-th ``weekday`` (0 = Monday) of the month; ``n = -1``: the last one."""
    if n > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = dt.date(year, month, calendar.monthrange(year, month)[1])
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def thanksgiving(year: int) -> dt.date:
    return nth_weekday(year, 11, THURSDAY, 4)


HOLIDAYS: dict[str, Callable[[int], dt.date]] = {
    "easter": easter,
    "thanksgiving": thanksgiving,
    "black_friday": lambda year: thanksgiving(year) + dt.timedelta(days=1),
    "cyber_monday": lambda year: thanksgiving(year) + dt.timedelta(days=4),
    "mothers_day": lambda year: nth_weekday(year, 5, SUNDAY, 2),
    "fathers_day": lambda year: nth_weekday(year, 6, SUNDAY, 3),
    "memorial_day": lambda year: nth_weekday(year, 5, MONDAY, -1),
    "labor_day": lambda year: nth_weekday(year, 9, MONDAY, 1),
}


def holiday(name: str, year: int) -> dt.date:
    """The date of holiday ``name`` (a key of ``HOLIDAYS``) in ``year``."""
    return HOLIDAYS[name](year)
