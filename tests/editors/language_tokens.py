"""The reference the highlighters are tested against: the language's own lexer.

Every example file is lexed with the parser's Lark lexer (post-lexer
included, so a comparison `>` and a closing `>` are told apart as the parser
does), and each token gets a *role*: the class a highlighter must give it.
A highlighter test then asks its highlighter what it made of the same
characters. Comments come from the parser's comment scanner, and the comment
lines that describe a declaration from the parser's own descriptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from helpers import EXAMPLES

from audlang.syntax import parse_source
from audlang.syntax.grammar import keywords, parser
from audlang.syntax.parser import _DECLARATION_START

ROOT = EXAMPLES.parent
EXAMPLE_FILES = sorted(EXAMPLES.rglob("*.aud"))

# Keyword classes shared by the three highlighters (the rest of the grammar's keywords are "keyword").
KEYWORD_CLASSES = {
    "declaration": {"segment", "score", "destination", "campaign", "table", "moved"},
    "paused": {"paused"},
    "logical": {"and", "or", "not"},
    "boolean": {"true", "false"},
    "date": {"today"},
    "type": {"text", "number", "integer", "boolean", "date", "timestamp"},
    "unit": {"hour", "hours", "day", "days", "week", "weeks", "month", "months", "year", "years",
             "mile", "miles", "km"},
    "function": {"env"},
}
VALUE_TOKENS = {"STRING", "NUMBER", "DATE", "MONTH_DAY", "HOLIDAY", "MINUS", "TODAY", "TRUE", "FALSE"}


def keyword_class(word: str) -> str:
    return next((name for name, words in KEYWORD_CLASSES.items() if word in words), "keyword")


@dataclass(frozen=True)
class Token:
    role: str  # see roles() below
    detail: str  # the keyword class, or the kind of declared name
    text: str
    line: int  # 1-based
    column: int  # 1-based, in characters
    offset: int  # 0-based, in characters, from the start of the file


ROLES = ("keyword", "setting_key", "string", "declared_name", "number", "date", "comparison", "assignment",
         "block_open", "block_close", "name", "arithmetic", "punctuation", "comment", "doc_comment")


def _offsets(text: str) -> list[int]:
    starts, total = [0], 0
    for line in text.splitlines(keepends=True):
        total += len(line)
        starts.append(total)
    return starts


def tokens(path: Path) -> list[Token]:
    """The tokens of one file, each with the role a highlighter must give it."""
    text = path.read_text(encoding="utf-8")
    line_starts = _offsets(text)
    lines = text.splitlines()
    out = _code_tokens(path, text, lines, line_starts) + _comment_tokens(path, text, lines, line_starts)
    return sorted(out, key=lambda t: t.offset)


def _code_tokens(path: Path, text: str, lines: list[str], line_starts: list[int]) -> list[Token]:
    """Every token the lexer makes, with its role."""
    lexed = list(parser().lex(text))
    out: list[Token] = []
    body: str | None = None  # the declaration whose body we are in: settings and columns use `=` to assign
    for i, tok in enumerate(lexed):
        role, detail = _role(path, lexed, i, lines, body)
        if tok.type in ("DESTINATION", "TABLE") and lines[tok.line - 1][: tok.column - 1].strip() in ("", "paused"):
            body = tok.value
        elif tok.type == "RANGLE":
            body = None
        out.append(Token(role, detail, tok.value, tok.line, tok.column, line_starts[tok.line - 1] + tok.column - 1))
    return out


#: the role of a token by its type alone (after the roles its neighbours decide, and keywords)
_ROLE_OF_TYPE = {
    "NUMBER": "number", "PERCENT": "number", "DATE": "date", "MONTH_DAY": "date",
    "GT": "comparison", "GE": "comparison", "LE": "comparison", "NE": "comparison",
    "RANGLE": "block_close", "NAME": "name", "HOLIDAY": "name", "MINUS": "arithmetic", "ITEM_MINUS": "arithmetic",
    "PLUS": "arithmetic",
    "LPAR": "punctuation", "RPAR": "punctuation", "COMMA": "punctuation",
}


def _role(path: Path, lexed: list, i: int, lines: list[str], body: str | None) -> tuple[str, str]:
    """The role of ``lexed[i]`` and its detail (the keyword class, or the kind of declared name)."""
    tok = lexed[i]
    previous = lexed[i - 1] if i > 0 else None
    before = lexed[i - 2] if i > 1 else None
    following = lexed[i + 1] if i + 1 < len(lexed) else None
    first_on_line = lines[tok.line - 1][: tok.column - 1].strip() == ""
    if tok.type == "STRING":
        is_declaration = (previous is not None and previous.value in ("segment", "destination", "campaign")
                          and (before is None or before.value not in ("in", "audience", "moved"))
                          and lines[previous.line - 1][: previous.column - 1].strip() in ("", "paused"))
        return ("declared_name", previous.value) if is_declaration else ("string", "")
    if tok.type == "NAME" and previous is not None and previous.type == "TABLE" and \
            lines[previous.line - 1][: previous.column - 1].strip() == "":
        return "declared_name", "table"
    if body and first_on_line and _assigned(lexed, i):
        return "setting_key", ""
    if tok.value in keywords() and tok.type not in ("NAME", "STRING"):
        return "keyword", keyword_class(tok.value)
    if tok.type == "EQ":
        return ("assignment" if body else "comparison"), ""
    if tok.type == "LT":
        # a score's body opens on its items (numbers): the parser tells it from `score "X" < 3` by the line
        opens_score = before is not None and before.type == "SCORE" and _DECLARATION_START.match(
            lines[before.line - 1]) is not None
        comparison = following is not None and following.type in VALUE_TOKENS and not opens_score
        return ("comparison" if comparison else "block_open"), ""
    if tok.type in _ROLE_OF_TYPE:
        return _ROLE_OF_TYPE[tok.type], ""
    raise AssertionError(f"{path}:{tok.line}:{tok.column}: no role for {tok.type} {tok.value!r}")


def _assigned(lexed: list, i: int) -> bool:
    """``lexed[i]`` is followed by `=`, or by a column's type and `=`: a setting's key or a column's name."""
    following = lexed[i + 1] if i + 1 < len(lexed) else None
    if following is None:
        return False
    return following.type == "EQ" or (following.value in KEYWORD_CLASSES["type"]
                                      and i + 2 < len(lexed) and lexed[i + 2].type == "EQ")


def _comment_tokens(path: Path, text: str, lines: list[str], line_starts: list[int]) -> list[Token]:
    """The comments, from the parser's comment scanner; those that describe a declaration are doc comments."""
    parsed, diagnostics = parse_source(text, str(path))
    assert not diagnostics, diagnostics
    described = set()
    for decl in parsed.declarations:
        if decl.description is not None:
            line = decl.span.line - 1
            while line >= 1 and lines[line - 1].lstrip().startswith("#"):
                described.add(line)
                line -= 1
    out = []
    for comment in parsed.comments:
        role = "doc_comment" if comment.span.line in described else "comment"
        out.append(Token(role, "", comment.text, comment.span.line, comment.span.column,
                         line_starts[comment.span.line - 1] + comment.span.column - 1))
    return out


def all_tokens() -> dict[Path, list[Token]]:
    return {path: tokens(path) for path in EXAMPLE_FILES}


def roles_seen(found: dict[Path, list[Token]]) -> set[str]:
    return {t.role for toks in found.values() for t in toks}
