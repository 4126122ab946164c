"""SQLite by declared type: the generated warehouse copied into SQLite tables of text, as a CSV
import makes them (no declared column types, or TEXT), selects the reference evaluator's members
for every example segment and for tests on every typed attribute, through `audlang members`.

On such a table SQLite compares by each value's storage class: text is greater than every number,
so before the compiler read columns by the data model's type, ``predicted_clv between 100 and
250.5`` selected nobody there. The oracle (test_oracle.py) runs the same tables over generated
segments; this runs them over the generated warehouse.
"""

from __future__ import annotations

import csv
import json
import io
import shutil
from decimal import Decimal

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from audlang.cli import cli
from audlang.compile import AsOf
from audlang.datagen import TABLES, generate
from audlang.project import load
from helpers import EXAMPLES
from evaluate import text_tables
from evaluate.reference import Reference, read_list

AS_OF = "2024-11-30"

TYPED = '''
segment "T Between Decimals" < predicted_clv between 100 and 250.5 >
segment "T Compare Decimals" < predicted_clv > 99.5 and predicted_clv != 120 or predicted_clv <= 9.99 >
segment "T Number Set" < predicted_clv is not set and lifetime_orders >= 2 >
segment "T Revenue" < lifetime_revenue between 100 and 250.5 >
segment "T Orders" < lifetime_orders in (2, 10, 11, 12) or lifetime_orders > 40 >
segment "T Average" < average_order_value > 80.5 and days_since_last_order <= 90 >
segment "T Order Dates" < first_order_date < 2022-06-01 and last_order_date >= 2024-09-01 >
segment "T Birthdate" < birthdate between 1980-01-01 and 1989-12-31 and birthdate != 1985-01-01 >
segment "T Created" < created_at >= today - 6 months or created_at in (2023-01-01, 2023-01-02) >
segment "T Booleans" < sms_opt_in and not email_opt_in or contactable_phone = false >
segment "T Boolean Set" < sms_opt_in is not set or contactable_email is set and not contactable_email >
segment "T Spend" < has_purchased spend >= 99.5 within last 6 months >
segment "T Quantity" < has_purchased category "Accessories" quantity >= 3 since 2024-01-01 >
segment "T Hours" < has_purchased within last 72 hours or abandoned_checkout within last 12 hours >
segment "T Churn" < churn_score between 0.25 and 0.5 >
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("text-tables")
    shutil.copytree(EXAMPLES / "retail", root, dirs_exist_ok=True)
    (root / "segments" / "typed.aud").write_text(TYPED)
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The generated warehouse's rows, typed (read from DuckDB)."""
    url = f"duckdb:///{tmp_path_factory.mktemp('typed') / 'w.duckdb'}"
    generate(url, customers=300, seed=23)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = {t: [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {t}"))] for t in TABLES}
    engine.dispose()
    return rows


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("text-tables")
    urls = {}
    for name, declared in text_tables.DECLARED.items():
        urls[name] = f"sqlite:///{folder / (name + '.sqlite')}"
        engine = sa.create_engine(urls[name])
        with engine.begin() as conn:
            text_tables.load_as_text(conn, {t: list(cols) for t, cols in TABLES.items()}, data, declared)
        engine.dispose()
    return urls


@pytest.fixture(scope="module")
def reference(project, data):
    model = load(None, str(project)).model
    lists = {written: read_list(listed.path) for (_file, written), listed in model.lists.items()}
    as_of = AsOf.parse(AS_OF)
    return Reference(data, model, as_of.date, as_of.instant, lists), model


def member_ids(project, url, name) -> list[str]:
    result = CliRunner().invoke(cli, ["--project", str(project), "members", name, "--as-of", AS_OF,
                                      "--warehouse", url], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return [r[0] for r in list(csv.reader(io.StringIO(result.stdout)))[1:]]


def test_the_tables_hold_text_and_declare_no_types(warehouses):
    engine = sa.create_engine(warehouses["sqlite-untyped"])
    with engine.connect() as conn:
        declared = {r[2] for r in conn.exec_driver_sql("PRAGMA table_info(customer_360)")}
        kinds = {r[0] for r in conn.exec_driver_sql(
            "SELECT DISTINCT typeof(predicted_clv) FROM customer_360 UNION "
            "SELECT DISTINCT typeof(order_revenue) FROM unified_transactions UNION "
            "SELECT DISTINCT typeof(order_datetime) FROM unified_transactions")}
    engine.dispose()
    assert declared == {""} and kinds <= {"text", "null"}


@pytest.mark.parametrize("engine", sorted(text_tables.DECLARED))
def test_every_segment_agrees_with_the_reference(project, warehouses, reference, engine):
    ref, model = reference
    populated = 0
    for name in model.segments:
        expected = sorted(ref.members(name))
        populated += bool(expected)
        assert member_ids(project, warehouses[engine], name) == expected, f"{name} on {engine}"
    assert populated >= len(model.segments) * 0.8, "the generated data should populate most segments"


def test_between_decimals_selects_the_customers_in_range(project, warehouses, data):
    """The issue's example, checked against the rows themselves as well as the reference."""
    expected = sorted(c["customer_id"] for c in data["customer_360"]
                      if c["predicted_clv"] is not None and Decimal("100") <= c["predicted_clv"] <= Decimal("250.5"))
    assert len(expected) > 10
    for url in warehouses.values():
        assert member_ids(project, url, "T Between Decimals") == expected


@pytest.mark.parametrize("engine", sorted(text_tables.DECLARED))
def test_insights_on_text_tables_equal_the_reference_counts(project, warehouses, reference, data, engine):
    """insights' reachability and opt-in counts read the flags by their declared type too."""
    ref, _model = reference
    name = "Holiday Shoppers - SMS"
    members = ref.members(name)
    result = CliRunner().invoke(cli, ["--project", str(project), "insights", name, "--as-of", AS_OF,
                                      "--warehouse", warehouses[engine], "--format", "json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    profile = {c["customer_id"]: c for c in data["customer_360"]}
    for figure, column in (("reachable_email", "contactable_email"), ("reachable_phone", "contactable_phone"),
                           ("sms_opt_in", "sms_opt_in")):
        assert figures[figure] == sum(1 for c in members if profile[c][column] is True), figure
    assert figures["members"] == len(members) > 0
