"""Renderers: text (plain and coloured), Markdown and JSON against golden files under tests/golden/plan/.

AUDLANG_UPDATE_GOLDEN=1 rewrites them after an intended change.
"""

from __future__ import annotations

import json

import pytest
from conftest import ROOT, check_golden

from audlang.diagnostics import AudlangError
from audlang.plan import MembershipPreview, desired_from_model, plan, plan_from_json, plan_to_json
from audlang.plan import render_markdown, render_text
from audlang.project import analyze
from audlang.state import DeployedObject, Snapshot

GOLDEN = ROOT / "tests" / "golden" / "plan"

BEFORE = '''segment "Big Spenders" < lifetime_revenue > 500 >
segment "VIP" < tagged "VIP" and in segment "Big Spenders" >
segment "Old Name" < sms_opt_in >
segment "Lapsed" < not has_purchased within last 1 year >
segment "Quiet" < email_opt_in >
destination "File" csv <
  path = "out.csv"
>
campaign "Win Back" <
  audience segment "Lapsed"
  treatment "All" 100% to "File"
>
'''

AFTER = '''segment "Big Spenders" < lifetime_revenue > 1204 >
segment "VIP" < tagged "VIP" and in segment "Big Spenders" >
moved segment "Old Name" to "SMS Opt-ins"
segment "SMS Opt-ins" < sms_opt_in >
paused segment "Quiet" < email_opt_in >
segment "New <Shiny> | One" < city = "Portland" >
destination "File" csv <
  path = "out.csv"
>
'''


def _plan():
    before_model, _ = analyze({"p.aud": BEFORE})
    have = desired_from_model(before_model)
    objects = tuple(DeployedObject(o.kind, o.name, f"id-{i}", o.definition, o.paused, o.description, o.depends_on,
                                   o.lists, o.relative, 1000 + i if o.kind == "segment" else None,
                                   "2024-10-31" if o.kind == "segment" else None)
                    for i, o in enumerate(have.objects))
    model, diagnostics = analyze({"p.aud": AFTER})
    assert not [d for d in diagnostics if d.is_error]
    preview = {
        "Big Spenders": MembershipPreview(913, 1000, 0, 87),
        "VIP": MembershipPreview(1001, 1001, 0, 0),
        "SMS Opt-ins": MembershipPreview(2202, 1002, 1200, 0),
        "New <Shiny> | One": MembershipPreview(4, 0, 4, 0),
    }
    return plan(desired_from_model(model, {"p.aud": AFTER}, "retail"),
                Snapshot("0f5c-lineage", 12, objects, 1), preview, "2024-11-30",
                ('destination "File": environment variable X is not set',))


@pytest.fixture
def doc():
    return plan_to_json(_plan())


def test_text(doc):
    check_golden(GOLDEN / "mixed.txt", render_text(doc) + "\n")


def test_text_coloured(doc):
    coloured = render_text(doc, color=True)
    assert "\x1b[" in coloured
    import click

    assert click.unstyle(coloured) == render_text(doc)


def test_markdown(doc):
    check_golden(GOLDEN / "mixed.md", render_markdown(doc))


def test_json(doc):
    check_golden(GOLDEN / "mixed.json", json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def test_summary_line(doc):
    assert render_text(doc).splitlines()[-1] == \
        "Plan: 1 to create, 1 to update, 2 to delete, 1 to rename; membership +1,204 \u22121,090"


def test_json_round_trips_through_a_saved_plan(doc):
    again = plan_from_json(json.loads(json.dumps(doc)))
    assert again == _plan()
    assert plan_to_json(again) == doc


def test_no_changes_summary():
    model, _ = analyze({"p.aud": 'segment "A" < sms_opt_in >\n'})
    want = desired_from_model(model)
    o = want.objects[0]
    have = Snapshot("l", 3, (DeployedObject("segment", "A", "i", o.definition, members=5, as_of="2024-11-30"),))
    text = render_text(plan_to_json(plan(want, have, {"A": MembershipPreview(5, 5, 0, 0)}, "2024-11-30")))
    assert text.endswith("No changes. The deployed state matches the code as of 2024-11-30.")


def test_other_format_versions_are_refused(doc):
    with pytest.raises(AudlangError, match="plan format version 99"):
        plan_from_json({**doc, "format_version": 99})
    with pytest.raises(AudlangError, match="not an audlang plan file"):
        plan_from_json([1, 2])
    with pytest.raises(AudlangError, match="damaged"):
        plan_from_json({"format_version": 1, "actions": [{}]})
