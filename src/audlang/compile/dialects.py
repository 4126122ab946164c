"""Every dialect difference of the compiled SQL, in one place.

The compiler builds dialect-neutral SQLAlchemy Core; the few constructs that
render differently per engine are custom elements here with a default
rendering and per-dialect overrides (``@compiles``), the way sqlglot keeps
each dialect's overrides beside a shared generator:

- timestamps and dates as bound parameters (SQLite keeps them as ISO text);
- sums of money (SQLite sums floats: rounded to 6 places so equal sums compare equal);
- case-sensitive text matching (SQLite's LIKE ignores case);
- the clamp inside the haversine formula.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, DateTime, String, types
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement, expression, functions

# ------------------------------------------------------------------ bound dates and timestamps


class Timestamp(types.TypeDecorator):
    """A naive UTC timestamp parameter. SQLite stores timestamps as ISO text
    ``YYYY-MM-DD HH:MM:SS[.ffffff]``, which compares correctly as text against
    ``YYYY-MM-DD HH:MM:SS``."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):
        return dialect.type_descriptor(String() if dialect.name == "sqlite" else DateTime())

    def process_bind_param(self, value, dialect):
        if value is not None and dialect.name == "sqlite":
            text = value.strftime("%Y-%m-%d %H:%M:%S")
            return text + (f".{value.microsecond:06d}" if value.microsecond else "")
        return value

    process_literal_param = process_bind_param


class Day(types.TypeDecorator):
    """A calendar date parameter (ISO text on SQLite)."""

    impl = Date
    cache_ok = True

    def load_dialect_impl(self, dialect):
        return dialect.type_descriptor(String() if dialect.name == "sqlite" else Date())

    def process_bind_param(self, value, dialect):
        if value is not None and dialect.name == "sqlite":
            return value.isoformat()
        return value

    process_literal_param = process_bind_param


def timestamp_param(value: dt.datetime) -> ColumnElement:
    return expression.literal(value, Timestamp())


def date_param(value: dt.date) -> ColumnElement:
    return expression.literal(value, Day())


# ------------------------------------------------------------------ money


class money_sum(functions.FunctionElement):
    """SUM of a money column; exact on DECIMAL engines, rounded where sums are floats."""

    name = "money_sum"
    type = types.Numeric()
    inherit_cache = True


@compiles(money_sum)
def _money_sum_default(element, compiler, **kw):
    return f"SUM({compiler.process(element.clauses, **kw)})"


@compiles(money_sum, "sqlite")
def _money_sum_sqlite(element, compiler, **kw):
    return f"ROUND(SUM({compiler.process(element.clauses, **kw)}), 6)"


class money(ColumnElement):
    """A money-valued expression (for the products used by average_order_value)."""

    inherit_cache = True

    def __init__(self, inner):
        self.inner = inner
        self.type = inner.type


@compiles(money)
def _money_default(element, compiler, **kw):
    return compiler.process(element.inner, **kw)


@compiles(money, "sqlite")
def _money_sqlite(element, compiler, **kw):
    return f"ROUND({compiler.process(element.inner, **kw)}, 6)"


# ------------------------------------------------------------------ case-sensitive text matching


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class _TextMatch(ColumnElement):
    inherit_cache = True
    type = types.Boolean()
    _pattern = "{}"

    def __init__(self, column, value: str):
        self.column = column
        self.value = expression.literal(value, String())
        self.pattern = expression.literal(self._pattern.format(_escape_like(value)), String())


class starts_with(_TextMatch):
    inherit_cache = True
    _pattern = "{}%"


class ends_with(_TextMatch):
    inherit_cache = True
    _pattern = "%{}"


class contains(_TextMatch):
    inherit_cache = True
    _pattern = "%{}%"


@compiles(_TextMatch)
def _match_default(element, compiler, **kw):
    col, pattern = compiler.process(element.column, **kw), compiler.process(element.pattern, **kw)
    return f"({col} LIKE {pattern} ESCAPE '\\')"


@compiles(starts_with, "sqlite")
def _starts_sqlite(element, compiler, **kw):
    col, val = compiler.process(element.column, **kw), compiler.process(element.value, **kw)
    return f"(substr({col}, 1, length({val})) = {val})"


@compiles(ends_with, "sqlite")
def _ends_sqlite(element, compiler, **kw):
    col, val = compiler.process(element.column, **kw), compiler.process(element.value, **kw)
    return f"(length({col}) >= length({val}) AND substr({col}, length({col}) - length({val}) + 1) = {val})"


@compiles(contains, "sqlite")
def _contains_sqlite(element, compiler, **kw):
    col, val = compiler.process(element.column, **kw), compiler.process(element.value, **kw)
    return f"(instr({col}, {val}) > 0)"


# ------------------------------------------------------------------ geography

EARTH_RADIUS_KM = 6371.0088
KM_PER_MILE = 1.609344


class radians(functions.FunctionElement):
    """Degrees to radians; BigQuery has no RADIANS()."""

    name = "radians"
    type = types.Float()
    inherit_cache = True


@compiles(radians)
def _radians_default(element, compiler, **kw):
    return f"radians({compiler.process(element.clauses, **kw)})"


@compiles(radians, "bigquery")
def _radians_bigquery(element, compiler, **kw):
    return f"(({compiler.process(element.clauses, **kw)}) * ACOS(-1) / 180)"


def haversine_km(lat1, lon1, lat2, lon2) -> ColumnElement:
    """Great-circle distance in km (SPEC §3), from standard SQL math functions."""
    f = functions.func
    two = expression.literal(2.0, types.Float())
    half_dlat = f.sin(radians(lat2 - lat1) / two)
    half_dlon = f.sin(radians(lon2 - lon1) / two)
    a = half_dlat * half_dlat + f.cos(radians(lat1)) * f.cos(radians(lat2)) * half_dlon * half_dlon
    clamped = expression.case((a > 1, expression.literal(1.0)), else_=a)
    return 2 * EARTH_RADIUS_KM * f.asin(f.sqrt(clamped))
