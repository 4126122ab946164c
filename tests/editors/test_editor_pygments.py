"""The Pygments lexer: registered through its entry point, no Error token on any example, token classes right."""

from __future__ import annotations

import pygments.lexers
from pygments.token import Comment, Error, Keyword, Literal, Name, Number, Operator, Punctuation, String

from audlang.pygments_lexer import AudlangLexer
from language_tokens import EXAMPLE_FILES, Token, all_tokens

KEYWORD_TYPES = {
    "declaration": Keyword.Declaration,
    "paused": Keyword.Declaration,
    "logical": Operator.Word,
    "boolean": Keyword.Constant,
    "date": Literal.Date,
    "type": Keyword.Type,
    "unit": Keyword.Pseudo,
    "function": Name.Builtin,
    "keyword": Keyword,
}
ROLE_TYPES = {
    "setting_key": {Name.Attribute},
    "string": {String.Double, String.Escape},
    "declared_name": {Name.Class},
    "number": {Number, Number.Integer, Number.Float},
    "date": {Literal.Date},
    "comparison": {Operator},
    "assignment": {Operator},
    "arithmetic": {Operator},
    "block_open": {Punctuation},
    "block_close": {Punctuation},
    "punctuation": {Punctuation},
    "name": {Name.Variable, Name.Builtin},
    "comment": {Comment.Single},
    "doc_comment": {String.Doc},
}


def expected_types(token: Token) -> set:
    return {KEYWORD_TYPES[token.detail]} if token.role == "keyword" else ROLE_TYPES[token.role]


def test_the_entry_point_registers_the_lexer():
    assert isinstance(pygments.lexers.get_lexer_by_name("audlang"), AudlangLexer)
    assert isinstance(pygments.lexers.get_lexer_for_filename("segments.aud"), AudlangLexer)


def test_no_error_token_on_any_example():
    lexer = AudlangLexer()
    for path in EXAMPLE_FILES:
        errors = [(i, v) for i, t, v in lexer.get_tokens_unprocessed(path.read_text(encoding="utf-8")) if t in Error]
        assert errors == [], f"{path}: {errors[:5]}"


def test_every_token_of_every_example_gets_its_class():
    lexer = AudlangLexer(stripnl=False)
    problems = []
    for path, tokens in all_tokens().items():
        lexed = list(lexer.get_tokens_unprocessed(path.read_text(encoding="utf-8")))
        for token in tokens:
            start, end = token.offset, token.offset + len(token.text)
            found = {t for i, t, v in lexed if i < end and i + len(v) > start}
            wanted = expected_types(token)
            if not found <= wanted:
                problems.append(f"{path.name}:{token.line}:{token.column}: {token.role} {token.text!r}: "
                                f"{sorted(map(str, found))}, expected {sorted(map(str, wanted))}")
    assert not problems, "\n".join(problems[:40])
