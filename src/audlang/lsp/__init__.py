"""The language server: ``audlang lsp``, on stdio (pygls 2).

What an editor gets while the user types:

- diagnostics, the same as ``audlang validate``: the open documents, as typed,
  are checked together with the project's other files on disk, so an unknown
  segment or a name declared twice in another file shows up at once; after an
  edit only what it can affect is parsed and checked again (``Analyzer``), so
  they follow typing in a project of thousands of segments;
- formatting (``syntax.format_source``), completion (keywords from the
  grammar, attributes with their types, segment, destination and campaign
  names), hover (an attribute's type and column, a declaration's description
  and definition), go to definition of a quoted name (``in segment "…"``,
  ``audience segment "…"``, ``to "…"``) and of a custom table's attribute,
  across files, and document symbols;
- semantic tokens for one thing TextMate grammars cannot see: the comment
  lines directly above a declaration (its description) are marked
  ``comment`` + ``documentation``.

Any document gets an answer: lines are counted as LSP counts them (``\\n``,
``\\r\\n``, a lone ``\\r``), a byte-order mark that a client leaves in a
document's text is the first character of line 0, and a failure inside the
server, which is a bug, becomes an "internal error" diagnostic and a one-line
log message, never a traceback or silence.

The package is split by job, and only ``server`` talks to a client:

- ``analysis``: one project checked as a whole (``ProjectAnalysis``, ``analyze``), and again
  and again as it is edited, with the same answer (``Analyzer``);
- ``reparse``: a file parsed again after an edit, only the declarations that changed;
- ``text``: lines and positions as LSP counts them, what is under the cursor;
- ``queries``: every feature as a pure function of text, analysis and position
  (table-tested in ``tests/editors/test_lsp_queries.py``);
- ``server``: the pygls server, when to check, the handlers, client units.

Like ``cli``, this package sits on top of the stages and only calls them.
"""

from audlang.lsp.analysis import Analyzer, ProjectAnalysis, analyze, document_key, project_root
from audlang.lsp.queries import (
    DOC_COMMENT_LEGEND, SERVER_NAME, completions, definition, diagnostics_by_document, doc_comment_lines,
    document_symbols, format_document, formatting_edits, hover, internal_error, semantic_token_data,
    to_diagnostic,
)
from audlang.lsp.server import CHECK_DELAY_SECONDS, AudlangLanguageServer, create_server, main
from audlang.lsp.text import QuotedName, lines_of, quoted_name_at, span_range, text_range, word_at

__all__ = [
    "CHECK_DELAY_SECONDS", "DOC_COMMENT_LEGEND", "SERVER_NAME", "Analyzer", "AudlangLanguageServer", "ProjectAnalysis",
    "QuotedName", "analyze", "completions", "create_server", "definition", "diagnostics_by_document",
    "doc_comment_lines", "document_key", "document_symbols", "format_document", "formatting_edits", "hover",
    "internal_error", "lines_of", "main", "project_root", "quoted_name_at", "semantic_token_data", "span_range",
    "text_range", "to_diagnostic", "word_at",
]
