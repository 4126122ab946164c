"""Source text → ``ast.SourceFile`` plus diagnostics.

A thin Lark ``Transformer`` turns Lark's tree into the frozen attrs nodes of
``audlang.ast``; nothing outside this package sees a Lark tree. A syntax
error does not hide the rest of the file: the text is cut at each declaration
keyword and every piece is parsed on its own, so each broken declaration
gets its own diagnostic and the sound ones still reach the checker.

Any text is accepted as input and answered with diagnostics, never an
exception: a leading UTF-8 byte-order mark is skipped (line 1, column 1 is the
character after it), ``\r\n`` and a lone ``\r`` end a line as ``\n`` does
(as in LSP), and two limits keep every later stage safe and fast: a condition
nests at most ``MAX_NESTING`` levels (E004) and a file holds at most
``MAX_TOKENS`` tokens (E005). Both are counted on the token stream
(``grammar.AngleBracketPostLex``), and the tree is turned into the AST without
recursion, so nothing here depends on Python's recursion limit.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from lark import Token, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, VisitError
from lark.tree import Meta
from lark.visitors import Transformer_NonRecursive

from audlang import ast
from audlang.diagnostics import Diagnostic, Span
from audlang.syntax.grammar import Limits, NestingTooDeep, SourceLimit, TooManyTokens, limits, parser

UNITS = {
    "hour": "hours", "hours": "hours", "day": "days", "days": "days",
    "week": "weeks", "weeks": "weeks", "month": "months", "months": "months",
    "year": "years", "years": "years",
}
DISTANCE_UNITS = {"mile": "miles", "miles": "miles", "km": "km"}

_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}


def unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


#: What a rule's method of ``_Builder`` is handed: the rule's tokens and the values its sub-rules were
#: turned into (ast nodes, words, tuples), in the order the grammar lays them out.
_Children = list[Any]


def _token_position(token: Token) -> tuple[int, int, int, int]:
    """A positioned token's line, column, end line and end column (the lexer sets all four, or none)."""
    line, column, end_line, end_column = token.line, token.column, token.end_line, token.end_column
    assert line is not None and column is not None and end_line is not None and end_column is not None
    return line, column, end_line, end_column


