"""Renderers: text (plain and coloured), Markdown and JSON against golden files under tests/golden/plan/.

AUDLANG_UPDATE_GOLDEN=1 rewrites them after an intended change.
"""

from __future__ import annotations

import json

import pytest
from helpers import ROOT, check_golden

from audlang.diagnostics import AudlangError
from audlang.plan import MembershipPreview, desired_from_model, plan, plan_from_json, plan_to_json
from audlang.plan import Reason, reason_text, render_markdown, render_text
from audlang.plan.render import reason_from_text
from audlang.project import analyze
from audlang.state import DeployedObject, Snapshot
from audlang.vocabulary import ReasonCode as C

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


SENTENCES = [
    # (code, detail, object kind, the sentence: what every plan has printed, and version-1 files hold)
    (C.NEW, (), "segment", "new segment"),
    (C.NEW, (), "destination", "new destination"),
    (C.NEW, (), "campaign", "new campaign"),
    (C.NEW_PAUSED, (), "segment", "paused: its membership is computed once it is unpaused"),
    (C.RENAMED, ("Old Name",), "segment", 'renamed from "Old Name"'),
    (C.RENAMED, ('A", "B',), "segment", 'renamed from "A", "B"'),  # a rename cites one name, whatever it holds
    (C.DEFINITION_CHANGED, (), "segment", "definition changed"),
    (C.LIST_FILE_CHANGED, (), "segment", "list file changed"),
    (C.PAUSED, (), "segment", "paused"),
    (C.PAUSED_NOW, (), "campaign", "paused now: its membership stays as deployed"),
    (C.UNPAUSED, (), "segment", "unpaused"),
    (C.UPSTREAM_CHANGED, ("Big",), "segment", 'upstream segment changed: "Big"'),
    (C.UPSTREAM_CHANGED, ("Big", "A, B"), "segment", 'upstream segment changed: "Big", "A, B"'),
    (C.WINDOW_MOVED, (), "segment", "window moved with the as-of date"),
    (C.DATA_CHANGED, (), "segment", "data changed"),
    (C.DESCRIPTION_CHANGED, (), "destination", "description changed"),
    (C.RECORDED_DETAILS_CHANGED, (), "segment", "recorded details changed"),
    (C.REMOVED, (), "segment", "segment removed from the code"),
    (C.REMOVED, (), "campaign", "campaign removed from the code"),
    (C.REMOVED, (), "destination", "destination removed"),
    (C.FED_DESTINATION, (), "segment", "it fed a destination: its audience will no longer be synced"),
]


@pytest.mark.parametrize("code, detail, kind, sentence", SENTENCES, ids=[f"{c[0]}-{c[2]}" for c in SENTENCES])
def test_reason_sentences(code, detail, kind, sentence):
    assert reason_text(Reason(code, detail), kind) == sentence
    assert reason_from_text(sentence, kind) == Reason(code, detail)  # how a version-1 plan is read


def test_every_reason_code_has_a_sentence_and_a_row_in_the_docs():
    assert {c[0] for c in SENTENCES} == set(C)
    docs = (ROOT / "docs" / "plan-format.md").read_text(encoding="utf-8")
    assert [code for code in C if f"| `{code}` |" not in docs] == []


def test_scripts_switch_on_the_reason_code(doc):
    codes = {a["name"]: [r["reason_code"] for r in a["reasons"]] for a in doc["actions"]}
    assert codes["Big Spenders"] == ["definition_changed"]
    assert codes["Lapsed"] == ["removed", "fed_destination"]
    (renamed,) = [a for a in json.loads(json.dumps(doc))["actions"] if a["action"] == "rename"]
    assert renamed["reasons"] == [{"reason_code": "renamed", "detail": ["Old Name"],
                                   "text": 'renamed from "Old Name"'}]


def test_the_renderers_write_the_sentence_from_the_code(doc):
    """The ``text`` in the document is for people reading it; the renderings draw on the code."""
    edited = json.loads(json.dumps(doc))
    edited["actions"][0]["reasons"][0]["text"] = "something else"
    assert render_text(edited) == render_text(doc)
    assert render_markdown(edited) == render_markdown(doc)


def test_a_version_1_plan_is_read_with_codes(doc):
    v1 = json.loads(json.dumps(doc))
    v1["format_version"] = 1
    for a in v1["actions"]:
        a["reasons"] = [r["text"] for r in a["reasons"]]
    assert plan_from_json(v1) == _plan()
    bad = json.loads(json.dumps(v1))
    bad["actions"][0]["reasons"] = ["the moon is full"]
    with pytest.raises(AudlangError, match="damaged.*the moon is full"):
        plan_from_json(bad)
    with pytest.raises(AudlangError, match="damaged"):
        plan_from_json({**doc, "format_version": 1})  # version 2's reasons in a version-1 file
    with pytest.raises(AudlangError, match="damaged"):
        plan_from_json({**v1, "format_version": 2})


@pytest.mark.parametrize("reason", [
    {"reason_code": "renamed", "detail": []}, {"reason_code": "new", "detail": ["x"]},
    {"reason_code": "no_such_code", "detail": []}, {"reason_code": "upstream_changed", "detail": "Big"},
    {"detail": []}, "definition changed",
], ids=["rename-without-name", "names-where-none", "unknown-code", "detail-not-a-list", "no-code", "a-sentence"])
def test_a_damaged_reason_is_refused(doc, reason):
    bad = json.loads(json.dumps(doc))
    bad["actions"][0]["reasons"] = [reason]
    with pytest.raises(AudlangError, match="damaged"):
        plan_from_json(bad)
