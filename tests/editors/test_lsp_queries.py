"""The language server's answers as plain functions, without a server (``audlang.lsp.queries``).

One small project in memory, then a table of cases per feature: a position (0-based
line and character) and what the query answers there. Positions here count
characters; the end-to-end tests in ``test_editor_lsp.py`` check what a real client
gets in its own units.
"""

from __future__ import annotations

import attrs
import pytest
from lsprotocol import types

from audlang.diagnostics import Diagnostic, Severity, Span
from audlang.lsp import analysis as lsp_analysis
from audlang.lsp import queries, text

KEY = "untitled:doc.aud"  # not a path: nothing is read from disk
DOC = '''\
# Customers who spent a lot.
segment "Big Spenders" <
  lifetime_revenue > 500
>

segment "Loyal" <
  lifetime_orders >= 2
  and in segment "Big Spenders"
  and churn_score < 0.5
>

# The mail vendor's file.
destination "Mail" csv <
  path = "out/mail.csv"
>

table churn_scores from "churn_scores" <
  churn_score number = "score"
>

campaign "Spring" <
  audience segment "Loyal"
  treatment "All" 100% to "Mail"
>
'''


@pytest.fixture(scope="module")
def analysis() -> lsp_analysis.ProjectAnalysis:
    found = lsp_analysis.analyze(None, {KEY: DOC})
    assert found.diagnostics == ()
    return found


def position(line: int, character: int) -> types.Position:
    return types.Position(line=line, character=character)


def range_(line: int, start: int, end_line: int, end: int) -> types.Range:
    return types.Range(start=position(line, start), end=position(end_line, end))


# --------------------------------------------------------------------------- lines and what is under the cursor


@pytest.mark.parametrize(("source", "lines"), [
    ("", [""]),
    ("a\nb", ["a\n", "b"]),
    ("a\r\nb\r\n", ["a\r\n", "b\r\n"]),
    ("a\rb\n\nc", ["a\r", "b\n", "\n", "c"]),
    ("a\x0cb\u2028c\x85d\n", ["a\x0cb\u2028c\x85d\n"]),  # only \n, \r\n and \r end a line, as in LSP
])
def test_lines_are_split_where_lsp_splits_them(source, lines):
    assert text.lines_of(source) == lines


@pytest.mark.parametrize(("line", "column", "expected"), [
    ('  and in segment "Big Spenders"', 20, text.QuotedName("segment", "Big Spenders", 17, 31)),
    ('  and in segment "Big Spenders"', 17, text.QuotedName("segment", "Big Spenders", 17, 31)),
    ('  and in segment "Big Spenders"', 31, None),  # after the closing quote
    ('  and in segment "Bi', 20, text.QuotedName("segment", "Bi", 17, 20)),  # unclosed, at its end
    ('  treatment "All" 100% to "Mail", "Braze"', 36, text.QuotedName("destination", "Braze", 34, 41)),
    ('  treatment "All" 100% to "Mail"', 13, text.QuotedName(None, "All", 12, 17)),
    ('moved segment "Old" to "New"', 25, text.QuotedName("segment", "New", 23, 28)),
    ('destination "Mail" csv <', 14, text.QuotedName("destination", "Mail", 12, 18)),
    ('  path = "out/mail.csv"', 12, text.QuotedName(None, "out/mail.csv", 9, 23)),
    ('segment "A \\" B" <', 12, text.QuotedName("segment", 'A " B', 8, 16)),
    ("  lifetime_revenue > 500", 5, None),
])
def test_the_quoted_name_under_the_cursor(line, column, expected):
    assert text.quoted_name_at(line, column) == expected


@pytest.mark.parametrize(("line", "column", "expected"), [
    ("  lifetime_revenue > 500", 2, ("lifetime_revenue", 2, 18)),
    ("  lifetime_revenue > 500", 18, ("lifetime_revenue", 2, 18)),  # just after the word still counts
    ("  lifetime_revenue > 500", 19, None),
    ("  lifetime_revenue > 500", 0, None),
])
def test_the_word_under_the_cursor(line, column, expected):
    assert text.word_at(line, column) == expected


