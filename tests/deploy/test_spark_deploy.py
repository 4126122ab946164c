"""plan → apply → plan shows no changes, with the warehouse on a real Spark SQL server (marker ``spark``).

The state stays in a transactional database (SQLite here); pointing it at Spark is refused with
advice. Membership lives in Spark as a new table per refresh behind a view per segment, swapped
when complete (``warehouse.materialize_counted``).
"""

from __future__ import annotations

import csv
import io
import json

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from audlang import warehouse
from audlang.cli import cli
from audlang.datagen import generate

pytestmark = pytest.mark.spark

AS_OF = "2024-11-30"
SEGMENTS = '''# Customers who spent over 500 in all.
segment "Big Spenders" < lifetime_revenue > 500 >

segment "VIP" < tagged "VIP" or in segment "Big Spenders" >

segment "Recent" < has_purchased within last 90 days >
'''


@pytest.fixture(scope="module")
def spark_warehouse(spark_database, tmp_path_factory):
    url = spark_database("deploy")
    generate(url, customers=300, seed=7, parquet_folder=tmp_path_factory.mktemp("deploy-parquet"))
    return url


def run(project, *args, expect=0):
    result = CliRunner().invoke(cli, ["--project", str(project), *args], catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result


def view_ids(url: str, view: str) -> set[str]:
    engine = warehouse.connect(url)
    try:
        with engine.connect() as conn:
            return {row[0] for row in conn.execute(sa.text(f"SELECT customer_id FROM {view}"))}
    finally:
        engine.dispose()


def tables(url: str, like: str) -> list[str]:
    engine = warehouse.connect(url)
    try:
        with engine.connect() as conn:
            return sorted(r[1] for r in conn.exec_driver_sql(f"SHOW TABLES LIKE '{like}'"))
    finally:
        engine.dispose()


def test_plan_apply_plan_on_spark(spark_warehouse, tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (project / "audlang.toml").write_text(f'name = "spark"\nwarehouse = "{spark_warehouse}"\n')
    (project / "segments.aud").write_text(SEGMENTS)
    state = f"sqlite:///{tmp_path / 'state.db'}"

    refused = run(project, "plan", "--as-of", AS_OF, expect=1)  # the state would default to the warehouse
    assert "error[E502]" in refused.output and "cannot hold the audlang state" in refused.output
    assert "--state" in refused.output and "Traceback" not in refused.output

    first = run(project, "plan", "--as-of", AS_OF, "--state", state, "--detailed-exitcode", "--out",
                str(tmp_path / "plan.json"), expect=2)
    assert "Plan: 3 to create, 0 to update, 0 to delete" in first.output
    applied = run(project, "apply", str(tmp_path / "plan.json"), "--state", state)
    assert 'created segment "VIP"' in applied.output

    again = run(project, "plan", "--as-of", AS_OF, "--state", state, "--detailed-exitcode")
    assert "No changes." in again.output

    members = run(project, "members", "Big Spenders", "--as-of", AS_OF).output
    expected = {row[0] for row in list(csv.reader(io.StringIO(members)))[1:]}
    assert expected and view_ids(spark_warehouse, "audlang_members_big_spenders") == expected
    vip = {row[0] for row in list(csv.reader(io.StringIO(run(project, "members", "VIP", "--as-of", AS_OF).output)))[1:]}
    assert view_ids(spark_warehouse, "audlang_members_vip") == vip >= expected

    # An edit: the plan counts the change against the materialized view; apply swaps in a new table.
    (project / "segments.aud").write_text(SEGMENTS.replace("> 500", "> 800"))
    edited = run(project, "plan", "--as-of", AS_OF, "--state", state, "--format", "json", "--detailed-exitcode",
                 expect=2)
    actions = {a["name"]: a for a in json.loads(edited.output)["actions"]}
    assert actions["Big Spenders"]["action"] == "update"
    assert actions["Big Spenders"]["membership"]["removed"] > 0 == actions["Big Spenders"]["membership"]["added"]
    assert actions["VIP"]["action"] == "refresh" and "Recent" not in actions
    run(project, "apply", "--auto-approve", "--as-of", AS_OF, "--state", state)
    final = run(project, "plan", "--as-of", AS_OF, "--state", state, "--detailed-exitcode")
    assert "No changes." in final.output
    after = view_ids(spark_warehouse, "audlang_members_big_spenders")
    assert after < expected
    # The previous generation is kept for readers still scanning it; older ones are dropped.
    assert tables(spark_warehouse, "audlang_gen_audlang_members_big_spenders_*") == [
        "audlang_gen_audlang_members_big_spenders_1", "audlang_gen_audlang_members_big_spenders_2"]

    # Deleting a segment drops its view and every table behind it.
    (project / "segments.aud").write_text(SEGMENTS.replace("> 500", "> 800").split("\nsegment \"Recent\"")[0])
    run(project, "apply", "--auto-approve", "--as-of", AS_OF, "--state", state)
    assert tables(spark_warehouse, "audlang_*recent*") == []
