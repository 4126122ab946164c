"""Diagnostics: the one way audlang reports a problem in the user's input.

Holds ``Span`` (a place in a source file), ``Diagnostic`` (severity, code,
message, span, optional suggestion), ``AudlangError`` (the project's one error
type, carrying diagnostics up to the CLI) and the text and JSON renderings.
Imports nothing of ours.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping

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


def render_text(
    diagnostics: Iterable[Diagnostic],
    sources: Mapping[str, str] | None = None,
    color: bool = False,
) -> str:
    """``path:line:col: error[CODE]: message``, the source line and a caret under the fault."""
    sources = sources or {}
    out: list[str] = []
    for d in sorted(diagnostics, key=Diagnostic.sort_key):
        sev = d.severity.value
        if color:
            colour = {"error": "31", "warning": "33", "info": "36"}[sev]
            sev = f"\x1b[1;{colour}m{sev}\x1b[0m"
        where = f"{d.span}: " if d.span else (f"{d.subject}: " if d.subject else "")
        out.append(f"{where}{sev}[{d.code}]: {d.message}")
        if d.span is not None and d.span.file in sources:
            lines = sources[d.span.file].split("\n")
            if 0 < d.span.line <= len(lines):
                text = lines[d.span.line - 1].expandtabs(1)
                width = (
                    max(1, d.span.end_column - d.span.column)
                    if d.span.end_line == d.span.line
                    else max(1, len(text) - d.span.column + 1)
                )
                gutter = f"{d.span.line} | "
                out.append(f"{gutter}{text}")
                out.append(" " * (len(gutter) + d.span.column - 1) + "^" * width)
        if d.suggestion:
            out.append(f"  help: {d.suggestion}")
    return "\n".join(out)


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
