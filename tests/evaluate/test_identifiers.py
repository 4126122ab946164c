"""Identifier normalization in SQL equals the Python reference (``audlang.compile.identifiers``), on DuckDB,
SQLite, PostgreSQL (the ``warehouse`` fixture) and Spark SQL (marker ``spark``): a table of edge cases and
generated text.

Every comparison is one SELECT over many values: the values go into a small table (a VALUES list on
Spark, where each query costs about a second, so Spark gets one query over the edge table and a few
hundred generated values, and no hypothesis loop)."""

from __future__ import annotations

import random
import string

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audlang.compile import dialects
from audlang.compile.identifiers import (
    NORMALIZERS, SQL_NORMALIZERS, customer_id_sql, email_sql, normalize_customer_id, normalize_email,
    normalize_phone, phone_sql,
)
from audlang.warehouse import connect

TEXT_CASES = [
    None, "", " ", "\t", " \t\n\r\f\v ", "\u00a0",
    # phones
    "+1 (555) 123-4567", "555-123-4567", "(503) 555-0101", "1-503-555-0101", "1 503 555 0101", "15035550101",
    "5035550101", "0503555010", "1503555010", "25035550101", "+44 20 7946 0958", "0044 20 7946 0958",
    "0044", "00", "0", "+", "++1 555 123 4567", "+ 1 555 123 4567", "+0 555 123 4567", "+01234567890",
    "00012345678", "0001234567890", "+15551234567", " +15551234567 ", "\t+15551234567\n", "+15551234567\u00a0",
    "555-0101", "call me", "555-123-4567 x12", "555-123-4567 ext", "tel: 5551234567", "5551234567a",
    "1234567", "12345678", "+1234567", "+12345678", "+123456789012345", "+1234567890123456",
    "0012345678", "001234567890123456", "00123456789012345", "001234567", "00 1234 5678",
    "555.123.4567", "555/123/4567", "(555)1234567", "+1-555-123-4567", "1+5551234567", "55512345+67",
    "\u0665\u0665\u06651234567",  # Arabic-Indic digits are not digits
    "é5551234567",  # a letter outside A-Z is not a letter
    # emails
    "ann@example.com", "  Ann@Example.COM ", "ANN@EXAMPLE.COM", "\tann@example.com\n", "a b@example.com",
    "ann@exa mple.com", "ann@example.com\tx", "ann@example", "ann@@example.com", "a@b@c.com", "@example.com",
    "ann@.com", "ann@example.", "ann.example.com", "a@b.c", "a@b..c", "a.b@c", "a@b.c\u00a0", "\u00a0a@b.c",
    "ann+tag@example.co.uk", "(ann)@example.com", "a@b.c.", ".@..", "@.", "a@.b",
    # customer ids
    "C-001", "  C-001  ", "\x0b\x0cC1\r", "42", " 42 ", "customer 42",
]
NUMBER_CASES = [None, 0, 1, -1, 5551234567, 15551234567, 25551234567, 442079460958, 1234567, 12345678,
                123456789012345, 1234567890123456, -5551234567, 9223372036854775807, -9223372036854775808]


def test_python_reference_keeps_its_documented_behaviour():
    assert normalize_email("  Ann@Example.COM ") == "ann@example.com"
    assert normalize_email("not-an-email") is None and normalize_email("a@b@c.com") is None
    assert normalize_phone("(503) 555-0101") == "+15035550101"
    assert normalize_phone("1-503-555-0101") == "+15035550101"
    assert normalize_phone("+44 20 7946 0958") == normalize_phone("0044 20 7946 0958") == "+442079460958"
    assert normalize_phone(5551234567) == "+15551234567"
    assert normalize_phone("555-0101") is None and normalize_phone("call me") is None
    assert normalize_phone("5035550101", default_country="44") is None
    assert normalize_customer_id(" C-1\t") == "C-1" and normalize_customer_id(" \n ") is None
    # ASCII-exact: a no-break space is not whitespace, Arabic-Indic digits are not digits
    assert normalize_customer_id("\u00a0C-1") == "\u00a0C-1"
    assert normalize_phone("\u0665\u0665\u0665-123-4567") is None


def test_destinations_reexport_the_reference():
    from audlang import destinations
    from audlang.destinations import base

    assert destinations.normalize_email is normalize_email and destinations.normalize_phone is normalize_phone
    assert base.NORMALIZERS is NORMALIZERS and base.normalize_customer_id is normalize_customer_id
    assert set(SQL_NORMALIZERS) == set(NORMALIZERS)