class _Builder(Transformer_NonRecursive[Token, list[ast.Declaration]]):
    """Lark tree → ast nodes. Method names are the grammar's rule names.

    Non-recursive (Lark's own), so a long or deep tree never meets the recursion limit.
    """

    def __init__(self, file: str, line_offset: int, diagnostics: list[Diagnostic]):
        super().__init__(visit_tokens=False)
        self.file = file
        self.line_offset = line_offset
        self.diagnostics = diagnostics

    # ---------------------------------------------------------------- positions
    def span(self, item: Token | Tree[Token] | Meta) -> Span | None:
        if isinstance(item, Token):
            if item.line is None:
                return None
            line, column, end_line, end_column = _token_position(item)
            return Span(self.file, line + self.line_offset, column, end_line + self.line_offset, end_column)
        meta = item.meta if isinstance(item, Tree) else item
        if getattr(meta, "empty", True):
            return None
        return Span(self.file, meta.line + self.line_offset, meta.column,
                    meta.end_line + self.line_offset, meta.end_column)

    def _whole(self, token: Token, what: str) -> int:
        if "." in token.value:
            self.diagnostics.append(Diagnostic.error(
                "E002", f"{what} must be a whole number, not {token.value}", self.span(token)))
            return int(Decimal(token.value))
        return int(token.value)

    # ---------------------------------------------------------------- values
    @v_args(meta=True)
    def string(self, meta: Meta, children: _Children) -> ast.StringValue:
        return ast.StringValue(unquote(children[0].value), self.span(children[0]))

    def _string(self, token: Token) -> ast.StringValue:
        return ast.StringValue(unquote(token.value), self.span(token))

    @v_args(meta=True)
    def number(self, meta: Meta, children: _Children) -> ast.NumberValue:
        text = "".join(c.value for c in children)
        return ast.NumberValue(Decimal(text), self.span(meta))

    @v_args(meta=True)
    def true(self, meta: Meta, children: _Children) -> ast.BooleanValue:
        return ast.BooleanValue(True, self.span(meta))

    @v_args(meta=True)
    def false(self, meta: Meta, children: _Children) -> ast.BooleanValue:
        return ast.BooleanValue(False, self.span(meta))

    @v_args(meta=True)
    def date_literal(self, meta: Meta, children: _Children) -> ast.DateLiteral:
        return ast.DateLiteral(children[0].value, self.span(children[0]))

    @v_args(meta=True)
    def today(self, meta: Meta, children: _Children) -> ast.Today:
        return ast.Today(0, "days", self.span(meta))

    def date_sign(self, children: _Children) -> int:
        return -1 if children[0].value == "-" else 1

    @v_args(meta=True)
    def date_offset(self, meta: Meta, children: _Children) -> ast.Today | ast.DateOffset:
        base, sign, count, unit = children
        n = self._whole(count, "the number of units")
        if isinstance(base, ast.Today) and sign < 0:  # `today - N unit`: its first form
            return ast.Today(n, unit, self.span(meta))
        return ast.DateOffset(base, sign * n, unit, self.span(meta))

    @v_args(meta=True)
    def holiday(self, meta: Meta, children: _Children) -> ast.HolidayDate:
        name, years_ago = children
        return ast.HolidayDate(name.value, years_ago, self.span(meta), self.span(name))

    def unit(self, children: _Children) -> str:
        return UNITS[children[0].value]

    def distance_unit(self, children: _Children) -> str:
        return DISTANCE_UNITS[children[0].value]

    @v_args(meta=True)
    def seasonal(self, meta: Meta, children: _Children) -> ast.SeasonalDate:
        month_day, years_ago = children
        month, day = (int(x) for x in month_day.value.split("-"))
        return ast.SeasonalDate(month, day, years_ago, self.span(meta))

    def this_year(self, children: _Children) -> int:
        return 0

    def last_year(self, children: _Children) -> int:
        return 1

    def years_ago(self, children: _Children) -> int:
        count, unit = children
        if unit != "years":
            self.diagnostics.append(Diagnostic.error(
                "E002", f"a seasonal date counts back in years, not {unit}", self.span(count)))
        return self._whole(count, "the number of years")

    # ---------------------------------------------------------------- windows
    @v_args(meta=True)
    def window_periods(self, meta: Meta, children: _Children) -> ast.InPeriods:
        count, periods, unit = children
        return ast.InPeriods(self._whole(count, "the number of periods"), self._whole(periods, "the number of periods"),
                             unit, self.span(meta))

    @v_args(meta=True)
    def window_between(self, meta: Meta, children: _Children) -> ast.Between:
        return ast.Between(children[0], children[1], self.span(meta))

    @v_args(meta=True)
    def window_within(self, meta: Meta, children: _Children) -> ast.WithinLast:
        count, unit = children
        return ast.WithinLast(self._whole(count, "a window's length"), unit, self.span(meta))

    @v_args(meta=True)
    def window_since(self, meta: Meta, children: _Children) -> ast.Since:
        return ast.Since(children[0], self.span(meta))

    @v_args(meta=True)
    def window_before(self, meta: Meta, children: _Children) -> ast.Before:
        return ast.Before(children[0], self.span(meta))

    @v_args(meta=True)
    def window_after(self, meta: Meta, children: _Children) -> ast.After:
        return ast.After(children[0], self.span(meta))

    @v_args(meta=True)
    def window_on(self, meta: Meta, children: _Children) -> ast.On:
        return ast.On(children[0], self.span(meta))

    # ---------------------------------------------------------------- conditions
    def _attribute(self, token: Token) -> ast.Attribute:
        return ast.Attribute(token.value, self.span(token))

    def comparator(self, children: _Children) -> str:
        return _word(children)

    def value_list(self, children: _Children) -> tuple[ast.Value, ...]:
        return tuple(children)

    @v_args(meta=True)
    def compare(self, meta: Meta, children: _Children) -> ast.Compare:
        name, op, value = children
        return ast.Compare(self._attribute(name), op, value, self.span(meta))

    @v_args(meta=True)
    def in_values(self, meta: Meta, children: _Children) -> ast.InValues:
        return ast.InValues(self._attribute(children[0]), children[1], False, self.span(meta))

    @v_args(meta=True)
    def not_in_values(self, meta: Meta, children: _Children) -> ast.InValues:
        return ast.InValues(self._attribute(children[0]), children[1], True, self.span(meta))

    @v_args(meta=True)
    def between_values(self, meta: Meta, children: _Children) -> ast.BetweenValues:
        name, low, high = children
        return ast.BetweenValues(self._attribute(name), low, high, self.span(meta))

    def _match(self, meta: Meta, children: _Children, op: str) -> ast.StringMatch:
        return ast.StringMatch(self._attribute(children[0]), op, self._string(children[1]), self.span(meta))

    @v_args(meta=True)
    def starts_with(self, meta: Meta, children: _Children) -> ast.StringMatch:
        return self._match(meta, children, "starts with")

    @v_args(meta=True)
    def ends_with(self, meta: Meta, children: _Children) -> ast.StringMatch:
        return self._match(meta, children, "ends with")

    @v_args(meta=True)
    def contains(self, meta: Meta, children: _Children) -> ast.StringMatch:
        return self._match(meta, children, "contains")

    @v_args(meta=True)
    def is_set(self, meta: Meta, children: _Children) -> ast.IsSet:
        return ast.IsSet(self._attribute(children[0]), False, self.span(meta))

    @v_args(meta=True)
    def is_not_set(self, meta: Meta, children: _Children) -> ast.IsSet:
        return ast.IsSet(self._attribute(children[0]), True, self.span(meta))

    @v_args(meta=True)
    def boolean_attribute(self, meta: Meta, children: _Children) -> ast.BooleanAttribute:
        return ast.BooleanAttribute(self._attribute(children[0]), self.span(meta))

    def filter_field(self, children: _Children) -> str:
        return _word(children)

    def measure_kind(self, children: _Children) -> str:
        return _word(children)

    @v_args(meta=True)
    def item_filter(self, meta: Meta, children: _Children) -> ast.ItemFilter:
        field, rest = children
        if isinstance(rest, Token):
            return ast.ItemFilter(field, (self._string(rest),), False, self.span(meta))
        return ast.ItemFilter(field, rest, True, self.span(meta))

    @v_args(meta=True)
    def measure(self, meta: Meta, children: _Children) -> ast.Measure:
        kind, op, value = children
        return ast.Measure(kind, op, value, None, self.span(meta))

    @v_args(meta=True)
    def measure_between(self, meta: Meta, children: _Children) -> ast.Measure:
        kind, low, high = children
        return ast.Measure(kind, "between", low, high, self.span(meta))

    @v_args(meta=True)
    def has_purchased(self, meta: Meta, children: _Children) -> ast.HasPurchased:
        return ast.HasPurchased(*_purchase_parts(children), self.span(meta))

    @v_args(meta=True)
    def most_purchased(self, meta: Meta, children: _Children) -> ast.MostPurchased:
        return ast.MostPurchased(*_purchase_parts(children), self.span(meta))

    @v_args(meta=True)
    def first_purchased(self, meta: Meta, children: _Children) -> ast.FirstPurchased:
        return ast.FirstPurchased(*_purchase_parts(children), self.span(meta))

    def anniversary_side(self, children: _Children) -> str:
        return _word(children)

    @v_args(meta=True)
    def anniversary_month(self, meta: Meta, children: _Children) -> ast.Anniversary:
        return ast.Anniversary(self._attribute(children[0]), "month", None, None, self.span(meta))

    @v_args(meta=True)
    def anniversary_within(self, meta: Meta, children: _Children) -> ast.Anniversary:
        name, side, count, unit = children
        return ast.Anniversary(self._attribute(name), side, self._whole(count, "the number of days"), unit,
                               self.span(meta))

    @v_args(meta=True)
    def score_compare(self, meta: Meta, children: _Children) -> ast.ScoreCompare:
        name, op, value = children
        return ast.ScoreCompare(unquote(name.value), op, value, None, self.span(meta), self.span(name))

    @v_args(meta=True)
    def score_between(self, meta: Meta, children: _Children) -> ast.ScoreCompare:
        name, low, high = children
        return ast.ScoreCompare(unquote(name.value), "between", low, high, self.span(meta), self.span(name))

    def rank_side(self, children: _Children) -> str:
        return _word(children)

    @v_args(meta=True)
    def percentile(self, meta: Meta, children: _Children) -> ast.Percentile:
        name, side, percent = children
        return ast.Percentile(side, self._percent(percent), self._attribute(name), None, self.span(meta),
                              self.span(name))

    @v_args(meta=True)
    def score_percentile(self, meta: Meta, children: _Children) -> ast.Percentile:
        name, side, percent = children
        return ast.Percentile(side, self._percent(percent), None, unquote(name.value), self.span(meta),
                              self.span(name))

    @v_args(meta=True)
    def tagged(self, meta: Meta, children: _Children) -> ast.Tagged:
        rest = children[0]
        if isinstance(rest, Token):
            return ast.Tagged((self._string(rest),), False, self.span(meta))
        return ast.Tagged(rest, True, self.span(meta))

    @v_args(meta=True)
    def abandoned_checkout(self, meta: Meta, children: _Children) -> ast.AbandonedCheckout:
        return ast.AbandonedCheckout(children[0] if children else None, self.span(meta))

    @v_args(meta=True)
    def in_segment(self, meta: Meta, children: _Children) -> ast.InSegment:
        return ast.InSegment(unquote(children[0].value), self.span(meta))

    @v_args(meta=True)
    def in_file(self, meta: Meta, children: _Children) -> ast.InFile:
        return ast.InFile(unquote(children[0].value), self.span(meta))

    @v_args(meta=True)
    def near_store(self, meta: Meta, children: _Children) -> ast.NearStore:
        store, distance, unit = children
        return ast.NearStore(unquote(store.value), distance, unit, self.span(meta))

    @v_args(meta=True)
    def negation(self, meta: Meta, children: _Children) -> ast.Not:
        return ast.Not(children[0], self.span(meta))

    @v_args(meta=True)
    def and_condition(self, meta: Meta, children: _Children) -> ast.And:
        return ast.And(_flatten(ast.And, children), self.span(meta))

    @v_args(meta=True)
    def or_condition(self, meta: Meta, children: _Children) -> ast.Or:
        return ast.Or(_flatten(ast.Or, children), self.span(meta))

    # ---------------------------------------------------------------- declarations
    @v_args(meta=True)
    def segment(self, meta: Meta, children: _Children) -> ast.Segment:
        paused = _take_paused(children)
        name, _lt, condition, _gt = children
        return ast.Segment(unquote(name.value), condition, paused, None, self.span(meta), self.span(name))

    def points(self, children: _Children) -> str:
        return _word(children)

    @v_args(meta=True)
    def score_item(self, meta: Meta, children: _Children) -> ast.ScoreItem:
        number, _points, condition = children
        return ast.ScoreItem(number.value, condition, self.span(meta))

    @v_args(meta=True)
    def score(self, meta: Meta, children: _Children) -> ast.Score:
        name, _lt, *items, _gt = children
        return ast.Score(unquote(name.value), tuple(items), None, self.span(meta), self.span(name))

    @v_args(meta=True)
    def env(self, meta: Meta, children: _Children) -> ast.EnvRef:
        return ast.EnvRef(unquote(children[0].value), self.span(meta))

    @v_args(meta=True)
    def text_value(self, meta: Meta, children: _Children) -> ast.TextValue:
        parts = tuple(self._string(c) if isinstance(c, Token) else c for c in children)
        return ast.TextValue(parts, self.span(meta))

    @v_args(meta=True)
    def number_setting(self, meta: Meta, children: _Children) -> ast.NumberValue:
        value: ast.NumberValue = children[0]
        return value

    @v_args(meta=True)
    def word(self, meta: Meta, children: _Children) -> ast.Word:
        return ast.Word(children[0].value, self.span(children[0]))

    @v_args(meta=True)
    def list_setting(self, meta: Meta, children: _Children) -> ast.ListValue:
        items = tuple(
            ast.StringValue(unquote(c.value), self.span(c)) if c.type == "STRING" else ast.Word(c.value, self.span(c))
            for c in children
        )
        return ast.ListValue(items, self.span(meta))

    @v_args(meta=True)
    def setting(self, meta: Meta, children: _Children) -> ast.Setting:
        key, _eq, value = children
        key = key.children[0]
        return ast.Setting(key.value, value, False, self.span(meta), self.span(key))

    @v_args(meta=True)
    def header(self, meta: Meta, children: _Children) -> ast.Setting:
        key, _eq, value = children
        return ast.Setting(unquote(key.value), value, True, self.span(meta), self.span(key))

    @v_args(meta=True)
    def destination(self, meta: Meta, children: _Children) -> ast.Destination:
        paused = _take_paused(children)
        name, kind, _lt, *settings, _gt = children
        return ast.Destination(unquote(name.value), kind.value, tuple(settings), paused, None,
                               self.span(meta), self.span(name), self.span(kind))

    def _percent(self, token: Token) -> Decimal:
        return Decimal(token.value[:-1])

    @v_args(meta=True)
    def audience_segment(self, meta: Meta, children: _Children) -> ast.Audience:
        return ast.Audience(unquote(children[0].value), None, self.span(meta))

    @v_args(meta=True)
    def audience_condition(self, meta: Meta, children: _Children) -> ast.Audience:
        return ast.Audience(None, children[1], self.span(meta))

    @v_args(meta=True)
    def salt(self, meta: Meta, children: _Children) -> tuple[str, str, Span | None]:
        return ("salt", unquote(children[0].value), self.span(meta))

    @v_args(meta=True)
    def holdout(self, meta: Meta, children: _Children) -> tuple[str, Decimal, Span | None]:
        return ("holdout", self._percent(children[0]), self.span(meta))

    def send_to(self, children: _Children) -> tuple[ast.StringValue, ...]:
        return tuple(self._string(c) for c in children)

    @v_args(meta=True)
    def treatment(self, meta: Meta, children: _Children) -> ast.Treatment:
        name, percent, *rest = children
        return ast.Treatment(unquote(name.value), self._percent(percent), rest[0] if rest else (), self.span(meta))

    @v_args(meta=True)
    def subaudience(self, meta: Meta, children: _Children) -> ast.SubAudience:
        name, _lt, condition, _gt, *rest = children
        return ast.SubAudience(unquote(name.value), condition, rest[0] if rest else (), self.span(meta))

    @v_args(meta=True)
    def catch_all(self, meta: Meta, children: _Children) -> ast.SubAudience:
        name, *rest = children
        return ast.SubAudience(unquote(name.value), None, rest[0] if rest else (), self.span(meta))

    @v_args(meta=True)
    def campaign(self, meta: Meta, children: _Children) -> ast.Campaign:
        paused = _take_paused(children)
        name, _lt, *items, _gt = children
        fields: dict[str, Any] = {"treatments": [], "subaudiences": []}
        for item in items:
            if isinstance(item, ast.Audience):
                self._once(fields, "audience", item, item.span)
            elif isinstance(item, ast.Treatment):
                fields["treatments"].append(item)
            elif isinstance(item, ast.SubAudience):
                fields["subaudiences"].append(item)
            else:
                key, value, span = item
                self._once(fields, key, value, span)
                if key == "holdout":
                    fields["holdout_span"] = span
        fields["treatments"] = tuple(fields["treatments"])
        fields["subaudiences"] = tuple(fields["subaudiences"])
        return ast.Campaign(unquote(name.value), paused=paused, span=self.span(meta),
                            name_span=self.span(name), **fields)

    def _once(self, fields: dict[str, Any], key: str, value: object, span: Span | None) -> None:
        if key in fields:
            self.diagnostics.append(Diagnostic.error(
                "E003", f"a campaign has one `{key}`; this one repeats it", span))
        else:
            fields[key] = value

    def column_type(self, children: _Children) -> str:
        return _word(children)

    @v_args(meta=True)
    def column(self, meta: Meta, children: _Children) -> ast.ColumnMap:
        if len(children) == 4:
            name, type_, _eq, column = children
        else:
            (name, _eq, column), type_ = children, None
        return ast.ColumnMap(name.value, type_, unquote(column.value), self.span(meta))

    @v_args(meta=True)
    def table(self, meta: Meta, children: _Children) -> ast.TableMapping:
        name = children[0]
        source = None
        rest = children[1:]
        if rest and isinstance(rest[0], Token) and rest[0].type == "STRING":
            source = unquote(rest[0].value)
            rest = rest[1:]
        columns = tuple(c for c in rest if isinstance(c, ast.ColumnMap))
        has_body = any(isinstance(c, Token) and c.type == "LT" for c in rest)
        return ast.TableMapping(name.value, source, columns, has_body, None, self.span(meta), self.span(name))

    def moved_kind(self, children: _Children) -> str:
        return _word(children)

    @v_args(meta=True)
    def moved(self, meta: Meta, children: _Children) -> ast.Moved:
        kind, old, new = children
        return ast.Moved(kind, unquote(old.value), unquote(new.value), None, self.span(meta))

    def start(self, children: _Children) -> list[ast.Declaration]:
        return children


