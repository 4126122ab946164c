"""The pygls server: documents and workspace folders, when to check, and the features' handlers.

Each handler reads the document, turns the client's position (UTF-16 units by
default) into characters, asks ``audlang.lsp.queries`` and turns the answer's
ranges back into the client's units. The server keeps one ``Analyzer`` and its
latest ``ProjectAnalysis`` per project (or per lone document), checks again
once the user pauses typing, and publishes diagnostics: to every open document
of the project (with the document's version), and to a file on disk when what
it shows changed. A failure inside it, which is a bug, becomes an "internal
error" diagnostic on the documents it concerns and a one-line log message,
never a traceback or silence.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
from collections.abc import Callable
from pathlib import Path

import attrs
from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from audlang import __version__, project
from audlang.diagnostics import AudlangError, Span
from audlang.lsp.analysis import Analyzer, ProjectAnalysis, analyze, document_key, is_within, project_root
from audlang.lsp.queries import (
    DOC_COMMENT_LEGEND, SERVER_NAME, Parse, completions, definition, diagnostics_by_document, document_symbols,
    formatting_edits, hover, internal_error, semantic_token_data, shortened, shown_range, shown_text,
    to_diagnostic,
)
from audlang.lsp.text import lines_of, top_of_document
from audlang.syntax import parse_source
from audlang.syntax.formatter import WIDTH

log = logging.getLogger(__name__)

#: A change is checked once the user pauses this long. The check after a change parses and checks only
#: what the change touches (``Analyzer``: some milliseconds for a declaration of a thousand-segment
#: project), so the wait is there only to let a burst of keys (a key held down, a paste sent as several
#: changes) be checked once; it counts in the time the user waits for diagnostics.
CHECK_DELAY_SECONDS = 0.02


class AudlangLanguageServer(LanguageServer):
    def __init__(self, fallback_root: str | None = None):
        super().__init__(SERVER_NAME, __version__)
        self.fallback_root = fallback_root
        self.analyzers: dict[Path | str, Analyzer] = {}
        self.analyses: dict[Path | str, ProjectAnalysis] = {}
        #: per project, the diagnostics each file shows (in characters), as last published
        self.published: dict[Path | str, dict[str, list[lsp.Diagnostic]]] = {}
        self.uris: dict[str, str] = {}  # key -> the URI the client used
        self.pending: dict[Path | str, asyncio.TimerHandle] = {}  # checks waiting for the user to pause

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

    def format_width(self, uri: str) -> int:
        """The project's ``[fmt] width``; the default when the document is in no project or its
        audlang.toml does not load (the diagnostics say why)."""
        scope = self.scope_of(uri)
        if isinstance(scope, Path):
            try:
                return project.load_config(scope).fmt_width
            except AudlangError:
                pass
        return WIDTH

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

    def parser_for(self, uri: str) -> Parse:
        """How to parse the document at ``uri``: with what its project's analyzer remembers of it."""
        analyzer = self.analyzers.get(self.scope_of(uri))
        return analyzer.parser.parse if analyzer is not None else parse_source

    def latest_analysis(self, uri: str) -> ProjectAnalysis:
        """The project's latest analysis, without waiting for the check of a change just typed: the names
        completion offers are those of a project checked at most ``CHECK_DELAY_SECONDS`` ago (a name being
        typed is not one to offer), and completion answers while the user waits for it."""
        found = self.analyses.get(self.scope_of(uri))
        return found if found is not None else self.analysis_for(uri)

    def uri_of(self, key: str) -> str:
        return self.uris.get(key) or (from_fs_path(key) if os.path.isabs(key) else None) or key

    def is_open(self, key: str) -> bool:
        return self.uri_of(key) in self.workspace.text_documents

    def client_range(self, analysis: ProjectAnalysis, span: Span) -> lsp.Range:
        """A span as a range in the client's units, of the text the client shows for its file."""
        is_open = self.is_open(span.file)
        lines = lines_of(shown_text(analysis, span.file, is_open))
        return self.workspace.position_codec.range_to_client_units(lines, shown_range(analysis, span, is_open))

    # ---------------------------------------------------------------- diagnostics
    def refresh(self, scope: Path | str) -> None:
        """Check a project again and publish what its files show now (clearing the fixed ones)."""
        docs = self.open_documents()
        analyzer = self.analyzers.get(scope)
        first = analyzer is None
        if analyzer is None:
            analyzer = self.analyzers[scope] = Analyzer(scope if isinstance(scope, Path) else None)
        if isinstance(scope, Path):
            analysis = analyzer.analyze(docs)
        else:
            analysis = analyzer.analyze({scope: docs[scope]} if scope in docs else {})
        self.analyses[scope] = analysis
        if first:
            # What is there now (the grammar's tables, the server's modules, the project's syntax trees)
            # lives about as long as the server: kept out of the garbage collector's full passes, which
            # would walk it for a tenth of a second every few edits (an edit that moves declarations makes
            # thousands of objects). Trees replaced later are still freed: they hold no reference cycles.
            gc.freeze()
        before = self.published.get(scope, {})
        shown: dict[str, list[lsp.Diagnostic]] = {}
        for key, items in diagnostics_by_document(analysis, docs).items():
            uri = self.uri_of(key)
            shown[uri] = items
            if key in docs or before.get(uri, []) != items:  # a file on disk only when it changed
                self.publish(uri, self.client_diagnostics(analysis, key, key in docs, items))
        for uri in before.keys() - shown.keys():  # fixed, or no longer in the project
            self.publish(uri, [])
        self.published[scope] = {uri: items for uri, items in shown.items() if items}
        if not analysis.sources:  # a closed document of its own: nothing left to keep
            for table in (self.analyzers, self.analyses, self.published):
                table.pop(scope, None)

    def client_diagnostics(self, analysis: ProjectAnalysis, key: str, is_open: bool,
                           items: list[lsp.Diagnostic]) -> list[lsp.Diagnostic]:
        """``items`` (ranges in characters of the file ``key``) with ranges in the client's units."""
        text = shown_text(analysis, key, is_open)
        if not items or text.isascii():  # one unit a character, whatever the client counts in
            return items
        codec = self.workspace.position_codec
        lines = lines_of(text)  # the file split once for all its diagnostics (a broken one has thousands)
        return [attrs.evolve(item, range=codec.range_to_client_units(lines, item.range)) for item in items]

    def publish(self, uri: str, items: list[lsp.Diagnostic]) -> None:
        """Send a file's diagnostics; an open document's carry the version they were found in."""
        doc = self.workspace.text_documents.get(uri)
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            uri=uri, diagnostics=items, version=doc.version if doc is not None else None))

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
                isinstance(scope, Path) and os.path.isabs(key) and is_within(Path(key), scope))]
            diagnostic = to_diagnostic(internal_error(error), top_of_document())
            shown = self.published.setdefault(scope, {})
            for key in keys:
                self.publish(self.uri_of(key), [diagnostic])
                shown[self.uri_of(key)] = [diagnostic]

    def report_bug(self, what: str, error: BaseException) -> None:
        """One line in the client's log (and on stderr); the traceback only with AUDLANG_DEBUG set."""
        message = f"audlang: {what} failed: {type(error).__name__}: {shortened(str(error))} (this is a bug)"
        log.error(message, exc_info=bool(os.environ.get("AUDLANG_DEBUG")))
        try:
            self.window_log_message(lsp.LogMessageParams(type=lsp.MessageType.Error, message=message))
        except Exception:  # noqa: BLE001, S110 - the client's pipe may be gone; the log line above is enough
            pass


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
                    try:
                        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
                            uri=params.text_document.uri,
                            diagnostics=[to_diagnostic(internal_error(error), top_of_document())]))
                    except Exception:  # noqa: BLE001, S110 - the bug is logged; nothing more can be done
                        pass
                return default()

        return guarded

    return decorate


