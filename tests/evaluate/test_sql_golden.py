"""Golden SQL: every example segment compiled for every dialect, one fixture file per dialect.

A change to the compiler shows as a readable diff here. Snowflake, BigQuery and
Trino are compile-only (their SQLAlchemy dialects, no server); DuckDB, SQLite,
PostgreSQL and Spark (PyHive's ``hive`` dialect, what ``audlang sql --dialect
spark`` prints) also run for real in the oracle and engine tests.
AUDLANG_UPDATE_GOLDEN=1 rewrites the files after an intended change.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from audlang.compile import AsOf
from audlang.compile.render import segment_sql
from audlang.project import analyze, load
from helpers import EXAMPLES, check_golden

FOLDER = Path(__file__).parents[1] / "golden" / "sql"
#: Forms the example project does not show, compiled after its segments.
EXTRA = {"extra.aud": '''
segment "Top Average Order" < average_order_value in top 10% >
segment "Lapsed Longest" < days_since_last_order in top 25% >
'''}
DIALECTS = ["duckdb", "sqlite", "postgresql", "snowflake", "bigquery", "trino", "spark"]
SQLALCHEMY_NAMES = {"spark": "hive"}


@pytest.fixture(scope="module")
def model():
    loaded = load([str(EXAMPLES / "retail")])
    assert not loaded.errors
    return loaded.model


@pytest.mark.parametrize("dialect", DIALECTS)
def test_sql_golden(model, dialect):
    as_of = AsOf.parse("2024-11-30")
    parts = [f"-- dialect: {dialect}\n-- as of: {as_of}\n"]
    for name in model.segments:
        parts.append(f"-- segment: {name}\n{segment_sql(model, name, SQLALCHEMY_NAMES.get(dialect, dialect), as_of)}")
    text = "\n".join(parts)
    assert "?" not in text.replace("'?'", ""), "every literal is rendered (no unbound parameters)"
    extra, diagnostics = analyze(EXTRA)
    assert not [d for d in diagnostics if d.is_error]
    for name in extra.segments:
        text += f"\n-- segment: {name}\n{segment_sql(extra, name, SQLALCHEMY_NAMES.get(dialect, dialect), as_of)}"
    check_golden(FOLDER / f"{dialect}.sql", text)