# ------------------------------------------------------------------ evaluating in batches

metadata = sa.MetaData()
cases_table = sa.Table("audlang_identifier_cases", metadata,
                       sa.Column("i", sa.Integer, primary_key=True, autoincrement=False),
                       sa.Column("text", sa.String), sa.Column("number", sa.BigInteger))


def normalized(source) -> sa.Select:
    """Every normalization of the text and of the number column, by row."""
    c = source.c
    return sa.select(c.i, *(SQL_NORMALIZERS[name](c.text) for name in sorted(SQL_NORMALIZERS)),
                     *(SQL_NORMALIZERS[name](c.number) for name in sorted(SQL_NORMALIZERS))).order_by(c.i)


def rows_of(texts, numbers) -> list[dict]:
    return ([{"i": i, "text": t, "number": None} for i, t in enumerate(texts)]
            + [{"i": len(texts) + j, "text": None, "number": n} for j, n in enumerate(numbers)])


def expected(rows) -> list[tuple]:
    return [(r["i"], *(NORMALIZERS[name](r["text"]) for name in sorted(NORMALIZERS)),
             *(NORMALIZERS[name](r["number"]) for name in sorted(NORMALIZERS))) for r in rows]


def evaluate(engine: sa.Engine, texts, numbers) -> list[tuple]:
    """One SELECT over all the values (loaded into the cases table first)."""
    rows = rows_of(texts, numbers)
    with engine.begin() as conn:
        conn.execute(cases_table.delete())
        conn.execute(cases_table.insert(), rows)
        return [tuple(r) for r in conn.execute(normalized(cases_table))]


def check(engine: sa.Engine, texts, numbers) -> None:
    rows = rows_of(texts, numbers)
    got = evaluate(engine, texts, numbers)
    want = expected(rows)
    names = [f"text {n}" for n in sorted(NORMALIZERS)] + [f"number {n}" for n in sorted(NORMALIZERS)]
    mismatches = [(r["text"] if r["text"] is not None else r["number"], names[k], w[k + 1], g[k + 1])
                  for r, w, g in zip(rows, want, got, strict=False) for k in range(len(names)) if w[k + 1] != g[k + 1]]
    assert not mismatches, f"{engine.dialect.name}: (value, normalization, python, sql): {mismatches[:20]}"
    assert len(got) == len(want)


@pytest.fixture(scope="module")
def engine(warehouse):
    """The engine under test, holding the cases table."""
    made = connect(warehouse.url, must_exist=False)
    if warehouse.name == "sqlite":  # the regex functions SQLite lacks (the campaigns' bucket registers the same way)
        sa.event.listen(made, "connect", dialects.register_sqlite_functions)
    metadata.create_all(made)
    yield made
    made.dispose()


def test_edge_cases_equal_python(engine):
    check(engine, TEXT_CASES, NUMBER_CASES)


# The edge cases themselves are under test (the test above compares every engine): one engine is enough.
@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_edge_table_reaches_every_outcome(engine):
    """The edge cases are not all NULL: each normalization gives both values and NULLs."""
    got = evaluate(engine, TEXT_CASES, NUMBER_CASES)
    customer_ids, emails, phones = ({row[k] for row in got} for k in (1, 2, 3))
    assert phones >= {None, "+15551234567", "+442079460958", "+15035550101", "+123456789012345"}
    assert emails >= {None, "ann@example.com", "a@b.c", "a@b.c\u00a0"}
    assert customer_ids >= {None, "C-001", "C1", "42", "\u00a0"}
    # phones stored as BIGINT: an integer has no + or 00, so only North American numbers are usable
    assert {row[6] for row in got} == {None, "+15551234567"}


def test_other_default_country_takes_only_international_numbers(engine):
    t = cases_table
    with engine.begin() as conn:
        conn.execute(t.delete())
        conn.execute(t.insert(), rows_of(["5035550101", "15035550101", "+15035550101", "0044 20 7946 0958"], []))
        got = [r[0] for r in conn.execute(sa.select(phone_sql(t.c.text, default_country="44")).order_by(t.c.i))]
    assert got == [None, None, "+15035550101", "+442079460958"]
    assert got == [normalize_phone(v, default_country="44")
                   for v in ["5035550101", "15035550101", "+15035550101", "0044 20 7946 0958"]]


# ------------------------------------------------------------------ generated values

