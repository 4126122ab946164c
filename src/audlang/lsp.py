"""The language server: ``audlang lsp``, on stdio (pygls 2).

What an editor gets while the user types:

- diagnostics, the same as ``audlang validate``: the open documents, as typed,
  are checked together with the project's other files on disk
  (``project.analyze``), so an unknown segment or a name declared twice in
  another file shows up at once;
- formatting (``syntax.format_source``), completion (keywords from the
  grammar, attributes with their types, segment, destination and campaign
  names), hover (an attribute's type and column, a declaration's description
  and definition), go to definition of a quoted name (``in segment "…"``,
  ``audience segment "…"``, ``to "…"``) and of a custom table's attribute,
  across files, and document symbols;
- semantic tokens for one thing TextMate grammars cannot see: the comment
  lines directly above a declaration (its description) are marked
  ``comment`` + ``documentation``.

Any document gets an answer: lines are counted as LSP counts them (``\n``,
``\r\n``, a lone ``\r``), a byte-order mark that a client leaves in a
document's text is the first character of line 0 (the parser's columns start
after it), and a failure inside the server, which is a bug, becomes an
"internal error" diagnostic on the documents it concerns and a one-line log
message, never a traceback or silence.

Like ``cli``, this module sits on top of the stages and only calls them. The
parts that do not talk to a client are plain functions of text and a
``ProjectAnalysis``, tested without a server.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import attrs
from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from audlang import __version__, ast, project
from audlang.check import Model
from audlang.check import destinations as dest_specs
from audlang.diagnostics import AudlangError, Diagnostic, Severity, Span
from audlang.syntax import format_source, parse_source
from audlang.syntax.grammar import keywords
from audlang.syntax.parser import BOM, comment_start, normalize, unquote

log = logging.getLogger(__name__)

SERVER_NAME = "audlang"
#: Typing is checked once the user pauses this long: the whole project is parsed and checked each time.
CHECK_DELAY_SECONDS = 0.15
DOC_COMMENT_LEGEND = lsp.SemanticTokensLegend(token_types=["comment"], token_modifiers=["documentation"])

_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"?')
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KIND_BEFORE_STRING = re.compile(r"\b(segment|destination|campaign|to)\s*$|(,)\s*$")
_SEVERITY = {
    Severity.ERROR: lsp.DiagnosticSeverity.Error,
    Severity.WARNING: lsp.DiagnosticSeverity.Warning,
    Severity.INFO: lsp.DiagnosticSeverity.Information,
}

# --------------------------------------------------------------------------- analysis


@attrs.frozen
class ProjectAnalysis:
    """One project checked as a whole: its sources (open documents over files on disk), model and diagnostics."""

    root: Path | None
    sources: dict[str, str]  # key (an absolute path, or a URI for an unsaved document) -> text
    model: Model
    diagnostics: tuple[Diagnostic, ...]

    def declarations(self) -> Iterator[ast.Declaration]:
        for file in self.model.files:
            yield from file.declarations

    def find(self, kind: str, name: str) -> ast.Declaration | None:
        """The declaration of a segment, destination or campaign, also one the checker set aside."""
        table = {"segment": self.model.segments, "destination": self.model.destinations,
                 "campaign": self.model.campaigns}[kind]
        if name in table:
            return table[name]
        wanted = {"segment": ast.Segment, "destination": ast.Destination, "campaign": ast.Campaign}[kind]
        return next((d for d in self.declarations() if isinstance(d, wanted) and d.name == name), None)

    def names(self, kind: str) -> list[str]:
        wanted = {"segment": ast.Segment, "destination": ast.Destination, "campaign": ast.Campaign}[kind]
        return sorted({d.name for d in self.declarations() if isinstance(d, wanted)})


def document_key(uri: str) -> str:
    path = to_fs_path(uri) if uri.startswith("file:") else None
    return os.path.realpath(path) if path else uri


def project_root(key: str, folders: Iterable[str] = (), fallback: str | None = None) -> Path | None:
    """The project a document belongs to: the folder holding ``audlang.toml`` above it, else the
    workspace folder that contains it, else ``--project``; ``None`` for a document on its own."""
    if not os.path.isabs(key):
        return None
    found = project.find_root(Path(key).parent)
    if found is not None:
        return found
    containing = [Path(f) for f in folders if _is_within(Path(key), Path(f))]
    if containing:
        return max(containing, key=lambda p: len(p.parts))
    if fallback and _is_within(Path(key), Path(fallback)):
        return Path(fallback).resolve()
    return None


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def analyze(root: Path | None, open_documents: dict[str, str]) -> ProjectAnalysis:
    """Check a project: its ``.aud`` files on disk, with the open documents' text in place of theirs.

    ``open_documents`` maps keys (see ``document_key``) to text; those outside
    ``root`` are left out. Problems with the project itself (a broken
    ``audlang.toml``, a missing folder) come back as diagnostics without a span.
    """
    sources: dict[str, str] = {}
    problems: list[Diagnostic] = []
    # ``in list`` files are read inside the project (or, for a lone document, its own folder)
    config: project.Config | None = None
    if root is not None:
        try:
            config = project.load_config(root)
            files = project.source_files([config.root / p for p in config.paths])
        except AudlangError as error:
            problems.extend(error.diagnostics)
            config = project.Config(root=root)
            files = []
        for file in files:
            key = os.path.realpath(file)
            try:
                sources[key] = project.read_source(file, config.root)
            except AudlangError as error:
                problems.extend(error.diagnostics)
        for key, text in open_documents.items():
            if os.path.isabs(key) and _is_within(Path(key), root):
                sources[key] = text
    else:
        sources.update(open_documents)
        folders = {Path(key).parent for key in open_documents if os.path.isabs(key)}
        config = project.Config(root=folders.pop()) if len(folders) == 1 else None
    model, diagnostics = project.analyze(sources, config)
    return ProjectAnalysis(root, sources, model, tuple(problems + diagnostics))


# --------------------------------------------------------------------------- positions


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _lines(text: str) -> list[str]:
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


def to_diagnostic(d: Diagnostic, range_: lsp.Range) -> lsp.Diagnostic:
    message = d.message if d.suggestion is None else f"{d.message}\nhelp: {d.suggestion}"
    if d.span is None and d.subject:
        message = f"{d.subject}: {message}"
    return lsp.Diagnostic(range=range_, message=message, severity=_SEVERITY[d.severity], code=d.code,
                          source=SERVER_NAME)


# --------------------------------------------------------------------------- what is under the cursor


@attrs.frozen
class QuotedName:
    """A string under the cursor and the kind of thing it names, judged by what precedes it."""

    kind: str | None  # segment, destination, campaign, or None
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
            return QuotedName(_kind_before(line[: match.start()]), name, match.start(), match.end())
    return None


def _kind_before(prefix: str) -> str | None:
    found = _KIND_BEFORE_STRING.search(prefix)
    if found is None:
        return None
    word = found.group(1)
    if word in ("segment", "destination", "campaign"):
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


def _inside_string(prefix: str) -> int | None:
    """Column of the opening quote when ``prefix`` ends inside a string, else None."""
    position = 0
    while True:
        match = _STRING.search(prefix, position)
        if match is None:
            return None
        if not match.group().endswith('"') or len(match.group()) == 1:
            return match.start()
        position = match.end()


def _strip_comment(line: str) -> str:
    start = comment_start(line)
    return line if start is None else line[:start]


# --------------------------------------------------------------------------- features


def completions(analysis: ProjectAnalysis, line: str, column: int, line_number: int,
                lines_above: list[str] | tuple[str, ...] = ()) -> list[lsp.CompletionItem]:
    """Completion items at ``column`` of ``line`` (characters, 0-based); ``lines_above`` give the context."""
    prefix = line[:column]
    if "#" in prefix and _strip_comment(prefix) != prefix:
        return []
    kind = _destination_kind(lines_above)
    if kind is not None:
        return _setting_completions(kind, prefix)
    quote = _inside_string(prefix)
    if quote is not None:
        kind = _kind_before(prefix[:quote])
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


_DECLARATION_LINE = re.compile(r"^\s*(?:paused\s+)?(segment|campaign|table|moved|destination)\b")
_DESTINATION_HEAD = re.compile(r'^\s*(?:paused\s+)?destination\s+"(?:[^"\\]|\\.)*"\s+([A-Za-z_]\w*)\s*<\s*$')


def _destination_kind(lines_above) -> str | None:
    """The kind of the destination whose body the cursor is in, if it is in one."""
    for line in reversed(lines_above):
        text = _strip_comment(line).rstrip()
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
        detail = spec.kind + (", required" if spec.required else "") + (", secret: use env(\"…\")" if spec.secret else "")
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
    "destination": lsp.CompletionItemKind.Interface,
    "campaign": lsp.CompletionItemKind.Event,
}


def _name_item(analysis: ProjectAnalysis, kind: str, name: str, **edit) -> lsp.CompletionItem:
    decl = analysis.find(kind, name)
    detail = kind if not isinstance(decl, ast.Destination) else f"destination ({decl.kind})"
    documentation = None
    if decl is not None and decl.description:
        documentation = lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=decl.description)
    return lsp.CompletionItem(label=name, kind=_NAME_KINDS[kind], detail=detail, documentation=documentation,
                              filter_text=name, **edit)


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


def hover(analysis: ProjectAnalysis, line: str, column: int) -> str | None:
    """Markdown about what is at ``column`` of ``line``: a declaration named there, an attribute, a table."""
    line = _strip_comment(line)
    quoted = quoted_name_at(line, column)
    if quoted is not None:
        decl = _declaration_for(analysis, quoted)
        return _declaration_text(analysis, decl) if decl is not None else None
    found = word_at(line, column)
    if found is None:
        return None
    word = found[0]
    if word in analysis.model.data_model.attributes and word not in keywords():
        return _attribute_text(analysis, word)
    table = analysis.model.data_model.tables.get(word)
    if table is not None and re.match(r"\s*table\b", line):
        columns = ", ".join(f"`{c}` ({t})" for c, t in table.types.items())
        return f"**table {word}**: `{table.physical}` in the warehouse\n\nColumns: {columns}."
    return None


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


def definition(analysis: ProjectAnalysis, line: str, column: int) -> Span | None:
    """Where the thing named at ``column`` of ``line`` is declared: a segment, destination or campaign
    by its quoted name, a mapped table or a custom attribute by its table mapping."""
    line = _strip_comment(line)
    quoted = quoted_name_at(line, column)
    if quoted is not None:
        decl = _declaration_for(analysis, quoted)
        if decl is None:
            return None
        return decl.name_span or decl.span
    found = word_at(line, column)
    if found is None:
        return None
    for decl in analysis.declarations():
        if isinstance(decl, ast.TableMapping):
            if decl.name == found[0]:
                return decl.name_span or decl.span
            for col in decl.columns:
                if col.attribute == found[0]:
                    return col.span
    return None


def document_symbols(text: str, key: str) -> list[lsp.DocumentSymbol]:
    parsed, _ = parse_source(text, key)
    symbols = []
    for decl in parsed.declarations:
        if decl.span is None:
            continue
        whole = text_range(text, decl.span)
        selection = text_range(text, getattr(decl, "name_span", None) or decl.span)
        children: list[lsp.DocumentSymbol] = []
        if isinstance(decl, ast.Campaign):
            for group in (*decl.treatments, *decl.subaudiences):
                if group.span is not None:
                    children.append(lsp.DocumentSymbol(
                        name=group.name, kind=lsp.SymbolKind.EnumMember, range=text_range(text, group.span),
                        selection_range=text_range(text, group.span),
                        detail="treatment" if isinstance(group, ast.Treatment) else "subaudience"))
        elif isinstance(decl, ast.TableMapping):
            for col in decl.columns:
                if col.span is not None:
                    children.append(lsp.DocumentSymbol(
                        name=col.attribute, kind=lsp.SymbolKind.Field, range=text_range(text, col.span),
                        selection_range=text_range(text, col.span), detail=col.type or ""))
        elif isinstance(decl, ast.Destination):
            for setting in decl.settings:
                if setting.span is not None:
                    children.append(lsp.DocumentSymbol(
                        name=setting.key, kind=lsp.SymbolKind.Property, range=text_range(text, setting.span),
                        selection_range=text_range(text, setting.key_span or setting.span)))
        if isinstance(decl, ast.Moved):
            name, kind, detail = f"{decl.old} → {decl.new}", lsp.SymbolKind.Key, f"moved {decl.kind}"
        elif isinstance(decl, ast.Destination):
            name, kind, detail = decl.name, lsp.SymbolKind.Interface, f"destination ({decl.kind})"
        else:
            name = decl.name
            kind = {ast.Segment: lsp.SymbolKind.Class, ast.Campaign: lsp.SymbolKind.Event,
                    ast.TableMapping: lsp.SymbolKind.Struct}[type(decl)]
            detail = type(decl).__name__.lower().replace("tablemapping", "table")
        if getattr(decl, "paused", False):
            detail += ", paused"
        symbols.append(lsp.DocumentSymbol(name=name, kind=kind, range=whole, selection_range=selection,
                                          detail=detail, children=children or None))
    return symbols


def doc_comment_lines(text: str, key: str = "<document>") -> list[tuple[int, int, int]]:
    """``(line, start, end)`` (0-based, characters) of each comment line that describes a declaration."""
    parsed, _ = parse_source(text, key)
    read = normalize(text).split("\n")  # the lines as the parser read them
    lines = [line.rstrip("\r\n") for line in _lines(text)]  # as the client has them (a BOM stays)
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


def format_document(text: str, key: str) -> str | None:
    """The canonical text, or None when the document does not parse (the diagnostics say why)."""
    try:
        formatted, _ = format_source(text, key)
    except AssertionError:  # the formatter's own safety net; never rewrite in that case
        return None
    return formatted


# --------------------------------------------------------------------------- the server


class AudlangLanguageServer(LanguageServer):
    def __init__(self, fallback_root: str | None = None):
        super().__init__(SERVER_NAME, __version__)
        self.fallback_root = fallback_root
        self.analyses: dict[Path | str, ProjectAnalysis] = {}
        self.published: dict[Path | str, set[str]] = {}
        self.uris: dict[str, str] = {}  # key -> the URI the client used
        self.pending: dict[Path | str, asyncio.TimerHandle] = {}  # checks waiting for the user to pause
        self._split: tuple[str, list[str]] | None = None  # the last text split into lines

    # ---------------------------------------------------------------- documents
    def open_documents(self) -> dict[str, str]:
        docs = {}
        for uri, doc in self.workspace.text_documents.items():
            key = document_key(uri)
            self.uris[key] = uri
            docs[key] = doc.source
        return docs

    def scope_of(self, uri: str) -> Path | str:
        """The project a document belongs to, or the document's own key when it belongs to none."""
        folders = [to_fs_path(f.uri) for f in self.workspace.folders.values()]
        if self.workspace.root_path:
            folders.append(self.workspace.root_path)
        key = document_key(uri)
        return project_root(key, [f for f in folders if f], self.fallback_root) or key

    def analysis_for(self, uri: str) -> ProjectAnalysis:
        """The project's analysis, brought up to date with what was typed (for completion, hover, …)."""
        scope = self.scope_of(uri)
        pending = self.pending.pop(scope, None)
        if pending is not None:
            pending.cancel()
        if pending is not None or scope not in self.analyses:
            self.safely(self.refresh, scope)
        found = self.analyses.get(scope)
        return found if found is not None else analyze(None, {})  # after an internal error: knows nothing

    def uri_of(self, key: str) -> str:
        return self.uris.get(key) or (from_fs_path(key) if os.path.isabs(key) else None) or key

    def is_open(self, key: str) -> bool:
        return self.uri_of(key) in self.workspace.text_documents

    def client_range(self, analysis: ProjectAnalysis, span: Span) -> lsp.Range:
        text = analysis.sources.get(span.file, "")
        if self.is_open(span.file):  # the client's own text: a byte-order mark in it counts
            range_ = text_range(text, span)
        else:  # a file on disk: editors show it without its byte-order mark
            text = text[1:] if text.startswith(BOM) else text
            range_ = span_range(span)
        return self.workspace.position_codec.range_to_client_units(self._lines_of(text), range_)

    def _lines_of(self, text: str) -> list[str]:
        """``_lines(text)``, split once for all the diagnostics of a file (a broken one has thousands)."""
        if self._split is None or self._split[0] is not text:
            self._split = (text, _lines(text))
        return self._split[1]

    # ---------------------------------------------------------------- diagnostics
    def refresh(self, scope: Path | str) -> None:
        """Check a project again and publish every file's diagnostics (clearing the fixed ones)."""
        docs = self.open_documents()
        if isinstance(scope, Path):
            analysis = analyze(scope, docs)
        else:
            analysis = analyze(None, {scope: docs[scope]} if scope in docs else {})
        self.analyses[scope] = analysis
        # Open documents always get their (maybe empty) list; files on disk only when they have
        # something to show or had before, so that typing does not flood the client.
        by_uri: dict[str, list[lsp.Diagnostic]] = {self.uri_of(key): [] for key in analysis.sources if key in docs}
        for d in sorted(analysis.diagnostics, key=Diagnostic.sort_key):  # file by file, in order
            if d.span is not None and d.span.file in analysis.sources:
                uri = self.uri_of(d.span.file)
                by_uri.setdefault(uri, []).append(to_diagnostic(d, self.client_range(analysis, d.span)))
            else:  # about the project as a whole: shown at the top of each open document
                top = lsp.Range(start=lsp.Position(line=0, character=0), end=lsp.Position(line=0, character=0))
                for key in analysis.sources:
                    if key in docs:
                        by_uri.setdefault(self.uri_of(key), []).append(to_diagnostic(d, top))
        for uri in self.published.get(scope, set()) - set(by_uri):
            by_uri[uri] = []
        for uri, items in by_uri.items():
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=items))
        self.published[scope] = {uri for uri, items in by_uri.items() if items}
        if not analysis.sources:  # a closed document of its own: nothing left to keep
            self.analyses.pop(scope, None)
            self.published.pop(scope, None)

    def refresh_for(self, uri: str) -> None:
        scope = self.scope_of(uri)
        pending = self.pending.pop(scope, None)
        if pending is not None:
            pending.cancel()
        self.safely(self.refresh, scope)

    def refresh_soon(self, uri: str) -> None:
        """Check again once the user pauses: each change restarts the wait."""
        scope = self.scope_of(uri)
        pending = self.pending.pop(scope, None)
        if pending is not None:
            pending.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.safely(self.refresh, scope)
            return

        def run() -> None:
            self.pending.pop(scope, None)
            self.safely(self.refresh, scope)

        self.pending[scope] = loop.call_later(CHECK_DELAY_SECONDS, run)

    def safely(self, check, scope) -> None:
        """Run ``check(scope)``; a failure (a bug) is shown on each open document of the scope instead."""
        try:
            check(scope)
        except Exception as error:  # noqa: BLE001 - a bug must not take the server down, nor leave it silent
            self.report_bug(f"checking {scope}", error)
            docs = self.open_documents()
            keys = [key for key in docs if key == scope or (
                isinstance(scope, Path) and os.path.isabs(key) and _is_within(Path(key), scope))]
            top = lsp.Range(start=lsp.Position(line=0, character=0), end=lsp.Position(line=0, character=0))
            diagnostic = to_diagnostic(internal_error(error), top)
            for key in keys:
                self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
                    uri=self.uri_of(key), diagnostics=[diagnostic]))
            self.published[scope] = self.published.get(scope, set()) | {self.uri_of(key) for key in keys}

    def report_bug(self, what: str, error: BaseException) -> None:
        """One line in the client's log (and on stderr); the traceback only with AUDLANG_DEBUG set."""
        message = f"audlang: {what} failed: {type(error).__name__}: {_shortened(str(error))} (this is a bug)"
        log.error(message, exc_info=bool(os.environ.get("AUDLANG_DEBUG")))
        try:
            self.window_log_message(lsp.LogMessageParams(type=lsp.MessageType.Error, message=message))
        except Exception:  # noqa: BLE001, S110 - the client's pipe may be gone; the log line above is enough
            pass


