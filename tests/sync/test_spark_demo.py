"""``audlang demo --warehouse hive://…`` end to end on a real Spark SQL server (marker ``spark``): the
segments, then the example's campaigns synced to csv files and the local Attentive-shaped server, with
the state in a SQLite file in the project — the same answers as the DuckDB demo.

Spark queries take about a second each: one demo (about 500 queries, two to three minutes), one
second plan and one read of the campaign groups; the DuckDB demo beside it takes seconds.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys

import attrs
import duckdb
import pytest
import sqlalchemy as sa

CUSTOMERS = "300"
AS_OF = "2024-11-30"  # the demo's as-of date (datagen.DEFAULT_AS_OF)
FILES = {("Holiday SMS 2024", "20% Off"): "Holiday SMS 2024-20_ Off.csv",
         ("Holiday SMS 2024", "Free Shipping"): "Holiday SMS 2024-Free Shipping.csv",
         ("Store Invites", "Elsewhere"): "Store Invites-Elsewhere.csv"}


def demo(folder, *args) -> str:
    env = {k: v for k, v in os.environ.items()
           if k not in ("AUDLANG_WAREHOUSE", "AUDLANG_STATE", "ATTENTIVE_API_KEY")}
    env["NO_COLOR"] = "1"
    result = subprocess.run([sys.executable, "-m", "audlang", "demo", str(folder), "--customers", CUSTOMERS, *args],
                            capture_output=True, text=True, env=env, timeout=1200)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def held(out: str) -> dict[str, int]:
    """What the local Attentive server held at the end, per segment."""
    return {k: int(v.replace(",", "")) for k, v in re.findall(r"segment (audlang-[\w-]+): ([\d,]+) members", out)}


def exported(folder) -> dict[str, list[list[str]]]:
    found = {}
    for path in sorted((folder / "target" / "exports").glob("*.csv")):
        with path.open(newline="") as handle:
            found[path.name] = list(csv.reader(handle))
    return found


def warehouse_copy(folder) -> list[tuple]:
    with duckdb.connect(str(folder / "target" / "exports.duckdb"), read_only=True) as conn:
        return conn.execute("SELECT campaign, group_name, member_key, customer_id FROM campaign_members "
                            "ORDER BY ALL").fetchall()


@pytest.mark.spark
def test_spark_demo_syncs_the_campaigns_as_duckdb_does(spark_database, tmp_path, monkeypatch):
    from audlang import deploy, project
    from audlang.compile import AsOf

    url = spark_database("demo")
    folder = tmp_path / "spark-demo"
    out = demo(folder, "--warehouse", url)
    assert "campaigns and destination syncs need" not in out
    assert (folder / "target" / "state.db").exists()  # the state stays in a transactional file

    # Every target that is not paused was synced, none failed.
    synced = re.findall(r'synced "([^"]+)" / "([^"]+)" → "([^"]+)": (\w+)', out)
    assert len(synced) == 13 and {s for *_, s in synced} <= {"ok", "unchanged", "paused"}, out
    assert {(c, g, d) for c, g, d, s in synced if s == "paused"} == {
        ("Win Back", "Email Offer", "Klaviyo - Win Back"), ("Lapsed VIP Journey", "Journey", "Braze - VIP"),
        ("Lapsed VIP Journey", "Journey", "Store Ops Webhook"),
        ("Holiday Retargeting", "Retarget", "Meta - Holiday Retargeting"),
        ("Holiday Retargeting", "Retarget", "Google - Customer Match")}

    # The sandbox got members, and the csv files are exactly the groups materialized in Spark.
    sandbox = held(out)
    assert set(sandbox) == {"audlang-holiday-sms", "audlang-store-invites-pdx", "audlang-store-invites-sea"}
    assert all(n > 0 for n in sandbox.values()), sandbox
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT campaign, group_name, customer_id FROM audlang_campaign_members")
            groups: dict[tuple[str, str], set[str]] = {}
            for campaign, group, cid in rows:
                groups.setdefault((campaign, group), set()).add(cid)
    finally:
        engine.dispose()
    files = exported(folder)
    assert set(files) == set(FILES.values())
    for key, name in FILES.items():
        header, *members = files[name]
        assert header == ["customer_id", "email", "phone"]
        assert [m[0] for m in members] == sorted(groups.get(key, set())), name
    treatments = groups[("Holiday SMS 2024", "20% Off")] | groups[("Holiday SMS 2024", "Free Shipping")]
    assert sandbox["audlang-holiday-sms"] == len(treatments) > 0
    assert sandbox["audlang-store-invites-pdx"] == len(groups[("Store Invites", "Portland")])
    assert sandbox["audlang-store-invites-sea"] == len(groups[("Store Invites", "Seattle")])

    # The same answers as the DuckDB demo on the same synthetic warehouse (customers, seed).
    duck = tmp_path / "duckdb-demo"
    duck_out = demo(duck)
    assert held(duck_out) == sandbox
    assert exported(duck) == files
    assert warehouse_copy(duck) == warehouse_copy(folder) != []

    # A second plan, of the project as the demo ran it (Attentive at the sandbox's address, the kinds
    # without a local stand-in paused): nothing to do for the segments, nor for any sync.
    sandbox_url = re.search(r"The local Attentive server \((http://[^)]+)\)", out).group(1)
    monkeypatch.setenv("ATTENTIVE_API_KEY", "any")  # secrets are checked to be set, not read, by a plan
    monkeypatch.delenv("AUDLANG_WAREHOUSE", raising=False)
    monkeypatch.delenv("AUDLANG_STATE", raising=False)
    loaded = project.load(None, str(folder))
    loaded = attrs.evolve(loaded, model=deploy.demo_model(loaded.model, sandbox_url))
    plan = deploy.plan_project(loaded, url, f"sqlite:///{folder / 'target' / 'state.db'}", AsOf.parse(AS_OF))
    assert [a for a in plan.actions if a.kind == "segment"] == []
    assert {s.status for s in plan.syncs} == {"unchanged", "paused"}, plan.syncs
    assert not plan.has_changes, plan.actions


def test_campaigns_on_spark_read_what_apply_materialized():
    """What apply hands the campaigns on Spark (no query): the view of each segment the state records as
    materialized, paused or not; nothing for a paused segment never materialized (it has no view); a
    segment not materialized is computed."""
    from audlang import warehouse
    from audlang.deploy import frozen_membership
    from audlang.project import analyze
    from audlang.state import DeployedObject, Snapshot

    model, diagnostics = analyze({"p.aud": """
segment "Live" < sms_opt_in >
paused segment "Frozen" < email_opt_in >
paused segment "Never" < contactable_phone >
segment "Fresh" < contactable_email >
"""})
    assert not [d for d in diagnostics if d.is_error], diagnostics
    deployed = Snapshot("lineage", 3, (
        DeployedObject("segment", "Live", "1", "", members=5), DeployedObject("segment", "Frozen", "2", "", members=0),
        DeployedObject("segment", "Never", "3", "", paused=True), DeployedObject("campaign", "Fresh", "4", "")))
    got = {name: str(query.compile(compile_kwargs={"literal_binds": True})).split() for name, query
           in frozen_membership(model, deployed, warehouse.Membership()).items()}
    assert set(got) == {"Live", "Frozen", "Never"}
    assert got["Live"][-1] == "audlang_members_live" and got["Frozen"][-1] == "audlang_members_frozen"
    assert "false" in " ".join(got["Never"]).lower() and "FROM" not in got["Never"]