def create_server(fallback_root: str | None = None) -> AudlangLanguageServer:
    server = AudlangLanguageServer(fallback_root)
    _serve_document_sync(server)
    _serve_edits(server)
    _serve_lookups(server)
    _serve_outline(server)
    return server


def _serve_document_sync(server: AudlangLanguageServer) -> None:
    """Documents opened, changed, saved and closed, and files changed on disk: the analyses refreshed."""

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


def _serve_edits(server: AudlangLanguageServer) -> None:
    """Formatting and completion: edits to the document."""

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    @_guarded(lambda: None)
    def formatting(ls: AudlangLanguageServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit] | None:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        # whole lines: the same in any units
        return formatting_edits(doc.source, document_key(doc.uri), ls.format_width(doc.uri))

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=['"']))
    @_guarded(lambda: lsp.CompletionList(is_incomplete=False, items=[]))
    def completion(ls: AudlangLanguageServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        lines = lines_of(doc.source)
        codec = ls.workspace.position_codec
        position = codec.position_from_client_units(lines, params.position)
        items = completions(ls.latest_analysis(doc.uri), doc.source, position.line, position.character)
        converted: dict[tuple[int, int, int, int], lsp.Range] = {}  # the names' items share one range
        for item in items:  # edits were computed in characters; the client counts in its own units
            if isinstance(item.text_edit, lsp.TextEdit):
                r = item.text_edit.range
                at = (r.start.line, r.start.character, r.end.line, r.end.character)
                if at not in converted:
                    converted[at] = codec.range_to_client_units(lines, r)
                item.text_edit.range = converted[at]
        return lsp.CompletionList(is_incomplete=False, items=items)


def _serve_lookups(server: AudlangLanguageServer) -> None:
    """Hover and go-to-definition: what the name under the cursor is."""

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    @_guarded(lambda: None)
    def on_hover(ls: AudlangLanguageServer, params: lsp.HoverParams) -> lsp.Hover | None:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        position = ls.workspace.position_codec.position_from_client_units(lines_of(doc.source), params.position)
        text = hover(ls.analysis_for(doc.uri), doc.source, position.line, position.character)
        if text is None:
            return None
        return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text))

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    @_guarded(lambda: None)
    def on_definition(ls: AudlangLanguageServer, params: lsp.DefinitionParams) -> lsp.Location | None:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        position = ls.workspace.position_codec.position_from_client_units(lines_of(doc.source), params.position)
        analysis = ls.analysis_for(doc.uri)
        span = definition(analysis, doc.source, position.line, position.character)
        if span is None:
            return None
        return lsp.Location(uri=ls.uri_of(span.file), range=ls.client_range(analysis, span))


def _serve_outline(server: AudlangLanguageServer) -> None:
    """The document's symbols (its outline) and semantic tokens (its doc comments)."""

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @_guarded(list)
    def on_document_symbol(ls: AudlangLanguageServer, params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        lines = lines_of(doc.source)
        symbols = document_symbols(doc.source, document_key(doc.uri), ls.parser_for(doc.uri))
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
        units = ls.workspace.position_codec.client_num_units
        return lsp.SemanticTokens(data=semantic_token_data(doc.source, document_key(doc.uri), units,
                                                           ls.parser_for(doc.uri)))


def main(fallback_root: str | None = None) -> None:
    """Serve on stdin/stdout until the client says exit."""
    create_server(fallback_root).start_io()