def _word(children: _Children) -> str:
    """The text of a rule's one token (a keyword, an operator, a name)."""
    word: str = children[0].value
    return word


def _purchase_parts(children: _Children) -> tuple[tuple[ast.ItemFilter, ...], ast.Measure | None, Any]:
    """The filters, the measure and the window of ``has_purchased`` and its kin, as written."""
    filters = tuple(c for c in children if isinstance(c, ast.ItemFilter))
    measures = [c for c in children if isinstance(c, ast.Measure)]
    windows = [c for c in children if not isinstance(c, (ast.ItemFilter, ast.Measure))]
    return filters, measures[0] if measures else None, windows[0] if windows else None


def _take_paused(children: _Children) -> bool:
    if children and isinstance(children[0], Token) and children[0].type == "PAUSED":
        del children[0]
        return True
    return False


def _flatten(kind: type[ast.And | ast.Or], children: list[ast.Condition]) -> tuple[ast.Condition, ...]:
    out: list[ast.Condition] = []
    for child in children:
        if isinstance(child, kind):
            out.extend(child.operands)
        else:
            out.append(child)
    return tuple(out)


# ------------------------------------------------------------------- comments


def comment_start(line: str) -> int | None:
    """Index of the ``#`` that starts a comment on this line (outside strings), or None."""
    in_string = False
    i = 0
    while i < len(line):
        ch = line[i]
        if in_string:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "#":
            return i
        i += 1
    return None


