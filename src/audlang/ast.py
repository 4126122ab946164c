"""The syntax tree: frozen attrs classes, one per construct, each with its ``Span``.

Built by ``audlang.syntax`` from Lark's parse tree; nothing downstream sees
Lark. Nodes are values: compared by value, printed readably, easy to build in
a test. Spans are excluded from equality so that two trees parsed from
differently laid-out text compare equal (the formatter's round-trip relies on
it). Imports nothing of ours but ``Span``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Union

import attrs

from audlang.diagnostics import Span

_span = attrs.field(eq=False, repr=False, default=None)

# ------------------------------------------------------------------- values


@attrs.frozen
class StringValue:
    value: str
    span: Span | None = _span


@attrs.frozen
class NumberValue:
    value: Decimal
    span: Span | None = _span


@attrs.frozen
class BooleanValue:
    value: bool
    span: Span | None = _span


@attrs.frozen
class DateLiteral:
    """An ISO date as written; checked for existence by the checker."""

    text: str
    span: Span | None = _span


@attrs.frozen
class Today:
    """``today`` or ``today - N unit``: relative to the as-of date."""

    minus: int = 0
    unit: str = "days"  # canonical plural unit
    span: Span | None = _span


@attrs.frozen
class SeasonalDate:
    """``MM-DD of this year`` / ``of last year`` / ``of N years ago``: relative to the as-of year."""

    month: int
    day: int
    years_ago: int
    span: Span | None = _span


@attrs.frozen
class HolidayDate:
    """``easter of this year`` / ``of last year`` / ``of N years ago`` (SPEC §3.1): a moving holiday in a
    year relative to the as-of year. ``name`` as written; the checker knows the holidays."""

    name: str
    years_ago: int
    span: Span | None = _span
    name_span: Span | None = _span


@attrs.frozen
class DateOffset:
    """``DATE + N unit`` / ``DATE - N unit`` (days, weeks, months, years; months and years clamp to the
    month's last day). ``count`` is signed. ``today - N unit`` is a ``Today`` (its first form)."""

    date: Union[DateLiteral, Today, SeasonalDate, HolidayDate]
    count: int
    unit: str  # canonical plural unit
    span: Span | None = _span


DateValue = Union[DateLiteral, Today, SeasonalDate, HolidayDate, DateOffset]
Value = Union[StringValue, NumberValue, BooleanValue, DateLiteral, Today, SeasonalDate, HolidayDate, DateOffset]
DATE_VALUES = (DateLiteral, Today, SeasonalDate, HolidayDate, DateOffset)

# ------------------------------------------------------------------- windows


@attrs.frozen
class Between:
    low: DateValue
    high: DateValue
    span: Span | None = _span


@attrs.frozen
class WithinLast:
    count: int
    unit: str  # hours, days, weeks, months, years
    span: Span | None = _span


@attrs.frozen
class Since:
    date: DateValue
    span: Span | None = _span


@attrs.frozen
class Before:
    date: DateValue
    span: Span | None = _span


@attrs.frozen
class After:
    date: DateValue
    span: Span | None = _span


@attrs.frozen
class On:
    date: DateValue
    span: Span | None = _span


@attrs.frozen
class InPeriods:
    """``in N of last M units`` (SPEC §3.1, ``has_purchased`` only): period k (k = 1…M) is
    D − k units < d ≤ D − (k − 1) units; at least ``count`` of the ``periods`` hold a matching order."""

    count: int
    periods: int
    unit: str  # hours, days, weeks, months, years (the checker allows days to years)
    span: Span | None = _span


Window = Union[Between, WithinLast, Since, Before, After, On, InPeriods]

# ------------------------------------------------------------------- conditions


@attrs.frozen
class Attribute:
    name: str
    span: Span | None = _span


@attrs.frozen
class Compare:
    """``attribute OP value`` with OP one of = != > >= < <=."""

    attribute: Attribute
    op: str
    value: Value
    span: Span | None = _span


@attrs.frozen
class InValues:
    attribute: Attribute
    values: tuple[Value, ...]
    negated: bool = False
    span: Span | None = _span


@attrs.frozen
class BetweenValues:
    attribute: Attribute
    low: Value
    high: Value
    span: Span | None = _span


@attrs.frozen
class StringMatch:
    attribute: Attribute
    op: str  # "starts with", "ends with", "contains"
    value: StringValue
    span: Span | None = _span


@attrs.frozen
class IsSet:
    attribute: Attribute
    negated: bool = False
    span: Span | None = _span


@attrs.frozen
class BooleanAttribute:
    attribute: Attribute
    span: Span | None = _span


@attrs.frozen
class ItemFilter:
    field: str  # product, category, collection, brand, channel, store
    values: tuple[Value, ...]
    is_list: bool = False  # written ``field in (…)``
    span: Span | None = _span


@attrs.frozen
class Measure:
    kind: str  # orders, quantity, spend
    op: str  # = != > >= < <= or "between"
    value: NumberValue
    high: NumberValue | None = None  # for "between"
    span: Span | None = _span


@attrs.frozen
class HasPurchased:
    filters: tuple[ItemFilter, ...] = ()
    measure: Measure | None = None
    window: Window | None = None
    span: Span | None = _span


@attrs.frozen
class Tagged:
    tags: tuple[StringValue, ...]
    is_list: bool = False
    span: Span | None = _span


@attrs.frozen
class AbandonedCheckout:
    window: Window | None = None
    span: Span | None = _span


@attrs.frozen
class InSegment:
    name: str
    span: Span | None = _span


@attrs.frozen
class InFile:
    path: str
    span: Span | None = _span


@attrs.frozen
class NearStore:
    store: str
    distance: NumberValue
    unit: str  # miles, km
    span: Span | None = _span


@attrs.frozen
class Anniversary:
    """``anniversary of a in this month`` (``side`` "month") or ``… within next|last N days`` (``side``
    "next" or "last", with ``count`` and ``unit``)."""

    attribute: Attribute
    side: str  # month, next, last
    count: int | None = None
    unit: str | None = None
    span: Span | None = _span


@attrs.frozen
class MostPurchased:
    """``most_purchased FIELD "V" [window]``: V is among the customer's values of FIELD with the most
    distinct orders. The parser takes what ``has_purchased`` takes; the checker allows one filter and
    no measure."""

    filters: tuple[ItemFilter, ...] = ()
    measure: Measure | None = None
    window: Window | None = None
    span: Span | None = _span


@attrs.frozen
class FirstPurchased:
    """``first_purchased [filters] window``: the earliest matching order up to D is in the window (the
    window is required and there is no measure: the checker's)."""

    filters: tuple[ItemFilter, ...] = ()
    measure: Measure | None = None
    window: Window | None = None
    span: Span | None = _span


@attrs.frozen
class ScoreCompare:
    """``score "Name" OP n`` or ``score "Name" between a and b`` (``op`` "between", ``high`` set)."""

    score: str
    op: str
    value: Value
    high: Value | None = None
    span: Span | None = _span
    name_span: Span | None = _span


@attrs.frozen
class Percentile:
    """``a in top P%`` / ``a in bottom P%`` of a number attribute (``attribute``) or a score (``score``)."""

    side: str  # top, bottom
    percent: Decimal
    attribute: Attribute | None = None
    score: str | None = None
    span: Span | None = _span
    name_span: Span | None = _span


@attrs.frozen
class Not:
    operand: Condition
    span: Span | None = _span


@attrs.frozen
class And:
    operands: tuple[Condition, ...]
    span: Span | None = _span


@attrs.frozen
class Or:
    operands: tuple[Condition, ...]
    span: Span | None = _span


Predicate = Union[
    Compare, InValues, BetweenValues, StringMatch, IsSet, BooleanAttribute,
    HasPurchased, Tagged, AbandonedCheckout, InSegment, InFile, NearStore,
    Anniversary, MostPurchased, FirstPurchased, ScoreCompare, Percentile,
]
Condition = Union[Predicate, Not, And, Or]

ATTRIBUTE_PREDICATES = (Compare, InValues, BetweenValues, StringMatch, IsSet, BooleanAttribute)
#: the conditions that read one attribute's value (``node.attribute``): its predicates, its anniversaries
ATTRIBUTE_READERS = (*ATTRIBUTE_PREDICATES, Anniversary)

# ------------------------------------------------------------------- declarations


@attrs.frozen
class EnvRef:
    """``env("NAME")``: a secret or setting read from the environment at apply time."""

    variable: str
    span: Span | None = _span


@attrs.frozen
class TextValue:
    """Strings and ``env(...)`` references joined with ``+``."""

    parts: tuple[StringValue | EnvRef, ...]
    span: Span | None = _span

    @property
    def has_env(self) -> bool:
        return any(isinstance(p, EnvRef) for p in self.parts)


@attrs.frozen
class Word:
    """A bare word setting value, such as ``mirror``."""

    value: str
    span: Span | None = _span


@attrs.frozen
class ListValue:
    items: tuple[Word | StringValue, ...]
    span: Span | None = _span


SettingValue = Union[TextValue, NumberValue, BooleanValue, Word, ListValue]


@attrs.frozen
class Setting:
    key: str
    value: SettingValue
    header: bool = False  # ``header "Name" = …``
    span: Span | None = _span
    key_span: Span | None = _span


@attrs.frozen
class Segment:
    name: str
    condition: Condition
    paused: bool = False
    description: str | None = None
    span: Span | None = _span
    name_span: Span | None = _span


@attrs.frozen
class ScoreItem:
    """``N points if CONDITION`` (``1 point``; N may be negative or decimal)."""

    points: Decimal
    condition: Condition
    span: Span | None = _span


@attrs.frozen
class Score:
    """``score "Name" < ITEM* >``: a customer's score is the sum of the points of the items whose
    condition holds (0 when none does)."""

    name: str
    items: tuple[ScoreItem, ...] = ()
    description: str | None = None
    span: Span | None = _span
    name_span: Span | None = _span


@attrs.frozen
class Destination:
    name: str
    kind: str
    settings: tuple[Setting, ...] = ()
    paused: bool = False
    description: str | None = None
    span: Span | None = _span
    name_span: Span | None = _span
    kind_span: Span | None = _span


@attrs.frozen
class Audience:
    """A campaign's audience: a segment by name, or an inline condition."""

    segment: str | None = None
    condition: Condition | None = None
    span: Span | None = _span


@attrs.frozen
class Treatment:
    name: str
    percent: Decimal
    destinations: tuple[StringValue, ...] = ()
    span: Span | None = _span


@attrs.frozen
class SubAudience:
    name: str
    condition: Condition | None  # None: the catch-all (``otherwise``)
    destinations: tuple[StringValue, ...] = ()
    span: Span | None = _span


@attrs.frozen
class Campaign:
    name: str
    audience: Audience | None = None
    salt: str | None = None
    holdout: Decimal | None = None
    treatments: tuple[Treatment, ...] = ()
    subaudiences: tuple[SubAudience, ...] = ()
    paused: bool = False
    description: str | None = None
    span: Span | None = _span
    name_span: Span | None = _span
    # Order of the items as written: the formatter keeps audience, salt and
    # holdout first, then the groups in their written order.
    holdout_span: Span | None = _span


@attrs.frozen
class ColumnMap:
    attribute: str
    type: str | None
    column: str
    span: Span | None = _span


@attrs.frozen
class TableMapping:
    name: str
    source: str | None = None
    columns: tuple[ColumnMap, ...] = ()
    has_body: bool = attrs.field(default=False, eq=False)  # layout only
    description: str | None = None
    span: Span | None = _span
    name_span: Span | None = _span


@attrs.frozen
class Moved:
    kind: str  # segment, campaign, destination
    old: str
    new: str
    description: str | None = None
    span: Span | None = _span


Declaration = Union[Segment, Score, Destination, Campaign, TableMapping, Moved]


@attrs.frozen
class Comment:
    text: str  # including the leading '#'
    span: Span
    after_close: bool = False  # only closing parentheses precede it on its line


@attrs.frozen
class SourceFile:
    path: str
    declarations: tuple[Declaration, ...]
    comments: tuple[Comment, ...] = attrs.field(default=(), eq=False)
