"""Every dialect difference of the compiled SQL, in one place.

The compiler builds dialect-neutral SQLAlchemy Core; the few constructs that
render differently per engine are custom elements here with a default
rendering and per-dialect overrides (``@compiles``), the way sqlglot keeps
each dialect's overrides beside a shared generator:

- timestamps and dates as bound parameters (SQLite keeps them as ISO text), and
  as typed literals (``DATE '…'``, ``TIMESTAMP '…'``) where ``audlang sql``
  prints them, so the printed query means what the bound one does;
- numbers as literals in plain decimal notation (``0.0000001``, never ``1E-7``,
  which some engines read as a float);
- columns read by the data model's declared type (``declared``; SQLite only,
  where a table made by a CSV import holds text, or declares no types at all,
  and compares by each value's storage class);
- sums of money (SQLite sums floats: rounded to 6 places so equal sums compare equal);
- case-sensitive text matching (SQLite's LIKE ignores case) and the LIKE
  escape character (a backslash everywhere; BigQuery has no ESCAPE clause,
  Snowflake's string literals escape the backslash itself);
- string literals for BigQuery (its dialect doubles ``%`` for its DB-API);
- the clamp inside the haversine formula;
- a date's month and day as one number (``month_day``, for anniversaries);
- SHA-256 as lower-case hex (``sha256_hex``, the identifiers the ad platforms take): DuckDB's
  ``sha256``, PostgreSQL's ``sha256`` of the UTF-8 bytes (bytea, hex-encoded), Spark's ``sha2(…, 256)``,
  a deterministic Python function on SQLite;
- the days from a date to D and the truncated quotient of whole numbers (``days_before``,
  ``whole_quotient``: percentiles of ``days_since_last_order`` and ``average_order_value``);
- Spark SQL (PyHive's ``hive`` dialect, used for Spark's Thrift server and
  Databricks): typed literals for dates, timestamps and decimals, Spark's
  string escapes, LIKE with Spark's own escape character.

Spark's other differences need nothing here: ``IN`` subqueries under ``NOT`` and
``OR`` and the correlated ``EXISTS`` of ``near store`` run as they are (Spark 3.4+
rewrites them into semi/anti joins; the oracle tests cover every nesting),
booleans are native (``= true``),
money columns are DECIMAL and summed exactly, and no compiled query orders by
a nullable column (members are ordered by ``customer_id``, never NULL), so
Spark's NULLS FIRST default never shows. Spark's session time zone, which
decides how zone-less timestamp columns compare with an instant, is a
connection matter (``warehouse.py`` sets it to UTC).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Date, DateTime, Numeric, String, types
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement, expression, functions, operators
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.selectable import FromClause
from sqlalchemy.sql.visitors import InternalTraversal, Visitable

if TYPE_CHECKING:
    import sqlite3

from audlang.check.datamodel import BOOLEAN, DATE, INTEGER, NUMBER, TIMESTAMP
from audlang.check.limits import MAX_DECIMALS

# ------------------------------------------------------------------ bound dates and timestamps


#: Dialects whose printed dates and timestamps are typed literals (``DATE '2024-11-30'``): what the
#: driver binds there is a typed value, and Trino refuses to compare a DATE with a bare string.
TYPED_TEMPORAL_LITERALS = frozenset({"duckdb", "postgresql", "trino"})


#: How SQLite reads a timestamp column (``declared``): one canonical text for any ISO spelling.
SQLITE_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%f"


def sqlite_timestamp_text(value: dt.datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS.SSS``, the text SQLite's ``strftime(SQLITE_TIMESTAMP_FORMAT, …)`` makes of
    a timestamp: a bound compared with a column read that way compares as the instants do (to the
    millisecond, SQLite's precision; microseconds are rounded to it)."""
    half = dt.timedelta(microseconds=500)
    value = value + half if value <= dt.datetime.max - half else dt.datetime.max  # the last day rounds down
    return value.strftime("%Y-%m-%d %H:%M:%S") + f".{value.microsecond // 1000:03d}"