def scan_comments(text: str, file: str) -> list[ast.Comment]:
    """Every ``#`` comment outside a string, with its span."""
    comments = []
    for number, line in enumerate(text.split("\n"), start=1):
        if "#" not in line:
            continue
        i = comment_start(line)
        if i is not None:
            body = line[i:].rstrip()
            comments.append(ast.Comment(body, Span(file, number, i + 1, number, i + 1 + len(body)),
                                        set(line[:i].strip()) == {")"}))
    return comments


def _describe(decl_line: int, comments_by_line: dict[int, ast.Comment], text_lines: list[str]) -> str | None:
    """Comment lines directly above a declaration (no blank line between) are its description."""
    lines = []
    line = decl_line - 1
    while line in comments_by_line and text_lines[line - 1].lstrip().startswith("#"):
        lines.append(comments_by_line[line].text[1:].strip())
        line -= 1
    if not lines:
        return None
    return "\n".join(reversed(lines))


# ------------------------------------------------------------------- parsing

_DECLARATION_START = re.compile(
    r'^[ \t]*(?:(?:paused[ \t]+)?(?:segment|destination|campaign|table|moved)[ \t]+[^\s=]'
    # a score's declaration, not `score "Name" < 3` in a condition: its body opens on an item or nothing
    r'|score[ \t]+"(?:[^"\\\n]|\\.)*"[ \t]*<[ \t]*(?:$|#|>|-?\d+(?:\.\d+)?[ \t]+points?\b))',
    re.MULTILINE,
)


