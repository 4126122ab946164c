"""Golden files: ``golden/format/*.aud`` → ``*.formatted`` (the canonical layout), plus fmt's promises."""

from __future__ import annotations

from pathlib import Path

import pytest

from audlang.syntax import format_source, parse_source
from helpers import EXAMPLES, check_golden

FOLDER = Path(__file__).parent / "golden" / "format"
CASES = sorted(FOLDER.glob("*.aud"))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_format_golden(case: Path):
    formatted, diagnostics = format_source(case.read_text(), case.name)
    assert formatted is not None, diagnostics
    check_golden(case.with_suffix(".formatted"), formatted)


@pytest.mark.parametrize("case", CASES + sorted(EXAMPLES.rglob("*.aud")), ids=lambda p: p.name)
def test_format_is_idempotent_and_keeps_every_comment(case: Path):
    text = case.read_text()
    once, _ = format_source(text, case.name)
    twice, _ = format_source(once, case.name)
    assert once == twice
    before, _ = parse_source(text, case.name)
    after, _ = parse_source(once, case.name)
    assert before == after
    assert [c.text.rstrip() for c in before.comments] == [c.text.rstrip() for c in after.comments]


def test_format_is_blind_to_whitespace():
    a = 'segment "x" < sms_opt_in and lifetime_revenue > 5 >\n'
    b = 'segment   "x"\n<\n\tsms_opt_in\n\n and\nlifetime_revenue>5\n  >'
    assert format_source(a)[0] == format_source(b)[0] == a


def test_long_conditions_wrap_one_clause_per_line():
    text = ('segment "In-store Customers - Portland" < contactable_phone and postal in ("97201", "97202", '
            '"97209") >')
    assert format_source(text)[0] == (
        'segment "In-store Customers - Portland" <\n'
        "  contactable_phone\n"
        '  and postal in ("97201", "97202", "97209")\n'
        ">\n"
    )


def test_examples_are_formatted():
    for path in EXAMPLES.rglob("*.aud"):
        assert format_source(path.read_text(), path.name)[0] == path.read_text(), path


def test_a_file_with_syntax_errors_is_not_formatted():
    formatted, diagnostics = format_source('segment "x" < sms_opt_in and >', "x.aud")
    assert formatted is None
    assert diagnostics[0].code == "E001"


def test_the_recorded_definition_does_not_move_with_the_layout():
    """The plan compares definitions as text: group wrapping (and `[fmt] width`) changes files, never
    what a deployed segment's definition reads, so an upgrade or a new width plans no change."""
    from audlang.plan.desired import canonical

    text = ('segment "Lapsed" < sms_opt_in and (has_purchased category "Accessories" within last 90 days'
            ' or has_purchased category "Pets" within last 90 days) >\n')
    (decl,) = parse_source(text, "a.aud")[0].declarations
    assert canonical(decl) == (
        'segment "Lapsed" <\n  sms_opt_in\n  and (has_purchased category "Accessories" within last 90 days'
        ' or has_purchased category "Pets" within last 90 days)\n>\n')
    wrapped, _ = format_source(text, "a.aud")
    (again,) = parse_source(wrapped, "a.aud")[0].declarations
    assert "  and (\n" in wrapped and canonical(again) == canonical(decl)