PHONE_ALPHABET = string.digits + "+()-. \t"
#: ASCII printable (letters, digits, punctuation, the six whitespace characters) and the phone characters
texts = st.one_of(
    st.text(alphabet=string.printable, max_size=20),
    st.text(alphabet=PHONE_ALPHABET, max_size=20),
    st.text(alphabet=PHONE_ALPHABET + "ab", max_size=20),
    st.builds(lambda a, b, c: f"{a}@{b}.{c}", *(st.text(alphabet=string.printable, max_size=6),) * 3),
    st.builds(lambda a, b: f"{a}{b}", st.sampled_from(["+", "00", "+1", "1", " +", "\t00", ""]),
              st.text(alphabet=string.digits, min_size=6, max_size=17)),
)
numbers = st.one_of(st.none(), st.integers(min_value=-10**18, max_value=10**18),
                    st.integers(min_value=10**6, max_value=10**16))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(texts, min_size=1, max_size=30), ints=st.lists(numbers, max_size=8))
def test_generated_values_equal_python(engine, values, ints):
    check(engine, values, ints)


def generated(count: int, seed: int = 7) -> tuple[list[str], list[int]]:
    """Hypothesis-like values from a seeded generator, for the one Spark query."""
    rng = random.Random(seed)

    def text(alphabet, low=0, high=20):
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))

    makers = [
        lambda: text(string.printable),
        lambda: text(PHONE_ALPHABET),
        lambda: text(PHONE_ALPHABET + "ab"),
        lambda: f"{text(string.printable, 0, 6)}@{text(string.printable, 0, 6)}.{text(string.printable, 0, 6)}",
        lambda: rng.choice(["+", "00", "+1", "1", " +", "\t00", ""]) + text(string.digits, 6, 17),
        lambda: rng.choice(["", " ", "\t"]) + text(string.ascii_letters + string.digits + "@.", 1, 12).upper(),
    ]
    values = [rng.choice(makers)() for _ in range(count)]
    ints = [rng.choice([rng.randint(-10**18, 10**18), rng.randint(10**6, 10**16), rng.randint(10**9, 2 * 10**10)])
            for _ in range(count // 10)]
    return values, ints


# The generator is under test (Spark's one query takes its values): one engine is enough.
@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_generated_values_cover_the_interesting_outcomes(engine):
    values, ints = generated(400)
    check(engine, values, ints)
    phones = {normalize_phone(v) for v in values}
    emails = {normalize_email(v) for v in values}
    assert len(phones - {None}) > 20 and len(emails - {None}) > 20  # not only unusable values


# ------------------------------------------------------------------ Spark SQL


@pytest.mark.spark
def test_spark_equals_python(spark_url):
    """One query over the edge table and a few hundred generated values (VALUES inline: no table)."""
    values, ints = generated(400)
    texts_all, numbers_all = TEXT_CASES + values, NUMBER_CASES + ints
    rows = rows_of(texts_all, numbers_all)
    source = sa.values(sa.column("i", sa.Integer), sa.column("text", sa.String), sa.column("number", sa.BigInteger),
                       name="cases").data([(r["i"], r["text"], r["number"]) for r in rows])
    engine = connect(spark_url)
    try:
        sql = str(normalized(source).compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
        with engine.connect() as conn:
            got = [tuple(r) for r in conn.execution_options(no_parameters=True).exec_driver_sql(sql)]
    finally:
        engine.dispose()
    want = expected(rows)
    assert len(got) == len(want)
    mismatches = [(w, g) for w, g in zip(want, got, strict=True) if w != g]
    assert not mismatches, mismatches[:20]


# ------------------------------------------------------------------ the compile-only dialects


@pytest.mark.parametrize("dialect,expect", [
    ("snowflake", ["REGEXP_LIKE(", "trim(", "regexp_replace("]),
    ("bigquery", ["REGEXP_CONTAINS(", "trim(", "regexp_replace("]),
    ("trino", ["regexp_like(", "\\A(?:", "\\z'"]),
    ("hive", [" RLIKE ", "TRIM(BOTH ", "\\\\z'"]),
])
def test_compile_only_dialects_render(dialect, expect):
    from audlang.compile.render import dialect_for

    t = sa.table("c", sa.column("v", sa.String), sa.column("n", sa.BigInteger))
    sql = str(sa.select(email_sql(t.c.v), phone_sql(t.c.n), customer_id_sql(t.c.v)).compile(
        dialect=dialect_for(dialect), compile_kwargs={"literal_binds": True}))
    for part in expect:
        assert part in sql, (part, sql)
