"""What the language server answers, as plain functions of a document's text, a ``ProjectAnalysis`` and a position.

Each feature is one function here: ``diagnostics_by_document``,
``completions``, ``hover``, ``definition``, ``document_symbols``,
``semantic_token_data`` (with ``doc_comment_lines``) and ``formatting_edits``.
They return lsprotocol values or plain data and keep no state; positions in and
out are 0-based and in characters (``audlang.lsp.text``), so a table of cases
tests them without a server. ``audlang.lsp.server`` turns the client's units
into characters and back, and does all the talking.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence

from lsprotocol import types as lsp

from audlang import __version__, ast
from audlang.check import destinations as dest_specs
from audlang.diagnostics import Diagnostic, Severity, Span
from audlang.lsp.analysis import ProjectAnalysis
from audlang.lsp.text import (
    QuotedName, inside_string, kind_before, lines_of, quoted_name_at, span_range, strip_comment, text_range,
    top_of_document, word_at,
)
from audlang.syntax import format_source, parse_source
from audlang.syntax.formatter import WIDTH
from audlang.syntax.formatter import score_item_text as format_score_item
from audlang.syntax.grammar import keywords
from audlang.syntax.parser import BOM, normalize

SERVER_NAME = "audlang"
DOC_COMMENT_LEGEND = lsp.SemanticTokensLegend(token_types=["comment"], token_modifiers=["documentation"])

_SEVERITY = {
    Severity.ERROR: lsp.DiagnosticSeverity.Error,
    Severity.WARNING: lsp.DiagnosticSeverity.Warning,
    Severity.INFO: lsp.DiagnosticSeverity.Information,
}

# --------------------------------------------------------------------------- diagnostics


def to_diagnostic(d: Diagnostic, range_: lsp.Range) -> lsp.Diagnostic:
    message = d.message if d.suggestion is None else f"{d.message}\nhelp: {d.suggestion}"
    if d.span is None and d.subject:
        message = f"{d.subject}: {message}"
    return lsp.Diagnostic(range=range_, message=message, severity=_SEVERITY[d.severity], code=d.code,
                          source=SERVER_NAME)


def shown_text(analysis: ProjectAnalysis, key: str, is_open: bool) -> str:
    """A source's text as the editor has it: an open document's own text (a byte-order mark in it
    counts), a file on disk without its byte-order mark (editors show it without)."""
    text = analysis.sources.get(key, "")
    return text if is_open or not text.startswith(BOM) else text[1:]


def shown_range(analysis: ProjectAnalysis, span: Span, is_open: bool) -> lsp.Range:
    """A span as a range of ``shown_text`` of its file (characters)."""
    if is_open:
        return text_range(analysis.sources.get(span.file, ""), span)
    return span_range(span)


def diagnostics_by_document(analysis: ProjectAnalysis, open_keys: Collection[str]) -> dict[str, list[lsp.Diagnostic]]:
    """Each source's diagnostics, in order, with ranges of its ``shown_text`` (characters).

    Every open document gets a list, maybe empty (so fixed problems clear); a file
    on disk only when it has something to show, so that typing does not flood the
    client. A diagnostic about the project as a whole (no span) is shown at the
    top of each open document.
    """
    found: dict[str, list[lsp.Diagnostic]] = {key: [] for key in analysis.sources if key in open_keys}
    for d in sorted(analysis.diagnostics, key=Diagnostic.sort_key):  # file by file, in order
        if d.span is not None and d.span.file in analysis.sources:
            range_ = shown_range(analysis, d.span, d.span.file in open_keys)
            found.setdefault(d.span.file, []).append(to_diagnostic(d, range_))
        else:
            for key in analysis.sources:
                if key in open_keys:
                    found[key].append(to_diagnostic(d, top_of_document()))
    return found


def internal_error(error: BaseException) -> Diagnostic:
    """What an open document shows when checking it failed: a bug in audlang, to be reported."""
    return Diagnostic.sourceless(
        "internal", f"internal error ({type(error).__name__}: {shortened(str(error))}) while checking this "
        f"project; please report it to audlang (version {__version__})")


def shortened(text: str, most: int = 200) -> str:
    """``text`` on one line, at most ``most`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= most else text[: most - 1] + "…"


# --------------------------------------------------------------------------- completion


def completions(analysis: ProjectAnalysis, text: str, line: int, character: int) -> list[lsp.CompletionItem]:
    """Completion items at ``character`` of ``line``; the lines above give the context (a destination's body)."""
    lines = [each.rstrip("\r\n") for each in lines_of(text)]
    current = lines[line] if line < len(lines) else ""
    return _completions_on_line(analysis, current, character, line, lines[:line])


def _completions_on_line(analysis: ProjectAnalysis, line: str, column: int, line_number: int,
                         lines_above: Sequence[str]) -> list[lsp.CompletionItem]:
    prefix = line[:column]
    if "#" in prefix and strip_comment(prefix) != prefix:
        return []
    kind = _destination_kind(lines_above)
    if kind is not None:
        return _setting_completions(kind, prefix)
    quote = inside_string(prefix)
    if quote is not None:
        kind = kind_before(prefix[:quote])
        if kind is None:
            return []
        closing = "" if line[column:column + 1] == '"' else '"'
        edit_range = lsp.Range(start=lsp.Position(line=line_number, character=quote + 1),
                               end=lsp.Position(line=line_number, character=column))
        return [
            _name_item(analysis, kind, name, text_edit=lsp.TextEdit(range=edit_range, new_text=name + closing))
            for name in analysis.names(kind)
        ]
    if re.search(r"\b(?:in|audience)\s+segment\s+$", prefix):
        return [_name_item(analysis, "segment", n, insert_text=_quote(n)) for n in analysis.names("segment")]
    if re.search(r"\S.*\bscore\s+$", prefix):  # a score used in a condition (not a declaration's start)
        return [_name_item(analysis, "score", n, insert_text=_quote(n)) for n in analysis.names("score")]
    if re.search(r"(?:\bto|\"\s*,)\s+$", prefix) and re.search(r"\bto\b", prefix):
        return [_name_item(analysis, "destination", n, insert_text=_quote(n))
                for n in analysis.names("destination")]
    items = [
        lsp.CompletionItem(label=word, kind=lsp.CompletionItemKind.Keyword, sort_text=f"2{word}")
        for word in sorted(keywords())
    ]
    for name, info in sorted(analysis.model.data_model.attributes.items()):
        items.append(lsp.CompletionItem(
            label=name, kind=lsp.CompletionItemKind.Field, detail=info.type,
            label_details=lsp.CompletionItemLabelDetails(description=info.type),
            documentation=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=_attribute_text(analysis, name)),
            sort_text=f"1{name}",
        ))
    return items


_DECLARATION_LINE = re.compile(r"^\s*(?:paused\s+)?(segment|score|campaign|table|moved|destination)\b")
_DESTINATION_HEAD = re.compile(r'^\s*(?:paused\s+)?destination\s+"(?:[^"\\]|\\.)*"\s+([A-Za-z_]\w*)\s*<\s*$')


def _destination_kind(lines_above: Sequence[str]) -> str | None:
    """The kind of the destination whose body the cursor is in, if it is in one."""
    for line in reversed(lines_above):
        text = strip_comment(line).rstrip()
        head = _DESTINATION_HEAD.match(text)
        if head:
            return head.group(1)
        if text.lstrip().startswith(">") or _DECLARATION_LINE.match(text):
            return None
    return None


def _setting_completions(kind: str, prefix: str) -> list[lsp.CompletionItem]:
    """A destination's settings (its kind's and the common ones), or the choices of the one being set."""
    specs = {**dest_specs.KINDS.get(kind, {}), **dest_specs.COMMON}
    setting = re.match(r"^\s*([A-Za-z_]\w*)\s*=\s*\(?(?:[A-Za-z_]\w*\s*,\s*)*[A-Za-z_]*$", prefix)
    if setting:
        spec = specs.get(setting.group(1))
        return [lsp.CompletionItem(label=choice, kind=lsp.CompletionItemKind.EnumMember)
                for choice in (spec.choices if spec else ())]
    if not re.match(r"^\s*[A-Za-z_]*$", prefix):
        return []
    items = []
    for key, spec in specs.items():
        detail = (spec.kind + (", required" if spec.required else "")
                  + (", secret: use env(\"…\")" if spec.secret else ""))
        insert = f'{key} = env("$1")' if spec.secret else f"{key} = $1"
        items.append(lsp.CompletionItem(
            label=key, kind=lsp.CompletionItemKind.Property, detail=detail,
            documentation=spec.doc or None, insert_text=insert, insert_text_format=lsp.InsertTextFormat.Snippet,
            sort_text=("0" if spec.required else "1") + key))
    items.append(lsp.CompletionItem(label="header", kind=lsp.CompletionItemKind.Keyword,
                                    detail="an HTTP header: header \"Name\" = value", sort_text="2header"))
    return items


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


_NAME_KINDS = {
    "segment": lsp.CompletionItemKind.Class,
    "score": lsp.CompletionItemKind.Value,
    "destination": lsp.CompletionItemKind.Interface,
    "campaign": lsp.CompletionItemKind.Event,
}


def _name_item(analysis: ProjectAnalysis, kind: str, name: str, **edit) -> lsp.CompletionItem:
    detail, documentation = _name_details(analysis, kind)[name]
    return lsp.CompletionItem(label=name, kind=_NAME_KINDS[kind], detail=detail, documentation=documentation, **edit)


def _name_details(analysis: ProjectAnalysis, kind: str) -> dict[str, tuple[str, lsp.MarkupContent | None]]:
    """Each name of ``kind`` with what its completion item shows: worked out once per analysis."""

    def details() -> dict[str, tuple[str, lsp.MarkupContent | None]]:
        found = {}
        for name in analysis.names(kind):
            decl = analysis.find(kind, name)
            detail = kind if not isinstance(decl, ast.Destination) else f"destination ({decl.kind})"
            documentation = None
            if decl is not None and decl.description:
                documentation = lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=decl.description)
            found[name] = (detail, documentation)
        return found

    return analysis.derived(("completion", kind), details)


# --------------------------------------------------------------------------- hover and definition


def _line(text: str, line: int) -> str | None:
    lines = lines_of(text)
    return lines[line].rstrip("\r\n") if line < len(lines) else None


def _named_at(text: str, line: int, character: int) -> tuple[str, str | None, str | None] | None:
    """The line (comment stripped) and what the position names there: a quoted name, else a word."""
    current = _line(text, line)
    if current is None:
        return None
    current = strip_comment(current)
    quoted = quoted_name_at(current, character)
    if quoted is not None:
        return current, quoted, None
    found = word_at(current, character)
    return current, None, found[0] if found is not None else None


def hover(analysis: ProjectAnalysis, text: str, line: int, character: int) -> str | None:
    """Markdown about what is at the position: a declaration named there, an attribute, a table."""
    named = _named_at(text, line, character)
    if named is None:
        return None
    current, quoted, word = named
    if quoted is not None:
        decl = _declaration_for(analysis, quoted)
        return _declaration_text(analysis, decl) if decl is not None else None
    if word is None:
        return None
    if word in analysis.model.data_model.attributes and word not in keywords():
        return _attribute_text(analysis, word)
    table = analysis.model.data_model.tables.get(word)
    if table is not None and re.match(r"\s*table\b", current):
        columns = ", ".join(f"`{c}` ({t})" for c, t in table.types.items())
        return f"**table {word}**: `{table.physical}` in the warehouse\n\nColumns: {columns}."
    return None


def _attribute_text(analysis: ProjectAnalysis, name: str) -> str:
    info = analysis.model.data_model.attributes[name]
    if info.derived:
        return f"**{name}**: {info.type}\n\nDerived from orders dated on or before the as-of date."
    table = analysis.model.data_model.tables.get(info.table) if info.table else None
    text = f"**{name}**: {info.type}\n\nColumn `{info.column}` of table `{info.table}`"
    if table is not None and (table.physical != table.name or table.column(info.column) != info.column):
        text += f" (in the warehouse: `{table.physical}.{table.column(info.column)}`)"
    if table is not None and table.custom:
        text += ", a custom table"
    return text + "."


def _declaration_for(analysis: ProjectAnalysis, quoted: QuotedName) -> ast.Declaration | None:
    kinds = [quoted.kind] if quoted.kind else []
    return next((d for kind in kinds if (d := analysis.find(kind, quoted.name)) is not None), None)


def _declaration_text(analysis: ProjectAnalysis, decl: ast.Declaration) -> str:
    kind = type(decl).__name__.lower()
    title = f"**{kind}** {_quote(decl.name)}"
    if isinstance(decl, ast.Destination):
        title += f" ({decl.kind})"
    if getattr(decl, "paused", False):
        title += " — paused"
    parts = [title]
    if decl.description:
        parts.append(decl.description)
    if decl.span is not None and decl.span.file in analysis.sources:
        lines = analysis.sources[decl.span.file].splitlines()[decl.span.line - 1: decl.span.end_line]
        if len(lines) > 12:
            lines = lines[:12] + ["…"]
        parts.append("```audlang\n" + "\n".join(lines) + "\n```")
    return "\n\n".join(parts)


def definition(analysis: ProjectAnalysis, text: str, line: int, character: int) -> Span | None:
    """Where the thing named at the position is declared: a segment, destination or campaign by its
    quoted name, a mapped table or a custom attribute by its table mapping."""
    named = _named_at(text, line, character)
    if named is None:
        return None
    _current, quoted, word = named
    if quoted is not None:
        decl = _declaration_for(analysis, quoted)
        if decl is None:
            return None
        return decl.name_span or decl.span
    if word is None:
        return None
    for decl in analysis.declarations():
        if isinstance(decl, ast.TableMapping):
            if decl.name == word:
                return decl.name_span or decl.span
            for col in decl.columns:
                if col.attribute == word:
                    return col.span
    return None


# --------------------------------------------------------------------------- symbols, semantic tokens, formatting


#: parses a document: ``parse_source``, or the same answer from a parser that remembers (``reparse``)
Parse = Callable[[str, str], tuple[ast.SourceFile, list[Diagnostic]]]


def document_symbols(text: str, key: str, parse: Parse = parse_source) -> list[lsp.DocumentSymbol]:
    """The document's declarations, with a campaign's groups, a score's items, a table's columns and a
    destination's settings."""
    parsed, _ = parse(text, key)
    symbols = []
    for decl in parsed.declarations:
        if decl.span is None:
            continue
        whole = text_range(text, decl.span)
        selection = text_range(text, getattr(decl, "name_span", None) or decl.span)
        children = [lsp.DocumentSymbol(name=name, kind=kind, range=text_range(text, span),
                                       selection_range=text_range(text, selected or span), detail=detail)
                    for name, kind, span, selected, detail in _parts(decl) if span is not None]
        if isinstance(decl, ast.Moved):
            name, kind, detail = f"{decl.old} → {decl.new}", lsp.SymbolKind.Key, f"moved {decl.kind}"
        elif isinstance(decl, ast.Destination):
            name, kind, detail = decl.name, lsp.SymbolKind.Interface, f"destination ({decl.kind})"
        else:
            name = decl.name
            kind = {ast.Segment: lsp.SymbolKind.Class, ast.Score: lsp.SymbolKind.Variable,
                    ast.Campaign: lsp.SymbolKind.Event, ast.TableMapping: lsp.SymbolKind.Struct}[type(decl)]
            detail = type(decl).__name__.lower().replace("tablemapping", "table")
        if getattr(decl, "paused", False):
            detail += ", paused"
        symbols.append(lsp.DocumentSymbol(name=name, kind=kind, range=whole, selection_range=selection,
                                          detail=detail, children=children or None))
    return symbols


def _parts(decl: ast.Declaration) -> list[tuple[str, lsp.SymbolKind, Span | None, Span | None, str | None]]:
    """A declaration's parts in the outline: (name, kind, span, selected span, detail)."""
    if isinstance(decl, ast.Campaign):
        return [(g.name, lsp.SymbolKind.EnumMember, g.span, None,
                 "treatment" if isinstance(g, ast.Treatment) else "subaudience")
                for g in (*decl.treatments, *decl.subaudiences)]
    if isinstance(decl, ast.Score):
        return [(format_score_item(i), lsp.SymbolKind.EnumMember, i.span, None, "item") for i in decl.items]
    if isinstance(decl, ast.TableMapping):
        return [(c.attribute, lsp.SymbolKind.Field, c.span, None, c.type or "") for c in decl.columns]
    if isinstance(decl, ast.Destination):
        return [(s.key, lsp.SymbolKind.Property, s.span, s.key_span, None) for s in decl.settings]
    return []


def doc_comment_lines(text: str, key: str = "<document>", parse: Parse = parse_source) -> list[tuple[int, int, int]]:
    """``(line, start, end)`` (0-based, characters) of each comment line that describes a declaration."""
    parsed, _ = parse(text, key)
    read = normalize(text).split("\n")  # the lines as the parser read them
    lines = [line.rstrip("\r\n") for line in lines_of(text)]  # as the client has them (a BOM stays)
    found: set[int] = set()
    for decl in parsed.declarations:
        if decl.description is None or decl.span is None:
            continue
        index = decl.span.line - 2
        while index >= 0 and read[index].lstrip().startswith("#"):
            found.add(index)
            index -= 1
    out = []
    for index in sorted(found):
        line = lines[index]
        start = line.index("#")
        out.append((index, start, len(line.rstrip())))
    return out


def semantic_token_data(text: str, key: str, units: Callable[[str], int] = len,
                        parse: Parse = parse_source) -> list[int]:
    """The semantic tokens of ``DOC_COMMENT_LEGEND`` as LSP encodes them: five integers a token (line
    and start relative to the token before, length, type, modifiers). ``units`` counts a piece of a
    line in the client's units (characters by default)."""
    lines = lines_of(text)
    data: list[int] = []
    previous = 0
    for line, start, end in doc_comment_lines(text, key, parse):
        shown = lines[line].rstrip("\r\n")
        data.extend([line - previous, units(shown[:start]), units(shown[start:end]), 0, 1])
        previous = line
    return data


def format_document(text: str, key: str, width: int = WIDTH) -> str | None:
    """The canonical text, or None when the document does not parse (the diagnostics say why)."""
    try:
        formatted, _ = format_source(text, key, width)
    except AssertionError:  # the formatter's own safety net; never rewrite in that case
        return None
    return formatted


def formatting_edits(text: str, key: str, width: int = WIDTH) -> list[lsp.TextEdit] | None:
    """One edit replacing the whole document with its canonical text; none when it is canonical
    already, ``None`` when it does not parse."""
    formatted = format_document(text, key, width)
    if formatted is None:
        return None
    if formatted == text:
        return []
    end = lsp.Position(line=len(lines_of(text)), character=0)
    return [lsp.TextEdit(range=lsp.Range(start=lsp.Position(line=0, character=0), end=end), new_text=formatted)]