# --------------------------------------------------------------------------- diagnostics

TYPO = 'segment "Loyal" <\n  lifetime_revnue > 500\n>\n'
BOM_TYPO = '\ufeffsegment "A" < lifetime_revnue > 1 >\n'
SPAN_OF_TYPO = range_(1, 2, 1, 17)
BOM_START = len('segment "A" < ')


def _codes_and_ranges(found):
    return {key: [(d.code, d.range) for d in items] for key, items in found.items()}


@pytest.mark.parametrize(("sources", "open_keys", "expected"), [
    pytest.param({"a.aud": TYPO}, {"a.aud"}, {"a.aud": [("E101", SPAN_OF_TYPO)]}, id="an open document's error"),
    pytest.param({"a.aud": 'segment "A" < sms_opt_in >\n'}, {"a.aud"}, {"a.aud": []},
                 id="an open document without problems gets an empty list, so old ones clear"),
    pytest.param({"a.aud": 'segment "A" < sms_opt_in >\n', "b.aud": 'segment "B" < sms_opt_in >\n'}, {"a.aud"},
                 {"a.aud": []}, id="a file on disk without problems is left out"),
    pytest.param({"a.aud": 'segment "A" < sms_opt_in >\n', "b.aud": TYPO}, {"a.aud"},
                 {"a.aud": [], "b.aud": [("E101", SPAN_OF_TYPO)]}, id="a file on disk with an error"),
    pytest.param({"a.aud": BOM_TYPO}, {"a.aud"},
                 {"a.aud": [("E101", range_(0, BOM_START + 1, 0, BOM_START + 1 + len("lifetime_revnue")))]},
                 id="a byte-order mark in an open document is its first character"),
    pytest.param({"a.aud": 'segment "Z" < sms_opt_in >\n', "b.aud": BOM_TYPO}, {"a.aud"},
                 {"a.aud": [], "b.aud": [("E101", range_(0, BOM_START, 0, BOM_START + len("lifetime_revnue")))]},
                 id="a file on disk is shown without its byte-order mark"),
])
def test_diagnostics_by_document(sources, open_keys, expected):
    found = queries.diagnostics_by_document(lsp_analysis.analyze(None, sources), open_keys)
    assert _codes_and_ranges(found) == expected


def test_a_diagnostic_without_a_place_is_shown_at_the_top_of_each_open_document():
    analysis = lsp_analysis.analyze(None, {"a.aud": 'segment "A" < sms_opt_in >\n', "b.aud": TYPO,
                                           "c.aud": 'segment "C" < sms_opt_in >\n'})
    broken_config = Diagnostic.sourceless("E900", "audlang.toml: not TOML", subject="audlang.toml")
    analysis = attrs.evolve(analysis, diagnostics=(*analysis.diagnostics, broken_config))
    found = queries.diagnostics_by_document(analysis, {"a.aud", "c.aud"})
    top = range_(0, 0, 0, 0)
    assert _codes_and_ranges(found) == {"a.aud": [("E900", top)], "b.aud": [("E101", SPAN_OF_TYPO)],
                                        "c.aud": [("E900", top)]}
    assert found["a.aud"][0].message == "audlang.toml: audlang.toml: not TOML"  # the subject comes first


@pytest.mark.parametrize(("diagnostic", "severity", "message"), [
    (Diagnostic(Severity.ERROR, "E101", "unknown attribute", Span("a", 1, 1, 1, 2), "did you mean x?"),
     types.DiagnosticSeverity.Error, "unknown attribute\nhelp: did you mean x?"),
    (Diagnostic(Severity.WARNING, "W201", "unused", Span("a", 1, 1, 1, 2)), types.DiagnosticSeverity.Warning,
     "unused"),
    (Diagnostic(Severity.INFO, "I1", "note", Span("a", 1, 1, 1, 2)), types.DiagnosticSeverity.Information, "note"),
])
def test_a_diagnostic_as_lsp_shows_it(diagnostic, severity, message):
    shown = queries.to_diagnostic(diagnostic, range_(0, 0, 0, 1))
    assert (shown.severity, shown.message, shown.code, shown.source) == (severity, message, diagnostic.code,
                                                                         "audlang")