def internal_error(error: BaseException) -> Diagnostic:
    """What an open document shows when checking it failed: a bug in audlang, to be reported."""
    return Diagnostic.sourceless(
        "internal", f"internal error ({type(error).__name__}: {_shortened(str(error))}) while checking this "
        f"project; please report it to audlang (version {__version__})")


def _shortened(text: str, most: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= most else text[: most - 1] + "…"


def _guarded(default: Callable[[], object], publish: bool = False):
    """A feature handler that answers ``default()`` (and logs one line) instead of raising: a bug in one
    request must neither kill the server nor send the client a traceback. With ``publish``, the
    document the notification is about shows the internal error."""

    def decorate(handler):
        @functools.wraps(handler)
        def guarded(ls: AudlangLanguageServer, params):
            try:
                return handler(ls, params)
            except Exception as error:  # noqa: BLE001 - see the docstring
                ls.report_bug(handler.__name__.replace("_", " "), error)
                if publish:
                    top = lsp.Range(start=lsp.Position(line=0, character=0), end=lsp.Position(line=0, character=0))
                    try:
                        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
                            uri=params.text_document.uri, diagnostics=[to_diagnostic(internal_error(error), top)]))
                    except Exception:  # noqa: BLE001, S110 - the bug is logged; nothing more can be done
                        pass
                return default()

        return guarded

    return decorate


