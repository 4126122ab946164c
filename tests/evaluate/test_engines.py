"""Every example segment gives the same members on DuckDB, SQLite, PostgreSQL and Spark SQL, equal to
the reference evaluator's, through the real CLI; and the CLI's data commands behave as SPEC §6 says.

The engines are the ``warehouse`` fixture's, Spark with them (helpers.WITH_SPARK): a real Thrift server with
two executor processes (marker ``spark``), holding the same generated warehouse as Parquet-backed tables.
Tests of the CLI rather than of an engine run on DuckDB alone."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
import shutil

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from audlang.cli import cli
from audlang.compile import AsOf
from audlang.datagen import generate
from audlang.project import load
from helpers import EXAMPLES, WITH_SPARK
from evaluate.reference import Reference, read_list

AS_OF = "2024-11-30"
CUSTOMERS = 400


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("retail")
    shutil.copytree(EXAMPLES / "retail", root, dirs_exist_ok=True)
    return root


@pytest.fixture(scope="module")
def warehouse_url(warehouse, tmp_path_factory):
    """The generated warehouse on the engine under test; on Spark, Parquet files written by DuckDB,
    registered as Spark tables."""
    parquet = tmp_path_factory.mktemp("spark-parquet") if warehouse.name == "spark" else None
    generate(warehouse.url, customers=CUSTOMERS, seed=11, parquet_folder=parquet)
    return warehouse.url


@pytest.fixture(scope="module")
def duckdb_url(tmp_path_factory):
    """The same warehouse in a DuckDB file of its own: the reference's rows, and the answers to compare with."""
    url = f"duckdb:///{tmp_path_factory.mktemp('reference') / 'w.duckdb'}"
    generate(url, customers=CUSTOMERS, seed=11)
    return url


def run(project, *args, expect=0):
    result = CliRunner().invoke(cli, ["--project", str(project), *args], catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result


def member_ids(project, url, name, *extra) -> list[str]:
    out = run(project, "members", name, "--as-of", AS_OF, "--warehouse", url, *extra).stdout
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][0] == "customer_id"
    return [r[0] for r in rows[1:]]


@pytest.fixture(scope="module")
def reference(project, duckdb_url):
    engine = sa.create_engine(duckdb_url)
    data = {}
    with engine.connect() as conn:
        for table in ("customer_360", "unified_transactions", "unified_itemized_transactions", "customer_tags",
                      "checkouts", "stores", "churn_scores"):
            data[table] = [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))]
    engine.dispose()
    model = load(None, str(project)).model
    lists = {written: read_list(listed.path) for (_file, written), listed in model.lists.items()}
    as_of = AsOf.parse(AS_OF)
    return Reference(data, model, as_of.date, as_of.instant, lists), model


@pytest.mark.parametrize("warehouse", WITH_SPARK, indirect=True)
def test_every_example_segment_agrees_with_the_reference(project, warehouse, warehouse_url, reference):
    ref, model = reference
    nonempty = 0
    for name in model.segments:
        expected = sorted(ref.members(name))
        nonempty += bool(expected)
        assert member_ids(project, warehouse_url, name) == expected, f"{name} on {warehouse.name}"
    assert nonempty >= len(model.segments) * 0.8, "the synthetic data should populate most example segments"


def insights(project, url, name) -> dict:
    return json.loads(run(project, "insights", name, "--as-of", AS_OF, "--warehouse", url, "--format",
                          "json").stdout)


def test_insights_agree_across_engines(project, warehouse_url, duckdb_url, reference):
    figures = insights(project, duckdb_url, "Holiday Shoppers - SMS")
    assert insights(project, warehouse_url, "Holiday Shoppers - SMS") == figures
    assert set(figures) == {"segment", "as_of", "members", "revenue_last_365_days", "active", "reachable_email",
                            "reachable_phone", "reachable_ad_platforms", "sms_opt_in", "predicted_revenue"}
    assert figures["members"] == figures["sms_opt_in"] > 0  # the segment requires sms_opt_in
    assert 0 < figures["active"] <= figures["members"]
    # predicted revenue: the members' predicted_clv summed (SPEC §3.1), as the reference sums it
    ref, _model = reference
    members = ref.members("Holiday Shoppers - SMS")
    expected = sum((Decimal(str(c["predicted_clv"])) for c in ref.data["customer_360"]
                    if c["customer_id"] in members and c["predicted_clv"] is not None), Decimal(0))
    assert Decimal(str(figures["predicted_revenue"])) == expected.quantize(Decimal("0.01")) > 0
    # reachable on ad platforms: a usable email or phone (what Meta and Google Ads match, hashed)
    from audlang.destinations import normalize_email, normalize_phone

    usable = sum(1 for c in ref.data["customer_360"] if c["customer_id"] in members
                 and (normalize_email(c["email"]) or normalize_phone(c["phone"])))
    assert figures["reachable_ad_platforms"] == usable
    assert 0 < usable <= figures["members"]


