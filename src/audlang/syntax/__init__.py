"""The syntax stage: grammar loading, parsing into ``audlang.ast``, and the formatter.

May import ``audlang.ast`` and ``audlang.diagnostics`` only.
"""

from audlang.diagnostics import Diagnostic
from audlang.syntax.formatter import WIDTH, format_file
from audlang.syntax.parser import BOM, normalize, parse_source


def format_source(text: str, file: str = "<string>", width: int = WIDTH) -> tuple[str | None, list[Diagnostic]]:
    """Canonical text of ``text``, or ``(None, diagnostics)`` when it does not parse.

    The result is parsed again and compared with the original tree, so the
    formatter can never change what a file means. A file's byte-order mark
    and its line endings are its editor's business and stay as they were: a
    file that starts with a BOM keeps it (none is ever added), and a file
    whose first line ends in ``\\r\\n`` gets ``\\r\\n`` throughout (any other, ``\\n``).
    """
    parsed, diagnostics = parse_source(text, file)
    if any(d.is_error for d in diagnostics):
        return None, diagnostics
    body = normalize(text)
    formatted = format_file(parsed, body, width)
    # Text that is already canonical reads as it did; anything else is read again and compared.
    again, problems = (parsed, []) if formatted == body else parse_source(formatted, file)
    if problems or again != parsed:
        raise AssertionError(f"the formatter changed the meaning of {file}; please report this")
    if _first_line_break(text) == "\r\n":
        formatted = formatted.replace("\n", "\r\n")
    if text.startswith(BOM):
        formatted = BOM + formatted
    return formatted, diagnostics


def _first_line_break(text: str) -> str | None:
    newline, cr = text.find("\n"), text.find("\r")
    if cr == -1 or -1 < newline < cr:
        return "\n" if newline != -1 else None
    return "\r\n" if text.startswith("\n", cr + 1) else "\r"


__all__ = ["format_file", "format_source", "normalize", "parse_source"]