def timestamp_text(value: dt.datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS[.ffffff]``: an ISO timestamp with a space, microseconds only when present."""
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    return text + (f".{value.microsecond:06d}" if value.microsecond else "")


class Timestamp(types.TypeDecorator[dt.datetime]):
    """A naive UTC timestamp parameter. On SQLite, the canonical text timestamp columns are read as
    there (``sqlite_timestamp_text``), so the two compare as text."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> types.TypeEngine[Any]:
        return dialect.type_descriptor(String() if dialect.name == "sqlite" else DateTime())

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | str | None:
        if value is not None and dialect.name == "sqlite":
            return sqlite_timestamp_text(value)
        return value

    # SQLAlchemy declares it -> str, but a TypeDecorator hands it on to its impl's literal processor
    process_literal_param = process_bind_param  # type: ignore[assignment]

    def literal_processor(self, dialect: Dialect) -> Callable[[dt.datetime], str] | None:
        if dialect.name in TYPED_TEMPORAL_LITERALS:
            return lambda value: f"TIMESTAMP '{timestamp_text(value)}'"
        return super().literal_processor(dialect)


class Day(types.TypeDecorator[dt.date]):
    """A calendar date parameter (ISO text on SQLite)."""

    impl = Date
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> types.TypeEngine[Any]:
        return dialect.type_descriptor(String() if dialect.name == "sqlite" else Date())

    def process_bind_param(self, value: dt.date | None, dialect: Dialect) -> dt.date | str | None:
        if value is not None and dialect.name == "sqlite":
            return value.isoformat()
        return value

    # SQLAlchemy declares it -> str, but a TypeDecorator hands it on to its impl's literal processor
    process_literal_param = process_bind_param  # type: ignore[assignment]

    def literal_processor(self, dialect: Dialect) -> Callable[[dt.date], str] | None:
        if dialect.name in TYPED_TEMPORAL_LITERALS:
            return lambda value: f"DATE '{value.isoformat()}'"
        return super().literal_processor(dialect)


class Number(types.TypeDecorator[Decimal]):
    """A number of the language (a ``Decimal``): bound as the engine's NUMERIC, printed in plain
    decimal notation (``str(Decimal("0.0000001"))`` is ``1E-7``, a DOUBLE on DuckDB and Trino)."""

    impl = Numeric
    cache_ok = True

    def literal_processor(self, dialect: Dialect) -> Callable[[Decimal], str]:
        return lambda value: format(Decimal(value), "f")


def timestamp_param(value: dt.datetime) -> ColumnElement[dt.datetime]:
    return expression.literal(value, Timestamp())


def date_param(value: dt.date) -> ColumnElement[dt.date]:
    return expression.literal(value, Day())


def number_param(value: Decimal) -> ColumnElement[Decimal]:
    return expression.literal(value, Number())


# ------------------------------------------------------------------ columns by declared type

#: The texts a BOOLEAN column holds for true and for false on SQLite (compared trimmed and in
#: lower case; SQLite's own 1 and 0 are among them). Anything else, the empty text included, is
#: missing. They are the spellings CSV exports of the engines and of pandas write.
SQLITE_TRUE_TEXTS = ("1", "true", "t", "yes", "y")
SQLITE_FALSE_TEXTS = ("0", "false", "f", "no", "n")


class declared(ColumnElement[Any]):
    """A warehouse column read as the data model declares it (``number``, ``integer``, ``date``,
    ``timestamp``, ``boolean``; text columns are never wrapped).

    Every engine but SQLite has typed columns and reads it as it is. SQLite compares by each value's
    storage class: in a table made by a CSV import (``CREATE TABLE t(a, b)``, or columns declared
    TEXT) ``'150'`` is text, and text is greater than every number, so ``predicted_clv between 100
    and 250.5`` would select nobody and ``'9' > '10'``. There the column is read by its declared type
    (an empty text is missing, as a CSV import writes a missing value):

    - number, integer: ``CAST(NULLIF(x, '') AS NUMERIC)`` (integers stay exact, ``'10.50'`` is 10.5;
      a REAL or INTEGER value is unchanged);
    - date: ``date(x)``, ``YYYY-MM-DD`` from any ISO spelling (``2024-11-30T00:00:00``); NULL when
      not a date;
    - timestamp: ``strftime('%Y-%m-%d %H:%M:%f', x)``, one text for ``2024-11-30 10:00:00``,
      ``2024-11-30T10:00:00Z``, ``…10:00:00.000000`` or ``…12:00:00+02:00`` (converted to UTC); bounds
      are bound in the same form (``Timestamp``);
    - boolean: true for ``SQLITE_TRUE_TEXTS``, false for ``SQLITE_FALSE_TEXTS``, else missing.
    """

    inherit_cache = True
    _traverse_internals = [("inner", InternalTraversal.dp_clauseelement), ("kind", InternalTraversal.dp_string)]

    def __init__(self, inner: ColumnElement[Any], kind: str) -> None:
        self.inner = inner
        self.kind = kind
        self.type = inner.type  # results read as before; only SQLite's SQL differs

    @property
    def _from_objects(self) -> list[FromClause]:
        return self.inner._from_objects  # so correlation and FROM inference see the column's table


def as_declared(column: ColumnElement[Any], kind: str) -> ColumnElement[Any]:
    """``column`` read by its data-model type ``kind`` (the data model's type names)."""
    return column if kind not in _SQLITE_READERS else declared(column, kind)


def _texts(values: Iterable[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


_SQLITE_READERS = {
    NUMBER: "CAST(NULLIF({0}, '') AS NUMERIC)",
    INTEGER: "CAST(NULLIF({0}, '') AS NUMERIC)",
    DATE: "date({0})",
    TIMESTAMP: f"strftime('{SQLITE_TIMESTAMP_FORMAT}', {{0}})",
    BOOLEAN: (f"(CASE WHEN lower(trim({{0}})) IN ({_texts(SQLITE_TRUE_TEXTS)}) THEN 1 "
                f"WHEN lower(trim({{0}})) IN ({_texts(SQLITE_FALSE_TEXTS)}) THEN 0 END)"),
}


@compiles(declared)
def _declared_default(element: declared, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.inner, **kw)


@compiles(declared, "sqlite")
def _declared_sqlite(element: declared, compiler: SQLCompiler, **kw: Any) -> str:
    return _SQLITE_READERS[element.kind].format(compiler.process(element.inner, **kw))


# ------------------------------------------------------------------ Spark SQL literals


def spark_string(text: str) -> str:
    """A Spark SQL string literal: backslash escapes (a lone backslash or quote would end it wrongly)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r") + "'"


def spark_literal(value: object) -> str | None:
    """A typed Spark SQL literal for the values PyHive cannot bind (Decimal), binds as bare
    strings (dates, timestamps) or as decimals (floats); None for the rest (strings, integers),
    which stay parameters.

    A timestamp is an instant in UTC (SPEC §3), whatever the session's time zone.
    """
    if isinstance(value, dt.datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S") + (f".{value.microsecond:06d}" if value.microsecond else "")
        return f"TIMESTAMP '{text}Z'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, Decimal):
        return format(value, "f")  # 10.50 is DECIMAL(4,2) in Spark SQL; never an exponent
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return f"{value!r}D"  # a DOUBLE, as on the other engines (a bare 2.0 would be a DECIMAL)
    return None


@compiles(BindParameter, "hive")
def _bind_spark(element: BindParameter[Any], compiler: SQLCompiler, **kw: Any) -> str:
    if not element.expanding and (element.callable is None) and element.value is not None:
        literal = spark_literal(element.value)
        if literal is not None:
            return literal
        if kw.get("literal_binds") and isinstance(element.value, str):
            return spark_string(element.value)
    # SQLAlchemy leaves visit_bindparam unannotated
    return compiler.visit_bindparam(element, **kw)  # type: ignore[no-untyped-call,no-any-return]


# ------------------------------------------------------------------ BigQuery string literals


@compiles(BindParameter, "bigquery")
def _bind_bigquery(element: BindParameter[Any], compiler: SQLCompiler, **kw: Any) -> str:
    # sqlalchemy-bigquery prints a string as ``repr(value.replace("%", "%%"))``, doubled for its
    # pyformat DB-API; a printed query is pasted into a console, so without the doubling. A Python
    # repr is a valid BigQuery literal: the same quotes and backslash escapes (\\, \', \n, \xhh, \uhhhh).
    if (kw.get("literal_binds") and not element.expanding and element.callable is None
            and isinstance(element.value, str)):
        return repr(element.value)
    # SQLAlchemy leaves visit_bindparam unannotated
    return compiler.visit_bindparam(element, **kw)  # type: ignore[no-untyped-call,no-any-return]


# ------------------------------------------------------------------ money


class money_sum(functions.FunctionElement[Decimal]):
    """SUM of a money column; exact on DECIMAL engines, rounded where sums are floats."""

    name = "money_sum"
    type = types.Numeric()
    inherit_cache = True


@compiles(money_sum)
def _money_sum_default(element: money_sum, compiler: SQLCompiler, **kw: Any) -> str:
    return f"SUM({compiler.process(element.clauses, **kw)})"


@compiles(money_sum, "sqlite")
def _money_sum_sqlite(element: money_sum, compiler: SQLCompiler, **kw: Any) -> str:
    return f"ROUND(SUM({compiler.process(element.clauses, **kw)}), 6)"


#: The decimal type of a score's points and sums: every number of the language (``check.limits``: 18
#: digits before the point, 12 after) exactly. A bound Decimal reaches DuckDB as a DOUBLE, where 0.1 +
#: 0.2 is not 0.3; cast, it is the decimal written. Written out here: PyHive's dialect prints a
#: ``Numeric(30, 12)`` as a bare DECIMAL, which Spark reads as DECIMAL(10, 0).
POINTS_TYPE = f"DECIMAL({18 + MAX_DECIMALS}, {MAX_DECIMALS})"


class points_param(ColumnElement[Decimal]):
    """A score's points, or a number compared with a score: an exact decimal on every engine."""

    inherit_cache = True

    def __init__(self, value: Decimal) -> None:
        self.param = number_param(value)
        self.type = Numeric()


@compiles(points_param)
def _points_param_default(element: points_param, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({compiler.process(element.param, **kw)} AS {POINTS_TYPE})"


@compiles(points_param, "bigquery")
def _points_param_bigquery(element: points_param, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({compiler.process(element.param, **kw)} AS BIGNUMERIC)"  # NUMERIC holds 9 decimals


class points_sum(ColumnElement[Any]):
    """The sum of a score's terms (``CASE WHEN … THEN points ELSE 0 END``): exact on DECIMAL engines;
    on SQLite, whose numbers are doubles, rounded to the digits a number of the language may have
    after the point (``check.limits.MAX_DECIMALS``), so that 0.1 + 0.2 is 0.3 there too."""

    inherit_cache = True

    def __init__(self, terms: Sequence[ColumnElement[Any]]) -> None:
        self.terms = tuple(terms)
        self.type = types.Numeric()


@compiles(points_sum)
def _points_sum_default(element: points_sum, compiler: SQLCompiler, **kw: Any) -> str:
    return "(" + " + ".join(compiler.process(t, **kw) for t in element.terms) + ")"


@compiles(points_sum, "sqlite")
def _points_sum_sqlite(element: points_sum, compiler: SQLCompiler, **kw: Any) -> str:
    return f"ROUND({_points_sum_default(element, compiler, **kw)}, {MAX_DECIMALS})"


class money(ColumnElement[Any]):
    """A money-valued expression (for the products used by average_order_value)."""

    inherit_cache = True

    def __init__(self, inner: ColumnElement[Any]) -> None:
        self.inner = inner
        self.type = inner.type


@compiles(money)
def _money_default(element: money, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.inner, **kw)


@compiles(money, "sqlite")
def _money_sqlite(element: money, compiler: SQLCompiler, **kw: Any) -> str:
    return f"ROUND({compiler.process(element.inner, **kw)}, 6)"


# ------------------------------------------------------------------ case-sensitive text matching


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class _TextMatch(ColumnElement[bool]):
    inherit_cache = True
    type = types.Boolean()
    _pattern = "{}"

    def __init__(self, column: ColumnElement[Any], value: str) -> None:
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
def _match_default(element: _TextMatch, compiler: SQLCompiler, **kw: Any) -> str:
    col, pattern = compiler.process(element.column, **kw), compiler.process(element.pattern, **kw)
    return f"({col} LIKE {pattern} ESCAPE '\\')"


@compiles(_TextMatch, "hive")
@compiles(_TextMatch, "bigquery")
def _match_backslash_default(element: _TextMatch, compiler: SQLCompiler, **kw: Any) -> str:
    # Spark's and BigQuery's LIKE escape with a backslash by default; ESCAPE '\' is not a string
    # literal there (a backslash escapes the quote), and BigQuery has no ESCAPE clause at all.
    col, pattern = compiler.process(element.column, **kw), compiler.process(element.pattern, **kw)
    return f"({col} LIKE {pattern})"


@compiles(_TextMatch, "snowflake")
def _match_snowflake(element: _TextMatch, compiler: SQLCompiler, **kw: Any) -> str:
    # Snowflake's string literals escape with a backslash too: '\\' is the one backslash.
    col, pattern = compiler.process(element.column, **kw), compiler.process(element.pattern, **kw)
    return f"({col} LIKE {pattern} ESCAPE '\\\\')"


@compiles(starts_with, "sqlite")
def _starts_sqlite(element: starts_with, compiler: SQLCompiler, **kw: Any) -> str:
    col, val = compiler.process(element.column, **kw), compiler.process(element.value, **kw)
    return f"(substr({col}, 1, length({val})) = {val})"


@compiles(ends_with, "sqlite")
def _ends_sqlite(element: ends_with, compiler: SQLCompiler, **kw: Any) -> str:
    col, val = compiler.process(element.column, **kw), compiler.process(element.value, **kw)
    return f"(length({col}) >= length({val}) AND substr({col}, length({col}) - length({val}) + 1) = {val})"


@compiles(contains, "sqlite")
def _contains_sqlite(element: contains, compiler: SQLCompiler, **kw: Any) -> str:
    col, val = compiler.process(element.column, **kw), compiler.process(element.value, **kw)
    return f"(instr({col}, {val}) > 0)"


# ------------------------------------------------------------------ geography

EARTH_RADIUS_KM = 6371.0088
KM_PER_MILE = 1.609344


class radians(functions.FunctionElement[float]):
    """Degrees to radians; BigQuery has no RADIANS()."""

    name = "radians"
    type = types.Float()
    inherit_cache = True


@compiles(radians)
def _radians_default(element: radians, compiler: SQLCompiler, **kw: Any) -> str:
    return f"radians({compiler.process(element.clauses, **kw)})"


@compiles(radians, "bigquery")
def _radians_bigquery(element: radians, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(({compiler.process(element.clauses, **kw)}) * ACOS(-1) / 180)"


def haversine_km(lat1: ColumnElement[Any], lon1: ColumnElement[Any], lat2: ColumnElement[Any],
                 lon2: ColumnElement[Any]) -> ColumnElement[Any]:
    """Great-circle distance in km (SPEC §3), from standard SQL math functions."""
    f = functions.func
    two = expression.literal(2.0, types.Float())
    half_dlat = f.sin(radians(lat2 - lat1) / two)
    half_dlon = f.sin(radians(lon2 - lon1) / two)
    a = half_dlat * half_dlat + f.cos(radians(lat1)) * f.cos(radians(lat2)) * half_dlon * half_dlon
    clamped = expression.case((a > 1, expression.literal(1.0)), else_=a)
    return 2 * EARTH_RADIUS_KM * f.asin(f.sqrt(clamped))


# ------------------------------------------------------------------ anniversaries


class month_day(functions.FunctionElement[int]):
    """A date's month and day as one number, month × 100 + day (``1225`` for December 25), of a date or
    timestamp column read by its declared type; a timestamp's on its UTC date (zone-less timestamps are
    UTC, and every engine's session runs in UTC: ``warehouse.py``). NULL when the value is.

    SQLite reads the canonical text ``declared`` makes (``strftime('%m%d', …)``; 0 for a text whose day
    does not exist, such as ``2023-02-30``, which SQLite's ``date`` lets through); Spark's ``month`` and
    ``dayofmonth`` also take a date written as text; every other engine has ``EXTRACT``."""

    name = "month_day"
    type = types.Integer()
    inherit_cache = True


@compiles(month_day)
def _month_day_default(element: month_day, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    return f"(EXTRACT(MONTH FROM {value}) * 100 + EXTRACT(DAY FROM {value}))"


@compiles(month_day, "sqlite")
def _month_day_sqlite(element: month_day, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite's date() passes a day that does not exist ('2023-02-30'), which '+0 days' moves on to
    # another: such a text is no day of the calendar, so it has no anniversary (0, in no window).
    value = compiler.process(element.clauses, **kw)
    return (f"(CASE WHEN date({value}) = date({value}, '+0 days') "
            f"THEN CAST(strftime('%m%d', {value}) AS INTEGER) ELSE 0 END)")


@compiles(month_day, "hive")
def _month_day_spark(element: month_day, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    return f"(month({value}) * 100 + dayofmonth({value}))"


# ------------------------------------------------------------------ ranking derived values exactly


class days_before(functions.FunctionElement[int]):
    """The whole days from a timestamp's UTC date to a day D (``days_since_last_order``): D − date(ts),
    an integer on every engine, NULL when the timestamp is. Arguments: the timestamp, then D."""

    name = "days_before"
    type = types.Integer()
    inherit_cache = True


def _two(element: functions.FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> tuple[str, str]:
    first, second = list(element.clauses)
    return compiler.process(first, **kw), compiler.process(second, **kw)


def _compile_two(function: type[functions.FunctionElement[Any]], templates: dict[str | None, str]) -> None:
    """Compile a two-argument function from one template per dialect (``None``: every other one), the
    arguments as ``{a}`` and ``{b}``."""
    for dialect, template in templates.items():
        def render(element: Any, compiler: SQLCompiler, _template: str = template, **kw: Any) -> str:
            a, b = _two(element, compiler, **kw)
            return _template.format(a=a, b=b)

        compiles(function, *([dialect] if dialect else []))(render)


# days_before(ts, D)
_compile_two(days_before, {
    None: "(CAST({b} AS DATE) - CAST({a} AS DATE))",
    "duckdb": "date_diff('day', CAST({a} AS DATE), CAST({b} AS DATE))",
    "trino": "date_diff('day', CAST({a} AS DATE), CAST({b} AS DATE))",
    "sqlite": "CAST(julianday({b}) - julianday(date({a})) AS INTEGER)",
    "hive": "datediff(CAST({b} AS DATE), CAST({a} AS DATE))",
    "snowflake": "DATEDIFF(day, CAST({a} AS DATE), CAST({b} AS DATE))",
    "bigquery": "DATE_DIFF(CAST({b} AS DATE), CAST({a} AS DATE), DAY)",
})


class whole_quotient(functions.FunctionElement[int]):
    """The quotient of two whole numbers (BIGINT) truncated toward zero, exactly: ``/`` on PostgreSQL,
    SQLite and Trino; DuckDB's ``//``; Spark's ``div``; BigQuery's ``DIV``; Snowflake ``(a - MOD(a, b)) /
    b``, a division that leaves no remainder."""

    name = "whole_quotient"
    type = types.BigInteger()
    inherit_cache = True


_compile_two(whole_quotient, {
    None: "(({a}) / ({b}))",
    "duckdb": "(({a}) // ({b}))",
    "hive": "(({a}) div ({b}))",
    "bigquery": "DIV({a}, {b})",
    "snowflake": "((({a}) - MOD({a}, {b})) / ({b}))",
})


# ------------------------------------------------------------------ campaign buckets

BUCKETS = 10_000


def bucket_of(text: str) -> int:
    """The bucket (0..9999) of a text in Python: the first 7 hex digits of its md5, modulo 10,000.

    SQLite has no md5: this is the deterministic function registered there as ``audlang_bucket``,
    and the reference the SQL of every other engine is tested against."""
    import hashlib

    return int(hashlib.md5(text.encode("utf-8")).hexdigest()[:7], 16) % BUCKETS


#: Functions a SQLite connection needs registered before running campaign queries: name -> (arity, function).
SQLITE_FUNCTIONS: dict[str, tuple[int, Callable[..., int | str | None]]] = {"audlang_bucket": (1, bucket_of)}


class bucket(functions.FunctionElement[int]):
    """A campaign's bucket of a text (salt + ":" + customer_id), 0..9999, equal on every engine:
    the first 7 hex digits (28 bits, so a positive 32-bit integer everywhere) of md5, modulo 10,000."""

    name = "audlang_bucket"
    type = types.Integer()
    inherit_cache = True


def _bucket_arg(element: bucket, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(bucket)
def _bucket_default(element: bucket, compiler: SQLCompiler, **kw: Any) -> str:
    arg = _bucket_arg(element, compiler, **kw)
    return f"mod(CAST(CAST('x' || substr(md5({arg}), 1, 7) AS BIT(28)) AS INTEGER), 10000)"


@compiles(bucket, "duckdb")
def _bucket_duckdb(element: bucket, compiler: SQLCompiler, **kw: Any) -> str:
    return f"mod(CAST('0x' || substr(md5({_bucket_arg(element, compiler, **kw)}), 1, 7) AS BIGINT), 10000)"


@compiles(bucket, "sqlite")
def _bucket_sqlite(element: bucket, compiler: SQLCompiler, **kw: Any) -> str:
    return f"audlang_bucket({_bucket_arg(element, compiler, **kw)})"


@compiles(bucket, "snowflake")
def _bucket_snowflake(element: bucket, compiler: SQLCompiler, **kw: Any) -> str:
    return f"MOD(TO_NUMBER(SUBSTR(MD5({_bucket_arg(element, compiler, **kw)}), 1, 7), 'XXXXXXX'), 10000)"


@compiles(bucket, "bigquery")
def _bucket_bigquery(element: bucket, compiler: SQLCompiler, **kw: Any) -> str:
    arg = _bucket_arg(element, compiler, **kw)
    return f"MOD(CAST(CONCAT('0x', SUBSTR(TO_HEX(MD5({arg})), 1, 7)) AS INT64), 10000)"


@compiles(bucket, "trino")
def _bucket_trino(element: bucket, compiler: SQLCompiler, **kw: Any) -> str:
    arg = _bucket_arg(element, compiler, **kw)
    return f"mod(from_base(substr(lower(to_hex(md5(to_utf8({arg})))), 1, 7), 16), 10000)"


@compiles(bucket, "hive")
def _bucket_hive(element: bucket, compiler: SQLCompiler, **kw: Any) -> str:
    arg = _spark_concat(element.clauses, compiler, **kw)
    return f"pmod(CAST(conv(substr(md5({arg}), 1, 7), 16, 10) AS BIGINT), 10000)"


def _spark_concat(element: Visitable, compiler: SQLCompiler, **kw: Any) -> str:
    """``salt || customer_id`` for Spark. PyHive renders ``a + b`` of texts as ``concat(a, b)`` but drops
    the compile options on the way, so with ``literal_binds`` (how ``warehouse.materialize_swap``
    compiles) the salt would come out as a ``%(param)s`` placeholder; render the concatenation here."""
    if isinstance(element, expression.ClauseList) and len(element.clauses) == 1:
        element = element.clauses[0]
    if isinstance(element, expression.Grouping):
        element = element.element
    if isinstance(element, expression.BinaryExpression) and element.operator is operators.concat_op:
        left = _spark_concat(element.left, compiler, **kw)
        right = _spark_concat(element.right, compiler, **kw)
        return f"concat({left}, {right})"
    return compiler.process(element, **kw)


# ------------------------------------------------------------------ identifier normalization primitives
#
# The three text primitives ``compile/identifiers.py`` builds the E.164 phone, the email and the
# customer_id normalizations from. Their patterns and character sets are fixed constants of that
# module, rendered inline (``_constant``) so every engine sees a literal it can compile once; they
# use no backslash escapes (``[.]``, raw whitespace characters inside classes), which every regex
# flavour here reads the same way. SQLite has no regex: deterministic Python functions below.


def regexp_replace_all_python(text: str | None, pattern: str, replacement: str) -> str | None:
    """SQLite's ``audlang_regexp_replace``: every match of ``pattern`` replaced (Python ``re``)."""
    import re

    return None if text is None else re.sub(pattern, replacement, text)


def regexp_full_match_python(text: str | None, pattern: str) -> int | None:
    """SQLite's ``audlang_regexp_full_match``: 1 when the whole text matches, 0 when not, NULL for NULL."""
    import re

    return None if text is None else int(re.fullmatch(pattern, text) is not None)


SQLITE_FUNCTIONS["audlang_regexp_replace"] = (3, regexp_replace_all_python)
SQLITE_FUNCTIONS["audlang_regexp_full_match"] = (2, regexp_full_match_python)


def sha256_hex_python(text: str | None) -> str | None:
    """SQLite's ``audlang_sha256``: the SHA-256 of the text's UTF-8 bytes, lower-case hex; NULL for NULL."""
    import hashlib

    return None if text is None else hashlib.sha256(str(text).encode("utf-8")).hexdigest()


SQLITE_FUNCTIONS["audlang_sha256"] = (1, sha256_hex_python)


class sha256_hex(functions.FunctionElement[str]):
    """The SHA-256 of a text's UTF-8 bytes as 64 lower-case hex digits, NULL for NULL, on every engine
    (the identifiers the ad platforms take, hashed in the warehouse)."""

    name = "audlang_sha256"
    type = String()
    inherit_cache = True


def _sha256_arg(element: sha256_hex, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(sha256_hex)
@compiles(sha256_hex, "postgresql")
def _sha256_postgresql(element: sha256_hex, compiler: SQLCompiler, **kw: Any) -> str:
    # sha256() takes and returns bytea: the text's UTF-8 bytes in, hex text out
    return f"encode(sha256(convert_to({_sha256_arg(element, compiler, **kw)}, 'UTF8')), 'hex')"


@compiles(sha256_hex, "duckdb")
def _sha256_duckdb(element: sha256_hex, compiler: SQLCompiler, **kw: Any) -> str:
    return f"sha256({_sha256_arg(element, compiler, **kw)})"


@compiles(sha256_hex, "sqlite")
def _sha256_sqlite(element: sha256_hex, compiler: SQLCompiler, **kw: Any) -> str:
    return f"audlang_sha256({_sha256_arg(element, compiler, **kw)})"


@compiles(sha256_hex, "hive")
def _sha256_spark(element: sha256_hex, compiler: SQLCompiler, **kw: Any) -> str:
    return f"sha2({_spark_concat(element.clauses, compiler, **kw)}, 256)"


@compiles(sha256_hex, "snowflake")
def _sha256_snowflake(element: sha256_hex, compiler: SQLCompiler, **kw: Any) -> str:
    return f"SHA2({_sha256_arg(element, compiler, **kw)}, 256)"


@compiles(sha256_hex, "bigquery")
def _sha256_bigquery(element: sha256_hex, compiler: SQLCompiler, **kw: Any) -> str:
    return f"TO_HEX(SHA256({_sha256_arg(element, compiler, **kw)}))"


@compiles(sha256_hex, "trino")
def _sha256_trino(element: sha256_hex, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower(to_hex(sha256(to_utf8({_sha256_arg(element, compiler, **kw)}))))"


def register_sqlite_functions(dbapi_connection: sqlite3.Connection, _record: object = None) -> None:
    """Registers ``SQLITE_FUNCTIONS`` on a sqlite3 connection (usable as a ``connect`` event listener)."""
    for fname, (arity, fn) in SQLITE_FUNCTIONS.items():
        dbapi_connection.create_function(fname, arity, fn, deterministic=True)


def _constant(compiler: SQLCompiler, value: str, **kw: Any) -> str:
    """A fixed string rendered as the dialect's literal (Spark's through ``spark_string``)."""
    return compiler.process(expression.literal(value, String()), **{**kw, "literal_binds": True})


class _TextPrimitive(ColumnElement[Any]):
    inherit_cache = True
    type: types.TypeEngine[Any] = String()
    # the text, the pattern and the replacement are all part of the statement cache key
    _traverse_internals = [("text", InternalTraversal.dp_clauseelement), ("constant", InternalTraversal.dp_string),
                           ("replacement", InternalTraversal.dp_string)]

    def __init__(self, text: ColumnElement[Any], constant: str, replacement: str = "") -> None:
        self.text = text
        self.constant = constant
        self.replacement = replacement

    @property
    def _from_objects(self) -> list[FromClause]:
        return self.text._from_objects  # so a SELECT of it alone still gets its FROM

    def _parts(self, compiler: SQLCompiler, **kw: Any) -> tuple[str, str]:
        return compiler.process(self.text, **kw), _constant(compiler, self.constant, **kw)


class trim_chars(_TextPrimitive):
    """The text without any of ``characters`` at either end (a set of characters, as SQL's TRIM)."""

    inherit_cache = True


@compiles(trim_chars)
def _trim_default(element: trim_chars, compiler: SQLCompiler, **kw: Any) -> str:
    text, chars = element._parts(compiler, **kw)
    return f"TRIM(BOTH {chars} FROM {text})"


@compiles(trim_chars, "duckdb")
@compiles(trim_chars, "sqlite")
@compiles(trim_chars, "snowflake")
@compiles(trim_chars, "bigquery")
@compiles(trim_chars, "trino")
def _trim_two_arguments(element: trim_chars, compiler: SQLCompiler, **kw: Any) -> str:
    text, chars = element._parts(compiler, **kw)
    return f"trim({text}, {chars})"


@compiles(trim_chars, "postgresql")
def _trim_postgresql(element: trim_chars, compiler: SQLCompiler, **kw: Any) -> str:
    text, chars = element._parts(compiler, **kw)
    return f"btrim({text}, {chars})"


class regexp_replace_all(_TextPrimitive):
    """Every (non-overlapping, leftmost) match of a fixed pattern replaced by a fixed text."""

    inherit_cache = True


@compiles(regexp_replace_all)
def _replace_default(element: regexp_replace_all, compiler: SQLCompiler, **kw: Any) -> str:
    # Spark, Snowflake, BigQuery and Trino replace every match by default.
    text, pattern = element._parts(compiler, **kw)
    return f"regexp_replace({text}, {pattern}, {_constant(compiler, element.replacement, **kw)})"


@compiles(regexp_replace_all, "duckdb")
@compiles(regexp_replace_all, "postgresql")
def _replace_global_flag(element: regexp_replace_all, compiler: SQLCompiler, **kw: Any) -> str:
    text, pattern = element._parts(compiler, **kw)
    return f"regexp_replace({text}, {pattern}, {_constant(compiler, element.replacement, **kw)}, 'g')"


@compiles(regexp_replace_all, "sqlite")
def _replace_sqlite(element: regexp_replace_all, compiler: SQLCompiler, **kw: Any) -> str:
    text, pattern = element._parts(compiler, **kw)
    return f"audlang_regexp_replace({text}, {pattern}, {_constant(compiler, element.replacement, **kw)})"


class regexp_full_match(_TextPrimitive):
    """True when the whole text matches a fixed pattern (NULL for NULL)."""

    inherit_cache = True
    type = types.Boolean()


@compiles(regexp_full_match)
def _full_match_default(element: regexp_full_match, compiler: SQLCompiler, **kw: Any) -> str:
    text = compiler.process(element.text, **kw)
    return f"regexp_like({text}, {_constant(compiler, '^(?:' + element.constant + ')$', **kw)})"


@compiles(regexp_full_match, "duckdb")
def _full_match_duckdb(element: regexp_full_match, compiler: SQLCompiler, **kw: Any) -> str:
    text, pattern = element._parts(compiler, **kw)
    return f"regexp_full_match({text}, {pattern})"


@compiles(regexp_full_match, "postgresql")
def _full_match_postgresql(element: regexp_full_match, compiler: SQLCompiler, **kw: Any) -> str:
    # PostgreSQL's $ is the end of the text (the default regex mode is not newline-sensitive).
    text = compiler.process(element.text, **kw)
    return f"({text} ~ {_constant(compiler, '^(?:' + element.constant + ')$', **kw)})"


@compiles(regexp_full_match, "sqlite")
def _full_match_sqlite(element: regexp_full_match, compiler: SQLCompiler, **kw: Any) -> str:
    text, pattern = element._parts(compiler, **kw)
    return f"(audlang_regexp_full_match({text}, {pattern}) = 1)"


@compiles(regexp_full_match, "hive")
def _full_match_spark(element: regexp_full_match, compiler: SQLCompiler, **kw: Any) -> str:
    # Java's $ also matches before a final line break: \z is the very end.
    text = compiler.process(element.text, **kw)
    return f"({text} RLIKE {_constant(compiler, '^(?:' + element.constant + ')' + chr(92) + 'z', **kw)})"


@compiles(regexp_full_match, "snowflake")
def _full_match_snowflake(element: regexp_full_match, compiler: SQLCompiler, **kw: Any) -> str:
    text, pattern = element._parts(compiler, **kw)  # REGEXP_LIKE is anchored at both ends
    return f"REGEXP_LIKE({text}, {pattern})"


@compiles(regexp_full_match, "bigquery")
def _full_match_bigquery(element: regexp_full_match, compiler: SQLCompiler, **kw: Any) -> str:
    text = compiler.process(element.text, **kw)  # RE2: $ is the end of the text
    return f"REGEXP_CONTAINS({text}, {_constant(compiler, '^(?:' + element.constant + ')$', **kw)})"


@compiles(regexp_full_match, "trino")
def _full_match_trino(element: regexp_full_match, compiler: SQLCompiler, **kw: Any) -> str:
    # Trino's default regex library (Joni) reads ^ and $ as line anchors: \A and \z are the text's ends.
    text = compiler.process(element.text, **kw)
    bs = chr(92)
    return f"regexp_like({text}, {_constant(compiler, bs + 'A(?:' + element.constant + ')' + bs + 'z', **kw)})"
