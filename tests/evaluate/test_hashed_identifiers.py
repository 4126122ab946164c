"""The identifiers the ad platforms take, hashed in SQL, equal Python's hashlib over the reference
normalization (``compile.identifiers.hash_identifier``), on DuckDB, SQLite, PostgreSQL (the ``warehouse``
fixture) and Spark SQL (marker ``spark``).

Tricky inputs: upper case and surrounding whitespace (normalized away before hashing), NULL and empty
text (NULL, never the hash of ""), unicode (hashed as UTF-8 bytes; lower-cased only where every engine
agrees, so the unicode cases are lower case already), phones with punctuation, ``00`` and BIGINT phones.
"""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from audlang.compile import dialects
from audlang.compile.identifiers import HASH_FORMS, hash_identifier, hashed_sql
from audlang.compile.render import dialect_for
from audlang.warehouse import connect

TEXTS = [
    None, "", " ", "\t\n",
    "ann@example.com", "  Ann@Example.COM ", "ANN@EXAMPLE.COM", "\tann@example.com\n", "not-an-email",
    "josé@exämple.com", "名前@例え.jp", "ann+tag@example.co.uk", "a@b.c\u00a0",
    "+1 (555) 123-4567", "(503) 555-0101", "503.555.0101", "1-503-555-0101", "+44 20 7946 0958",
    "0044 20 7946 0958", "555-0101", "call me", "+15551234567", " +15551234567 ",
]
NUMBERS = [None, 5551234567, 15035550101, 1234567]
FORMS = sorted(HASH_FORMS)

metadata = sa.MetaData()
cases = sa.Table("audlang_hash_cases", metadata, sa.Column("i", sa.Integer, primary_key=True, autoincrement=False),
                 sa.Column("text", sa.String), sa.Column("number", sa.BigInteger))


def rows() -> list[dict]:
    return ([{"i": i, "text": t, "number": None} for i, t in enumerate(TEXTS)]
            + [{"i": len(TEXTS) + j, "text": None, "number": n} for j, n in enumerate(NUMBERS)])


def hashed(source) -> sa.Select:
    c = source.c
    return sa.select(c.i, *(hashed_sql(f, c.text) for f in FORMS), *(hashed_sql(f, c.number) for f in FORMS)
                     ).order_by(c.i)


def expected() -> list[tuple]:
    return [(r["i"], *(hash_identifier(f, r["text"]) for f in FORMS), *(hash_identifier(f, r["number"]) for f in FORMS))
            for r in rows()]


def test_the_reference_is_hashlib_over_the_normalized_form():
    digest = lambda text: hashlib.sha256(text.encode("utf-8")).hexdigest()  # noqa: E731
    assert hash_identifier("email", "  Ann@Example.COM ") == digest("ann@example.com")
    assert hash_identifier("phone", "(503) 555-0101") == digest("+15035550101")
    assert hash_identifier("phone_digits", "(503) 555-0101") == digest("15035550101")
    assert hash_identifier("email", "josé@exämple.com") == digest("josé@exämple.com")
    assert all(hash_identifier(f, v) is None for f in FORMS for v in (None, "", " ", "call me"))
    assert dialects.sha256_hex_python("") == digest("") and dialects.sha256_hex_python(None) is None


@pytest.fixture
def engine(warehouse):
    made = connect(warehouse.url, must_exist=False)
    if warehouse.name == "sqlite":
        sa.event.listen(made, "connect", dialects.register_sqlite_functions)
    metadata.create_all(made)
    yield made
    made.dispose()


def test_every_engine_hashes_as_python(engine):
    with engine.begin() as conn:
        conn.execute(cases.insert(), rows())
        got = [tuple(r) for r in conn.execute(hashed(cases))]
    want = expected()
    assert len(got) == len(want)
    mismatches = [(w[0], g, w) for w, g in zip(want, got, strict=True) if w != g]
    assert not mismatches, f"{engine.dialect.name}: {mismatches[:5]}"
    assert sum(v is not None for row in got for v in row[1:]) > 20  # not only NULLs


@pytest.mark.spark
def test_spark_hashes_as_python(spark_url):
    source = sa.values(sa.column("i", sa.Integer), sa.column("text", sa.String), sa.column("number", sa.BigInteger),
                       name="cases").data([(r["i"], r["text"], r["number"]) for r in rows()])
    engine = connect(spark_url)
    try:
        sql = str(hashed(source).compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
        with engine.connect() as conn:
            got = [tuple(r) for r in conn.execution_options(no_parameters=True).exec_driver_sql(sql)]
    finally:
        engine.dispose()
    assert got == expected()


@pytest.mark.parametrize("dialect,expect", [
    ("duckdb", "sha256("), ("postgresql", "encode(sha256(convert_to("), ("sqlite", "audlang_sha256("),
    ("hive", "sha2("), ("snowflake", "SHA2("), ("bigquery", "TO_HEX(SHA256("), ("trino", "to_hex(sha256(to_utf8("),
])
def test_each_dialect_renders_its_sha256(dialect, expect):
    t = sa.table("c", sa.column("v", sa.String))
    sql = str(sa.select(hashed_sql("email", t.c.v)).compile(dialect=dialect_for(dialect),
                                                           compile_kwargs={"literal_binds": True}))
    assert expect in sql, sql