def test_an_internal_error_names_the_bug_on_one_line():
    d = queries.internal_error(RuntimeError("broke\n  here " + "x" * 300))
    assert d.code == "internal" and d.span is None
    assert d.message.startswith("internal error (RuntimeError: broke here xxx")
    assert "…) while checking this project; please report it to audlang (version " in d.message


# --------------------------------------------------------------------------- completion


def _labels(items) -> list[str]:
    return [item.label for item in items]


@pytest.mark.parametrize(("source", "line", "character", "included", "excluded"), [
    pytest.param(DOC, 6, 2, {"lifetime_revenue", "churn_score", "within", "has_purchased"}, {"Big Spenders"},
                 id="a condition: attributes and keywords"),
    pytest.param('segment "A" <\n  in segment "\n>\n', 1, 14, {"Big Spenders", "Loyal"},
                 {"Mail", "Spring", "lifetime_revenue"}, id="in a segment's quotes: segments"),
    pytest.param('segment "A" <\n  in segment \n>\n', 1, 13, {"Big Spenders", "Loyal"}, {"Mail", "within"},
                 id="after in segment: segments"),
    pytest.param('campaign "C" <\n  treatment "All" 100% to "\n>\n', 1, 27, {"Mail"}, {"Loyal"},
                 id="after to: destinations"),
    pytest.param('campaign "C" <\n  treatment "All" 100% to "Mail", \n>\n', 1, 34, {"Mail"}, {"Loyal"},
                 id="after to and a comma: destinations"),
    pytest.param('destination "D" klaviyo <\n  \n>\n', 1, 2, {"api_key", "list_id", "mode", "header"},
                 {"path", "lifetime_revenue", "segment"}, id="a destination's body: its kind's settings"),
    pytest.param('destination "D" csv <\n  \n>\n', 1, 2, {"path", "identifiers"}, {"api_key"},
                 id="a csv destination's body"),
    pytest.param('destination "D" csv <\n  mode = \n>\n', 1, 9, {"mirror", "add"}, {"path"},
                 id="a setting's choices"),
    pytest.param('destination "D" csv <\n  identifiers = (email, \n>\n', 1, 24, {"customer_id", "email", "phone"},
                 set(), id="a list setting's choices"),
    pytest.param('destination "D" csv <\n  path = "x"\n>\nsegment "A" <\n  \n>\n', 4, 2, {"lifetime_revenue"},
                 {"path"}, id="after a destination's closing line"),
    pytest.param('segment "A" < # in segment "\n>\n', 0, 28, set(), {"Loyal", "lifetime_revenue"},
                 id="in a comment: nothing"),
    pytest.param('segment "A" < tagged "\n>\n', 0, 22, set(), {"Loyal", "lifetime_revenue"},
                 id="in a string that names nothing: nothing"),
])
def test_completions(analysis, source, line, character, included, excluded):
    labels = set(_labels(queries.completions(analysis, source, line, character)))
    assert included <= labels
    assert not (excluded & labels)


def test_a_setting_completion_says_what_it_takes():
    items = {i.label: i for i in queries.completions(
        lsp_analysis.analyze(None, {}), 'destination "D" klaviyo <\n  \n>\n', 1, 2)}
    assert (items["api_key"].detail, items["api_key"].insert_text) == ('text, required, secret: use env("…")',
                                                                       'api_key = env("$1")')
    assert items["api_key"].insert_text_format == types.InsertTextFormat.Snippet
    assert (items["mode"].detail, items["mode"].insert_text) == ("word", "mode = $1")
    assert items["api_key"].sort_text < items["mode"].sort_text  # required settings first


