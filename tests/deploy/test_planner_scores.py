"""Scores in the plan (SPEC §3.1: a score is planned): a segment's definition holds the definitions of
the scores it reads, so editing a score is a definition change of each segment that uses it, and the
segments its items use come first in the dependency order."""

from __future__ import annotations

from audlang.plan import MembershipPreview, plan
from audlang.vocabulary import ObjectKind, PlanAction, ReasonCode
from deploy.test_planner import AS_OF, deployed, desired

PROJECT = '''score "Engagement" <
  3 points if tagged "VIP"
  1 point if in segment "Big"
>
score "Layered" <
  2 points if score "Engagement" >= 3
>
segment "Big" < lifetime_revenue > 500 >
segment "Engaged" < score "Layered" >= 2 >
segment "Top" < score "Engagement" in top 10% >
segment "Plain" < sms_opt_in >
'''


def test_a_segment_definition_holds_the_scores_it_reads():
    want, model = desired(PROJECT)
    segments = want.of_kind(ObjectKind.SEGMENT)
    engaged = segments["Engaged"].definition
    assert engaged.startswith('segment "Engaged" < score "Layered" >= 2 >\n')
    assert 'score "Layered" <\n  2 points if score "Engagement" >= 3\n>\n' in engaged
    assert 'score "Engagement" <\n  3 points if tagged "VIP"\n  1 point if in segment "Big"\n>\n' in engaged
    assert segments["Plain"].definition == 'segment "Plain" < sms_opt_in >\n'
    # the segments a score's items use are dependencies, materialized first
    assert segments["Engaged"].depends_on == ("Big",) and segments["Top"].depends_on == ("Big",)
    names = [o.name for o in want.objects if o.kind == ObjectKind.SEGMENT]
    assert names.index("Big") < names.index("Engaged") and names.index("Big") < names.index("Top")
    assert model.dependents("Big") == ("Engaged", "Top")
    scores = want.of_kind(ObjectKind.SCORE)
    assert scores["Engagement"].definition == \
        'score "Engagement" <\n  3 points if tagged "VIP"\n  1 point if in segment "Big"\n>\n'
    assert scores["Engagement"].depends_on == ("segment:Big",)
    assert scores["Layered"].depends_on == ("score:Engagement",)


def test_a_new_score_is_created_and_a_removed_one_deleted_without_membership():
    without = PROJECT.replace('segment "Top" < score "Engagement" in top 10% >\n', "")
    without = without.replace('score "Layered" <\n  2 points if score "Engagement" >= 3\n>\n', "")
    without = without.replace('segment "Engaged" < score "Layered" >= 2 >\n', "")
    want, _ = desired(PROJECT)
    preview = {name: MembershipPreview(0, 10, 10, 0) for name in ("Engaged", "Top")}
    preview.update({name: MembershipPreview(10, 10, 0, 0) for name in ("Big", "Plain")})
    created = {a.name: a for a in plan(want, deployed(without), preview, AS_OF).actions}
    assert created["Layered"].kind == ObjectKind.SCORE and created["Layered"].action == PlanAction.CREATE
    assert created["Layered"].membership is None and not created["Layered"].materialize
    back, _ = desired(without)
    deleted = {a.name: a for a in plan(back, deployed(PROJECT), {}, AS_OF).actions}
    assert deleted["Layered"].action == PlanAction.DELETE and deleted["Layered"].membership is None


def test_editing_a_score_updates_every_segment_that_uses_it():
    edited = PROJECT.replace('3 points if tagged "VIP"', '4 points if tagged "VIP"')
    want, _ = desired(edited)
    preview = {name: MembershipPreview(10, 10, 0, 0) for name in ("Big", "Engaged", "Top", "Plain")}
    result = plan(want, deployed(PROJECT), preview, AS_OF)
    changed = {a.name: a for a in result.actions}
    assert set(changed) == {"Engagement", "Engaged", "Top"}
    score = changed["Engagement"]
    assert (score.kind, score.action, score.materialize) == (ObjectKind.SCORE, PlanAction.UPDATE, False)
    assert [r.code for r in score.reasons] == [ReasonCode.DEFINITION_CHANGED]
    assert result.actions[0] is score  # scores first: they are recorded, never materialized
    for name in ("Engaged", "Top"):
        action = changed[name]
        assert action.action == PlanAction.UPDATE and action.kind == ObjectKind.SEGMENT
        assert [r.code for r in action.reasons] == [ReasonCode.DEFINITION_CHANGED]
        assert "4 points if tagged" in action.after and "3 points if tagged" in action.before
