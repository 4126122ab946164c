"""The syntax stage: grammar loading, parsing into ``audlang.ast``, and the formatter.

May import ``audlang.ast`` and ``audlang.diagnostics`` only.
"""

from audlang.syntax.formatter import format_file
from audlang.syntax.parser import parse_source


def format_source(text: str, file: str = "<string>"):
    """Canonical text of ``text``, or ``(None, diagnostics)`` when it does not parse.

    The result is parsed again and compared with the original tree, so the
    formatter can never change what a file means.
    """
    parsed, diagnostics = parse_source(text, file)
    if any(d.is_error for d in diagnostics):
        return None, diagnostics
    formatted = format_file(parsed, text)
    again, problems = parse_source(formatted, file)
    if problems or again != parsed:
        raise AssertionError(f"the formatter changed the meaning of {file}; please report this")
    return formatted, diagnostics


__all__ = ["format_file", "format_source", "parse_source"]