@pytest.mark.parametrize(("source", "line", "character", "label", "new_text", "edit_range"), [
    pytest.param('segment "A" <\n  in segment "Bi\n>\n', 1, 16, "Big Spenders", 'Big Spenders"', range_(1, 14, 1, 16),
                 id="replaces what was typed and closes the string"),
    pytest.param('segment "A" <\n  in segment "Bi"\n>\n', 1, 16, "Big Spenders", "Big Spenders", range_(1, 14, 1, 16),
                 id="a closing quote already there is kept"),
    pytest.param('segment "🎉" < in segment "\n>\n', 0, 26, "Loyal", 'Loyal"', range_(0, 26, 0, 26),
                 id="characters, not UTF-16 units"),
])
def test_a_name_completion_edits_the_string(analysis, source, line, character, label, new_text, edit_range):
    items = {i.label: i for i in queries.completions(analysis, source, line, character)}
    edit = items[label].text_edit
    assert (edit.new_text, edit.range) == (new_text, edit_range)


def test_name_completions_carry_their_kind_and_description(analysis):
    items = {i.label: i for i in queries.completions(analysis, 'campaign "C" <\n  audience segment \n>\n', 1, 19)}
    big = items["Big Spenders"]
    assert (big.kind, big.detail, big.insert_text) == (types.CompletionItemKind.Class, "segment", '"Big Spenders"')
    assert big.documentation.value == "Customers who spent a lot."
    assert items["Loyal"].documentation is None
    (mail,) = queries.completions(analysis, 'campaign "C" <\n  treatment "All" 100% to \n>\n', 1, 26)
    assert (mail.label, mail.kind, mail.detail) == ("Mail", types.CompletionItemKind.Interface, "destination (csv)")


def test_attribute_completions_have_their_types(analysis):
    items = {i.label: i for i in queries.completions(analysis, DOC, 6, 2)}
    assert (items["lifetime_revenue"].kind, items["lifetime_revenue"].detail) == (types.CompletionItemKind.Field,
                                                                                  "number")
    assert items["churn_score"].detail == "number"  # from the document's own table mapping
    assert items["within"].kind == types.CompletionItemKind.Keyword
    assert items["lifetime_revenue"].sort_text < items["within"].sort_text  # attributes before keywords


# --------------------------------------------------------------------------- hover and definition

BIG_SPENDERS_TEXT = ('**segment** "Big Spenders"\n\nCustomers who spent a lot.\n\n'
                     '```audlang\nsegment "Big Spenders" <\n  lifetime_revenue > 500\n>\n```')


@pytest.mark.parametrize(("line", "character", "expected"), [
    pytest.param(7, 20, BIG_SPENDERS_TEXT, id="a quoted segment name"),
    pytest.param(2, 4, "**lifetime_revenue**: number\n\nDerived from orders dated on or before the as-of date.",
                 id="a derived attribute"),
    pytest.param(8, 8, "**churn_score**: number\n\nColumn `churn_score` of table `churn_scores` "
                       "(in the warehouse: `churn_scores.score`), a custom table.", id="a custom attribute"),
    pytest.param(16, 8, "**table churn_scores**: `churn_scores` in the warehouse\n\n"
                        "Columns: `customer_id` (text), `churn_score` (number).", id="a table mapping"),
    pytest.param(22, 28, "**destination** \"Mail\" (csv)\n\nThe mail vendor's file.\n\n"
                         "```audlang\ndestination \"Mail\" csv <\n  path = \"out/mail.csv\"\n>\n```",
                 id="a destination after to"),
    pytest.param(7, 6, None, id="a keyword"),
    pytest.param(22, 14, None, id="a group's name names no declaration"),
    pytest.param(0, 4, None, id="a comment"),
    pytest.param(99, 0, None, id="past the last line"),
])
def test_hover(analysis, line, character, expected):
    assert queries.hover(analysis, DOC, line, character) == expected