@pytest.mark.parametrize("warehouse", ["spark"], indirect=True)
@pytest.mark.spark
def test_spark_insights_and_members_options_equal_duckdb(project, duckdb_url, warehouse_url):
    for name in ("Holiday Shoppers - SMS", "Big Spenders", "Near Pearl Store", "Wholesale Accounts",
                 "Gmail Subscribers"):
        answers = [insights(project, url, name) for url in (duckdb_url, warehouse_url)]
        assert answers[0] == answers[1], name
        assert answers[0]["members"] > 0
    for options in (["--fields", "email,state,birthdate,created_at,sms_opt_in,predicted_clv,latitude", "--limit",
                     "7"], ["--format", "json", "--limit", "3", "--fields", "loyalty_tier,predicted_clv"]):
        outputs = [run(project, "members", "Big Spenders", "--as-of", AS_OF, "--warehouse", url, *options).stdout
                   for url in (duckdb_url, warehouse_url)]
        assert outputs[0] == outputs[1], options


@pytest.mark.parametrize("warehouse", ["spark"], indirect=True)
@pytest.mark.spark
def test_spark_warehouse_from_config_and_environment(project, warehouse, warehouse_url, tmp_path, monkeypatch):
    shutil.copytree(project, tmp_path / "p")
    config = tmp_path / "p" / "audlang.toml"
    config.write_text(config.read_text().replace('warehouse = "duckdb:///target/warehouse.duckdb"',
                                                 f'warehouse = "{warehouse_url}"'))
    assert run(tmp_path / "p", "validate").exit_code == 0
    expected = member_ids(project, warehouse_url, "Lapsed VIP")
    out = run(tmp_path / "p", "members", "Lapsed VIP", "--as-of", AS_OF).stdout
    assert out.splitlines()[1:] == expected and expected
    assert "TIMESTAMP '2024-12-01 00:00:00Z'" in run(tmp_path / "p", "sql", "Lapsed VIP", "--as-of", AS_OF).stdout
    empty = warehouse.new_url("empty")
    monkeypatch.setenv("AUDLANG_WAREHOUSE", empty)
    result = run(tmp_path / "p", "members", "Lapsed VIP", "--as-of", AS_OF, expect=1)
    assert "error[E404]: table customer_360 is missing from the warehouse" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_insights_text(project, duckdb_url):
    out = run(project, "insights", "Big Spenders", "--as-of", AS_OF, "--warehouse", duckdb_url).stdout
    assert out.startswith('Segment "Big Spenders" as of 2024-11-30\n  members')
    assert "revenue, last 365 days" in out and "SMS opt-ins" in out
    figures = insights(project, duckdb_url, "Big Spenders")
    share = figures["reachable_ad_platforms"] / figures["members"]
    assert f"  reachable on ad platforms {figures['reachable_ad_platforms']:>11,}  ({share:.1%})\n" in out


def test_members_options(project, duckdb_url):
    url = duckdb_url
    everyone = member_ids(project, url, "Big Spenders")
    assert everyone == sorted(everyone) and len(everyone) > 5
    assert member_ids(project, url, "Big Spenders", "--limit", "3") == everyone[:3]
    out = run(project, "members", "Big Spenders", "--as-of", AS_OF, "--warehouse", url, "--fields", "email,state",
              "--limit", "2").stdout
    header, *rows = list(csv.reader(io.StringIO(out)))
    assert header == ["customer_id", "email", "state"] and len(rows) == 2
    doc = json.loads(run(project, "members", "Big Spenders", "--as-of", AS_OF, "--warehouse", url, "--format",
                         "json", "--limit", "2", "--fields", "loyalty_tier").stdout)
    assert [d["customer_id"] for d in doc] == everyone[:2] and set(doc[0]) == {"customer_id", "loyalty_tier"}


def test_as_of_replays_the_past(project, duckdb_url):
    url = duckdb_url
    now = member_ids(project, url, "Ordered Last Week")
    before = run(project, "members", "Ordered Last Week", "--as-of", "2024-06-30", "--warehouse", url).stdout
    assert now and now != before.splitlines()[1:]
    instant = member_ids(project, url, "Cart Abandoners - Last Hour", "--as-of", "2024-11-30T23:59:59Z")
    assert isinstance(instant, list)


# The environment variable, not the engine: one engine is enough (not DuckDB, the project's own).
@pytest.mark.parametrize("warehouse", ["sqlite"], indirect=True)
def test_warehouse_from_environment_and_config(project, warehouse_url, monkeypatch):
    monkeypatch.setenv("AUDLANG_WAREHOUSE", warehouse_url)
    result = CliRunner().invoke(cli, ["--project", str(project), "members", "Big Spenders", "--as-of", AS_OF])
    assert result.exit_code == 0 and result.stdout.startswith("customer_id\n")


