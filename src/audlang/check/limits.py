"""The values a project may hold: what DuckDB, SQLite, PostgreSQL and Spark SQL all represent.

A value outside these is a diagnostic at validate (E118) or an ``--as-of`` refusal (E203), never a
Python exception later. Documented in docs/language.md ("Ranges").
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from audlang.syntax.grammar import MAX_NESTING

#: The range of as-of dates: every window the checker admits (at most ``MAX_COUNT`` units back) and
#: every day count of ``days_since_last_order`` then stays within 0001-01-01 … 9999-12-31, the dates
#: that all four engines (and Python) hold.
AS_OF_MIN = dt.date(1001, 1, 1)
AS_OF_MAX = dt.date(8998, 12, 31)
#: The largest count of each unit in a window or a date offset: 1,000 years of it.
MAX_COUNT = {"hours": 8_760_000, "days": 365_000, "weeks": 52_000, "months": 12_000, "years": 1_000}
#: The most periods ``in N of last M units`` counts: its SQL names each period's start (a ``CASE`` of
#: M branches), which stays readable and quick on every engine up to this.
MAX_PERIODS = 400
#: The largest magnitude of a number in a condition, and its most digits after the point: 18 + 12
#: digits fit Spark's and DuckDB's DECIMAL(38); a double (SQLite) holds them to 15 significant digits.
MAX_NUMBER = Decimal("999999999999999999")
MAX_DECIMALS = 12
#: A distance beyond the far side of the Earth holds for everyone; this bound only keeps it finite.
MAX_DISTANCE = 100_000
#: The deepest a condition may nest once the segments it uses through ``in segment`` are counted in
#: (each And, Or and Not node one level): the compiler, ``explain`` and ``members`` inline them. The
#: parser's own limit (``MAX_NESTING`` levels of ``not`` and grouping) lets one condition reach three
#: such levels per level (``not (a or b and (…))``), the depth every stage was measured safe at.
MAX_COMBINED_DEPTH = 3 * MAX_NESTING + 1
#: The most condition nodes a segment or campaign may expand to once the segments it uses are
#: inlined (``in segment "A" or in segment "A"`` twice per layer doubles each layer): its SQL, plan
#: and explain grow with this number.
MAX_EXPANDED_NODES = 50_000
