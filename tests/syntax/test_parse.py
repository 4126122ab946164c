"""The parser: every construct of the language, as written in SPEC §2–§3."""

from decimal import Decimal

import pytest

from audlang import ast
from audlang.syntax import parse_source


def parse_one(text: str):
    parsed, diagnostics = parse_source(text, "t.aud")
    assert diagnostics == []
    assert len(parsed.declarations) == 1
    return parsed.declarations[0]


def condition(text: str):
    return parse_one(f'segment "s" < {text} >').condition


def test_canonical_line_parses_verbatim():
    seg = parse_one(
        'segment "Holiday Shoppers - SMS" < has_purchased between 2023-11-01 and 2023-12-31 and sms_opt_in >'
    )
    assert seg.name == "Holiday Shoppers - SMS"
    assert seg.condition == ast.And((
        ast.HasPurchased(window=ast.Between(ast.DateLiteral("2023-11-01"), ast.DateLiteral("2023-12-31"))),
        ast.BooleanAttribute(ast.Attribute("sms_opt_in")),
    ))


def test_comparison_greater_than_inside_body():
    seg = parse_one('segment "Big Spenders" < lifetime_revenue > 500 >')
    assert seg.condition == ast.Compare(ast.Attribute("lifetime_revenue"), ">", ast.NumberValue(Decimal(500)))


@pytest.mark.parametrize("op", ["=", "!=", ">", ">=", "<", "<="])
def test_every_comparison_operator(op):
    assert condition(f"lifetime_orders {op} 3") == ast.Compare(
        ast.Attribute("lifetime_orders"), op, ast.NumberValue(Decimal(3)))


def test_greater_than_before_closing_bracket_with_negative_and_date_values():
    assert condition("predicted_clv > -5").value == ast.NumberValue(Decimal(-5))
    assert condition("created_at > today - 3 months").value == ast.Today(3, "months")
    assert condition("created_at > 2024-01-01").value == ast.DateLiteral("2024-01-01")
    assert condition('city > "A"').value == ast.StringValue("A")


def test_attribute_operators():
    assert condition('state in ("OR", "WA")') == ast.InValues(
        ast.Attribute("state"), (ast.StringValue("OR"), ast.StringValue("WA")))
    assert condition('state not in ("OR")').negated is True
    assert condition("predicted_clv between 10 and 20") == ast.BetweenValues(
        ast.Attribute("predicted_clv"), ast.NumberValue(Decimal(10)), ast.NumberValue(Decimal(20)))
    assert condition('email starts with "a"').op == "starts with"
    assert condition('email ends with "@x.com"').op == "ends with"
    assert condition('email contains "x"').op == "contains"
    assert condition("email is set") == ast.IsSet(ast.Attribute("email"), False)
    assert condition("email is not set") == ast.IsSet(ast.Attribute("email"), True)
    assert condition("sms_opt_in = true").value == ast.BooleanValue(True)


def test_precedence_not_and_or():
    got = condition("not a and b or c")
    a, b, c = (ast.BooleanAttribute(ast.Attribute(n)) for n in "abc")
    assert got == ast.Or((ast.And((ast.Not(a), b)), c))
    assert condition("a and (b or c)") == ast.And((a, ast.Or((b, c))))
    assert condition("not (a or b)") == ast.Not(ast.Or((a, b)))


def test_has_purchased_filters_measures_windows():
    got = condition('has_purchased product "Socks" quantity = 1 within last 3 months')
    assert got == ast.HasPurchased(
        (ast.ItemFilter("product", (ast.StringValue("Socks"),)),),
        ast.Measure("quantity", "=", ast.NumberValue(Decimal(1))),
        ast.WithinLast(3, "months"),
    )
    got = condition('has_purchased collection in ("Cat snacks", "Dog treats") channel "store" '
                    "spend between 10 and 99.5 since 2024-01-01")
    assert [f.field for f in got.filters] == ["collection", "channel"]
    assert got.filters[0].is_list
    assert got.measure == ast.Measure("spend", "between",
                                      ast.NumberValue(Decimal(10)), ast.NumberValue(Decimal("99.5")))
    assert got.window == ast.Since(ast.DateLiteral("2024-01-01"))
    for text, window in [
        ("before 2024-01-01", ast.Before(ast.DateLiteral("2024-01-01"))),
        ("after today - 1 week", ast.After(ast.Today(1, "weeks"))),
        ("on today", ast.On(ast.Today())),
        ("within last 1 hour", ast.WithinLast(1, "hours")),
        ("within last 2 years", ast.WithinLast(2, "years")),
        ("between 11-01 of last year and 12-31 of last year",
         ast.Between(ast.SeasonalDate(11, 1, 1), ast.SeasonalDate(12, 31, 1))),
        ("between 02-07 of this year and 02-14 of 2 years ago",
         ast.Between(ast.SeasonalDate(2, 7, 0), ast.SeasonalDate(2, 14, 2))),
    ]:
        assert condition(f"has_purchased {text}").window == window
    assert condition('has_purchased store "PDX-01" orders >= 2').measure.op == ">="


