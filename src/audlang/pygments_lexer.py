"""A Pygments lexer for audlang, registered as the ``audlang`` lexer (``*.aud``).

Found by Pygments through the ``pygments.lexers`` entry point in
``pyproject.toml``, so ``pygmentize -l audlang``, Sphinx and MkDocs
highlight ``.aud`` files once audlang is installed. The keywords must match
``grammar/audlang.lark``, the single source of the syntax: a test in
``tests/editors`` fails when the grammar gains a keyword this lexer does not
know. Comment lines directly above a declaration (its description) come out
as ``String.Doc``. Imports nothing of ours.
"""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, default, include, words
from pygments.token import (
    Comment, Keyword, Literal, Name, Number, Operator, Punctuation, String, Whitespace,
)

__all__ = ["AudlangLexer"]

DECLARATION_KEYWORDS = ("segment", "score", "destination", "campaign", "table", "moved", "paused")
LOGICAL_KEYWORDS = ("and", "or", "not")
CONSTANT_KEYWORDS = ("true", "false")
DATE_KEYWORDS = ("today",)
TYPE_KEYWORDS = ("text", "number", "integer", "boolean", "date", "timestamp")
UNIT_KEYWORDS = ("hour", "hours", "day", "days", "week", "weeks", "month", "months", "year", "years",
                 "mile", "miles", "km")
FUNCTION_KEYWORDS = ("env",)
OTHER_KEYWORDS = (
    "has_purchased", "tagged", "abandoned_checkout", "near", "store", "within", "last", "since", "before",
    "after", "on", "between", "in", "list", "is", "set", "starts", "ends", "with", "contains", "product",
    "category", "collection", "brand", "channel", "orders", "quantity", "spend", "of", "this", "ago",
    "audience", "salt", "holdout", "treatment", "subaudience", "otherwise", "to", "from", "header",
    "point", "points", "if", "anniversary", "next", "most_purchased", "first_purchased", "top", "bottom",
)
KEYWORDS = frozenset(DECLARATION_KEYWORDS + LOGICAL_KEYWORDS + CONSTANT_KEYWORDS + DATE_KEYWORDS + TYPE_KEYWORDS
                     + UNIT_KEYWORDS + FUNCTION_KEYWORDS + OTHER_KEYWORDS)

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_QUOTED = r'"(?:[^"\\\n]|\\.)*"'
# What starts a declaration at the beginning of a line (as the parser cuts a file into declarations).
_DECLARATION_START = (r'[ \t]*(?:paused[ \t]+)?'
                      r'(?:(?:segment|destination|campaign|score)[ \t]+"|table[ \t]+[A-Za-z_]|moved[ \t]+[a-z])')
# A value after `<` or `>` makes it a comparison; anything else opens or closes a body.
_VALUE = r'\s*(?:["\d-]|today\b|true\b|false\b)'


