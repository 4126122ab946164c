"""Property: for any syntax tree, formatting then parsing gives the same tree back."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audlang import ast
from audlang.syntax import format_file, parse_source
from audlang.syntax.parser import UNITS

NAMES = st.sampled_from(["sms_opt_in", "city", "lifetime_revenue", "postal", "x", "a_b1", "created_at", "Custom"])
TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\x7f") | st.sampled_from(
    ['"', "\\", "\n", "\t", "#", ">", "<"]), max_size=12)
UNIT = st.sampled_from(sorted(set(UNITS.values())))
DATE_UNIT = st.sampled_from(["days", "weeks", "months", "years"])

strings = st.builds(ast.StringValue, TEXT)
numbers = st.builds(lambda k: ast.NumberValue(Decimal(k) / 100), st.integers(-10**9, 10**9))
positive_numbers = st.builds(lambda k: ast.NumberValue(Decimal(k) / 100), st.integers(0, 10**6))
booleans = st.builds(ast.BooleanValue, st.booleans())
date_literals = st.builds(lambda d: ast.DateLiteral(d.isoformat()),
                          st.dates(dt.date(1000, 1, 1), dt.date(9999, 12, 31)))
todays = st.builds(ast.Today, st.integers(0, 500), DATE_UNIT) | st.just(ast.Today())
seasonal = st.builds(ast.SeasonalDate, st.integers(1, 12), st.integers(1, 28), st.integers(0, 9))
dates = date_literals | todays | seasonal
values = strings | numbers | booleans | dates

windows = st.one_of(
    st.builds(ast.Between, dates, dates),
    st.builds(ast.WithinLast, st.integers(1, 999), UNIT),
    st.builds(ast.Since, dates), st.builds(ast.Before, dates),
    st.builds(ast.After, dates), st.builds(ast.On, dates),
)
attribute = st.builds(ast.Attribute, NAMES)
item_filters = st.builds(
    lambda field, vals, is_list: ast.ItemFilter(field, tuple(vals) if is_list else tuple(vals[:1]), is_list),
    st.sampled_from(["product", "category", "collection", "brand", "channel", "store"]),
    st.lists(strings, min_size=1, max_size=3), st.booleans(),
)
measures = st.one_of(
    st.builds(ast.Measure, st.sampled_from(["orders", "quantity", "spend"]),
              st.sampled_from(["=", "!=", ">", ">=", "<", "<="]), numbers),
    st.builds(lambda k, a, b: ast.Measure(k, "between", a, b), st.sampled_from(["orders", "quantity", "spend"]),
              positive_numbers, positive_numbers),
)


def _unique_fields(filters):
    seen = {}
    for f in filters:
        seen.setdefault(f.field, f)
    return tuple(seen.values())


predicates = st.one_of(
    st.builds(ast.Compare, attribute, st.sampled_from(["=", "!=", ">", ">=", "<", "<="]), values),
    st.builds(lambda a, v, n: ast.InValues(a, tuple(v), n), attribute, st.lists(values, min_size=1, max_size=3),
              st.booleans()),
    st.builds(ast.BetweenValues, attribute, values, values),
    st.builds(ast.StringMatch, attribute, st.sampled_from(["starts with", "ends with", "contains"]), strings),
    st.builds(ast.IsSet, attribute, st.booleans()),
    st.builds(ast.BooleanAttribute, attribute),
    st.builds(lambda f, m, w: ast.HasPurchased(_unique_fields(f), m, w),
              st.lists(item_filters, max_size=3), st.none() | measures, st.none() | windows),
    st.builds(lambda tags, is_list: ast.Tagged(tuple(tags) if is_list else tuple(tags[:1]), is_list),
              st.lists(strings, min_size=1, max_size=3), st.booleans()),
    st.builds(ast.AbandonedCheckout, st.none() | windows),
    st.builds(ast.InSegment, TEXT),
    st.builds(ast.InFile, TEXT),
    st.builds(ast.NearStore, TEXT, positive_numbers, st.sampled_from(["miles", "km"])),
)


def _flat(kind, operands):
    out = []
    for o in operands:
        out.extend(o.operands if isinstance(o, kind) else [o])
    return kind(tuple(out))


conditions = st.recursive(
    predicates,
    lambda inner: st.one_of(
        st.builds(ast.Not, inner),
        st.builds(lambda ops: _flat(ast.And, ops), st.lists(inner, min_size=2, max_size=4)),
        st.builds(lambda ops: _flat(ast.Or, ops), st.lists(inner, min_size=2, max_size=4)),
    ),
    max_leaves=12,
)

destinations = st.lists(strings, max_size=2).map(tuple)
setting_values = st.one_of(
    st.builds(lambda parts: ast.TextValue(tuple(parts)),
              st.lists(strings | st.builds(ast.EnvRef, TEXT), min_size=1, max_size=3)),
    numbers, booleans, st.builds(ast.Word, NAMES),
    st.builds(lambda items: ast.ListValue(tuple(items)), st.lists(st.builds(ast.Word, NAMES) | strings, max_size=3)),
)
declarations = st.one_of(
    st.builds(ast.Segment, TEXT, conditions, st.booleans()),
    st.builds(lambda n, k, s, p: ast.Destination(n, k, tuple(s), p), TEXT, NAMES,
              st.lists(st.builds(ast.Setting, NAMES, setting_values) |
                       st.builds(lambda k, v: ast.Setting(k, v, True), TEXT,
                                 st.builds(lambda p: ast.TextValue(tuple(p)), st.lists(strings, min_size=1))),
                       max_size=4), st.booleans()),
    st.builds(
        lambda n, aud, salt, hold, ts, subs, p: ast.Campaign(n, aud, salt, hold, tuple(ts), tuple(subs), p),
        TEXT,
        st.none() | st.builds(ast.Audience, TEXT) | st.builds(lambda c: ast.Audience(None, c), conditions),
        st.none() | TEXT,
        st.none() | st.integers(0, 10000).map(lambda k: Decimal(k) / 100),
        st.lists(st.builds(ast.Treatment, TEXT, st.integers(0, 100).map(Decimal), destinations), max_size=3),
        st.lists(st.builds(ast.SubAudience, TEXT, st.none() | conditions, destinations), max_size=3),
        st.booleans(),
    ),
    st.builds(lambda n, src, cols: ast.TableMapping(n, src, tuple(cols), bool(cols)), NAMES, st.none() | TEXT,
              st.lists(st.builds(ast.ColumnMap, NAMES, st.none() | st.sampled_from(["text", "number", "date"]), TEXT),
                       max_size=3)),
    st.builds(ast.Moved, st.sampled_from(["segment", "campaign", "destination"]), TEXT, TEXT),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(declarations, min_size=1, max_size=4), st.sampled_from([40, 60, 100, 400]))
def test_format_then_parse_gives_the_same_tree(decls, width):
    """At any `[fmt] width`: groups wrap at narrow widths, and the layout never changes the tree."""
    source = ast.SourceFile("gen.aud", tuple(decls))
    # Spans decide where comments go; generated trees have none and no comments.
    text = format_file(_with_fake_spans(source), "", width)
    parsed, diagnostics = parse_source(text, "gen.aud")
    assert [d for d in diagnostics if d.is_error] == [], text
    assert parsed.declarations == source.declarations, text
    again = format_file(parsed, text, width)
    assert again == text


def _with_fake_spans(source: ast.SourceFile) -> ast.SourceFile:
    import attrs

    from audlang.diagnostics import Span

    decls = tuple(
        attrs.evolve(d, span=Span("gen.aud", 10 * i + 1, 1, 10 * i + 1, 2)) for i, d in enumerate(source.declarations)
    )
    return attrs.evolve(source, declarations=decls)
