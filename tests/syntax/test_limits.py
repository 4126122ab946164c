"""Any text in, a diagnostic out: byte-order marks, line endings, nesting and size limits.

A condition nests at most ``MAX_NESTING`` levels (E004) and a file holds at most
``MAX_TOKENS`` tokens (E005); both are counted on the token stream, so the
parser never recurses. Every later stage walks a condition recursively, so
each one is run here on a condition of exactly ``MAX_NESTING`` levels, with a
few hundred frames already on the stack (as a CLI, a test runner or the
language server has), at Python's default recursion limit.
"""

from __future__ import annotations

import functools
import sys

import pytest

from audlang import ast
from audlang.diagnostics import render_text
from audlang.project import analyze
from audlang.syntax import format_source, parse_source
from audlang.syntax import parser as parser_module
from audlang.syntax.grammar import MAX_NESTING, MAX_TOKENS, Limits

N = MAX_NESTING


def segment(condition: str, name: str = "s") -> str:
    return f'segment "{name}" < {condition} >\n'


def codes(text: str) -> list[str]:
    _model, diagnostics = analyze({"t.aud": text})
    return [d.code for d in diagnostics]


# ------------------------------------------------------------------ byte-order mark and line endings


def test_a_byte_order_mark_is_skipped_and_columns_start_after_it():
    plain = segment("sms_opt_in and lifetime_revnue > 5")
    (without,) = analyze({"t.aud": plain})[1]
    (with_bom,) = analyze({"t.aud": "\ufeff" + plain})[1]
    assert with_bom == without
    assert (with_bom.span.line, with_bom.span.column) == (1, 30)
    rendered = render_text([with_bom], {"t.aud": "\ufeff" + plain})
    assert "1 | segment" in rendered  # the quoted line starts with the text, not with the mark


def test_a_byte_order_mark_elsewhere_is_a_syntax_error_that_names_it():
    (d,) = parse_source('segment "a" < \ufeffsms_opt_in >', "t.aud")[1]
    assert d.code == "E001" and "byte-order mark" in d.message and d.span.column == 15


def test_fmt_keeps_a_byte_order_mark_and_never_adds_one():
    messy = 'segment   "a"<sms_opt_in>\n'
    assert format_source("\ufeff" + messy)[0] == '\ufeffsegment "a" < sms_opt_in >\n'
    assert format_source(messy)[0] == 'segment "a" < sms_opt_in >\n'
    canonical = '\ufeffsegment "a" < sms_opt_in >\n'
    assert format_source(canonical)[0] == canonical


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_crlf_and_lone_cr_end_lines_with_the_same_columns(newline):
    text = '# c\nsegment "a" <\n  sms_opt_in\n  and lifetime_revnue > 5\n>\nsegment "b" < x >\n'
    expected = [(d.code, d.span) for d in analyze({"t.aud": text})[1]]
    assert [(d.code, d.span) for d in analyze({"t.aud": text.replace("\n", newline)})[1]] == expected
    assert [(c, s.line, s.column) for c, s in expected] == [("E101", 4, 7), ("E101", 6, 15)]
    parsed = parse_source(text.replace("\n", newline), "t.aud")[0]
    assert parsed.declarations[0].description == "c"


def test_fmt_keeps_crlf_line_endings():
    messy = 'segment   "a"<sms_opt_in>\r\n\r\n\r\nsegment "b" < x\r\n>\r\n'
    formatted = format_source(messy)[0]
    assert formatted == 'segment "a" < sms_opt_in >\r\n\r\nsegment "b" < x >\r\n'
    assert format_source(formatted)[0] == formatted
    assert "\r" not in format_source('segment "a" < sms_opt_in >\n')[0]


def test_a_control_character_is_named_by_its_code_and_never_printed_raw():
    text = 'segment "a" < sms_opt_in \x1b[2J and \x00 >'
    _model, diagnostics = analyze({"t.aud": text})
    assert [d.message for d in diagnostics] == ["unexpected character U+001B"]
    shown = render_text(diagnostics, {"t.aud": text})
    assert "\x1b" not in shown and "\x00" not in shown
    assert "1 | segment \"a\" < sms_opt_in \ufffd[2J and \ufffd >" in shown
    assert shown.splitlines()[2].index("^") == shown.splitlines()[1].index("\ufffd")


