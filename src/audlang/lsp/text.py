"""Positions in a document as LSP counts them, and what is under the cursor.

Lines end at ``\\n``, ``\\r\\n`` or a lone ``\\r``; positions here are 0-based and
in characters (code points). The server turns them into the client's units
(UTF-16 by default) at the edge. A byte-order mark that a client leaves in a
document's text is the first character of line 0, while the parser's columns
start after it.
"""

from __future__ import annotations

import re

import attrs
from lsprotocol import types as lsp

from audlang.diagnostics import Span
from audlang.syntax.parser import BOM, comment_start, unquote

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"?')
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KIND_BEFORE_STRING = re.compile(r"\b(segment|score|destination|campaign|to)\s*$|(,)\s*$")


def lines_of(text: str) -> list[str]:
    """The lines of ``text`` with their endings, split where LSP and the parser split them.

    Only ``\\n``, ``\\r\\n`` and ``\\r`` end a line (``str.splitlines`` also splits at
    form feeds, ``\\x1c``–``\\x1e``, U+0085, U+2028 and U+2029, which would move every
    line after one of them).
    """
    lines, start = [], 0
    for match in _LINE_BREAK.finditer(text):
        lines.append(text[start:match.end()])
        start = match.end()
    if start < len(text) or not lines:
        lines.append(text[start:])
    return lines


def span_range(span: Span) -> lsp.Range:
    """A span (1-based, in characters) as an LSP range (0-based, in characters)."""
    return lsp.Range(
        start=lsp.Position(line=max(span.line - 1, 0), character=max(span.column - 1, 0)),
        end=lsp.Position(line=max(span.end_line - 1, 0), character=max(span.end_column - 1, 0)),
    )


def text_range(text: str, span: Span) -> lsp.Range:
    """A span of the parsed ``text`` as a range of ``text`` itself (0-based, in characters).

    The parser counts columns after a byte-order mark; in a text that still holds
    one, it is character 0 of line 0, so ranges on that line move one to the right.
    """
    range_ = span_range(span)
    if text.startswith(BOM):
        for position in (range_.start, range_.end):
            if position.line == 0:
                position.character += 1
    return range_


def top_of_document() -> lsp.Range:
    """Where a diagnostic about a whole file or project is shown."""
    return lsp.Range(start=lsp.Position(line=0, character=0), end=lsp.Position(line=0, character=0))


@attrs.frozen
class QuotedName:
    """A string under the cursor and the kind of thing it names, judged by what precedes it."""

    kind: str | None  # segment, score, destination, campaign, or None
    name: str
    start: int  # column of the opening quote
    end: int  # column after the closing quote (or the end of the line)


def quoted_name_at(line: str, column: int) -> QuotedName | None:
    """The string that holds the character at ``column`` (or ends unclosed there)."""
    for match in _STRING.finditer(line):
        text = match.group()
        closed = len(text) > 1 and text.endswith('"')
        if match.start() <= column < match.end() or (not closed and column == match.end()):
            name = unquote(text) if closed else text[1:]
            return QuotedName(kind_before(line[: match.start()]), name, match.start(), match.end())
    return None


def kind_before(prefix: str) -> str | None:
    """What a string that follows ``prefix`` names: segment, destination, campaign or nothing."""
    found = _KIND_BEFORE_STRING.search(prefix)
    if found is None:
        return None
    word = found.group(1)
    if word in ("segment", "score", "destination", "campaign"):
        return word
    # `to "A", "B"`: a campaign's groups name destinations; `moved segment "Old" to "New"` does not.
    if re.search(r"\bmoved\b", prefix):
        match = re.match(r'\s*moved\s+(segment|destination|campaign)\b', prefix)
        return match.group(1) if match else None
    if word == "to" or re.search(r"\bto\b", prefix):
        return "destination"
    return None


def word_at(line: str, column: int) -> tuple[str, int, int] | None:
    for match in _WORD.finditer(line):
        if match.start() <= column <= match.end():
            return match.group(), match.start(), match.end()
    return None


def inside_string(prefix: str) -> int | None:
    """Column of the opening quote when ``prefix`` ends inside a string, else None."""
    position = 0
    while True:
        match = _STRING.search(prefix, position)
        if match is None:
            return None
        if not match.group().endswith('"') or len(match.group()) == 1:
            return match.start()
        position = match.end()


def strip_comment(line: str) -> str:
    start = comment_start(line)
    return line if start is None else line[:start]