BOM = "\ufeff"


def normalize(text: str) -> str:
    """The text the parser reads: no leading byte-order mark, and every line break a ``\\n``.

    Spans count lines and columns in it: column 1 of line 1 is the first
    character after a byte-order mark, and ``\\r\\n`` or a lone ``\\r`` ends a
    line as editors (and LSP) count them.
    """
    if text.startswith(BOM):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def parse_source(text: str, file: str = "<string>") -> tuple[ast.SourceFile, list[Diagnostic]]:
    """Parse one file. Never raises for bad input: problems come back as diagnostics.

    Results are remembered for the last few texts (the tree is a frozen value):
    the language server checks every file of a project on each pause in typing,
    and fmt and the server's features read the same text more than once.
    """
    budget = Limits()
    key = (file, text, budget.nesting, budget.tokens)
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
    if found is not None:
        return found[0], list(found[1])
    parsed, diagnostics = _parse(text, file, budget)
    _remember(key, parsed, diagnostics)
    return parsed, diagnostics


#: How many parses, and how many characters of text, ``parse_source`` remembers.
CACHE_ENTRIES = 64
CACHE_CHARACTERS = 32 * 1024 * 1024
#: (file, text, nesting limit, token limit) -> the parse
_CacheKey = tuple[str, str, int, int]
_CACHE: OrderedDict[_CacheKey, tuple[ast.SourceFile, tuple[Diagnostic, ...]]] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_cached_characters = 0