def test_a_very_long_line_is_shown_cut_around_the_fault():
    text = segment("sms_opt_in and " + "email_opt_in and " * 2000 + "lifetime_revnue > 1")
    _model, diagnostics = analyze({"t.aud": text})
    lines = render_text(diagnostics, {"t.aud": text}).splitlines()
    assert len(lines) == 4 and all(len(line) < 200 for line in lines)  # the last: help
    assert lines[2].strip() == "^" * len("lifetime_revnue")
    assert lines[1][lines[2].index("^"):].startswith("lifetime_revnue")


# ------------------------------------------------------------------ nesting

SHAPES = {
    "not": lambda n: "not " * n + "sms_opt_in",
    "parentheses": lambda n: "(" * n + "sms_opt_in" + ")" * n,
    "not and parentheses": lambda n: "(not " * (n - 1) + "sms_opt_in" + ")" * (n - 1),  # `not (` is one
    # an `or` and an `and` inside each parenthesis
    "or and": lambda n: "sms_opt_in or has_purchased within last 3 days and (" * n + "sms_opt_in" + ")" * n,
    # the deepest tree per level: a `not`, an `or` and an `and`
    "not or and": lambda n: "not (sms_opt_in or has_purchased within last 3 days and " * n + "sms_opt_in"
                            + ")" * n,
}


@pytest.mark.parametrize("condition", [
    "not " * 5000 + "sms_opt_in",
    "(not " * 3000 + "sms_opt_in" + ")" * 3000,
    "(" * 5000 + "sms_opt_in" + ")" * 5000,
    "sms_opt_in and (" * 3000 + "sms_opt_in" + ")" * 3000,
], ids=["not x 5000", "(not x 3000", "parentheses x 5000", "and ( x 3000"])
def test_nesting_thousands_deep_is_a_diagnostic_with_a_span(condition):
    text = '# described\nsegment "ok" < lifetime_revnue > 1 >\n' + segment(condition, "deep")
    model, diagnostics = analyze({"t.aud": text})
    deep = [d for d in diagnostics if d.code == "E004"]
    assert len(deep) == 1
    (d,) = deep
    assert d.message == f"this condition is nested deeper than {N} levels"
    assert d.span.line == 3 and d.span.end_line == 3 and d.span.column > N
    # the other declaration still reaches the checker
    assert [x.code for x in diagnostics if x is not d] == ["E101"]
    assert "deep" not in model.segments
    assert format_source(text)[0] is None


@pytest.mark.parametrize("shape", SHAPES, ids=list(SHAPES))
def test_exactly_the_limit_parses_and_one_more_is_refused(shape):
    assert codes(segment(SHAPES[shape](N))) == []
    assert codes(segment(SHAPES[shape](N + 1))) == ["E004"]


def test_what_does_not_nest_does_not_count():
    # `not in` and `is not set` are no negations, a value list no group; `and`/`or` end the operands
    # of the `not`s before them
    chain = " and ".join(["not " * (N - 1) + 'postal not in ("1")', "not " * N + "email is not set",
                          "not " * N + 'state in ("OR", "WA")'] * 3)
    assert codes(segment(chain)) == []
    siblings = " or ".join(["(" * N + "sms_opt_in" + ")" * N] * 3)
    assert codes(segment(siblings)) == []
    assert codes(segment("(" * (N - 1) + "not " + "sms_opt_in" + ")" * (N - 1))) == []
    # `not (…)` is one level: the formatter's parentheses in `not (state = "OR")` add none
    assert codes(segment("not (" * N + "sms_opt_in" + ")" * N)) == []
    at_the_limit = segment("not " * N + 'state = "OR"')
    formatted, _ = format_source(at_the_limit)
    assert formatted is not None and "not not (state = \"OR\")" in formatted


