"""Loads ``grammar/audlang.lark`` (the single source of the syntax) and builds the parser.

The wheel carries the grammar as ``audlang/audlang.lark`` (see pyproject's
force-include); a checkout or an editable install reads it from ``grammar/``
at the top of the repository.
"""

from __future__ import annotations

import contextvars
import functools
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from types import TracebackType

from lark import Lark, Token

GRAMMAR_NAME = "audlang.lark"


def grammar_path() -> Path:
    packaged = resources.files("audlang").joinpath(GRAMMAR_NAME)
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[3] / "grammar" / GRAMMAR_NAME


@functools.cache
def grammar_text() -> str:
    return grammar_path().read_text(encoding="utf-8")


#: How deep a condition may nest: each ``not`` and each parenthesis around conditions is one level
#: (``not (…)`` is one). The tree of a condition is at most about three times as deep (an ``or``, an
#: ``and`` and a ``not`` per level), and every later stage walks it recursively: the checker, the
#: compiler, SQLAlchemy's own compiler (the deepest: some five frames per tree level), explain and
#: the formatter. At this limit all of them stay well inside Python's default recursion limit of
#: 1,000 when called from a CLI, a test or the language server (tests/syntax/test_limits.py runs
#: each stage at exactly this depth with 250 frames already in use). No hand-written condition
#: comes near 32 levels.
MAX_NESTING = 32
#: How many tokens (keywords, names, values, symbols; comments and blanks do not count) one file may
#: hold. Parsing costs time in proportion to them (Lark reads some 30,000 to 100,000 a second), so
#: this bounds the time of every command on any file; 50,000 conditions joined by ``and``
#: (100,000 tokens) still fit, and no hand-written file comes near.
MAX_TOKENS = 120_000


class SourceLimit(Exception):
    """A file past one of the parser's limits; ``token`` is where it went past."""

    def __init__(self, token: Token, limit: int):
        super().__init__(f"{type(self).__name__} at {token.line}:{token.column}")
        self.token = token
        self.limit = limit


class NestingTooDeep(SourceLimit):
    """A condition nested deeper than ``MAX_NESTING``."""


class TooManyTokens(SourceLimit):
    """A file of more than ``MAX_TOKENS`` tokens."""


class Limits:
    """The budget of one parse: ``parse_source`` sets it (``limits``) around each call to the parser."""

    def __init__(self, nesting: int = MAX_NESTING, tokens: int = MAX_TOKENS):
        self.nesting = nesting
        self.tokens = tokens
        self.left = tokens  # tokens still allowed

    def restart(self) -> None:
        """A new pass over the same text (the parser's error recovery) gets the whole budget again."""
        self.left = self.tokens


_LIMITS: contextvars.ContextVar[Limits | None] = contextvars.ContextVar("audlang_parse_limits", default=None)


class limits:
    """``with limits(Limits()):`` — the parser counts nesting and tokens against them inside the block."""

    def __init__(self, value: Limits):
        self.value = value

    def __enter__(self) -> Limits:
        self._reset = _LIMITS.set(self.value)
        return self.value

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        _LIMITS.reset(self._reset)