class AudlangLexer(RegexLexer):
    """Customer-marketing audiences as code: segments, campaigns, destinations."""

    name = "audlang"
    aliases = ["audlang", "aud"]
    filenames = ["*.aud"]
    mimetypes = ["text/x-audlang"]

    tokens = {
        "root": [
            (r"^([ \t]*)(#[^\n]*)(\n)(?=(?:[ \t]*#[^\n]*\n)*" + _DECLARATION_START + ")",
             bygroups(Whitespace, String.Doc, Whitespace)),
            include("space"),
            (r"^([ \t]*)(?:(paused)(\s+))?(segment|campaign)(\s+)(" + _QUOTED + ")",
             bygroups(Whitespace, Keyword.Declaration, Whitespace, Keyword.Declaration, Whitespace, Name.Class)),
            (r"^([ \t]*)(?:(paused)(\s+))?(destination)(\s+)(" + _QUOTED + r")(?:(\s+)(" + _NAME + r"))?(\s*)(<)",
             bygroups(Whitespace, Keyword.Declaration, Whitespace, Keyword.Declaration, Whitespace, Name.Class,
                      Whitespace, Name.Builtin, Whitespace, Punctuation), "settings"),
            (r"^([ \t]*)(?:(paused)(\s+))?(destination)(\s+)(" + _QUOTED + r")(?:(\s+)(" + _NAME + "))?",
             bygroups(Whitespace, Keyword.Declaration, Whitespace, Keyword.Declaration, Whitespace, Name.Class,
                      Whitespace, Name.Builtin)),
            # a score's body opens on an item or nothing (`score "X" < 3` in a condition compares)
            (r"^([ \t]*)(score)(\s+)(" + _QUOTED + r")(\s*)(<)(?=[ \t]*(?:$|#|>|-?\d+(?:\.\d+)?[ \t]+points?\b))",
             bygroups(Whitespace, Keyword.Declaration, Whitespace, String.Double, Whitespace, Punctuation)),
            (r"^([ \t]*)(table)(\s+)(" + _NAME + r")(?:(\s+)(from)(\s+)(" + _QUOTED + r"))?(\s*)(<)",
             bygroups(Whitespace, Keyword.Declaration, Whitespace, Name.Class, Whitespace, Keyword, Whitespace,
                      String.Double, Whitespace, Punctuation), "columns"),
            (r"^([ \t]*)(table)(\s+)(" + _NAME + ")",
             bygroups(Whitespace, Keyword.Declaration, Whitespace, Name.Class)),
            include("expression"),
        ],
        "space": [
            (r"[ \t\r\n]+", Whitespace),
            (r"#[^\n]*", Comment.Single),
        ],
        "settings": [
            include("space"),
            (r">", Punctuation, "#pop"),
            # In a body, a name before `=` is always a setting's key (keywords such as `segment` too).
            (r"(header)(\s+)(" + _QUOTED + r")(\s*)(=)",
             bygroups(Keyword, Whitespace, String.Double, Whitespace, Operator)),
            (r"(" + _NAME + r")(\s*)(=)", bygroups(Name.Attribute, Whitespace, Operator)),
            include("expression"),
        ],
        "columns": [
            include("space"),
            (r">", Punctuation, "#pop"),
            (r"(" + _NAME + r")(?:(\s+)(" + "|".join(TYPE_KEYWORDS) + r"))?(\s*)(=)",
             bygroups(Name.Attribute, Whitespace, Keyword.Type, Whitespace, Operator)),
            include("expression"),
        ],
        "expression": [
            include("space"),
            (r'"', String.Double, "string"),
            (r"\d{4}-\d{2}-\d{2}(?![\w-])", Literal.Date),
            (r"\d{2}-\d{2}(?![\w-])", Literal.Date),
            (r"\d+(?:\.\d+)?%", Number),
            (r"\d+\.\d+(?![\w.])", Number.Float),
            (r"\d+(?![\w.])", Number.Integer),
            (r"(env)(\s*)(?=\()", bygroups(Name.Builtin, Whitespace)),
            (words(DECLARATION_KEYWORDS, prefix=r"\b", suffix=r"\b"), Keyword.Declaration),
            (words(LOGICAL_KEYWORDS, prefix=r"\b", suffix=r"\b"), Operator.Word),
            (words(CONSTANT_KEYWORDS, prefix=r"\b", suffix=r"\b"), Keyword.Constant),
            (words(DATE_KEYWORDS, prefix=r"\b", suffix=r"\b"), Literal.Date),
            (words(TYPE_KEYWORDS, prefix=r"\b", suffix=r"\b"), Keyword.Type),
            (words(UNIT_KEYWORDS, prefix=r"\b", suffix=r"\b"), Keyword.Pseudo),
            (words(FUNCTION_KEYWORDS, prefix=r"\b", suffix=r"\b"), Name.Builtin),
            (words(OTHER_KEYWORDS, prefix=r"\b", suffix=r"\b"), Keyword),
            (r"<(?!=)(?!" + _VALUE + ")", Punctuation),
            (r">(?!=)(?!" + _VALUE + ")", Punctuation),
            (r">=|<=|!=|=|<|>|\+|-", Operator),
            (r"[(),]", Punctuation),
            (_NAME, Name.Variable),
        ],
        "string": [
            (r'\\["\\nt]', String.Escape),
            (r'[^"\\\n]+', String.Double),
            (r'"', String.Double, "#pop"),
            default("#pop"),  # a string does not cross lines: the parser reports the missing quote
        ],
    }
