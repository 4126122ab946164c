"""Syncs inside plan and apply: the plan shows each campaign group and destination, apply sends, history records."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa
from sync_helpers import expected, warehouse
from vendor_servers import AttentiveServer

from audlang import deploy as apply, project, state, sync
from audlang import warehouse as wh
from audlang.compile import AsOf
from audlang.plan import plan_from_json, plan_to_json, render_markdown, render_text

AS_OF = "2024-11-30"

PROJECT = '''
segment "Reachable" < phone is set or email is set >

destination "SMS" attentive <
  api_key = env("AUDLANG_TEST_ATTENTIVE_KEY")
  segment = "holiday"
  base_url = "{url}"
  batch_size = 50
>

destination "File" csv <
  path = "exports/{{{{ campaign }}}}-{{{{ group }}}}.csv"
  identifiers = (customer_id, phone)
>

campaign "Holiday" <
  audience segment "Reachable"
  holdout 10%
  treatment "A" 45% to "SMS", "File"
  treatment "B" 45% to "File"
>
'''


@pytest.fixture
def server():
    s = AttentiveServer(api_key="k-123")
    yield s
    s.close()


@pytest.fixture
def folder(tmp_path, tmp_path_factory, server):
    url = warehouse(tmp_path, tmp_path_factory)
    (tmp_path / "audlang.toml").write_text(f'warehouse = "{url}"\nstate = "sqlite:///state.db"\n')
    (tmp_path / "project.aud").write_text(PROJECT.format(url=server.url))
    return tmp_path


def load(folder):
    loaded = project.load(None, str(folder))
    assert not loaded.errors, loaded.errors
    return loaded


def test_plan_shows_each_group_and_destination_then_apply_syncs_and_records(folder, server, monkeypatch):
    monkeypatch.setenv("AUDLANG_TEST_ATTENTIVE_KEY", "k-123")
    loaded = load(folder)
    wh_url = wh.resolve_url(None, loaded.config.warehouse, folder)
    state_url = apply.state_url_for(wh_url, None, loaded.config.state, folder)
    planned = apply.plan_project(loaded, wh_url, state_url, AsOf.parse(AS_OF))
    syncs = {(s.group, s.destination): s for s in planned.syncs}
    assert set(syncs) == {("A", "SMS"), ("A", "File"), ("B", "File")}
    assert all(s.status == "send" and s.adds > 0 and s.removes == 0 for s in syncs.values())
    doc = plan_to_json(planned)
    assert plan_from_json(json.loads(json.dumps(doc))).syncs == planned.syncs
    text = render_text(doc)
    assert '"Holiday" / "A" → "SMS" (attentive)  +' in text
    assert "| Holiday | A | SMS (attentive) |" in render_markdown(doc)
    assert server.requests == []  # planning sends nothing

    result = apply.apply_plan(planned, wh_url, state_url, folder, loaded.model)
    assert {(r.target.group, r.target.destination): r.status for r in result.syncs} == {
        ("A", "SMS"): "ok", ("A", "File"): "ok", ("B", "File"): "ok"}
    engine = sa.create_engine(wh_url)
    want_a = expected(engine, "Holiday", "A", ("phone",))
    assert server.members("holiday") == set(want_a.values())
    assert syncs[("A", "SMS")].adds == len(want_a)
    with open(folder / "exports" / "Holiday-B.csv", newline="") as handle:
        assert [r["customer_id"] for r in csv.DictReader(handle)] == sorted(
            expected(engine, "Holiday", "B", ("customer_id",)))
    engine.dispose()
    store = state.StateStore(state_url)
    synced = [e for e in store.history() if e.event == "synced"]
    assert len(synced) == 3 and json.loads(synced[0].detail)["status"] == "ok"

    again = apply.plan_project(load(folder), wh_url, state_url, AsOf.parse(AS_OF))
    assert {s.status for s in again.syncs} == {"unchanged"}
    assert not again.has_changes


def test_plan_catches_a_missing_secret_and_apply_fails_only_that_sync(folder, server, monkeypatch):
    monkeypatch.delenv("AUDLANG_TEST_ATTENTIVE_KEY", raising=False)
    env = {k: v for k, v in os.environ.items() if k not in ("AUDLANG_WAREHOUSE", "AUDLANG_STATE")}
    env["NO_COLOR"] = "1"
    run = lambda *args: subprocess.run([sys.executable, "-m", "audlang", "--project", str(folder), *args],  # noqa: E731
                                       capture_output=True, text=True, env=env, cwd=folder, timeout=300)
    plan = run("plan", "--as-of", AS_OF)
    assert plan.returncode == 0, plan.stderr
    assert "BLOCKED: environment variable AUDLANG_TEST_ATTENTIVE_KEY (api_key) is not set" in plan.stdout
    applied = run("apply", "--as-of", AS_OF, "--auto-approve")
    assert applied.returncode == 1, applied.stdout + applied.stderr
    assert "Destination syncs" in applied.stdout and "failed" in applied.stdout
    assert server.requests == []
    assert (folder / "exports" / "Holiday-A.csv").exists()  # the other destinations were synced
    env["AUDLANG_TEST_ATTENTIVE_KEY"] = "k-123"
    again = run("apply", "--as-of", AS_OF, "--auto-approve")
    assert again.returncode == 0, again.stdout + again.stderr
    assert server.members("holiday")
    assert "k-123" not in again.stdout + again.stderr


def test_guard_in_the_plan_and_allow_removals(folder, server, monkeypatch):
    monkeypatch.setenv("AUDLANG_TEST_ATTENTIVE_KEY", "k-123")
    loaded = load(folder)
    wh_url = wh.resolve_url(None, loaded.config.warehouse, folder)
    state_url = apply.state_url_for(wh_url, None, loaded.config.state, folder)
    apply.apply_plan(apply.plan_project(loaded, wh_url, state_url, AsOf.parse(AS_OF)), wh_url, state_url, folder,
                     loaded.model)
    engine = sa.create_engine(wh_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE customer_360 SET phone = NULL, email = NULL WHERE customer_id < 'C000150'"))
    engine.dispose()
    planned = apply.plan_project(load(folder), wh_url, state_url, AsOf.parse(AS_OF))
    held = [s for s in planned.syncs if s.status == "held"]
    assert held and "max_removal" in held[0].message
    assert "HELD: held back" in render_text(plan_to_json(planned))
    before = server.members("holiday")
    result = apply.apply_plan(planned, wh_url, state_url, folder, load(folder).model)
    assert server.members("holiday") == before
    assert any(r.status == "held" for r in result.syncs)
    allowed = apply.plan_project(load(folder), wh_url, state_url, AsOf.parse(AS_OF), allow_removals=True)
    assert plan_from_json(plan_to_json(allowed)).allow_removals
    apply.apply_plan(allowed, wh_url, state_url, folder, load(folder).model)
    engine = sa.create_engine(wh_url)
    assert server.members("holiday") == set(expected(engine, "Holiday", "A", ("phone",)).values())
    engine.dispose()
    assert sync.errors(sa.create_engine(f"sqlite:///{folder / 'state.db'}")) == []


def test_a_list_read_only_by_a_campaign_is_loaded_for_the_plan(tmp_path, tmp_path_factory):
    """An `in list` file used only in a campaign's sub-audience: the plan loads it (as for segments)
    and counts the group; apply sends exactly the listed customers of the audience."""
    url = warehouse(tmp_path, tmp_path_factory)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(sa.text("SELECT customer_id FROM customer_360 ORDER BY customer_id"))]
    engine.dispose()
    (tmp_path / "vip.csv").write_text("customer_id\n" + "\n".join(ids[:25]) + "\n")
    (tmp_path / "audlang.toml").write_text(f'warehouse = "{url}"\nstate = "sqlite:///state.db"\n')
    (tmp_path / "project.aud").write_text('''
destination "File" csv <
  path = "exports/{{ group }}.csv"
>
campaign "Invites" <
  audience < customer_id is set >
  subaudience "Listed" < in list "vip.csv" > to "File"
>
''')
    loaded = load(tmp_path)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    plan = apply.plan_project(loaded, url, state, AsOf.parse(AS_OF))
    (preview,) = plan.syncs
    assert (preview.status, preview.adds) == ("send", 25)
    apply.apply_plan(plan, url, state, root=tmp_path, model=loaded.model)
    with open(tmp_path / "exports" / "Listed.csv", newline="") as handle:
        assert sorted(r["customer_id"] for r in csv.DictReader(handle)) == sorted(ids[:25])


def test_a_sync_the_project_no_longer_has_is_shown_loudly_then_dropped(folder, server, monkeypatch):
    """A group no longer sent to a destination (or a deleted campaign): the plan says STOPPED with what stays
    in the destination; apply drops its sync state and records it; the next plan is quiet."""
    monkeypatch.setenv("AUDLANG_TEST_ATTENTIVE_KEY", "k-123")
    loaded = load(folder)
    wh_url = wh.resolve_url(None, loaded.config.warehouse, folder)
    state_url = apply.state_url_for(wh_url, None, loaded.config.state, folder)
    apply.apply_plan(apply.plan_project(loaded, wh_url, state_url, AsOf.parse(AS_OF)), wh_url, state_url, folder,
                     loaded.model)
    project_file = folder / "project.aud"
    project_file.write_text(project_file.read_text().replace('treatment "B" 45% to "File"', 'treatment "B" 45%'))
    loaded = load(folder)
    planned = apply.plan_project(loaded, wh_url, state_url, AsOf.parse(AS_OF))
    assert planned.has_changes
    (stopped,) = [s for s in planned.syncs if s.status == "stopped"]
    assert (stopped.group, stopped.destination) == ("B", "File")
    text = render_text(plan_to_json(planned))
    assert '"Holiday" / "B" → "File" (csv)  +0 −0  STOPPED: ' in text and "members stay in the destination" in text
    result = apply.apply_plan(planned, wh_url, state_url, folder, loaded.model)
    assert [(r.target.group, r.status) for r in result.syncs if r.status not in ("unchanged", "ok")] == [
        ("B", "stopped")]
    assert (folder / "exports" / "Holiday-B.csv").exists()  # nothing is taken from the destination
    again = apply.plan_project(load(folder), wh_url, state_url, AsOf.parse(AS_OF))
    assert {s.status for s in again.syncs} == {"unchanged"} and not again.has_changes
    # Deleting the whole campaign: every remaining sync stops.
    text = project_file.read_text()
    project_file.write_text(text[:text.index('campaign "Holiday"')])
    planned = apply.plan_project(load(folder), wh_url, state_url, AsOf.parse(AS_OF))
    assert sorted((s.group, s.destination, s.status) for s in planned.syncs) == [
        ("A", "File", "stopped"), ("A", "SMS", "stopped")]
    assert planned.syncs[0].message.startswith(f"{len(expected_ids(wh_url))}")
    apply.apply_plan(planned, wh_url, state_url, folder, load(folder).model)
    assert apply.plan_project(load(folder), wh_url, state_url, AsOf.parse(AS_OF)).syncs == ()
    assert server.members("holiday")  # the vendor audience keeps its members


def expected_ids(wh_url):
    engine = sa.create_engine(wh_url)
    try:
        return expected(engine, "Holiday", "A", ("customer_id",))
    finally:
        engine.dispose()


def test_the_plan_counts_a_campaign_on_a_paused_segment_from_its_frozen_membership(folder, server, monkeypatch):
    """Apply reads a paused segment's membership as last materialized; the plan counts the syncs the same way."""
    monkeypatch.setenv("AUDLANG_TEST_ATTENTIVE_KEY", "k-123")
    loaded = load(folder)
    wh_url = wh.resolve_url(None, loaded.config.warehouse, folder)
    state_url = apply.state_url_for(wh_url, None, loaded.config.state, folder)
    apply.apply_plan(apply.plan_project(loaded, wh_url, state_url, AsOf.parse(AS_OF)), wh_url, state_url, folder,
                     loaded.model)
    project_file = folder / "project.aud"
    # Paused, and redefined so that live it would hold nobody: apply keeps its membership as it was.
    project_file.write_text(project_file.read_text().replace(
        'segment "Reachable" < phone is set or email is set >',
        'paused segment "Reachable" < phone is set and lifetime_revenue > 100000000 >'))
    loaded = load(folder)
    planned = apply.plan_project(loaded, wh_url, state_url, AsOf.parse(AS_OF))
    assert {s.status for s in planned.syncs} == {"unchanged"}, planned.syncs
    result = apply.apply_plan(planned, wh_url, state_url, folder, loaded.model)
    assert {r.status for r in result.syncs} == {"unchanged"}