@pytest.mark.parametrize("args,message", [
    (["members", "Big Spender"], 'error[E201]: no such segment; did you mean "Big Spenders"?'),
    (["members", "Big Spenders", "--as-of", "2024-02-30"], "error[E203]: --as-of takes YYYY-MM-DD"),
    (["members", "Big Spenders", "--fields", "emial"], "did you mean `email`?"),
    (["insights", "Nope"], "error[E201]: no such segment"),
    (["sql", "Nope"], "error[E201]: no such segment"),
])
def test_user_errors(project, duckdb_url, args, message):
    result = run(project, *args, "--warehouse", duckdb_url, expect=1)
    assert message in result.output and "Traceback" not in result.output


def test_unreachable_database_is_one_line(project):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run(project, "members", "Big Spenders", "--warehouse",
                 f"postgresql+psycopg://someone:s3cret@127.0.0.1:{port}/nowhere", expect=1)
    assert "error[E403]: cannot connect" in result.output
    assert "s3cret" not in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_missing_warehouse_file(project, tmp_path):
    result = run(project, "members", "Big Spenders", "--warehouse", f"duckdb:///{tmp_path / 'nope.duckdb'}",
                 expect=1)
    assert "error[E402]" in result.output and "audlang demo" in result.output


def test_missing_table_and_column_name_the_mapping(project, tmp_path):
    url = f"duckdb:///{tmp_path / 'partial.duckdb'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE customer_360 (customer_id VARCHAR, sms_opt_in BOOLEAN)"))
    engine.dispose()
    result = run(project, "members", "Big Spenders", "--warehouse", url, expect=1)
    assert "error[E404]: table unified_transactions is missing from the warehouse" in result.output
    assert 'table unified_transactions from "schema.table"' in result.output
    result = run(project, "members", "Gmail Subscribers", "--warehouse", url, expect=1)
    assert "error[E405]: column email is missing from the warehouse" in result.output
    assert 'table customer_360 < email = "actual_column" >' in result.output


def test_sql_command(project):
    out = run(project, "sql", "Cat Snack Buyers", "--dialect", "postgresql", "--as-of", AS_OF).stdout
    assert "GROUP BY" in out and "HAVING" in out and "'Cat snacks'" in out
    assert out.rstrip().endswith(";")


def test_demo_from_nothing_to_insights(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["demo", "shop", "--customers", "300"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "shop" / "audlang.toml").is_file()
    assert (tmp_path / "shop" / "target" / "warehouse.duckdb").is_file()
    assert "Every segment, as of 2024-11-30" in result.stdout
    assert "audlang plan as of 2024-11-30" in result.stdout and "\nPlan: " in result.stdout
    assert "Apply complete" in result.output
    assert "Holiday Shoppers - SMS" in result.stdout and "Near Pearl Store" in result.stdout
    # The project it wrote is a working project: members straight away, from inside it.
    monkeypatch.chdir(tmp_path / "shop")
    again = CliRunner().invoke(cli, ["members", "Big Spenders", "--as-of", "2024-11-30", "--limit", "2"])
    assert again.exit_code == 0 and again.stdout.startswith("customer_id\nC")
    replan = CliRunner().invoke(cli, ["plan", "--as-of", "2024-11-30"])
    assert replan.exit_code == 0, replan.output
    # Every segment was deployed by the demo: no segment is left to create or update.
    assert " segment \"" not in "\n".join(line for line in replan.output.splitlines()
                                           if line.lstrip().startswith(("+ create", "~ update")))


@pytest.mark.parametrize("warehouse", WITH_SPARK, indirect=True)
def test_shared_facts_give_every_example_segment_the_same_members(warehouse, warehouse_url, reference):
    """The shared path (every segment's facts computed once, ``compile.facts``) and the direct query give
    each example segment the reference's members; the shared queries read the facts, not the orders."""
    from audlang import evaluate
    from audlang.compile import SegmentCompiler
    from audlang.compile.facts import SharedFacts
    from audlang.warehouse import connect, shared_facts

    ref, model = reference
    as_of = AsOf.parse(AS_OF)
    facts = SharedFacts.collect(model, as_of, model.segments, follow_segments=True)
    assert {"audlang_facts_orders", "audlang_facts_items", "audlang_facts_tags",
            "audlang_facts_checkouts"} <= set(facts.table_names)
    engine = connect(warehouse_url)
    try:
        with engine.connect() as conn:
            for name in model.segments:
                evaluate.ensure_lists(conn, model, name)
            conn.commit()
            direct = SegmentCompiler(model, as_of)
            with shared_facts(conn, facts):
                shared = SegmentCompiler(model, as_of, facts=facts)
                for name in model.segments:
                    expected = ref.members(name)
                    assert {r[0] for r in conn.execute(shared.segment(name))} == expected, f"{name}, shared"
                    assert {r[0] for r in conn.execute(direct.segment(name))} == expected, f"{name}, direct"
                printed = str(shared.segment("Holiday Shoppers - SMS"))
                assert "audlang_facts_wide" in printed and "unified_transactions" not in printed
    finally:
        engine.dispose()