def test_hover_on_a_long_declaration_shows_its_first_twelve_lines():
    long = 'segment "Long" <\n' + "  sms_opt_in and\n" * 20 + "  sms_opt_in\n>\n"
    analysis = lsp_analysis.analyze(None, {KEY: long})
    shown = queries.hover(analysis, 'segment "X" < in segment "Long" >\n', 0, 27)
    assert shown.endswith("  sms_opt_in and\n…\n```")
    assert shown.count("\n  sms_opt_in and") == 11


@pytest.mark.parametrize(("line", "character", "expected"), [
    pytest.param(7, 20, Span(KEY, 2, 9, 2, 23), id="a segment, at its quoted name"),
    pytest.param(21, 22, Span(KEY, 6, 9, 6, 16), id="the campaign's audience"),
    pytest.param(22, 28, Span(KEY, 13, 13, 13, 19), id="a destination after to"),
    pytest.param(8, 8, Span(KEY, 18, 3, 18, 31), id="a custom attribute, at its column mapping"),
    pytest.param(16, 8, Span(KEY, 17, 7, 17, 19), id="a table, at its name"),
    pytest.param(2, 4, None, id="a standard attribute has no declaration"),
    pytest.param(22, 14, None, id="a group's name"),
    pytest.param(99, 0, None, id="past the last line"),
])
def test_definition(analysis, line, character, expected):
    assert queries.definition(analysis, DOC, line, character) == expected


# --------------------------------------------------------------------------- symbols, semantic tokens, formatting


def test_document_symbols():
    symbols = queries.document_symbols(DOC, KEY)
    assert [(s.name, s.kind, s.detail, s.range.start.line, s.range.end.line) for s in symbols] == [
        ("Big Spenders", types.SymbolKind.Class, "segment", 1, 3),
        ("Loyal", types.SymbolKind.Class, "segment", 5, 9),
        ("Mail", types.SymbolKind.Interface, "destination (csv)", 12, 14),
        ("churn_scores", types.SymbolKind.Struct, "table", 16, 18),
        ("Spring", types.SymbolKind.Event, "campaign", 20, 23),
    ]
    assert symbols[0].selection_range == range_(1, 8, 1, 22)  # the quoted name
    children = {s.name: [(c.name, c.kind, c.detail) for c in s.children or ()] for s in symbols}
    assert children == {
        "Big Spenders": [], "Loyal": [],
        "Mail": [("path", types.SymbolKind.Property, None)],
        "churn_scores": [("churn_score", types.SymbolKind.Field, "number")],
        "Spring": [("All", types.SymbolKind.EnumMember, "treatment")],
    }


@pytest.mark.parametrize(("source", "expected"), [
    pytest.param('paused segment "P" < sms_opt_in >\n', [("P", "segment, paused")], id="paused"),
    pytest.param('moved segment "Old" to "New"\n', [("Old → New", "moved segment")], id="moved"),
    pytest.param('segment "A" < sms_opt_in\n', [], id="a document that does not parse"),
    pytest.param('\ufeffsegment "A" < sms_opt_in >\n', [("A", "segment")], id="a byte-order mark"),
])
def test_document_symbols_of_each_kind(source, expected):
    symbols = queries.document_symbols(source, KEY)
    assert [(s.name, s.detail) for s in symbols] == expected


def test_a_byte_order_mark_moves_symbols_on_the_first_line():
    (symbol,) = queries.document_symbols('\ufeffsegment "A" < sms_opt_in >\n', KEY)
    assert symbol.selection_range == range_(0, 9, 0, 12)


