"""Diagnostics: the one way audlang reports a problem in the user's input.

Holds ``Span`` (a place in a source file), ``Diagnostic`` (severity, code,
message, span, optional suggestion), ``AudlangError`` (the project's one error
type, carrying diagnostics up to the CLI), the text and JSON renderings, and
the one did-you-mean suggestion every stage uses (``closest``: edit distance).
Imports nothing of ours.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping, Sequence

import attrs

#: Version of the JSON document written by ``render_json``; bump on any change
#: of its shape so that editors and CI scripts can tell.
JSON_FORMAT_VERSION = 1


@attrs.frozen(order=True)
class Span:
    """A range in a source file. Lines and columns count from 1; the end is exclusive."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def shifted(self, lines: int) -> Span:
        return attrs.evolve(self, line=self.line + lines, end_line=self.end_line + lines)

    def to(self, other: Span) -> Span:
        """The span from the start of ``self`` to the end of ``other``."""
        return attrs.evolve(self, end_line=other.end_line, end_column=other.end_column)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@attrs.frozen
class Diagnostic:
    severity: Severity
    code: str
    message: str
    span: Span | None = None
    suggestion: str | None = None
    #: Free-form name of the thing at fault when there is no span (a table, a URL).
    subject: str | None = None

    @classmethod
    def error(cls, code: str, message: str, span: Span | None, suggestion: str | None = None) -> Diagnostic:
        return cls(Severity.ERROR, code, message, span, suggestion)

    @classmethod
    def warning(cls, code: str, message: str, span: Span | None, suggestion: str | None = None) -> Diagnostic:
        return cls(Severity.WARNING, code, message, span, suggestion)

    @classmethod
    def sourceless(cls, code: str, message: str, subject: str | None = None) -> Diagnostic:
        """An error about a whole file, a database or a setting: nothing to point at."""
        return cls(Severity.ERROR, code, message, None, None, subject)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple:
        if self.span is None:
            return ("", 0, 0, self.code)
        return (self.span.file, self.span.line, self.span.column, self.code)


class AudlangError(Exception):
    """The project's one error type: carries diagnostics to the CLI, which renders them."""

    def __init__(self, diagnostics: Diagnostic | Iterable[Diagnostic]):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics = list(diagnostics)
        super().__init__("; ".join(d.message for d in self.diagnostics))


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.is_error for d in diagnostics)


# Control characters (C0 but the tab, DEL, C1) of a source would act on the terminal or the CI log
# that shows a diagnostic (colours, cursor moves, a line that seems to end); they are shown as
# visible escapes in messages, and as one replacement character each in a quoted source line,
# where the caret below must keep its column.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


#: The most of a message, and of a source line, that the text rendering shows (a name can be a
#: megabyte long, and so can a line).
SHOWN_CHARACTERS = 1000
SHOWN_LINE = 160


def shown_url(url: object) -> str:
    """A database URL as a message may show it: the password masked and the query's values too (a
    token such as ``?password=…`` or ``?motherduck_token=…`` must not reach a public CI log)."""
    from urllib.parse import parse_qsl, urlsplit

    text = str(url)
    try:
        parts = urlsplit(text)
        netloc = parts.netloc
        if "@" in netloc:
            user, _, host = netloc.rpartition("@")
            netloc = (user.split(":", 1)[0] + ":***" if ":" in user else user) + "@" + host
        query = "&".join(f"{k}=***" for k, _v in parse_qsl(parts.query, keep_blank_values=True))
        if parts.query and not query:
            query = "***"
    except ValueError:
        return "<invalid URL>"
    if not parts.scheme:
        return "<invalid URL>"
    shown = f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
    return printable(shown)