def create_server(fallback_root: str | None = None) -> AudlangLanguageServer:
    server = AudlangLanguageServer(fallback_root)

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    @_guarded(lambda: None, publish=True)
    def did_open(ls: AudlangLanguageServer, params: lsp.DidOpenTextDocumentParams) -> None:
        ls.refresh_for(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    @_guarded(lambda: None, publish=True)
    def did_change(ls: AudlangLanguageServer, params: lsp.DidChangeTextDocumentParams) -> None:
        ls.refresh_soon(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    @_guarded(lambda: None, publish=True)
    def did_save(ls: AudlangLanguageServer, params: lsp.DidSaveTextDocumentParams) -> None:
        ls.refresh_for(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    @_guarded(lambda: None)
    def did_close(ls: AudlangLanguageServer, params: lsp.DidCloseTextDocumentParams) -> None:
        ls.refresh_for(params.text_document.uri)

    @server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    @_guarded(lambda: None)
    def did_change_watched_files(ls: AudlangLanguageServer, params: lsp.DidChangeWatchedFilesParams) -> None:
        for scope in list(ls.analyses):
            ls.safely(ls.refresh, scope)

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    @_guarded(lambda: None)
    def formatting(ls: AudlangLanguageServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit] | None:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        text = doc.source
        formatted = format_document(text, document_key(doc.uri))
        if formatted is None:
            return None
        if formatted == text:
            return []
        lines = _lines(text)
        end = lsp.Position(line=len(lines), character=0)
        return [lsp.TextEdit(range=lsp.Range(start=lsp.Position(line=0, character=0), end=end), new_text=formatted)]

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=['"']))
    @_guarded(lambda: lsp.CompletionList(is_incomplete=False, items=[]))
    def completion(ls: AudlangLanguageServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        lines = _lines(doc.source)
        position = ls.workspace.position_codec.position_from_client_units(lines, params.position)
        line = lines[position.line].rstrip("\r\n") if position.line < len(lines) else ""
        above = [text.rstrip("\r\n") for text in lines[: position.line]]
        items = completions(ls.analysis_for(doc.uri), line, position.character, params.position.line, above)
        codec = ls.workspace.position_codec
        for item in items:  # edits were computed in characters; the client counts in its own units
            if isinstance(item.text_edit, lsp.TextEdit):
                item.text_edit.range = codec.range_to_client_units(lines, item.text_edit.range)
        return lsp.CompletionList(is_incomplete=False, items=items)

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    @_guarded(lambda: None)
    def on_hover(ls: AudlangLanguageServer, params: lsp.HoverParams) -> lsp.Hover | None:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        lines = _lines(doc.source)
        position = ls.workspace.position_codec.position_from_client_units(lines, params.position)
        if position.line >= len(lines):
            return None
        text = hover(ls.analysis_for(doc.uri), lines[position.line].rstrip("\r\n"), position.character)
        if text is None:
            return None
        return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text))

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    @_guarded(lambda: None)
    def on_definition(ls: AudlangLanguageServer, params: lsp.DefinitionParams) -> lsp.Location | None:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        lines = _lines(doc.source)
        position = ls.workspace.position_codec.position_from_client_units(lines, params.position)
        if position.line >= len(lines):
            return None
        analysis = ls.analysis_for(doc.uri)
        span = definition(analysis, lines[position.line].rstrip("\r\n"), position.character)
        if span is None:
            return None
        return lsp.Location(uri=ls.uri_of(span.file), range=ls.client_range(analysis, span))

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @_guarded(list)
    def on_document_symbol(ls: AudlangLanguageServer, params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        lines = _lines(doc.source)
        symbols = document_symbols(doc.source, document_key(doc.uri))
        codec = ls.workspace.position_codec

        def convert(symbol: lsp.DocumentSymbol) -> None:
            symbol.range = codec.range_to_client_units(lines, symbol.range)
            symbol.selection_range = codec.range_to_client_units(lines, symbol.selection_range)
            for child in symbol.children or ():
                convert(child)

        for symbol in symbols:
            convert(symbol)
        return symbols

    @server.feature(lsp.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL, DOC_COMMENT_LEGEND)
    @_guarded(lambda: lsp.SemanticTokens(data=[]))
    def semantic_tokens(ls: AudlangLanguageServer, params: lsp.SemanticTokensParams) -> lsp.SemanticTokens:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        lines = _lines(doc.source)
        codec = ls.workspace.position_codec
        data: list[int] = []
        previous = 0
        for line, start, end in doc_comment_lines(doc.source, document_key(doc.uri)):
            text = lines[line].rstrip("\r\n")
            client_start = codec.client_num_units(text[:start])
            length = codec.client_num_units(text[start:end])
            data.extend([line - previous, client_start, length, 0, 1])
            previous = line
        return lsp.SemanticTokens(data=data)

    return server


def main(fallback_root: str | None = None) -> None:
    """Serve on stdin/stdout until the client says exit."""
    create_server(fallback_root).start_io()
