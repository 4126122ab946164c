"""The VS Code grammar, run by VS Code's own TextMate engine over every example file.

Each token of the language (as the parser's lexer reads it) must get the scope
of its class; nothing may be scoped `invalid`, and no character may be left
without a scope.
"""

from __future__ import annotations

import json

import pytest

from highlighters import TEXTMATE_GRAMMAR, textmate_tokens
from language_tokens import EXAMPLE_FILES, Token, all_tokens, roles_seen

KEYWORD_SCOPES = {
    "declaration": "keyword.control",  # keyword.control.declaration, or keyword.control after `in`/`audience`
    "paused": "storage.modifier.paused",
    "logical": "keyword.operator.logical",
    "boolean": "constant.language.boolean",
    "date": "constant.other.date",
    "type": "storage.type",
    "unit": "keyword.other.unit",
    "function": "support.function",
    "keyword": "keyword.control",
}
ROLE_SCOPES = {
    "setting_key": ("variable.other.property",),
    "string": ("string.quoted.double",),
    "number": ("constant.numeric",),
    "date": ("constant.other.date",),
    "comparison": ("keyword.operator.comparison",),
    "assignment": ("keyword.operator.assignment",),
    "block_open": ("punctuation.section.block.begin",),
    "block_close": ("punctuation.section.block.end",),
    "name": ("variable.other", "support.type.destination-kind"),
    "arithmetic": ("keyword.operator.arithmetic",),
    "punctuation": ("punctuation.separator", "punctuation.section.parens"),
    "comment": ("comment.line.number-sign",),
    "doc_comment": ("comment.line.number-sign",),
}


def expected_scopes(token: Token) -> tuple[str, ...]:
    if token.role == "keyword":
        return (KEYWORD_SCOPES[token.detail],)
    if token.role == "declared_name":
        return (f"entity.name.type.{token.detail}",)
    return ROLE_SCOPES[token.role]


@pytest.fixture(scope="module")
def tokenized():
    return textmate_tokens(EXAMPLE_FILES)


def _spans(lines: list[list[dict]]):
    """(offset, text, scopes) of every TextMate token, offsets counted over the whole file."""
    offset = 0
    for line in lines:
        column = offset
        for token in line:
            yield column, token["text"], token["scopes"]
            column += len(token["text"])
        offset = column + 1  # the newline


def test_every_example_is_tokenized_with_the_scopes_of_its_token_classes(tokenized):
    reference = all_tokens()
    assert roles_seen(reference) >= set(ROLE_SCOPES) | {"keyword", "declared_name"}
    problems = []
    for path in EXAMPLE_FILES:
        spans = list(_spans(tokenized[path]))
        for token in reference[path]:
            start, end = token.offset, token.offset + len(token.text)
            if token.role == "declared_name" and token.text.startswith('"'):
                start, end = start + 1, end - 1  # the quotes are punctuation of the string
            covering = [(text, scopes) for offset, text, scopes in spans
                        if offset < end and offset + len(text) > start]
            assert covering, f"{path}:{token.line}:{token.column}: no TextMate token"
            wanted = expected_scopes(token)
            for text, scopes in covering:
                if not any(scope.startswith(w) for scope in scopes for w in wanted):
                    problems.append(f"{path.name}:{token.line}:{token.column}: {token.role} {token.text!r}: "
                                    f"{text!r} has {scopes[1:]}, expected {' or '.join(wanted)}")
                if token.role == "string" and any(s.startswith("entity.name") for s in scopes):
                    problems.append(f"{path.name}:{token.line}:{token.column}: a reference scoped as a declaration")
    assert not problems, "\n".join(problems[:40])


def test_no_character_is_left_unscoped_or_invalid(tokenized):
    for path, lines in tokenized.items():
        for number, line in enumerate(lines, start=1):
            for token in line:
                assert not any("invalid" in s for s in token["scopes"]), (path, number, token)
                if token["text"].strip():
                    assert len(token["scopes"]) > 1, f"{path}:{number}: {token['text']!r} has no scope"


def test_the_canonical_lines_tell_the_closing_bracket_from_the_comparison(tmp_path):
    sample = tmp_path / "canonical.aud"
    sample.write_text(
        'segment "Holiday Shoppers - SMS" < has_purchased between 2023-11-01 and 2023-12-31 and sms_opt_in >\n'
        'segment "Big Spenders" < lifetime_revenue > 500 >\n'
    )
    first, second, _ = textmate_tokens([sample])[sample]
    scopes = {(t["text"], t["scopes"][-1]) for t in first}
    assert ("2023-11-01", "constant.other.date.audlang") in scopes
    assert ("Holiday Shoppers - SMS", "entity.name.type.segment.audlang") in scopes
    assert [t["scopes"][-1] for t in first if t["text"] in ("<", ">")] == [
        "punctuation.section.block.begin.audlang", "punctuation.section.block.end.audlang"]
    assert [t["scopes"][-1] for t in second if t["text"].strip() in ("<", ">")] == [
        "punctuation.section.block.begin.audlang", "keyword.operator.comparison.audlang",
        "punctuation.section.block.end.audlang"]


def test_the_grammar_says_why_it_has_no_doc_comment_scope():
    grammar = json.loads(TEXTMATE_GRAMMAR.read_text())
    assert grammar["scopeName"] == "source.audlang"
    assert "cannot be expressed in TextMate" in grammar["comment"]
