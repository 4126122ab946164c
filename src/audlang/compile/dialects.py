"""Every dialect difference of the compiled SQL, in one place.

The compiler builds dialect-neutral SQLAlchemy Core; the few constructs that
render differently per engine are custom elements here with a default
rendering and per-dialect overrides (``@compiles``), the way sqlglot keeps
each dialect's overrides beside a shared generator:

- timestamps and dates as bound parameters (SQLite keeps them as ISO text);
- sums of money (SQLite sums floats: rounded to 6 places so equal sums compare equal);
- case-sensitive text matching (SQLite's LIKE ignores case);
- the clamp inside the haversine formula;
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
from decimal import Decimal

from sqlalchemy import Date, DateTime, String, types
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement, expression, functions
from sqlalchemy.sql.elements import BindParameter

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


# ------------------------------------------------------------------ Spark SQL literals


def spark_string(text: str) -> str:
    """A Spark SQL string literal: backslash escapes (a lone backslash or quote would end it wrongly)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r") + "'"


def spark_literal(value) -> str | None:
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
def _bind_spark(element, compiler, **kw):
    if not element.expanding and (element.callable is None) and element.value is not None:
        literal = spark_literal(element.value)
        if literal is not None:
            return literal
        if kw.get("literal_binds") and isinstance(element.value, str):
            return spark_string(element.value)
    return compiler.visit_bindparam(element, **kw)


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


@compiles(_TextMatch, "hive")
def _match_spark(element, compiler, **kw):
    # Spark's LIKE escapes with a backslash by default, and ESCAPE '\' is not a Spark string.
    col, pattern = compiler.process(element.column, **kw), compiler.process(element.pattern, **kw)
    return f"({col} LIKE {pattern})"


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


# ------------------------------------------------------------------ campaign buckets

BUCKETS = 10_000


def bucket_of(text: str) -> int:
    """The bucket (0..9999) of a text in Python: the first 7 hex digits of its md5, modulo 10,000.

    SQLite has no md5: this is the deterministic function registered there as ``audlang_bucket``,
    and the reference the SQL of every other engine is tested against."""
    import hashlib

    return int(hashlib.md5(text.encode("utf-8")).hexdigest()[:7], 16) % BUCKETS


#: Functions a SQLite connection needs registered before running campaign queries: name -> (arity, function).
SQLITE_FUNCTIONS = {"audlang_bucket": (1, bucket_of)}


class bucket(functions.FunctionElement):
    """A campaign's bucket of a text (salt + ":" + customer_id), 0..9999, equal on every engine:
    the first 7 hex digits (28 bits, so a positive 32-bit integer everywhere) of md5, modulo 10,000."""

    name = "audlang_bucket"
    type = types.Integer()
    inherit_cache = True


def _bucket_arg(element, compiler, **kw) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(bucket)
def _bucket_default(element, compiler, **kw):
    return f"mod(CAST(CAST('x' || substr(md5({_bucket_arg(element, compiler, **kw)}), 1, 7) AS BIT(28)) AS INTEGER), 10000)"


@compiles(bucket, "duckdb")
def _bucket_duckdb(element, compiler, **kw):
    return f"mod(CAST('0x' || substr(md5({_bucket_arg(element, compiler, **kw)}), 1, 7) AS BIGINT), 10000)"


@compiles(bucket, "sqlite")
def _bucket_sqlite(element, compiler, **kw):
    return f"audlang_bucket({_bucket_arg(element, compiler, **kw)})"


@compiles(bucket, "snowflake")
def _bucket_snowflake(element, compiler, **kw):
    return f"MOD(TO_NUMBER(SUBSTR(MD5({_bucket_arg(element, compiler, **kw)}), 1, 7), 'XXXXXXX'), 10000)"


@compiles(bucket, "bigquery")
def _bucket_bigquery(element, compiler, **kw):
    arg = _bucket_arg(element, compiler, **kw)
    return f"MOD(CAST(CONCAT('0x', SUBSTR(TO_HEX(MD5({arg})), 1, 7)) AS INT64), 10000)"


@compiles(bucket, "trino")
def _bucket_trino(element, compiler, **kw):
    arg = _bucket_arg(element, compiler, **kw)
    return f"mod(from_base(substr(lower(to_hex(md5(to_utf8({arg})))), 1, 7), 16), 10000)"


@compiles(bucket, "hive")
def _bucket_hive(element, compiler, **kw):
    return f"pmod(CAST(conv(substr(md5({_bucket_arg(element, compiler, **kw)}), 1, 7), 16, 10) AS BIGINT), 10000)"