def _remember(key: _CacheKey, parsed: ast.SourceFile, diagnostics: list[Diagnostic]) -> None:
    global _cached_characters
    size = len(key[1])
    if size > CACHE_CHARACTERS:
        return
    with _CACHE_LOCK:
        if key in _CACHE:
            return
        _CACHE[key] = (parsed, tuple(diagnostics))
        _cached_characters += size
        while len(_CACHE) > CACHE_ENTRIES or _cached_characters > CACHE_CHARACTERS:
            old, _ = _CACHE.popitem(last=False)
            _cached_characters -= len(old[1])


def _parse(text: str, file: str, budget: Limits) -> tuple[ast.SourceFile, list[Diagnostic]]:
    text = normalize(text)
    diagnostics: list[Diagnostic] = []
    declarations: list[ast.Declaration] = []
    with limits(budget):
        try:
            tree = parser().parse(text)
            declarations = _build(tree, file, 0, diagnostics)
        except TooManyTokens as error:
            return ast.SourceFile(file, (), ()), [limit_diagnostic(error, file, 0)]
        except (UnexpectedInput, NestingTooDeep):
            declarations = []
            diagnostics = []
            budget.restart()
            line_offset, counted_to = 0, 0
            for start, chunk in _chunks(text):
                line_offset += text.count("\n", counted_to, start)
                counted_to = start
                try:
                    tree = parser().parse(chunk)
                except UnexpectedInput as error:
                    diagnostics.append(syntax_diagnostic(error, file, line_offset, chunk))
                    continue
                except NestingTooDeep as error:
                    diagnostics.append(limit_diagnostic(error, file, line_offset))
                    continue
                except TooManyTokens as error:
                    return ast.SourceFile(file, (), ()), [limit_diagnostic(error, file, line_offset)]
                declarations.extend(_build(tree, file, line_offset, diagnostics))
    comments = scan_comments(text, file)
    by_line = {c.span.line: c for c in comments}
    text_lines = text.split("\n")
    described = []
    for decl in declarations:
        if decl.span is not None:
            description = _describe(decl.span.line, by_line, text_lines)
            if description is not None:
                decl = _with_description(decl, description)
        described.append(decl)
    return ast.SourceFile(file, tuple(described), tuple(comments)), diagnostics


