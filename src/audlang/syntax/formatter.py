"""The formatter: ``ast.SourceFile`` → the one canonical text, comments kept.

Rules (the decisions are in docs/language.md):
- one blank line between declarations; comment blocks above a declaration stay
  above it (a block directly above is its description, so the gap is kept);
- a segment fits on one line up to 100 columns (``fmt.width``); otherwise its body is
  wrapped one top-level clause per line, each after the first led by its `and`/`or`,
  and a clause still too long that is a group opens `(` and wraps the same way inside;
- destinations, campaigns and mappings with a body put one item per line;
- minimal parentheses, keywords lower case, units singular after 1;
- comments inside a body stay beside the clause they were written beside.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import attrs

from audlang import ast
from audlang.diagnostics import Span

WIDTH = 100
INDENT = "  "

_PRECEDENCE = {ast.Or: 1, ast.And: 2, ast.Not: 3}
_COMPARISONS = (ast.Compare, ast.InValues, ast.BetweenValues, ast.StringMatch, ast.IsSet, ast.ScoreCompare,
                ast.Percentile, ast.Anniversary)


def quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def unit_text(count: int, unit: str) -> str:
    return unit[:-1] if count == 1 and unit.endswith("s") else unit


def number_text(value: Decimal) -> str:
    return str(value)


# ------------------------------------------------------------------ values and conditions


def value_text(value: ast.Value) -> str:
    if isinstance(value, ast.StringValue):
        return quote(value.value)
    if isinstance(value, ast.NumberValue):
        return number_text(value.value)
    if isinstance(value, ast.BooleanValue):
        return "true" if value.value else "false"
    if isinstance(value, ast.DateLiteral):
        return value.text
    if isinstance(value, ast.Today):
        return "today" if value.minus == 0 and value.unit == "days" else \
            f"today - {value.minus} {unit_text(value.minus, value.unit)}"
    if isinstance(value, ast.SeasonalDate):
        return f"{value.month:02d}-{value.day:02d} of {_year_text(value.years_ago)}"
    if isinstance(value, ast.HolidayDate):
        return f"{value.name} of {_year_text(value.years_ago)}"
    if isinstance(value, ast.DateOffset):
        sign = "-" if value.count < 0 else "+"
        count = abs(value.count)
        return f"{value_text(value.date)} {sign} {count} {unit_text(count, value.unit)}"
    raise TypeError(f"not a value: {value!r}")


def _year_text(years_ago: int) -> str:
    return {0: "this year", 1: "last year"}.get(years_ago, f"{years_ago} years ago")


def values_text(values: Sequence[ast.Value]) -> str:
    return "(" + ", ".join(value_text(v) for v in values) + ")"


def window_text(window: ast.Window) -> str:
    if isinstance(window, ast.Between):
        return f"between {value_text(window.low)} and {value_text(window.high)}"
    if isinstance(window, ast.WithinLast):
        return f"within last {window.count} {unit_text(window.count, window.unit)}"
    if isinstance(window, ast.InPeriods):
        return f"in {window.count} of last {window.periods} {unit_text(window.periods, window.unit)}"
    keyword = {ast.Since: "since", ast.Before: "before", ast.After: "after", ast.On: "on"}[type(window)]
    return f"{keyword} {value_text(window.date)}"


def _predicate_text(node: ast.Predicate) -> str:
    if isinstance(node, ast.Compare):
        return f"{node.attribute.name} {node.op} {value_text(node.value)}"
    if isinstance(node, ast.InValues):
        return f"{node.attribute.name} {'not in' if node.negated else 'in'} {values_text(node.values)}"
    if isinstance(node, ast.BetweenValues):
        return f"{node.attribute.name} between {value_text(node.low)} and {value_text(node.high)}"
    if isinstance(node, ast.StringMatch):
        return f"{node.attribute.name} {node.op} {quote(node.value.value)}"
    if isinstance(node, ast.IsSet):
        return f"{node.attribute.name} is {'not set' if node.negated else 'set'}"
    if isinstance(node, ast.BooleanAttribute):
        return node.attribute.name
    if isinstance(node, ast.HasPurchased):
        return _purchase_text("has_purchased", node)
    if isinstance(node, ast.Tagged):
        return f"tagged in {values_text(node.tags)}" if node.is_list else f"tagged {quote(node.tags[0].value)}"
    if isinstance(node, ast.AbandonedCheckout):
        return "abandoned_checkout" + (f" {window_text(node.window)}" if node.window else "")
    if isinstance(node, ast.InSegment):
        return f"in segment {quote(node.name)}"
    if isinstance(node, ast.InFile):
        return f"in list {quote(node.path)}"
    if isinstance(node, ast.NearStore):
        count = node.distance.value
        unit = node.unit[:-1] if node.unit == "miles" and count == 1 else node.unit
        return f"near store {quote(node.store)} within {number_text(count)} {unit}"
    return _pattern_text(node)


def _pattern_text(node: ast.Predicate) -> str:
    """The forms of SPEC §3.1."""
    if isinstance(node, ast.MostPurchased):
        return _purchase_text("most_purchased", node)
    if isinstance(node, ast.FirstPurchased):
        return _purchase_text("first_purchased", node)
    if isinstance(node, ast.Anniversary):
        head = f"anniversary of {node.attribute.name}"
        if node.side == "month":
            return f"{head} in this month"
        assert node.count is not None and node.unit is not None, "an anniversary window has a count"
        return f"{head} within {node.side} {node.count} {unit_text(node.count, node.unit)}"
    if isinstance(node, ast.ScoreCompare):
        if node.op == "between":
            assert node.high is not None, "a score between two numbers has both"
            return f"score {quote(node.score)} between {value_text(node.value)} and {value_text(node.high)}"
        return f"score {quote(node.score)} {node.op} {value_text(node.value)}"
    if isinstance(node, ast.Percentile):
        subject = f"score {quote(node.score)}" if node.score is not None else \
            (node.attribute.name if node.attribute is not None else "")
        return f"{subject} in {node.side} {_percent(node.percent)}"
    raise TypeError(f"not a condition: {node!r}")


def _purchase_text(keyword: str, node: ast.HasPurchased | ast.MostPurchased | ast.FirstPurchased) -> str:
    """``has_purchased`` (or its kin), its filters, its measure and its window."""
    parts = [keyword]
    for item in node.filters:
        shown = f"in {values_text(item.values)}" if item.is_list else value_text(item.values[0])
        parts.append(f"{item.field} {shown}")
    if node.measure is not None:
        parts.append(_measure_text(node.measure))
    if node.window is not None:
        parts.append(window_text(node.window))
    return " ".join(parts)


def _measure_text(m: ast.Measure) -> str:
    if m.op == "between":
        assert m.high is not None, "a measure between two numbers has both"
        return f"{m.kind} between {number_text(m.value.value)} and {number_text(m.high.value)}"
    return f"{m.kind} {m.op} {number_text(m.value.value)}"


def condition_text(node: ast.Condition, parent: float = 0) -> str:
    """The condition on one line, with the parentheses its precedence needs and no more."""
    own = _PRECEDENCE.get(type(node), 4)
    if isinstance(node, ast.Or):
        text = " or ".join(condition_text(o, own) for o in node.operands)
    elif isinstance(node, ast.And):
        text = " and ".join(condition_text(o, own + 0.5) for o in node.operands)
    elif isinstance(node, ast.Not):
        operand = condition_text(node.operand, own)
        if isinstance(node.operand, _COMPARISONS):
            # `not (state = "OR")` keeps its parentheses: it takes in missing
            # values, and must not read like `state != "OR"`, which does not.
            operand = f"({operand})"
        text = "not " + operand
    else:
        return _predicate_text(node)
    return f"({text})" if own < parent else text


def clauses(node: ast.Condition) -> tuple[str, list[ast.Condition]]:
    """The top-level operator and its clauses, for the wrapped layout."""
    if isinstance(node, ast.Or):
        return "or", list(node.operands)
    if isinstance(node, ast.And):
        return "and", list(node.operands)
    return "", [node]


# ------------------------------------------------------------------ comments


@attrs.define
class _Comments:
    """Comments of one declaration, attached to its items."""

    leading: dict[int, list[ast.Comment]] = attrs.Factory(dict)
    trailing: dict[int, ast.Comment] = attrs.Factory(dict)
    before_close: list[ast.Comment] = attrs.Factory(list)
    after_decl: ast.Comment | None = None

    @property
    def any_inside(self) -> bool:
        return bool(self.leading or self.trailing or self.before_close)


def _placed(span: Span | None) -> Span:
    """The span of a parsed node: comments are laid out only around parsed text, where every node has one."""
    assert span is not None, "a comment beside a node without a span"
    return span


def _attach(comments: list[ast.Comment], items: list[Span | None], decl_span: Span | None) -> _Comments:
    out = _Comments()
    inner = []
    for comment in comments:
        decl = _placed(decl_span)
        if comment.span.line == decl.end_line and comment.span.column > decl.end_column - 1:
            out.after_decl = comment
        else:
            inner.append(comment)
    _place(inner, items, out)
    return out


def _place(comments: list[ast.Comment], items: list[Span | None], out: _Comments) -> _Comments:
    """Each comment beside the item it was written beside: trailing on the line an item ends on,
    else leading the first item that ends on or after its line, else before the close."""
    for comment in comments:
        line = comment.span.line
        index = None
        for i in range(len(items) - 1, -1, -1):
            span = items[i]
            if span is not None and span.end_line == line and span.end_column <= comment.span.column:
                index = i
                break
        if index is None and comment.after_close:
            index = _ended_before(items, line)
        if index is not None and index not in out.trailing:
            out.trailing[index] = comment
            continue
        for i, span in enumerate(items):
            if span is not None and span.end_line >= line:
                out.leading.setdefault(i, []).append(comment)
                break
        else:
            out.before_close.append(comment)
    return out


def _ended_before(items: list[Span | None], line: int) -> int | None:
    """The item that ended on a line before ``line`` when the next one starts after it: what the code
    before a comment on ``line`` closes (a group's `)`, whose span stops inside the parenthesis)."""
    for i in range(len(items) - 1, -1, -1):
        span = items[i]
        if span is not None and span.end_line < line:
            following = next((s for s in items[i + 1:] if s is not None), None)
            return i if following is None or following.line > line else None
    return None


# ------------------------------------------------------------------ declarations


def _header(decl: ast.Segment | ast.Destination | ast.Campaign, keyword: str, rest: str = "") -> str:
    paused = "paused " if getattr(decl, "paused", False) else ""
    return f"{paused}{keyword} {quote(decl.name)}{rest}"


def _body(open_line: str, items: list[str], comments: _Comments, indent: str, close: str = ">") -> list[str]:
    lines = [open_line]
    for i, item in enumerate(items):
        for c in comments.leading.get(i, []):
            lines.append(indent + INDENT + c.text)
        trailing = comments.trailing.get(i)
        lines.append(indent + INDENT + item + (f"  {trailing.text}" if trailing else ""))
    for c in comments.before_close:
        lines.append(indent + INDENT + c.text)
    lines.append(indent + close)
    return lines


def _condition_block(head: str, condition: ast.Condition, comments: _Comments, indent: str,
                     tail: str = "", width: int = WIDTH, groups: bool = True) -> list[str]:
    """``head < condition >tail`` on one line when it fits, else wrapped one clause per line.

    With ``groups``, a clause that is still longer than ``width`` and is itself a group of
    `and`/`or` opens a parenthesis and puts one condition per line inside it, and so on down.
    """
    one_line = f"{indent}{head} < {condition_text(condition)} >{tail}"
    if len(one_line) <= width and not comments.any_inside:
        return [one_line]
    op, parts = clauses(condition)
    inner: float = 2 if op == "or" else 2.5
    lines = [f"{indent}{head} <"]
    for i, part in enumerate(parts):
        lead = f"{op} " if i and op else ""
        lines.extend(_item_lines(part, lead, inner if op else 0, comments, i, indent + INDENT, width, groups))
    lines.extend(indent + INDENT + c.text for c in comments.before_close)
    lines.append(f"{indent}>{tail}")
    return lines


def _item_lines(node: ast.Condition, lead: str, parent: float, comments: _Comments, index: int, indent: str,
                width: int, groups: bool) -> list[str]:
    """Item ``index`` of a wrapped group: its leading comments, its lines, its trailing comment.

    Comments written inside a clause that is a group stay inside it when it wraps."""
    span = node.span
    leading = comments.leading.get(index, [])
    wraps = groups and span is not None and _group(node) is not None and _parenthesized(node, parent)
    within = [c for c in leading if wraps and c.span.line >= _placed(span).line]
    lines = [indent + c.text for c in leading if c not in within]
    lines.extend(_clause_lines(node, lead, parent, within, indent, width, groups))
    trailing = comments.trailing.get(index)
    if trailing is not None:
        lines[-1] += f"  {trailing.text}"
    return lines


def _group(node: ast.Condition) -> ast.And | ast.Or | None:
    """The `and`/`or` group a clause wraps as, if any: the clause itself, or what its `not` negates."""
    if isinstance(node, ast.Not):
        node = node.operand
    return node if isinstance(node, (ast.And, ast.Or)) else None


def _parenthesized(node: ast.Condition, parent: float) -> bool:
    """Whether ``condition_text(node, parent)`` puts the group in parentheses (or negates one)."""
    return isinstance(node, ast.Not) or _PRECEDENCE.get(type(node), 4) < parent


def _clause_lines(node: ast.Condition, lead: str, parent: float, comments: list[ast.Comment], indent: str,
                  width: int, groups: bool) -> list[str]:
    text = f"{indent}{lead}{condition_text(node, parent)}"
    # Only a group that has its parentheses anyway wraps: the layout never adds a level of nesting.
    group = _group(node) if groups and _parenthesized(node, parent) else None
    if group is None or (len(text) <= width and not comments):
        return [text]
    opener = lead + ("not " if isinstance(node, ast.Not) else "") + "("
    op, parts = clauses(group)
    inner: float = 2 if op == "or" else 2.5
    placed = _place(comments, [p.span for p in parts], _Comments())
    lines = [indent + opener]
    for i, part in enumerate(parts):
        lines.extend(_item_lines(part, f"{op} " if i else "", inner, placed, i, indent + INDENT, width, groups))
    lines.extend(indent + INDENT + c.text for c in placed.before_close)
    lines.append(indent + ")")
    return lines


def _condition_item_spans(condition: ast.Condition) -> list[Span | None]:
    return [p.span for p in clauses(condition)[1]]


def _setting_text(setting: ast.Setting) -> str:
    value = setting.value
    if isinstance(value, ast.TextValue):
        shown = " + ".join(
            quote(p.value) if isinstance(p, ast.StringValue) else f"env({quote(p.variable)})" for p in value.parts
        )
    elif isinstance(value, ast.ListValue):
        shown = "(" + ", ".join(quote(i.value) if isinstance(i, ast.StringValue) else i.value
                                for i in value.items) + ")"
    elif isinstance(value, ast.Word):
        shown = value.value
    else:
        shown = value_text(value)
    key = f"header {quote(setting.key)}" if setting.header else setting.key
    return f"{key} = {shown}"


def score_item_text(item: ast.ScoreItem) -> str:
    points = "point" if item.points == 1 else "points"
    return f"{number_text(item.points)} {points} if {condition_text(item.condition)}"


def _send_to(destinations: Sequence[ast.StringValue]) -> str:
    return (" to " + ", ".join(quote(d.value) for d in destinations)) if destinations else ""


def _percent(value: Decimal) -> str:
    return f"{value}%"


def format_declaration(decl: ast.Declaration, comments: list[ast.Comment], width: int = WIDTH,
                       groups: bool = True) -> list[str]:
    """The declaration's lines. ``width`` and ``groups`` as in ``_condition_block``."""
    span = decl.span
    if isinstance(decl, ast.Segment):
        attached = _attach(comments, _condition_item_spans(decl.condition), span)
        lines = _condition_block(_header(decl, "segment"), decl.condition, attached, "", width=width, groups=groups)
    elif isinstance(decl, ast.Score):
        attached = _attach(comments, [i.span for i in decl.items], span)
        head = f"score {quote(decl.name)}"
        if decl.items or attached.any_inside:
            lines = _body(f"{head} <", [score_item_text(i) for i in decl.items], attached, "")
        else:
            lines = [f"{head} < >"]
    elif isinstance(decl, ast.Destination):
        attached = _attach(comments, [s.span for s in decl.settings], span)
        head = _header(decl, "destination", f" {decl.kind}")
        if decl.settings or attached.any_inside:
            lines = _body(f"{head} <", [_setting_text(s) for s in decl.settings], attached, "")
        else:
            lines = [f"{head} < >"]
    elif isinstance(decl, ast.Campaign):
        lines = _campaign(decl, comments, width, groups)
        attached = _attach([c for c in comments if c.span.line == _placed(span).end_line], [], span)
    elif isinstance(decl, ast.TableMapping):
        attached = _attach(comments, [c.span for c in decl.columns], span)
        head = f"table {decl.name}" + (f" from {quote(decl.source)}" if decl.source is not None else "")
        if decl.columns or attached.any_inside:
            items = [f"{c.attribute}{' ' + c.type if c.type else ''} = {quote(c.column)}" for c in decl.columns]
            lines = _body(f"{head} <", items, attached, "")
        else:
            lines = [head]
    elif isinstance(decl, ast.Moved):
        attached = _attach(comments, [], span)
        lines = [f"moved {decl.kind} {quote(decl.old)} to {quote(decl.new)}"]
    else:
        raise TypeError(f"not a declaration: {decl!r}")
    if attached.after_decl is not None and not lines[-1].endswith(attached.after_decl.text):
        lines[-1] += f"  {attached.after_decl.text}"
    return lines


def _campaign(decl: ast.Campaign, comments: list[ast.Comment], width: int, groups: bool) -> list[str]:
    entries: list[tuple[Span | None, list[str]]] = []
    inner_comments = [c for c in comments
                      if c.span.line != _placed(decl.span).end_line or c.span.column < _placed(decl.span).end_column]

    def simple(span: Span | None, text: str) -> None:
        entries.append((span, [INDENT + text]))

    if decl.audience is not None:
        if decl.audience.segment is not None:
            simple(decl.audience.span, f"audience segment {quote(decl.audience.segment)}")
        else:
            assert decl.audience.condition is not None, "an audience is a segment or a condition"
            entries.append((decl.audience.span,
                            _condition_block("audience", decl.audience.condition, _Comments(), INDENT,
                                             width=width, groups=groups)))
    if decl.salt is not None:
        simple(None, f"salt {quote(decl.salt)}")
    if decl.holdout is not None:
        simple(decl.holdout_span, f"holdout {_percent(decl.holdout)}")
    for t in decl.treatments:
        simple(t.span, f"treatment {quote(t.name)} {_percent(t.percent)}{_send_to(t.destinations)}")
    for s in decl.subaudiences:
        if s.condition is None:
            simple(s.span, f"subaudience {quote(s.name)} otherwise{_send_to(s.destinations)}")
        else:
            entries.append((s.span, _condition_block(f"subaudience {quote(s.name)}", s.condition, _Comments(),
                                                     INDENT, _send_to(s.destinations), width, groups)))
    attached = _attach(inner_comments, [e[0] for e in entries], decl.span)
    lines = [_header(decl, "campaign") + " <"]
    for i, (_span, block) in enumerate(entries):
        for c in attached.leading.get(i, []):
            lines.append(INDENT + c.text)
        trailing = attached.trailing.get(i)
        if trailing is not None:
            block = block[:-1] + [block[-1] + f"  {trailing.text}"]
        lines.extend(block)
    for c in attached.before_close:
        lines.append(INDENT + c.text)
    lines.append(">")
    return lines


def format_file(source: ast.SourceFile, text: str, width: int = WIDTH) -> str:
    """The canonical text of a parsed file. ``text`` is the original, for blank-line facts;
    ``width`` the longest line a condition keeps before it wraps."""
    text_lines = text.split("\n")
    declarations = sorted(source.declarations, key=lambda d: (_placed(d.span).line, _placed(d.span).column))
    comments = sorted(source.comments, key=lambda c: (c.span.line, c.span.column))
    out: list[str] = []
    ci = 0
    for decl in declarations:
        span = _placed(decl.span)
        outside: list[ast.Comment] = []
        while ci < len(comments) and comments[ci].span.line < span.line:
            outside.append(comments[ci])
            ci += 1
        inside: list[ast.Comment] = []
        while ci < len(comments) and (
            comments[ci].span.line < span.end_line
            or (comments[ci].span.line == span.end_line)
        ):
            inside.append(comments[ci])
            ci += 1
        blocks = _blocks(outside, text_lines)
        if out:
            out.append("")
        for i, block in enumerate(blocks):
            out.extend(c.text for c in block)
            attached = i == len(blocks) - 1 and block[-1].span.line == span.line - 1
            if not attached:
                out.append("")
        out.extend(format_declaration(decl, inside, width))
    rest = comments[ci:]
    if rest:
        for block in _blocks(rest, text_lines):
            if out:
                out.append("")
            out.extend(c.text for c in block)
    return "\n".join(out) + "\n" if out else ""


def _blocks(comments: list[ast.Comment], text_lines: list[str]) -> list[list[ast.Comment]]:
    """Comments split into blocks at blank lines (or any non-comment line between them)."""
    blocks: list[list[ast.Comment]] = []
    for comment in comments:
        if blocks and blocks[-1][-1].span.line == comment.span.line - 1:
            blocks[-1].append(comment)
        else:
            blocks.append([comment])
    return blocks