def test_the_nesting_is_counted_in_each_declaration_of_a_file_with_syntax_errors():
    text = segment("sms_opt_in and") + segment("not " * (N + 1) + "sms_opt_in", "deep") + segment("x", "x")
    assert codes(text) == ["E001", "E004", "E101"]


def _run_with_frames_in_use(frames: int, stage):
    """``stage()`` called ``frames`` calls deep, as a CLI, pytest or the language server would call it."""
    def down(left: int):
        return stage() if left == 0 else down(left - 1)
    return down(frames)


def _stages():
    import datetime as dt

    from audlang.compile import AsOf
    from audlang.compile.render import dialect_for, segment_sql
    from audlang.evaluate import insights_query, members_query
    from audlang.explain import explain_query
    from audlang.plan.desired import desired_from_model

    as_of = AsOf.of_date(dt.date(2024, 6, 1))
    dialects = ["duckdb", "sqlite", "postgresql", "snowflake", "bigquery", "trino", "hive"]

    def all_sql(model):
        for dialect in dialects:
            segment_sql(model, "s", dialect, as_of)

    def compiled(query_of):
        return lambda model: str(query_of(model).compile(dialect=dialect_for("duckdb")))

    return {
        "sql": all_sql,
        "explain": compiled(lambda model: explain_query(model, "s", "c1", as_of)[0]),
        "members": compiled(lambda model: members_query(model, "s", as_of)),
        "insights": compiled(lambda model: insights_query(model, "s", as_of)),
        "plan": lambda model: desired_from_model(model, {}),
        "values": lambda model: (repr(model.segments["s"]), hash(model.segments["s"])),
    }


@pytest.mark.parametrize("shape", ["not", "or and", "not or and"])
def test_every_later_stage_takes_a_condition_at_the_limit(shape):
    assert sys.getrecursionlimit() >= 1000
    text = segment(SHAPES[shape](N))
    model, diagnostics = _run_with_frames_in_use(250, lambda: analyze({"t.aud": text}))
    assert diagnostics == []
    formatted, _ = _run_with_frames_in_use(250, lambda: format_source(text))
    assert formatted is not None
    for stage in _stages().values():
        _run_with_frames_in_use(250, functools.partial(stage, model))


# ------------------------------------------------------------------ long chains and size


def test_a_chain_of_50000_terms_is_one_flat_node():
    text = segment(" and ".join(["sms_opt_in", "email_opt_in"] * 25_000))
    model, diagnostics = analyze({"t.aud": text})
    assert diagnostics == []
    condition = model.segments["s"].condition
    assert isinstance(condition, ast.And) and len(condition.operands) == 50_000
    assert all(isinstance(o, ast.BooleanAttribute) for o in condition.operands)


def test_a_long_chain_goes_through_every_later_stage():
    text = segment(" or ".join(["sms_opt_in and not email_opt_in", "lifetime_revenue > 5"] * 250))
    model, diagnostics = analyze({"t.aud": text})
    assert diagnostics == []
    assert format_source(text)[0] is not None
    for stage in _stages().values():
        stage(model)


def test_a_file_past_the_token_limit_is_one_diagnostic(monkeypatch):
    monkeypatch.setattr(parser_module, "Limits", functools.partial(Limits, tokens=60))
    fine = segment(" and ".join(["sms_opt_in"] * 25))  # 55 tokens
    assert codes(fine) == []
    big = segment(" and ".join(["sms_opt_in"] * 40))
    (d,) = analyze({"t.aud": big})[1]
    assert d.code == "E005" and d.message == "this file holds more than 60 tokens (names, keywords, values and symbols)"
    assert d.span.line == 1 and d.span.column > 1
    # also when a syntax error sent the parser through the file declaration by declaration
    broken = segment("sms_opt_in and") + big
    assert [x.code for x in analyze({"t.aud": broken})[1]] == ["E005"]


def test_the_token_limit_leaves_room_for_every_hand_written_file():
    assert MAX_TOKENS >= 100_010  # a 50,000-term chain
