"""The syntax of SPEC §3.1's forms: each parses to its node, the formatter prints it back as parsed
(and its output is a fixed point), and the places where the new forms meet the old ones read as meant:
a line starting ``score "X" <`` in a condition is a comparison, not a new declaration; a name before
``of`` is a holiday but ``anniversary of``; ``today - N unit`` keeps its first form."""

from __future__ import annotations

from decimal import Decimal

import pytest

from audlang import ast
from audlang.syntax import parse_source
from audlang.syntax.formatter import format_file


def parsed(text: str) -> ast.SourceFile:
    source, diagnostics = parse_source(text)
    assert not diagnostics, [d.message for d in diagnostics]
    return source


def condition(text: str) -> ast.Condition:
    (segment,) = parsed(f'segment "S" < {text} >').declarations
    assert isinstance(segment, ast.Segment)
    return segment.condition


CASES = [
    ("has_purchased between easter of last year - 14 days and easter of last year",
     ast.HasPurchased(window=ast.Between(ast.DateOffset(ast.HolidayDate("easter", 1), -14, "days"),
                                         ast.HolidayDate("easter", 1)))),
    ("has_purchased since black_friday of 2 years ago + 1 week",
     ast.HasPurchased(window=ast.Since(ast.DateOffset(ast.HolidayDate("black_friday", 2), 1, "weeks")))),
    ("created_at > 12-31 of last year - 1 month",
     ast.Compare(ast.Attribute("created_at"), ">", ast.DateOffset(ast.SeasonalDate(12, 31, 1), -1, "months"))),
    ("created_at > today - 3 days", ast.Compare(ast.Attribute("created_at"), ">", ast.Today(3, "days"))),
    ("created_at < today + 2 weeks",
     ast.Compare(ast.Attribute("created_at"), "<", ast.DateOffset(ast.Today(), 2, "weeks"))),
    ("anniversary of birthdate in this month", ast.Anniversary(ast.Attribute("birthdate"), "month")),
    ("anniversary of birthdate within next 7 days", ast.Anniversary(ast.Attribute("birthdate"), "next", 7, "days")),
    ("anniversary of created_at within last 1 day", ast.Anniversary(ast.Attribute("created_at"), "last", 1, "days")),
    ('most_purchased category "Accessories"',
     ast.MostPurchased((ast.ItemFilter("category", (ast.StringValue("Accessories"),)),))),
    ('most_purchased brand in ("Nike", "Hoka") within last 1 year',
     ast.MostPurchased((ast.ItemFilter("brand", (ast.StringValue("Nike"), ast.StringValue("Hoka")), True),),
                       window=ast.WithinLast(1, "years"))),
    ('first_purchased category "Pets" within last 90 days',
     ast.FirstPurchased((ast.ItemFilter("category", (ast.StringValue("Pets"),)),), window=ast.WithinLast(90, "days"))),
    ("has_purchased in 3 of last 6 months", ast.HasPurchased(window=ast.InPeriods(3, 6, "months"))),
    ('has_purchased channel "store" in 1 of last 1 week',
     ast.HasPurchased((ast.ItemFilter("channel", (ast.StringValue("store"),)),), window=ast.InPeriods(1, 1, "weeks"))),
    ("lifetime_revenue in top 10%", ast.Percentile("top", Decimal("10"), ast.Attribute("lifetime_revenue"))),
    ('score "Engagement" in bottom 2.5%', ast.Percentile("bottom", Decimal("2.5"), score="Engagement")),
    ('score "Engagement" >= 3', ast.ScoreCompare("Engagement", ">=", ast.NumberValue(Decimal(3)))),
    ('score "Engagement" > -1', ast.ScoreCompare("Engagement", ">", ast.NumberValue(Decimal(-1)))),
    ('score "Engagement" between 1 and 5',
     ast.ScoreCompare("Engagement", "between", ast.NumberValue(Decimal(1)), ast.NumberValue(Decimal(5)))),
    ('not (score "E" < 3)', ast.Not(ast.ScoreCompare("E", "<", ast.NumberValue(Decimal(3))))),
]


@pytest.mark.parametrize(("text", "node"), CASES, ids=[c[0] for c in CASES])
def test_each_form_parses_to_its_node_and_prints_back(text, node):
    assert condition(text) == node
    source = f'segment "S" < {text} >\n'
    printed = format_file(parsed(source), source)
    assert printed == source
    assert format_file(parsed(printed), printed) == printed


SCORE = '''score "Engagement" <
  3 points if tagged "VIP"
  2 points if has_purchased within last 30 days
  1 point if email_opt_in
  -2 points if not contactable_email
  0.5 points if score "Other" > 2 and created_at > today - 7 days
>
'''


def test_a_score_declaration_keeps_its_items_in_order():
    (score,) = parsed(SCORE).declarations
    assert isinstance(score, ast.Score) and score.name == "Engagement"
    assert [i.points for i in score.items] == [Decimal(3), Decimal(2), Decimal(1), Decimal(-2), Decimal("0.5")]
    assert score.items[3].condition == ast.Not(ast.BooleanAttribute(ast.Attribute("contactable_email")))
    assert format_file(parsed(SCORE), SCORE) == SCORE
    empty = 'score "Nothing" < >\n'
    assert parsed(empty).declarations == (ast.Score("Nothing"),)
    assert format_file(parsed(empty), empty) == empty


def test_a_comparison_of_a_score_at_the_start_of_a_line_is_not_a_declaration():
    text = ('segment "Low" <\n  score "Engagement" < 3\n  and sms_opt_in\n>\n'
            'score "Engagement" <\n  1 point if sms_opt_in\n>\n')
    segment, score = parsed(text).declarations
    assert isinstance(segment, ast.Segment) and isinstance(score, ast.Score)
    assert segment.condition == ast.And((ast.ScoreCompare("Engagement", "<", ast.NumberValue(Decimal(3))),
                                         ast.BooleanAttribute(ast.Attribute("sms_opt_in"))))


def test_a_broken_score_does_not_hide_the_declarations_after_it():
    source, diagnostics = parse_source('score "Broken" <\n  3 points tagged "VIP"\n>\nsegment "Fine" < sms_opt_in >\n')
    assert [d.code for d in diagnostics] == ["E001"]
    assert [d.name for d in source.declarations] == ["Fine"]


def test_many_negated_score_items_are_not_one_deep_condition():
    items = "\n".join(f"  1 point if not tagged \"T{i}\"" for i in range(60))
    (score,) = parsed(f'score "Many" <\n{items}\n>\n').declarations
    assert isinstance(score, ast.Score) and len(score.items) == 60


def test_negative_points_after_a_date_are_the_next_item_not_an_offset():
    text = 'score "Dated" <\n  3 points if abandoned_checkout since 2024-01-01\n  -2 points if sms_opt_in\n>\n'
    (score,) = parsed(text).declarations
    assert isinstance(score, ast.Score)
    assert [i.points for i in score.items] == [Decimal(3), Decimal(-2)]
    assert score.items[0].condition == ast.AbandonedCheckout(ast.Since(ast.DateLiteral("2024-01-01")))
    assert format_file(parsed(text), text) == text
    (segment,) = parsed('segment "Offset" < has_purchased since 2024-01-01 - 2 days >\n').declarations
    assert isinstance(segment, ast.Segment) and isinstance(segment.condition, ast.HasPurchased)