def test_other_behaviour():
    assert condition('tagged "VIP"') == ast.Tagged((ast.StringValue("VIP"),))
    assert condition('tagged in ("A", "B")').is_list
    assert condition("abandoned_checkout within last 12 hours") == ast.AbandonedCheckout(ast.WithinLast(12, "hours"))
    assert condition("abandoned_checkout") == ast.AbandonedCheckout(None)
    assert condition('in segment "Big Spenders"') == ast.InSegment("Big Spenders")
    assert condition('in list "lists/w.csv"') == ast.InFile("lists/w.csv")
    assert condition('near store "PDX-01" within 10 miles') == ast.NearStore(
        "PDX-01", ast.NumberValue(Decimal(10)), "miles")
    assert condition('near store "PDX-01" within 2.5 km').unit == "km"


def test_spec_examples_all_parse():
    text = '''
segment "In-store Customers - Portland" <
  contactable_phone
  and postal in ("97201", "97202", "97209")
>
segment "Churn Prevention - Socks" <
  predicted_lifecycle_status in ("Active", "Cooling down", "At risk")
  and has_purchased product "Socks" quantity = 1 within last 3 months
>
segment "Cat Snack Buyers" < has_purchased collection "Cat snacks" orders >= 2 within last 1 year >
segment "Cart Abandoners" < abandoned_checkout within last 1 day and sms_opt_in >
segment "Cart Abandoners - Last Hour" < abandoned_checkout within last 1 hour and sms_opt_in >
segment "Near Pearl Store" < contactable_phone and near store "PDX-01" within 10 miles >
segment "Wholesale Accounts" < in list "lists/wholesale.csv" >
'''
    parsed, diagnostics = parse_source(text, "t.aud")
    assert diagnostics == []
    assert len(parsed.declarations) == 7


def test_spans_point_at_the_source():
    seg = parse_one('segment "Big Spenders" <\n  lifetime_revenue > 500\n>')
    assert (seg.span.line, seg.span.column, seg.span.end_line) == (1, 1, 3)
    assert (seg.name_span.line, seg.name_span.column) == (1, 9)
    attr = seg.condition.attribute
    assert (attr.span.line, attr.span.column, attr.span.end_column) == (2, 3, 19)


def test_doc_comments_become_descriptions():
    parsed, _ = parse_source('# not this one\n\n# Line one.\n# Line two.\nsegment "a" < x >\n'
                             '# unrelated\n\nsegment "b" < y >\n', "t.aud")
    a, b = parsed.declarations
    assert a.description == "Line one.\nLine two."
    assert b.description is None


def test_destination_campaign_table_moved():
    parsed, diagnostics = parse_source('''
paused destination "D" webhook <
  url = "https://x"
  header "Authorization" = "Bearer " + env("TOKEN")
  identifiers = (phone, email)
  batch_size = 100
  mode = add
  allow_empty = true
>
campaign "C" <
  audience < lifetime_revenue > 5 >
  salt "s"
  holdout 10%
  treatment "A" 45% to "D"
  treatment "B" 45.5% to "D", "E"
>
campaign "S" <
  audience segment "X"
  subaudience "P" < city = "Portland" > to "D"
  subaudience "Rest" otherwise
>
table customer_360 from "crm.people" <
  email = "email_address"
>
table scores from "ml.scores" <
  churn_score number = "score"
>
moved segment "Old" to "New"
''', "t.aud")
    assert diagnostics == []
    d, c, s, t1, t2, m = parsed.declarations
    assert d.paused and d.kind == "webhook"
    header = d.settings[1]
    assert header.header and header.key == "Authorization"
    assert header.value.parts == (ast.StringValue("Bearer "), ast.EnvRef("TOKEN"))
    assert d.settings[2].value == ast.ListValue((ast.Word("phone"), ast.Word("email")))
    assert c.holdout == Decimal(10) and [t.percent for t in c.treatments] == [Decimal(45), Decimal("45.5")]
    assert c.audience.condition is not None and c.salt == "s"
    assert [x.condition is None for x in s.subaudiences] == [False, True]
    assert t1.source == "crm.people" and t1.columns[0] == ast.ColumnMap("email", None, "email_address")
    assert t2.columns[0].type == "number"
    assert m == ast.Moved("segment", "Old", "New")


def test_string_escapes():
    assert condition(r'city = "a \"b\" \\ c"').value.value == 'a "b" \\ c'
