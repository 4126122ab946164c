"""A file parsed again after an edit: ``parse_source``'s answer, with only the declarations that changed parsed.

The parser's own recovery already cuts a file at each line that starts a
declaration (``syntax.parser._chunks``) and parses each piece alone. The
pieces here are the same, each with the comment lines directly above it (its
description, which ``parse_source`` reads from the lines above a declaration).
A piece is parsed once, at line 1, and remembered by its text; a file is the
pieces it holds, each moved down to its line. An edit inside one declaration
parses that piece again and moves the others when lines were added or removed
above them; a piece that stays where it was keeps the very same objects, which
is what lets the check remember what it found about them
(``check.CheckMemory``), and a piece that moved is reported as moved
(``FileParser.take_moves``). A file mostly new (just opened, or pasted over)
is parsed whole, once, and each new piece takes its part of that answer.

The answer is ``parse_source``'s, exactly:

- when every piece parses, the whole file parses to the same declarations
  (the grammar is a list of declarations, and a piece starts a declaration at a
  keyword no declaration continues with), or the parser fails on the whole file
  for nesting and falls back on the same pieces;
- when one does not, the parser falls back on the pieces unless the whole file
  parses after all, which can only be where a piece runs into the next one
  (``audience`` at the end of a line, ``segment "…"`` on the next): that is
  looked for by parsing on into the next pieces, and such a file, like one
  near the token limit or holding a value that cannot be read (E002), is
  parsed whole by ``parse_source`` itself.

``tests/editors/test_lsp_reparse.py`` compares the two on edited examples and
on the hostile corpus.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable

import attrs
from lark.exceptions import UnexpectedEOF, UnexpectedInput, UnexpectedToken

from audlang import ast
from audlang.diagnostics import Diagnostic, Span
from audlang.syntax import normalize, parse_source
from audlang.syntax.grammar import MAX_TOKENS, parser
from audlang.syntax.parser import _chunks  # the pieces the parser's own recovery cuts a file into

#: what a piece that does not parse reports: a syntax error, a condition nested too deep, too many tokens
_SYNTAX = frozenset({"E001", "E004", "E005"})

Parsed = tuple[ast.SourceFile, list[Diagnostic]]


class _Piece:
    """One declaration's text (with its description above it), what ``parse_source`` makes of it alone,
    and where in its file that was last placed."""

    __slots__ = ("text", "chunk", "block_lines", "found", "failed", "whole", "tokens", "counted", "_at", "_placed")

    def __init__(self, text: str, block_lines: int, chunk: str):
        self.text = text
        self.chunk = chunk  # the text after the description: a piece of the parser's own recovery
        self.block_lines = block_lines
        self.found: _Found | None = None  # declarations, diagnostics and comments, ``_at`` lines down
        self.failed = self.whole = False
        self.tokens: int | None = None  # counted only when the file is large enough for the limit to matter
        self.counted = False  # ``tokens`` is the lexer's count, not a bound
        self._at = 0
        self._placed = False  # ``found`` has been part of a file's answer

    def parse(self, key: str) -> None:
        parsed, diagnostics = parse_source(self.text, key)
        # the comments of the description belong to the piece above, whose text they end
        comments = tuple(c for c in parsed.comments if c.span.line > self.block_lines)
        self.place((parsed.declarations, tuple(diagnostics), comments), 0, placed=False)

    def place(self, found: _Found, lines: int, placed: bool = True) -> None:
        """What the piece holds, ``lines`` lines down its file (``placed``: as part of the file's answer)."""
        self.found, self._at, self._placed = found, lines, placed
        codes = {d.code for d in found[1]}
        self.failed = bool(codes & _SYNTAX)
        # A value that cannot be read (E002) leaves a piece that parses without declarations: in a whole
        # file that parses, it leaves the whole file without them. Such a file is parsed whole.
        self.whole = "E005" in codes or ("E002" in codes and not found[0])

    def at(self, key: str, lines: int, moves: list[tuple[object, object, int]]) -> _Found:
        """The piece's declarations, diagnostics and comments ``lines`` lines down its file: the same
        objects as last time when it has not moved; when it has, each declaration is added to ``moves``
        as (the one it was, the one it is, lines down)."""
        if self.found is None:
            self.parse(key)
        assert self.found is not None
        if lines != self._at:
            found = shifted(self.found, lines - self._at)
            if self._placed:
                moves.extend((was, now, lines - self._at) for was, now in zip(self.found[0], found[0], strict=True))
            self.found, self._at = found, lines
        self._placed = True
        return self.found

    def tokens_at_most(self) -> int:
        """At least as many as the tokens the lexer reads in the piece (its comments and blanks are none)."""
        if self.tokens is None:
            self.tokens = sum(1 for m in _TOKENS_AT_MOST.finditer(self.chunk) if not m.group().startswith("#"))
        return self.tokens

    def token_count(self) -> int:
        """How many tokens the lexer reads in the piece before its end or a character it cannot read."""
        if not self.counted:
            count = 0
            try:
                for _ in parser().lex(self.chunk):
                    count += 1
            except UnexpectedInput:
                pass
            self.tokens, self.counted = count, True
        assert self.tokens is not None
        return self.tokens


#: one match for each token the lexer reads, or more: a string, a run of letters, digits, ``_`` and ``.``
#: (a name, number or date: at most one token, as the lexer takes no word character or dot right after
#: one), any other character (``>=`` is two); a comment matches too, and is not counted
_TOKENS_AT_MOST = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|[A-Za-z0-9_.]+|\S')
#: a piece's declarations, diagnostics and comments
_Found = tuple[tuple[ast.Declaration, ...], tuple[Diagnostic, ...], tuple[ast.Comment, ...]]
#: a file whose new pieces hold more than this share of its text is parsed whole, then cut into pieces:
#: one parse of a whole file costs less than a parse of each of its pieces
_MOSTLY_NEW = 0.25


class FileParser:
    """``parse_source`` for the files of one project, remembering each file's pieces for the next parse."""

    def __init__(self) -> None:
        self._files: dict[str, tuple[str, Parsed]] = {}  # key -> the text last parsed and its answer
        self._pieces: dict[str, dict[str, _Piece]] = {}  # key -> piece text -> piece
        self._moves: dict[int, tuple[object, object, int]] = {}  # id(now) -> the first it was, now, lines down

    def take_moves(self) -> list[tuple[object, object, int]]:
        """The declarations that moved since the last call, each (the one it was then, the one it is now,
        lines down): what the check remembers about the first is true of the second, moved down."""
        moves, self._moves = list(self._moves.values()), {}
        return moves

    def _moved(self, moves: list[tuple[object, object, int]]) -> None:
        for was, now, lines in moves:
            first = self._moves.pop(id(was), None)  # it had moved already since the last call
            self._moves[id(now)] = (was, now, lines) if first is None else (first[0], now, first[2] + lines)

    def parse(self, text: str, key: str) -> Parsed:
        """``parse_source(text, key)``; a text parsed last time gives the same objects again."""
        last = self._files.get(key)
        if last is None or last[0] != text:
            last = (text, self._parse(text, key))
            self._files[key] = last
        parsed, diagnostics = last[1]
        return parsed, list(diagnostics)

    def keep_only(self, keys: Iterable[str]) -> None:
        """Forget the files not among ``keys`` (deleted, or left the project)."""
        wanted = set(keys)
        for table in (self._files, self._pieces):
            for key in [k for k in table if k not in wanted]:
                del table[key]

    def _parse(self, text: str, key: str) -> Parsed:
        body = normalize(text)
        known = self._pieces.get(key, {})
        used: dict[str, _Piece] = {}
        placed: list[tuple[_Piece, int]] = []  # each piece and the lines above it in the file
        starts: list[int] = []  # where each piece's chunk (after its description) starts in body
        new = 0  # characters in pieces not seen before
        line, previous = 0, ""
        for start, chunk in _chunks(body):
            block = _description_at_end(previous)
            piece_text = block + chunk
            piece = used.get(piece_text) or known.get(piece_text)
            if piece is None:
                piece = _Piece(piece_text, block.count("\n"), chunk)
                new += len(chunk)
            used[piece_text] = piece
            placed.append((piece, line - piece.block_lines))
            starts.append(start)
            line += chunk.count("\n")
            previous = chunk
        self._pieces[key] = used
        pieces = [piece for piece, _ in placed]
        if new > _MOSTLY_NEW * len(body):  # the new pieces take their part of one parse of the whole file
            whole = parse_source(text, key)
            if not _cut(whole, placed):
                return whole
        if _too_many_tokens(body, pieces):
            return parse_source(text, key)
        for piece in pieces:
            if piece.found is None:
                piece.parse(key)
        if not _as_whole(body, pieces, starts):
            return parse_source(text, key)
        declarations: list[ast.Declaration] = []
        diagnostics: list[Diagnostic] = []
        comments: list[ast.Comment] = []
        moves: list[tuple[object, object, int]] = []
        for piece, lines in placed:
            found, problems, remarks = piece.at(key, lines, moves)
            declarations.extend(found)
            diagnostics.extend(problems)
            comments.extend(remarks)
        self._moved(moves)
        return ast.SourceFile(key, tuple(declarations), tuple(comments)), diagnostics


def _too_many_tokens(body: str, pieces: list[_Piece]) -> bool:
    """Whether the parser might reach ``MAX_TOKENS`` on the whole body (and answer E005 alone)."""
    # a token is a character or more; then a bound on each piece's; then the lexer's own count
    if len(body) <= MAX_TOKENS or sum(p.tokens_at_most() for p in pieces) <= MAX_TOKENS:
        return False
    return sum(p.token_count() for p in pieces) > MAX_TOKENS


def _as_whole(body: str, pieces: list[_Piece], starts: list[int]) -> bool:
    """Whether the pieces, parsed, together are what ``parse_source`` makes of the whole body (see the
    module), for a body within the token limit."""
    failed = next((i for i, piece in enumerate(pieces) if piece.failed), None)
    if failed is None:
        return not any(piece.whole for piece in pieces)
    return not _parses_on(body, starts, failed, pieces[failed])


def _cut(whole: Parsed, placed: list[tuple[_Piece, int]]) -> bool:
    """Give each piece not parsed yet its part of ``parse_source``'s answer for the whole file; whether
    that could be done. It can where a piece's part is what the piece parses to alone: always when the
    parser fell back on the pieces (a syntax error), and when the whole file parsed, if each declaration
    lies in one piece; not in a file with a value that cannot be read or too many tokens."""
    parsed, diagnostics = whole
    if any(d.span is None or d.code in ("E002", "E005") for d in diagnostics):
        return False
    firsts = [lines + piece.block_lines + 1 for piece, lines in placed]  # the first line of each chunk

    def piece_of(line: int) -> int:
        return bisect.bisect_right(firsts, line) - 1

    parts: list[tuple[list[ast.Declaration], list[Diagnostic], list[ast.Comment]]] = [([], [], []) for _ in placed]
    for decl in parsed.declarations:
        if decl.span is None or piece_of(decl.span.line) != piece_of(decl.span.end_line):
            return False  # a declaration across two pieces: they do not parse alone
        parts[piece_of(decl.span.line)][0].append(decl)
    for d in diagnostics:
        assert d.span is not None
        parts[piece_of(d.span.line)][1].append(d)
    for comment in parsed.comments:
        parts[piece_of(comment.span.line)][2].append(comment)
    for (piece, lines), (decls, problems, remarks) in zip(placed, parts, strict=True):
        if piece.found is None:
            piece.place((tuple(decls), tuple(problems), tuple(remarks)), lines)
    return True


def _parses_on(body: str, starts: list[int], first: int, piece: _Piece) -> bool:
    """Whether the whole body parses although piece ``first`` (the first that does not) fails alone.

    The pieces before it parse, so the parser meets it as it meets a file's start. It fails there too
    unless the piece fails only at its end, where the next pieces might continue it: read on into them
    until the text fails before its end (the whole file fails), parses (it might not) or the file ends.
    A condition nested too deep fails the whole file as well: the nesting counted at a piece's start is
    never less in the whole file."""
    assert piece.found is not None
    if "E004" in {d.code for d in piece.found[1]}:
        return False
    for end in [*starts[first + 1:], len(body)]:
        try:
            parser().parse(body[starts[first]:end])
        except (UnexpectedEOF, UnexpectedToken) as error:
            if not _at_end(error):
                return False
            continue
        except UnexpectedInput:  # a character no token starts with
            return False
        return True
    return False


def _at_end(error: UnexpectedInput) -> bool:
    token = getattr(error, "token", None)
    return isinstance(error, UnexpectedEOF) or (token is not None and token.type == "$END")


def _description_at_end(text: str) -> str:
    """The comment lines that end ``text`` (which ends a line), as ``parse_source`` reads a description:
    lines whose first character other than a blank is ``#``."""
    start = len(text)
    while start > 0:
        line_start = text.rfind("\n", 0, start - 1) + 1
        if not text[line_start:start].lstrip().startswith("#"):
            break
        start = line_start
    return text[start:]


# --------------------------------------------------------------------------- moving a piece down


def shifted(value, lines: int):
    """``value`` (a syntax node, a diagnostic, a tuple of them) with every span ``lines`` lines further down."""
    kind = type(value)
    if kind is tuple:
        return tuple([shifted(item, lines) for item in value])
    try:
        move = _MOVES[kind]
    except KeyError:
        move = _MOVES[kind] = _move_for(kind)
    return value if move is None else move(value, lines)


#: per class, the function that rebuilds one of its values moved down (``None``: a value without spans)
_MOVES: dict[type, Callable | None] = {}
#: field types (as the attrs classes annotate them, checked by mypy) that hold no span and are kept as they are
_PLAIN = frozenset({"str", "int", "bool", "Decimal", "str | None", "int | None", "bool | None", "Decimal | None"})


def _move_for(kind: type) -> Callable | None:
    """A function copying a value of the attrs class ``kind`` with its spans (and its nodes') moved down.

    Written out once per class, as attrs writes its ``__init__``, since a file moves thousands of nodes; it
    fills the copy's slots directly (a copy of a value its ``__init__`` built; twice as fast as calling it),
    so ``kind``'s slots must be its fields and nothing else.
    """
    if not attrs.has(kind):
        return None
    fields = attrs.fields(kind)
    slots = {slot for cls in kind.__mro__ for slot in getattr(cls, "__slots__", ()) if slot != "__weakref__"}
    assert slots == {f.name for f in fields}, kind  # no cached hash or other hidden state to copy
    lines, namespace = [], {"new": object.__new__, "kind": kind, "shifted": shifted}
    for field in fields:
        namespace[f"set_{field.name}"] = getattr(kind, field.name).__set__
        written = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
        if kind is Span:
            value = f"v.{field.name}" + (" + d" if field.name in ("line", "end_line") else "")
        elif written in _PLAIN:
            value = f"v.{field.name}"
        elif written in ("Span", "Span | None"):
            value = f"(None if (s := v.{field.name}) is None else move_span(s, d))"
        else:
            value = f"shifted(v.{field.name}, d)"
        lines.append(f"    set_{field.name}(o, {value})")
    if kind is not Span:
        namespace["move_span"] = _MOVES.get(Span) or _MOVES.setdefault(Span, _move_for(Span))
    exec("def move(v, d):\n    o = new(kind)\n" + "\n".join(lines) + "\n    return o\n", namespace)  # our fields
    return namespace["move"]
