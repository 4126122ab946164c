"""The whole cycle through the CLI on DuckDB, SQLite and PostgreSQL: plan → apply → plan shows no changes →
edit → plan shows the change → apply; saved plans, staleness, exit codes, renames, history, membership SQL."""

from __future__ import annotations

import json

import sqlalchemy as sa
from deploy_fixtures import cli_run, project, segment_members, warehouse_url  # noqa: F401

AS_OF = "2024-11-30"


def _members(url: str, segment: str) -> set[str]:
    return segment_members(url, segment)


def _view(url: str, view: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT count(*) FROM {view}")).scalar()
    finally:
        engine.dispose()


def test_whole_cycle(project, warehouse_url, cli_run):
    first = cli_run(project, "plan", "--as-of", AS_OF, "--detailed-exitcode", "--out", "plan.json")
    assert first.returncode == 2, first.stderr
    assert "Plan: 3 to create, 0 to update, 0 to delete; membership +" in first.stdout
    assert "Traceback" not in first.stderr

    applied = cli_run(project, "apply", "plan.json")
    assert applied.returncode == 0, applied.stderr
    assert 'created segment "VIP"' in applied.stdout

    again = cli_run(project, "plan", "--as-of", AS_OF, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes." in again.stdout

    # Membership is queryable with plain SQL: the view per segment agrees with `members`.
    members = cli_run(project, "members", "Big Spenders", "--as-of", AS_OF)
    expected = set(members.stdout.split()[1:])
    assert _members(warehouse_url, "Big Spenders") == expected
    assert _view(warehouse_url, "audlang_members_big_spenders") == len(expected)

    (project / "segments.aud").write_text((project / "segments.aud").read_text().replace("> 500", "> 800"))
    edited = cli_run(project, "plan", "--as-of", AS_OF, "--format", "json", "--detailed-exitcode")
    assert edited.returncode == 2, edited.stderr
    doc = json.loads(edited.stdout)
    assert doc["format_version"] == 2
    actions = {a["name"]: a for a in doc["actions"]}
    assert actions["Big Spenders"]["action"] == "update"
    assert [r["reason_code"] for r in actions["Big Spenders"]["reasons"]] == ["definition_changed"]
    assert "- segment \"Big Spenders\" < lifetime_revenue > 500 >" in actions["Big Spenders"]["diff"]
    assert actions["Big Spenders"]["membership"]["removed"] > 0
    assert actions["Big Spenders"]["membership"]["added"] == 0
    assert actions["VIP"]["action"] == "refresh"
    assert actions["VIP"]["reasons"] == [{"reason_code": "upstream_changed", "detail": ["Big Spenders"],
                                          "text": 'upstream segment changed: "Big Spenders"'}]
    assert "Recent" not in actions

    done = cli_run(project, "apply", "--auto-approve", "--as-of", AS_OF)
    assert done.returncode == 0, done.stderr
    final = cli_run(project, "plan", "--as-of", AS_OF, "--detailed-exitcode")
    assert final.returncode == 0, final.stdout
    after = set(cli_run(project, "members", "Big Spenders", "--as-of", AS_OF).stdout.split()[1:])
    assert _members(warehouse_url, "Big Spenders") == after < expected


def test_stale_saved_plan_is_refused(project, cli_run):
    assert cli_run(project, "plan", "--as-of", AS_OF, "--out", "one.json").returncode == 0
    assert cli_run(project, "plan", "--as-of", AS_OF, "--out", "two.json").returncode == 0
    assert cli_run(project, "apply", "one.json").returncode == 0
    stale = cli_run(project, "apply", "two.json")
    assert stale.returncode == 1
    assert "stale plan" in stale.stderr and "Traceback" not in stale.stderr
    listed = json.loads(cli_run(project, "state", "list", "--format", "json").stdout)
    assert listed["serial"] == 3 and len(listed["objects"]) == 3


def test_window_moves_with_the_as_of_date(project, cli_run):
    assert cli_run(project, "apply", "--auto-approve", "--as-of", AS_OF).returncode == 0
    later = cli_run(project, "plan", "--as-of", "2024-12-31", "--format", "json", "--detailed-exitcode")
    assert later.returncode == 2
    actions = {a["name"]: a for a in json.loads(later.stdout)["actions"]}
    assert actions["Recent"]["action"] == "refresh"
    assert "window_moved" in [r["reason_code"] for r in actions["Recent"]["reasons"]]


def test_data_changed_shows_in_the_plan(project, warehouse_url, cli_run):
    assert cli_run(project, "apply", "--auto-approve", "--as-of", AS_OF).returncode == 0
    engine = sa.create_engine(warehouse_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM customer_tags"))
        conn.execute(sa.text("DELETE FROM unified_transactions WHERE customer_id IN "
                             "(SELECT customer_id FROM audlang_members_big_spenders)"))
    engine.dispose()
    result = cli_run(project, "plan", "--as-of", AS_OF, "--format", "json")
    actions = {a["name"]: a for a in json.loads(result.stdout)["actions"]}
    assert actions["Big Spenders"]["action"] == "refresh"
    assert [r["reason_code"] for r in actions["Big Spenders"]["reasons"]] == ["data_changed"]
    assert actions["Big Spenders"]["membership"]["after"] == 0


def test_rename_keeps_history_and_membership(project, warehouse_url, cli_run):
    assert cli_run(project, "apply", "--auto-approve", "--as-of", AS_OF).returncode == 0
    before = _members(warehouse_url, "Recent")
    text = (project / "segments.aud").read_text().replace('segment "Recent"', 'segment "Recent Buyers"')
    (project / "segments.aud").write_text(text + '\nmoved segment "Recent" to "Recent Buyers"\n')
    planned = cli_run(project, "plan", "--as-of", AS_OF, "--format", "json")
    (action,) = json.loads(planned.stdout)["actions"]
    assert action["action"] == "rename" and action["previous_name"] == "Recent"
    assert [(r["reason_code"], r["detail"]) for r in action["reasons"]] == [("renamed", ["Recent"])]
    assert action["membership"]["added"] == action["membership"]["removed"] == 0
    assert cli_run(project, "apply", "--auto-approve", "--as-of", AS_OF).returncode == 0
    assert _members(warehouse_url, "Recent Buyers") == before and not _members(warehouse_url, "Recent")
    history = json.loads(cli_run(project, "history", "Recent Buyers", "--format", "json").stdout)
    assert [e["event"] for e in history] == ["created", "renamed"]
    assert cli_run(project, "plan", "--as-of", AS_OF, "--detailed-exitcode").returncode == 0


def test_paused_segment_is_listed_and_never_refreshed(project, warehouse_url, cli_run):
    assert cli_run(project, "apply", "--auto-approve", "--as-of", AS_OF).returncode == 0
    before = _members(warehouse_url, "Recent")
    text = (project / "segments.aud").read_text().replace('segment "Recent"', 'paused segment "Recent"')
    (project / "segments.aud").write_text(text)
    first = cli_run(project, "apply", "--auto-approve", "--as-of", "2024-12-31")
    assert first.returncode == 0, first.stderr
    assert '‖ paused segment "Recent"' in first.stdout
    assert _members(warehouse_url, "Recent") == before
    later = cli_run(project, "plan", "--as-of", "2025-02-01", "--format", "json")
    doc = json.loads(later.stdout)
    recent = [a for a in doc["actions"] if a["name"] == "Recent"]
    assert recent and recent[0]["action"] == "paused" and recent[0]["membership"] is None


def test_deleting_a_segment_that_fed_a_destination_stands_out(project, cli_run):
    (project / "send.aud").write_text(
        'destination "Mailing File" csv <\n  path = "out/{{ campaign }}.csv"\n>\n\n'
        'campaign "Win Back" <\n  audience segment "Recent"\n  treatment "All" 100% to "Mailing File"\n>\n')
    assert cli_run(project, "apply", "--auto-approve", "--as-of", AS_OF).returncode == 0
    (project / "send.aud").unlink()
    text = (project / "segments.aud").read_text().replace(
        'segment "Recent" < has_purchased within last 90 days >\n', "")
    (project / "segments.aud").write_text(text)
    planned = cli_run(project, "plan", "--as-of", AS_OF)
    assert planned.returncode == 0, planned.stderr
    assert '!! it fed campaign "Win Back" → destination "Mailing File"' in planned.stdout
    markdown = cli_run(project, "plan", "--as-of", AS_OF, "--format", "markdown").stdout
    assert "[!CAUTION]" in markdown and "Recent" in markdown
    assert "Plan: 0 to create, 0 to update, 3 to delete" in planned.stdout