class AngleBracketPostLex:
    """Renames the raw ``>`` token by looking one token ahead, and counts against the parse's limits.

    A value after it (string, number, date, ``today``, ``true``/``false``, a
    minus sign) makes it a comparison (``GT``); anything else, the end of a
    body (``RANGLE``). A ``-`` before a number and ``point``/``points`` is the
    sign of a score item's points (``ITEM_MINUS``), never a date's offset.
    LALR(1) alone cannot tell ``sms_opt_in >`` (the end) from
    ``lifetime_revenue > 500``.

    The nesting of a condition is measured here, on the tokens, before any
    tree exists (so without recursion): each ``not`` that negates (not the
    one of ``not in`` or ``is not set``) is a level until an ``and``/``or`` at
    its own parenthesis level ends its operand, and so is each open ``(``
    that groups conditions (after ``<``, ``(``, ``and`` or ``or``). The ``(``
    of ``not (…)`` adds nothing to its ``not`` (so the formatter's
    ``not (state = "OR")`` is as deep as ``not state = "OR"``), and the one of
    a value list (``in (…)``, ``env(…)``) nothing at all. That bounds the
    depth of the tree the parser builds: ``not`` binds tighter than ``and``
    and ``or``, so a negation never reaches past them, and each level holds
    at most an ``or``, an ``and`` and a ``not``.
    """

    always_accept = ("GT_RAW",)
    VALUE_TOKENS = frozenset(
        {"STRING", "NUMBER", "DATE", "MONTH_DAY", "HOLIDAY", "MINUS", "TODAY", "TRUE", "FALSE"}
    )
    _NOT_NEGATION_AFTER = frozenset({"NAME", "IS"})  # `x not in (…)`, `x is not set`
    _GROUP_AFTER = frozenset({"LT", "LPAR", "AND", "OR", "IF"})  # a `(` there groups conditions

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        budget = _LIMITS.get()
        if budget is not None:
            stream = self._counted(stream, budget)
        window: list[Token] = []  # the tokens not yet given out: at most the two that decide the first
        for token in stream:
            window.append(token)
            if len(window) == 3:
                yield self._rename(window[0], window[1], window[2])
                del window[0]
        while window:
            yield self._rename(window[0], *window[1:3])
            del window[0]

    def _counted(self, stream: Iterator[Token], budget: Limits) -> Iterator[Token]:
        frames = [[0, 0]]  # per open parenthesis: the level it counts (0 or 1), the negations in effect
        depth = 0
        previous_type = None
        for token in stream:
            budget.left -= 1
            if budget.left < 0:
                raise TooManyTokens(token, budget.tokens)
            kind = token.type
            if kind == "LPAR":
                counted = 1 if previous_type in self._GROUP_AFTER else 0
                frames.append([counted, 0])
                depth += counted
            elif kind == "RPAR":
                if len(frames) > 1:
                    depth -= sum(frames.pop())
            elif kind == "NOT":
                if previous_type not in self._NOT_NEGATION_AFTER:
                    frames[-1][1] += 1
                    depth += 1
            elif kind == "IF" and len(frames) == 1:  # a score's next item: its own condition starts
                depth -= frames[0][1]
                frames[0][1] = 0
            elif kind in ("AND", "OR"):
                depth -= frames[-1][1]
                frames[-1][1] = 0
            if depth > budget.nesting:
                raise NestingTooDeep(token, budget.nesting)
            previous_type = kind
            yield token

    def _rename(self, token: Token, following: Token | None = None, after: Token | None = None) -> Token:
        if token.type == "MINUS" and following is not None and following.type == "NUMBER" \
                and after is not None and after.value in ("point", "points"):
            return Token.new_borrow_pos("ITEM_MINUS", token.value, token)  # the sign of a score item's points
        if token.type != "GT_RAW":
            return token
        kind = "GT" if following is not None and following.type in self.VALUE_TOKENS else "RANGLE"
        return Token.new_borrow_pos(kind, token.value, token)


@functools.cache
def parser() -> Lark:
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="basic",  # a look-ahead post-lexer needs the basic lexer (STYLE §3)
        postlex=AngleBracketPostLex(),
        propagate_positions=True,
        maybe_placeholders=False,
        cache=True,
    )


_KEYWORD_RE = re.compile(r'"([a-z_]+)"')


@functools.cache
def keywords() -> frozenset[str]:
    """Every keyword of the language, read from the grammar file."""
    text = re.sub(r"//[^\n]*", "", grammar_text())
    return frozenset(_KEYWORD_RE.findall(text)) | {"paused"}


OPERATORS = ("<=", ">=", "!=", "=", "<", ">", "+", "-", "%", "(", ")", ",")