def printable(text: str) -> str:
    """``text`` with each control character written as an escape (``\\x1b``), cut short when very long."""
    if len(text) > SHOWN_CHARACTERS:
        text = text[: SHOWN_CHARACTERS - 1] + "…"
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _excerpt(line: str, column: int, width: int) -> tuple[str, int, int]:
    """At most ``SHOWN_LINE`` characters of a source line around ``column`` (1-based), with the caret's
    offset and width in what is shown."""
    offset = column - 1
    if len(line) <= SHOWN_LINE:
        return line, offset, width
    start = max(0, min(offset - SHOWN_LINE // 2, len(line) - SHOWN_LINE))
    shown = line[start:start + SHOWN_LINE]
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + SHOWN_LINE < len(line) else ""
    caret = len(prefix) + offset - start
    return prefix + shown + suffix, caret, max(1, min(width, len(prefix) + len(shown) - caret))


def source_lines(text: str) -> list[str]:
    """A source's lines as the parser counts them: after a leading byte-order mark, split at
    ``\\n``, ``\\r\\n`` and a lone ``\\r``."""
    return _LINE_BREAK.split(text.removeprefix("\ufeff"))


def render_text(
    diagnostics: Iterable[Diagnostic],
    sources: Mapping[str, str] | None = None,
    color: bool = False,
) -> str:
    """``path:line:col: error[CODE]: message``, the source line and a caret under the fault."""
    sources = sources or {}
    out: list[str] = []
    split: dict[str, list[str]] = {}
    for d in sorted(diagnostics, key=Diagnostic.sort_key):
        sev = d.severity.value
        if color:
            colour = {"error": "31", "warning": "33", "info": "36"}[sev]
            sev = f"\x1b[1;{colour}m{sev}\x1b[0m"
        where = f"{printable(str(d.span))}: " if d.span else (f"{printable(d.subject)}: " if d.subject else "")
        out.append(f"{where}{sev}[{d.code}]: {printable(d.message)}")
        if d.span is not None and d.span.file in sources:
            if d.span.file not in split:
                split[d.span.file] = source_lines(sources[d.span.file])
            lines = split[d.span.file]
            if 0 < d.span.line <= len(lines):
                text = lines[d.span.line - 1].expandtabs(1)
                width = (
                    max(1, d.span.end_column - d.span.column)
                    if d.span.end_line == d.span.line
                    else max(1, len(text) - d.span.column + 1)
                )
                text, caret, width = _excerpt(text, d.span.column, width)
                gutter = f"{d.span.line} | "
                out.append(f"{gutter}{_CONTROL.sub(chr(0xFFFD), text)}")
                out.append(" " * (len(gutter) + caret) + "^" * width)
        if d.suggestion:
            out.append(f"  help: {printable(d.suggestion)}")
    return "\n".join(out)


# ------------------------------------------------------------------ did you mean

def edit_distance(a: str, b: str, limit: int | None = None) -> int:
    """The optimal-string-alignment distance: insertions, deletions, substitutions and a swap of two
    neighbours (``adn`` → ``and``) each count one. With ``limit``, any distance above it is ``limit + 1``."""
    if limit is not None and abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] | None = None
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, y in enumerate(b, start=1):
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (x != y))
            if before is not None and i > 1 and j > 1 and x == b[j - 2] and a[i - 2] == y:
                current[j] = min(current[j], before[j - 2] + 1)
        if limit is not None and min(current) > limit:
            return limit + 1
        before, row = row, current
    return row[-1]


#: the longest name a suggestion is looked for (CPython stops at 40; segment names run longer): an edit
#: distance costs the product of the two lengths, and a name of a megabyte is no slip of the fingers
SUGGESTED_LENGTH = 100


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate nearest ``name`` when it is near enough to be a slip, by CPython's rule for its
    NameError suggestions: an edit distance (letter case ignored) of at most a sixth of both lengths
    and 3 (``churn_score`` → ``churn_risk``, but ``state`` is not ``store``). The nearest wins; among
    equals, the one nearer with case counted, then the first given. ``name`` itself is never suggested.

    Cheap tests go first, so that thousands of candidates cost little: the lengths, then the letters
    one has and the other lacks (each needs an edit of its own), before any distance is computed."""
    if len(name) > SUGGESTED_LENGTH:
        return None
    folded = name.casefold()
    letters = set(folded)
    best: tuple[int, int, int] | None = None
    found: str | None = None
    for index, candidate in enumerate(candidates if isinstance(candidates, Sequence) else list(candidates)):
        if candidate == name or len(candidate) > SUGGESTED_LENGTH:
            continue
        limit = (len(name) + len(candidate) + 3) // 6
        if best is not None:
            limit = min(limit, best[0])  # a farther one can never win
        if abs(len(name) - len(candidate)) > limit:
            continue
        other = candidate.casefold()
        theirs = set(other)
        if len(letters - theirs) > limit or len(theirs - letters) > limit:
            continue
        distance = edit_distance(folded, other, limit)
        if distance > limit:
            continue
        rank = (distance, edit_distance(name, candidate), index)
        if best is None or rank < best:
            best, found = rank, candidate
    return found


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """``did you mean `x`?`` for a keyword, attribute or setting, or None when nothing is near."""
    match = closest(name, candidates)
    return f"did you mean `{match}`?" if match is not None else None


def did_you_mean_quoted(name: str, candidates: Iterable[str]) -> str | None:
    """``did you mean "x"?`` for a declared name (a segment, a destination), or None."""
    match = closest(name, candidates)
    return f'did you mean "{match}"?' if match is not None else None


def to_dict(d: Diagnostic) -> dict:
    span = None
    if d.span is not None:
        span = {
            "file": d.span.file,
            "line": d.span.line,
            "column": d.span.column,
            "end_line": d.span.end_line,
            "end_column": d.span.end_column,
        }
    return {
        "severity": d.severity.value,
        "code": d.code,
        "message": d.message,
        "span": span,
        "suggestion": d.suggestion,
        "subject": d.subject,
    }


def render_json(diagnostics: Iterable[Diagnostic]) -> str:
    items = [to_dict(d) for d in sorted(diagnostics, key=Diagnostic.sort_key)]
    doc = {
        "format_version": JSON_FORMAT_VERSION,
        "errors": sum(1 for i in items if i["severity"] == "error"),
        "warnings": sum(1 for i in items if i["severity"] == "warning"),
        "diagnostics": items,
    }
    return json.dumps(doc, indent=2)
