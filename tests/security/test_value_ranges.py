"""Values every engine can hold: out of range is a diagnostic at validate; at the edges, the same
members as the reference evaluator on DuckDB, SQLite and PostgreSQL (the ``warehouse`` fixture; never a Python
exception)."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from audlang.cli import cli
from audlang.compile import AsOf
from audlang.datagen import generate
from audlang.project import load
from evaluate.reference import Reference

OUT_OF_RANGE = {
    'has_purchased within last 99999999 years': "99,999,999 years is out of range: at most 1,000 years",
    'has_purchased after today - 999999 years': "999,999 years is out of range",
    'abandoned_checkout within last 99999999999999999999 hours': "at most 8,760,000 hours (1,000 years)",
    'has_purchased within last 365001 days': "at most 365,000 days",
    'has_purchased since 11-01 of 1001 years ago': "1,001 years is out of range",
    'has_purchased orders >= 99999999999999999999999': "a number lies between -999,999,999,999,999,999",
    'lifetime_revenue > 99999999999999999999999999999999999999999.5': "is out of range",
    'has_purchased spend > 0.0000000000001': "13 digits after the point; at most 12",
    'days_since_last_order > 365001': "a number of days lies between -365,000 and 365,000",
    'near store "PDX-01" within 100001 miles': "a distance in miles lies between",
}

AT_THE_EDGES = {
    "Forever": "has_purchased between 2024-01-01 and 9999-12-31",
    "On The Last Day": "has_purchased on 9999-12-31 or first_order_date > 9999-12-31 or created_at = 9999-12-31",
    "From Year One": "has_purchased since 0001-01-01 and not has_purchased before 0001-01-01",
    "A Thousand Years": "has_purchased within last 1000 years and has_purchased after today - 1000 years",
    "Hours": "abandoned_checkout within last 8760000 hours",
    "Weeks And Months": "has_purchased within last 52000 weeks or has_purchased within last 12000 months",
    "Seasonal": "has_purchased between 11-01 of 1000 years ago and 12-31 of last year",
    "Day Counts": "days_since_last_order <= 365000 and days_since_last_order > -365000",
    "Big Numbers": "lifetime_revenue < 999999999999999999 and lifetime_revenue > -999999999999999999"
                   " and has_purchased spend >= 0.000000000001 and has_purchased orders < 999999999999999999",
    "Far": 'near store "PDX-01" within 100000 km',
}
AS_OF_EDGES = ["1001-01-01", "2024-11-30", "8998-12-31"]


def cli_run(root, *args):
    return CliRunner().invoke(cli, ["--project", str(root), *args], catch_exceptions=False)


@pytest.mark.parametrize("condition", list(OUT_OF_RANGE))
def test_a_value_out_of_range_is_a_diagnostic_at_validate(write_project, condition):
    root = write_project({"a.aud": f'segment "X" < {condition} >\n'})
    result = cli_run(root, "validate")
    assert result.exit_code == 1, result.output
    assert "a.aud:1:" in result.output and "error[E118]" in result.output
    assert OUT_OF_RANGE[condition] in result.output


@pytest.mark.parametrize("as_of", ["1000-12-31", "8999-01-01", "0001-01-01", "9999-12-31", "99999-01-01"])
def test_an_as_of_out_of_range_is_refused(write_project, as_of):
    root = write_project({"a.aud": 'segment "X" < has_purchased >\n'})
    result = cli_run(root, "members", "X", "--as-of", as_of, "--warehouse", "duckdb:///:memory:")
    assert result.exit_code == 1, result.output
    assert "E203" in result.output and ("1001-01-01" in result.output or "not" in result.output)


@pytest.fixture(scope="module")
def edges(tmp_path_factory):
    """The project of the edge segments, and the generated warehouse's rows (read from DuckDB) for the reference."""
    root = tmp_path_factory.mktemp("edges")
    (root / "audlang.toml").write_text("")
    (root / "edges.aud").write_text("".join(f'segment "{n}" < {c} >\n' for n, c in AT_THE_EDGES.items()))
    url = f"duckdb:///{tmp_path_factory.mktemp('edge-reference') / 'w.duckdb'}"
    generate(url, customers=120, seed=5)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        data = {t: [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {t}"))]
                for t in ("customer_360", "unified_transactions", "unified_itemized_transactions",
                          "customer_tags", "checkouts", "stores")}
    engine.dispose()
    return root, data


@pytest.fixture(scope="module")
def warehouse_url(warehouse):
    """The same generated warehouse on the engine under test."""
    generate(warehouse.url, customers=120, seed=5)
    return warehouse.url


@pytest.mark.parametrize("as_of", AS_OF_EDGES)
def test_values_at_the_edges_give_the_reference_members(edges, warehouse, warehouse_url, as_of):
    root, data = edges
    model = load(None, str(root)).model
    assert not load(None, str(root)).errors
    moment = AsOf.parse(as_of)
    reference = Reference(data, model, moment.date, moment.instant, {})
    if as_of == "2024-11-30":  # the data's own days: the edges must not all be empty there
        assert sum(bool(reference.members(n)) for n in AT_THE_EDGES) >= len(AT_THE_EDGES) // 2
    for name in AT_THE_EDGES:
        result = cli_run(root, "members", name, "--as-of", as_of, "--warehouse", warehouse_url)
        assert result.exit_code == 0, f"{name}: {result.output}"
        got = [row[0] for row in list(csv.reader(io.StringIO(result.stdout)))[1:]]
        assert got == sorted(reference.members(name)), f"{name} as of {as_of} on {warehouse.name}"