def limit_diagnostic(error: SourceLimit, file: str, line_offset: int) -> Diagnostic:
    """E004 for a condition nested too deep, E005 for a file too large to parse, at the token past the limit."""
    line, column, end_line, end_column = _token_position(error.token)
    span = Span(file, line + line_offset, column, end_line + line_offset, end_column)
    if isinstance(error, NestingTooDeep):
        return Diagnostic.error(
            "E004", f"this condition is nested deeper than {error.limit} levels", span,
            "each `not` and each `(` around conditions is a level (`not (…)` is one); write the condition "
            "with fewer levels (`not not x` is `x`)")
    return Diagnostic.error(
        "E005", f"this file holds more than {error.limit:,} tokens (names, keywords, values and symbols)",
        span, "split it into several files")


def _with_description(decl: ast.Declaration, description: str) -> ast.Declaration:
    import attrs

    return attrs.evolve(decl, description=description)


def _build(tree: Tree[Token], file: str, line_offset: int, diagnostics: list[Diagnostic]) -> list[ast.Declaration]:
    try:
        return _Builder(file, line_offset, diagnostics).transform(tree)
    except VisitError as error:  # a number too large for Decimal and the like
        if isinstance(error.orig_exc, (InvalidOperation, ValueError, OverflowError)):
            diagnostics.append(Diagnostic.error("E002", f"a value cannot be read: {error.orig_exc}",
                                                _Builder(file, line_offset, []).span(error.obj)))
            return []
        raise