@pytest.mark.parametrize(("source", "units", "expected"), [
    pytest.param(DOC, len, [0, 0, 28, 0, 1, 11, 0, 25, 0, 1], id="relative lines; comment, documentation"),
    pytest.param("# a\n# b\nsegment \"A\" < sms_opt_in >\n", len, [0, 0, 3, 0, 1, 1, 0, 3, 0, 1],
                 id="every comment line of a description"),
    pytest.param("# file header\n\n# A.\nsegment \"A\" < sms_opt_in >\n", len, [2, 0, 4, 0, 1],
                 id="not a comment apart from the declaration"),
    pytest.param("  # 🎉 ok\nsegment \"A\" < sms_opt_in >\n", len, [0, 2, 6, 0, 1], id="in characters"),
    pytest.param("  # 🎉 ok\nsegment \"A\" < sms_opt_in >\n", lambda s: len(s.encode("utf-16-le")) // 2,
                 [0, 2, 7, 0, 1], id="in the client's units"),
    pytest.param("\ufeff# A.\nsegment \"A\" < sms_opt_in >\n", len, [0, 1, 4, 0, 1], id="after a byte-order mark"),
    pytest.param("segment \"A\" < sms_opt_in >\n", len, [], id="none"),
])
def test_semantic_tokens_mark_descriptions(source, units, expected):
    assert queries.semantic_token_data(source, KEY, units) == expected


@pytest.mark.parametrize(("source", "expected"), [
    pytest.param('segment   "Big"<lifetime_revenue>500 and\n   sms_opt_in>\n',
                 [types.TextEdit(range=range_(0, 0, 2, 0),
                                 new_text='segment "Big" < lifetime_revenue > 500 and sms_opt_in >\n')],
                 id="one edit over the whole document"),
    pytest.param('segment "Big" < lifetime_revenue > 500 >\n', [], id="canonical already"),
    pytest.param('\ufeffsegment "Big" < lifetime_revenue > 500 >\n', [], id="canonical with a byte-order mark"),
    pytest.param('segment "Big" < lifetime_revenue > 500\n', None, id="does not parse: left alone"),
])
def test_formatting_edits(source, expected):
    assert queries.formatting_edits(source, KEY) == expected


SCORES = '''\
# How engaged a customer is.
score "Engagement" <
  3 points if tagged "VIP"
  1 point if email_opt_in
>

segment "Engaged" <
  score "Engagement" >= 3
  and score "Engagement" < 10
>
'''


@pytest.fixture(scope="module")
def scored() -> lsp_analysis.ProjectAnalysis:
    return lsp_analysis.analyze(None, {KEY: SCORES})


def test_a_score_is_completed_hovered_and_found_like_a_segment(scored):
    typing = SCORES.replace('and score "Engagement" < 10', "and score ")  # just typed
    items = queries.completions(scored, typing, 8, len("  and score "))
    assert [(i.label, i.insert_text, i.kind) for i in items] == [
        ("Engagement", '"Engagement"', types.CompletionItemKind.Value)]
    assert items[0].documentation.value == "How engaged a customer is."
    inside = queries.completions(scored, SCORES, 7, len('  score "Eng'))
    assert [i.label for i in inside] == ["Engagement"]
    shown = queries.hover(scored, SCORES, 7, len('  score "En'))
    assert shown.startswith('**score** "Engagement"\n\nHow engaged a customer is.') and "3 points if" in shown
    assert queries.definition(scored, SCORES, 7, len('  score "En')) == Span(KEY, 2, 7, 2, 19)
    # at the start of a line, `score ` begins a declaration: no names offered
    assert all(i.kind != types.CompletionItemKind.Value for i in queries.completions(scored, "score \n", 0, 6))


def test_a_score_in_the_outline_lists_its_items():
    (score, segment) = queries.document_symbols(SCORES, KEY)
    assert (score.name, score.kind, score.detail) == ("Engagement", types.SymbolKind.Variable, "score")
    assert [(c.name, c.detail) for c in score.children] == [('3 points if tagged "VIP"', "item"),
                                                            ("1 point if email_opt_in", "item")]
    assert segment.name == "Engaged"
