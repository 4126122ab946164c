"""Loads ``grammar/audlang.lark`` (the single source of the syntax) and builds the parser.

The wheel carries the grammar as ``audlang/audlang.lark`` (see pyproject's
force-include); a checkout or an editable install reads it from ``grammar/``
at the top of the repository.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path

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


class AngleBracketPostLex:
    """Renames the raw ``>`` token by looking one token ahead.

    A value after it (string, number, date, ``today``, ``true``/``false``, a
    minus sign) makes it a comparison (``GT``); anything else, the end of a
    body (``RANGLE``). LALR(1) alone cannot tell ``sms_opt_in >`` (the end)
    from ``lifetime_revenue > 500``.
    """

    always_accept = ("GT_RAW",)
    VALUE_TOKENS = frozenset(
        {"STRING", "NUMBER", "DATE", "MONTH_DAY", "MINUS", "TODAY", "TRUE", "FALSE"}
    )

    def process(self, stream):
        previous = None
        for token in stream:
            if previous is not None:
                yield self._rename(previous, token)
            previous = token
        if previous is not None:
            yield self._rename(previous, None)

    def _rename(self, token: Token, following: Token | None) -> Token:
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