def _chunks(text: str) -> Iterator[tuple[int, str]]:
    starts = [m.start() for m in _DECLARATION_START.finditer(text)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        yield start, text[start:end]


# ------------------------------------------------------------------- syntax errors

_FRIENDLY = {
    "STRING": "a string in double quotes",
    "NUMBER": "a number",
    "NAME": "a name",
    "DATE": "a date (YYYY-MM-DD)",
    "MONTH_DAY": "a month and day (MM-DD)",
    "HOLIDAY": "a holiday (easter of last year)",
    "PERCENT": "a percentage such as 10%",
    "RANGLE": "`>`",
    "GT": "`>`",
    "LT": "`<`",
    "GE": "`>=`",
    "LE": "`<=`",
    "EQ": "`=`",
    "NE": "`!=`",
    "MINUS": "`-`",
    "PAUSED": "`paused`",
    "$END": "the end of the file",
}
_CONDITION_STARTS = {"NAME", "HAS_PURCHASED", "TAGGED", "ABANDONED_CHECKOUT", "IN", "NEAR", "NOT", "LPAR",
                     "ANNIVERSARY", "MOST_PURCHASED", "FIRST_PURCHASED", "SCORE"}
_VALUE_STARTS = {"STRING", "NUMBER", "DATE", "MONTH_DAY", "HOLIDAY", "MINUS", "TODAY", "TRUE", "FALSE"}
_CONDITION_HELP = ("a condition is an attribute test, has_purchased, most_purchased, first_purchased, tagged, "
                   "abandoned_checkout, anniversary, score, in segment, in list or near store")
_VALUE_HELP = 'a value is a string in double quotes, a number, a date (2024-01-31, today), true or false'
_DECLARATION_KEYWORDS = {"SEGMENT", "SCORE", "DESTINATION", "CAMPAIGN", "TABLE", "MOVED", "PAUSED"}


def _terminal_text(name: str) -> str:
    if name in _FRIENDLY:
        return _FRIENDLY[name]
    try:
        pattern = parser().get_terminal(name).pattern
    except KeyError:
        return name.lower()
    if pattern.type == "str":
        return f"`{pattern.value}`"
    return name.lower()


def _token_text(token: Token) -> str:
    if token.type == "$END":
        return "the end of the file"
    if token.type == "STRING":
        return f"the string {token.value}"
    if token.type in ("NUMBER", "DATE", "NAME"):
        return f"the {token.type.lower()} `{token.value}`"
    return f"`{token.value}`"


def syntax_diagnostic(error: UnexpectedInput, file: str, line_offset: int, text: str) -> Diagnostic:
    line = (error.line if error.line not in (None, -1) else text.count("\n") + 1) + line_offset
    column = error.column if error.column not in (None, -1) else 1
    if isinstance(error, UnexpectedCharacters):
        # lark declares pos_in_stream None on UnexpectedInput; UnexpectedCharacters sets the lexer's position
        pos = cast(int, error.pos_in_stream)
        char = text[pos] if pos < len(text) else ""
        return _unexpected_character(char, Span(file, line, column, line, column + 1))
    token: Token | None = getattr(error, "token", None)
    expected = set(getattr(error, "expected", None) or getattr(error, "accepts", None) or ())
    if token is None or token.type == "$END" or isinstance(error, UnexpectedEOF):
        last = text.rstrip()
        end_line = last.count("\n") + 1 + line_offset
        end_col = len(last.rsplit("\n", 1)[-1]) + 1
        return _unexpected_end(expected, Span(file, end_line, end_col, end_line, end_col + 1))
    length = max(1, (token.end_column or column + 1) - column) if token.end_line == token.line else 1
    return _unexpected_token(token, expected, Span(file, line, column, line, column + length))


def _unexpected_character(char: str, span: Span) -> Diagnostic:
    """E001 for a character no token starts with: a single quote, an unclosed string, upper case, …"""
    if char == "'":
        return Diagnostic.error("E001", "strings are written in double quotes", span,
                                'write "…" instead of \'…\'')
    if char == '"':
        return Diagnostic.error("E001", "this string is not closed on its line", span,
                                'add the closing `"`')
    if char.isupper():
        return Diagnostic.error("E001", f"unexpected `{char}`: keywords are lower case", span)
    if char == BOM:
        return Diagnostic.error("E001", "unexpected byte-order mark (U+FEFF): one is allowed only at the "
                                "very start of a file", span)
    if not char.isprintable() or char.isspace():
        # A control character or an odd blank is named by its code: printed as is, it would be invisible
        # or act on the terminal.
        return Diagnostic.error("E001", f"unexpected character U+{ord(char):04X}", span,
                                "is this a binary file?" if char == "\x00" else None)
    return Diagnostic.error("E001", f"unexpected character `{char}`", span)


def _unexpected_end(expected: set[str], span: Span) -> Diagnostic:
    """E001 at the end of the file (``span``, just past its last character), ``expected`` still awaited."""
    if "RANGLE" in expected:
        return Diagnostic.error("E001", "missing closing `>`", span,
                                "close the declaration's body with `>`")
    if "NAME" in expected and expected <= _CONDITION_STARTS:
        return Diagnostic.error("E001", "expected a condition before the end of the file", span, _CONDITION_HELP)
    if expected <= _VALUE_STARTS:
        return Diagnostic.error("E001", "expected a value before the end of the file", span, _VALUE_HELP)
    return Diagnostic.error("E001", f"unexpected end of file; expected {_expected_text(expected)}", span)


def _unexpected_token(token: Token, expected: set[str], span: Span) -> Diagnostic:
    """E001 at a token the grammar does not take there, ``expected`` what it would."""
    if "RANGLE" in expected and token.type in _DECLARATION_KEYWORDS:
        return Diagnostic.error("E001", f"missing closing `>` before `{token.value}`", span,
                                "close the previous declaration's body with `>`")
    if token.type == "RANGLE" and "SEGMENT" in expected:
        return Diagnostic.error(
            "E001", "unexpected `>`: the declaration was already closed by the `>` before it", span,
            "if that `>` is a comparison, the value after it is missing")
    if expected and expected <= _CONDITION_STARTS and "NAME" in expected:
        hint = _CONDITION_HELP
        if token.value in ("product", "category", "collection", "brand", "channel", "store"):
            hint = f'to test purchases, write `has_purchased {token.value} "…"`'
        return Diagnostic.error("E001", f"expected a condition, found {_token_text(token)}", span, hint)
    if token.type == "NAME" and "STRING" in expected and "NAME" not in expected:
        return Diagnostic.error("E001", f"expected a name in double quotes, found `{token.value}`", span,
                                f'write "{token.value}"')
    if expected and expected <= _VALUE_STARTS:
        return Diagnostic.error("E001", f"expected a value, found {_token_text(token)}", span, _VALUE_HELP)
    return Diagnostic.error("E001", f"unexpected {_token_text(token)}; expected {_expected_text(expected)}", span)


def _expected_text(expected: set[str]) -> str:
    names = sorted({_terminal_text(e) for e in expected if e not in ("GT_RAW",)})
    if not names:
        return "something else"
    if len(names) > 8:
        return ", ".join(names[:8]) + ", …"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
