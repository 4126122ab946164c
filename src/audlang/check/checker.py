"""Name resolution, types, cycles, dates, campaigns and secrets: parsed files → ``Model``.

Collects every problem as a ``Diagnostic`` and keeps going, so that one bad
declaration does not hide the others. Imports ``ast``, ``diagnostics`` and the
rest of this package only.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TypeVar, Union, cast
from urllib.parse import urlsplit

import attrs

from audlang import ast
from audlang.holidays import HOLIDAYS
from audlang.check import destinations as dest_specs, templates as dest_templates
from audlang.check.datamodel import (
    BOOLEAN, DATE, ITEM_FILTER_COLUMNS, NUMERIC_TYPES, STANDARD_TABLES, TEMPORAL_TYPES, TEXT, TYPES,
    AttributeInfo, DataModel, TableInfo, standard_model,
)
from audlang.check.memory import UNREMEMBERED, CheckMemory
from audlang.check.model import ListFile, Model
from audlang.check.limits import (
    MAX_COMBINED_DEPTH, MAX_COUNT, MAX_DECIMALS, MAX_DISTANCE, MAX_EXPANDED_NODES, MAX_NUMBER, MAX_PERIODS,
)
from audlang.check.names import view_name
from audlang.diagnostics import Diagnostic, Span, did_you_mean, did_you_mean_quoted, printable
from audlang.files import MAX_READ_BYTES, FileRead, OutsideRoots, UnsafeFile, read_regular, shown_columns
from audlang.vocabulary import counted

#: reads an ``in list`` file given its path (joined to the declaring file's folder); raises
#: ``OSError`` when it is missing and ``UnsafeFile`` when it may not be read
ListReader = Callable[[str], FileRead]
#: the declarations a project names, each kind in its own table
_Named = TypeVar("_Named", ast.Segment, ast.Score, ast.Destination, ast.Campaign, ast.TableMapping)
#: what a remembered check computes besides its diagnostics
_Value = TypeVar("_Value")
#: the predicates on one attribute (``ast.ATTRIBUTE_PREDICATES``)
_AttributePredicate = Union[ast.Compare, ast.InValues, ast.BetweenValues, ast.StringMatch, ast.IsSet,
                            ast.BooleanAttribute]


#: characters a name may not hold: C0 controls, DEL, C1 controls, and the Unicode line and paragraph
#: separators and bidirectional overrides (which reorder how a log line reads)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
#: ``[catalog.][schema.]table``: nothing a database would read as a file path or a function call
_TABLE_NAME = re.compile(r"[A-Za-z_][\w$-]*(\.[A-Za-z_][\w$-]*){0,2}", re.ASCII)


def _short(number: Decimal) -> str:
    text = format(number, "f") if number.is_finite() else str(number)
    return text if len(text) <= 24 else text[:20] + "…"


def _where(span: Span | None) -> str:
    return f" (first declared at {span})" if span else ""


def check(files: Sequence[ast.SourceFile], read_file: ListReader | None = None,
          exports: dest_templates.ExportRoots | None = None,
          memory: CheckMemory | None = None) -> tuple[Model, list[Diagnostic]]:
    """Check a whole project. ``read_file`` reads ``in list`` files (default: from disk, inside the
    working directory, at most ``MAX_READ_BYTES``); destinations write inside ``exports`` (default: the
    working directory). With ``memory``, what an earlier check of the project found about a declaration
    is taken again where nothing it depends on changed (``CheckMemory``): the answer is the same."""
    return _Checker(files, read_file or (lambda p: read_regular(p, [Path.cwd()], MAX_READ_BYTES)),
                    exports or dest_templates.ExportRoots(Path.cwd()), memory).run()


class _Checker:
    def __init__(self, files: Sequence[ast.SourceFile], read_file: ListReader,
                 exports: dest_templates.ExportRoots, memory: CheckMemory | None = None):
        self.files = tuple(files)
        self.read_file = read_file
        self.exports = exports
        self.memory = memory
        self.diagnostics: list[Diagnostic] = []
        self.lists: dict[tuple[str, str], ListFile] = {}
        self._name_sets: dict[str, frozenset[str]] = {}

    def error(self, code: str, message: str, span: Span | None, suggestion: str | None = None) -> None:
        self.diagnostics.append(Diagnostic.error(code, message, span, suggestion))

    def warning(self, code: str, message: str, span: Span | None, suggestion: str | None = None) -> None:
        self.diagnostics.append(Diagnostic.warning(code, message, span, suggestion))

    # ------------------------------------------------------------------ driver
    def run(self) -> tuple[Model, list[Diagnostic]]:
        segments: dict[str, ast.Segment] = {}
        scores: dict[str, ast.Score] = {}
        destinations: dict[str, ast.Destination] = {}
        campaigns: dict[str, ast.Campaign] = {}
        tables: dict[str, ast.TableMapping] = {}
        moves: list[ast.Moved] = []
        for file in self.files:
            for decl in file.declarations:
                if isinstance(decl, ast.Segment):
                    self._declare(segments, decl, "segment")
                elif isinstance(decl, ast.Score):
                    self._declare(scores, decl, "score")
                elif isinstance(decl, ast.Destination):
                    self._declare(destinations, decl, "destination")
                elif isinstance(decl, ast.Campaign):
                    self._declare(campaigns, decl, "campaign")
                elif isinstance(decl, ast.TableMapping):
                    self._declare(tables, decl, "table")
                elif isinstance(decl, ast.Moved):
                    moves.append(decl)
        self.segment_names = segments
        self.score_names = scores
        self.destination_names = destinations
        self._one_view_each(segments)
        self.model = self._data_model(tables.values())
        if self.memory is not None:
            self.memory.start(self.model)

        direct: dict[str, tuple[str, ...]] = {}
        for segment in segments.values():
            self.current_file = segment.span.file if segment.span else ""
            self._remembered("segment", segment, self._inputs(segment), partial(self._condition, segment.condition))
            direct[segment.name] = self._uses(segment).segments
        score_uses = {score.name: _score_uses(score) for score in scores.values()}
        for score in scores.values():
            self.current_file = score.span.file if score.span else ""
            self._score(score)
        # a segment depends on the segments its condition uses, and on those its scores' items use
        dependencies = {name: _through_scores(direct[name], self._uses(segment).scores, score_uses)
                        for name, segment in segments.items()}
        for destination in destinations.values():
            self._remembered("destination", destination, (), partial(self._destination, destination))
        for campaign in campaigns.values():
            self._remembered("campaign", campaign, self._inputs(campaign), partial(self._campaign, campaign))
        self.diagnostics.extend(dest_templates.check_destinations(
            destinations, campaigns.values(), self.exports,
            lambda name: info.type if (info := self.model.attributes.get(name)) else None))
        self._moves(moves, segments, campaigns, destinations)
        order = self._order(segments, scores, score_uses)
        self._combined_depths(order, segments, campaigns)
        model = Model(
            data_model=self.model,
            segments={name: segments[name] for name in order},
            destinations=destinations,
            campaigns=campaigns,
            moves=tuple(moves),
            dependencies=dependencies,
            lists=self.lists,
            files=self.files,
            scores=scores,
        )
        if self.memory is not None:
            self.memory.finish()
        return model, self.diagnostics

    # ------------------------------------------------------------------ what a declaration depends on
    def _remembered(self, check: str, decl: object, inputs: object, work: Callable[[], _Value]) -> _Value:
        """``work()``, one check of ``decl``; or, for the same declaration with equal ``inputs``, the
        diagnostics and value it gave last time (``CheckMemory``)."""
        if self.memory is None or inputs is UNREMEMBERED:
            return work()
        checks = self.memory.of(decl).checks
        found = checks.get(check)
        if found is not None and found[0] == inputs:
            self.diagnostics.extend(found[1])
            return cast(_Value, found[2])
        start = len(self.diagnostics)
        value = work()
        checks[check] = (inputs, tuple(self.diagnostics[start:]), value)
        return value

    def _uses(self, decl: ast.Segment | ast.Campaign) -> _Uses:
        """The names a segment or campaign uses, read from it once (and remembered with it)."""
        if self.memory is None:
            return _uses_of(decl)
        remembered = self.memory.of(decl)
        if remembered.uses is None:
            remembered.uses = _uses_of(decl)
        return cast(_Uses, remembered.uses)

    def _inputs(self, decl: ast.Segment | ast.Campaign) -> object:
        """What the checks of a segment's condition or of a campaign read from the rest of the project."""
        if self.memory is None:
            return UNREMEMBERED
        uses = self._uses(decl)
        if uses.lists:
            return UNREMEMBERED
        if uses.scores:  # what it reads of a score (its items) is not remembered with it
            return UNREMEMBERED
        return (self.memory.generation, self._known(uses.segments, self.segment_names, "segment"),
                self._known(uses.destinations, self.destination_names, "destination"))

    def _known(self, names: tuple[str, ...], declared: Mapping[str, object], kind: str) -> object:
        """Whether each name is declared; with one that is not, every declared name (its suggestion's)."""
        known = tuple(name in declared for name in names)
        if all(known):
            return known
        if kind not in self._name_sets:
            self._name_sets[kind] = frozenset(declared)
        return known, self._name_sets[kind]

    def _declare(self, table: dict[str, _Named], decl: _Named, kind: str) -> None:
        self._plain_name(decl.name, kind, decl.name_span)
        if decl.name in table:
            self.error("E103", f'{kind} "{decl.name}" is declared twice{_where(table[decl.name].name_span)}',
                       decl.name_span)
        else:
            table[decl.name] = decl

    def _one_view_each(self, segments: dict[str, ast.Segment]) -> None:
        taken: dict[str, ast.Segment] = {}
        known = self.memory.views if self.memory is not None else {}
        views: dict[str, str] = {}
        for segment in segments.values():
            view = views[segment.name] = known.get(segment.name) or view_name(segment.name)
            if view in taken:
                first = taken[view]
                self.error("E117", f'segments "{first.name}" and "{segment.name}" would share the warehouse view '
                           f"{view}{_where(first.name_span)}", segment.name_span,
                           "rename one of them so that the names differ in more than case and punctuation")
            else:
                taken[view] = segment
        if self.memory is not None:
            self.memory.views = views

    # ------------------------------------------------------------------ schema mappings
    def _data_model(self, mappings: Iterable[ast.TableMapping]) -> DataModel:
        base = standard_model()
        tables = dict(base.tables)
        attributes = dict(base.attributes)
        for mapping in mappings:
            if mapping.source is not None and not _TABLE_NAME.fullmatch(mapping.source):
                self.error("E113", f'"{mapping.source[:60]}" is not a table name: write [catalog.][schema.]table, '
                           "each part letters, digits, `_`, `$` or `-`", mapping.span,
                           "a schema mapping names a table of the warehouse, never a file")
            standard = mapping.name in STANDARD_TABLES
            columns: dict[str, str] = dict(tables[mapping.name].columns) if standard else {}
            types: dict[str, str] = dict(tables[mapping.name].types) if standard else {"customer_id": TEXT}
            if not standard:
                columns["customer_id"] = "customer_id"
            for col in mapping.columns:
                known = types.get(col.attribute)
                if col.type is not None and col.type not in TYPES:
                    self.error("E113", f"unknown type `{col.type}`", col.span, did_you_mean(col.type, TYPES))
                if known is not None:
                    if col.type is not None and col.type != known and col.attribute != "customer_id":
                        self.error("E113", f"`{mapping.name}.{col.attribute}` is {known}, not {col.type}", col.span,
                                   "leave the type out when mapping a standard column")
                    columns[col.attribute] = col.column
                    continue
                if standard and mapping.name != "customer_360":
                    self.error("E113", f"table `{mapping.name}` has no column `{col.attribute}`", col.span,
                               did_you_mean(col.attribute, types))
                    continue
                if col.type is None:
                    self.error("E113", f"attribute `{col.attribute}` needs a type "
                               f"({', '.join(TYPES)})", col.span)
                    continue
                if col.attribute in attributes:
                    other = attributes[col.attribute]
                    self.error("E103", f"attribute `{col.attribute}` is already defined by table `{other.table}`"
                               if other.table else f"`{col.attribute}` is a derived attribute", col.span)
                    continue
                columns[col.attribute] = col.column
                types[col.attribute] = col.type
                attributes[col.attribute] = AttributeInfo(col.attribute, col.type, mapping.name, col.attribute)
            tables[mapping.name] = TableInfo(
                mapping.name, mapping.source or mapping.name, columns, types, custom=not standard
            )
            if not standard and len(types) == 1:
                self.warning("W202", f"custom table `{mapping.name}` declares no attributes", mapping.name_span)
        return DataModel(tables, attributes)

    # ------------------------------------------------------------------ conditions
    def _condition(self, node: ast.Condition) -> None:
        if isinstance(node, (ast.And, ast.Or)):
            for operand in node.operands:
                self._condition(operand)
        elif isinstance(node, ast.Not):
            self._condition(node.operand)
        elif isinstance(node, ast.ATTRIBUTE_PREDICATES):
            self._attribute_predicate(node)
        elif isinstance(node, ast.HasPurchased):
            self._has_purchased(node)
        elif isinstance(node, ast.Tagged):
            for tag in node.tags:
                self._expect_string(tag, "a tag")
        elif isinstance(node, ast.AbandonedCheckout):
            if node.window is not None:
                self._window(node.window, "abandoned_checkout")
        elif isinstance(node, ast.InSegment):
            if node.name not in self.segment_names:
                self.error("E102", f'unknown segment "{node.name}"', node.span,
                           did_you_mean_quoted(node.name, self.segment_names))
        elif isinstance(node, ast.InFile):
            self._list_file(node)
        elif isinstance(node, ast.NearStore):
            self._near_store(node)
        elif type(node) in _PATTERN_CHECKS:
            getattr(self, _PATTERN_CHECKS[type(node)])(node)

    def _near_store(self, node: ast.NearStore) -> None:
        self._number(node.distance, Decimal(MAX_DISTANCE), f"a distance in {node.unit}")
        if node.distance.value <= 0:
            self.error("E105", "the distance must be more than 0", node.distance.span)

    # ------------------------------------------------------------------ SPEC §3.1 (calendar and behaviour)
    def _unsupported(self, what: str, span: Span | None) -> None:
        self.error("E139", f"{what} is not supported yet", span)

    def _anniversary(self, node: ast.Anniversary) -> None:
        """A date or timestamp attribute (E101 unknown, E131 another type); a window counts days (E131),
        at least one (E106) and within ``MAX_COUNT`` (E118)."""
        info = self._attribute(node.attribute)
        if info is not None and info.type not in TEMPORAL_TYPES:
            dates = sorted(n for n, a in self.model.attributes.items() if a.type in TEMPORAL_TYPES)
            shown = ", ".join(f"`{n}`" for n in dates)
            self.error("E131", f"`{info.name}` is {info.type}; an anniversary is of a date or timestamp attribute",
                       node.attribute.span or node.span,
                       f"the date attributes are {shown}" if dates else "map a date column first")
        if node.side == "month" or node.count is None:
            return
        if node.unit != "days":
            days = {"weeks": 7}.get(node.unit or "")
            self.error("E131", f"anniversaries count days, not {node.unit}", node.span,
                       f"write `within {node.side} {node.count * days} days`" if days
                       else f"write `within {node.side} N days`")
            return
        if node.count < 1:
            self.error("E106", "a window of 0 is empty; count at least 1", node.span)
        self._count(node.count, "days", node.span)

    def _most_purchased(self, node: ast.MostPurchased) -> None:
        self._filters(node.filters)
        example = 'most_purchased category "Accessories" within last 12 months'
        fields = ", ".join(f"`{f}`" for f in ITEM_FILTER_COLUMNS)
        if not node.filters:
            self.error("E134", f"most_purchased needs one filter, the field and value to rank: one of {fields}",
                       node.span, f"for example `{example}`")
        for extra in node.filters[1:]:
            self.error("E134", f"most_purchased ranks the values of one field; `{extra.field}` is a second "
                       "filter", extra.span, f"rank one field (`{example}`), and combine other conditions "
                       "with `and has_purchased …`")
        if node.measure is not None:
            self.error("E134", "most_purchased takes no measure: it ranks the field's values by their "
                       "number of orders", node.measure.span,
                       "for a threshold use `has_purchased … orders >= n`")
        if node.window is not None:
            self._window(node.window, "most_purchased")

    def _first_purchased(self, node: ast.FirstPurchased) -> None:
        self._filters(node.filters)
        if node.measure is not None:
            self.error("E135", "first_purchased takes no measure: it tests the date of the first matching "
                       "order", node.measure.span, "for a threshold use `has_purchased … orders >= n`")
        if node.window is None:
            self.error("E135", "first_purchased needs a window: the first matching order's date is tested "
                       "against it", node.span, 'for example `first_purchased category "Pets" within last '
                       '90 days`')
        else:
            self._window(node.window, "first_purchased")

    def _periods(self, window: ast.InPeriods, owner: str, measured: bool) -> None:
        """``in N of last M units``: only after ``has_purchased``, without a measure, 1 ≤ N ≤ M."""
        example = "has_purchased in 3 of last 6 months"
        if owner != "has_purchased":
            self.error("E133", f"`in N of last M` is a window of has_purchased only, not of {owner}",
                       window.span, f"for example `{example}`")
            return
        if measured:
            self.error("E133", "`in N of last M` takes no measure: it counts the periods with a matching "
                       "order", window.span, f"drop the measure (`{example}`)")
        if window.unit == "hours":
            self.error("E133", "`in N of last M` counts days, weeks, months or years, not hours", window.span,
                       f"for example `{example}`")
            return
        if window.count < 1 or window.periods < 1:
            self.error("E133", "`in N of last M` needs N and M of at least 1", window.span,
                       f"for example `{example}`")
        elif window.count > window.periods:
            self.error("E133", f"{window.count} of last {window.periods} can never hold: only "
                       f"{counted(window.periods, 'period')}", window.span,
                       f"count at most {window.periods} (`in {window.periods} of last {window.periods} "
                       f"{window.unit}`)")
        if window.periods > MAX_PERIODS:
            self.error("E133", f"`in N of last M` counts at most {MAX_PERIODS:,} periods, not "
                       f"{window.periods:,}", window.span, "use a longer unit (weeks, months, years)")

    def _score(self, score: ast.Score) -> None:
        """Each item's points (a number of the language) and its condition, checked as a segment's."""
        for item in score.items:
            self._number(ast.NumberValue(item.points, item.span))
            self._condition(item.condition)
        if not score.items:
            self.warning("W205", f'score "{score.name}" has no items, so it is 0 for everyone', score.name_span)

    def _known_score(self, name: str, span: Span | None) -> bool:
        if name in self.score_names:
            return True
        self.error("E137", f'unknown score "{name}"', span, did_you_mean_quoted(name, self.score_names))
        return False

    def _score_compare(self, node: ast.ScoreCompare) -> None:
        """A score is a number: compared with numbers only (E105), a range in order (E106)."""
        self._known_score(node.score, node.name_span or node.span)
        values = [node.value] + ([node.high] if node.high is not None else [])
        for value in values:
            if isinstance(value, ast.NumberValue):
                self._number(value)
            else:
                got = "text" if isinstance(value, ast.StringValue) else \
                    "a boolean" if isinstance(value, ast.BooleanValue) else "a date"
                self.error("E105", f'score "{node.score}" is a number; it cannot be compared with {got}',
                           value.span, "compare it with a number, for example `>= 3`")
        if node.high is not None:
            self._ordered(node.value, node.high, node.span)

    def _percentile(self, node: ast.Percentile) -> None:
        """0 < P ≤ 100 (at most ``MAX_PERCENT_DECIMALS`` digits after the point), of a number (E132)."""
        percent = node.percent
        digits = percent.as_tuple().exponent
        decimals = -digits if isinstance(digits, int) and digits < 0 else 0
        if not Decimal(0) < percent <= Decimal(100):
            self.error("E132", f"{_short(percent)}% is not a share of the population: write more than 0% and "
                       "at most 100%", node.span)
        elif decimals > MAX_PERCENT_DECIMALS:
            self.error("E132", f"{_short(percent)}% has {decimals} digits after the point; at most "
                       f"{MAX_PERCENT_DECIMALS}", node.span)
        if node.score is not None:
            self._known_score(node.score, node.name_span or node.span)
            return
        assert node.attribute is not None, "a percentile of an attribute or of a score"
        info = self._attribute(node.attribute)
        if info is None:
            return
        if info.type not in NUMERIC_TYPES:
            self.error("E132", f"`{info.name}` is {info.type}, not a number: `in {node.side} P%` ranks numbers",
                       node.attribute.span or node.span,
                       "rank a number attribute, a derived one such as `lifetime_revenue`, or a score")
        elif not info.derived and info.table != "customer_360":
            self._unsupported(f"`in {node.side} P%` of an attribute of custom table `{info.table}`",
                              node.attribute.span or node.span)

    def _holiday(self, value: ast.HolidayDate) -> None:
        if value.name not in HOLIDAYS:
            self.error("E130", f"unknown holiday `{value.name}`", value.name_span or value.span,
                       did_you_mean(value.name, HOLIDAYS) or f"the holidays are {', '.join(HOLIDAYS)}")
        self._count(value.years_ago, "years", value.span)

    def _offset(self, value: ast.DateOffset) -> None:
        """``DATE ± N unit``: a unit of the calendar, and a date that stays within the years every engine
        holds: a fixed date is moved here; a relative one (today, a seasonal date, a holiday) reaches at
        most the 1,000 years a window may reach from the as-of date (``MAX_COUNT``)."""
        self._date(value.date)
        count = abs(value.count)
        if value.unit == "hours":
            self.error("E106", "a date moves by days, weeks, months or years, not hours", value.span,
                       "compare timestamps with `within last N hours` instead")
            return
        self._count(count, value.unit, value.span)
        base = value.date
        if isinstance(base, ast.DateLiteral):
            try:
                day = dt.date.fromisoformat(base.text)
            except ValueError:
                return  # said by _date
            if not _moved_in_range(day, value.count, value.unit):
                unit = value.unit[:-1] if count == 1 else value.unit
                self.error("E118", f"{base.text} {'+' if value.count > 0 else '-'} {count} {unit} is out of "
                           "range: dates lie between 0001-01-01 and 9999-12-31", value.span)
            return
        reach = _years_reached(base) + _in_years(count, value.unit)
        if reach > MAX_COUNT["years"]:
            self.error("E118", f"this date lies more than {MAX_COUNT['years']:,} years from the as-of date",
                       value.span)

    def _attribute(self, attribute: ast.Attribute) -> AttributeInfo | None:
        info = self.model.attributes.get(attribute.name)
        if info is None:
            suggestion = did_you_mean(attribute.name, self.model.attributes)
            if suggestion is None and attribute.name in ("product", "category", "collection", "brand", "channel"):
                suggestion = f"to test purchases, write `has_purchased {attribute.name} \"…\"`"
            self.error("E101", f"unknown attribute `{attribute.name}`", attribute.span, suggestion)
        return info

    def _attribute_predicate(self, node: _AttributePredicate) -> None:
        info = self._attribute(node.attribute)
        if info is None:
            for value in _values_of(node):
                self._date(value)
            return
        name, type_ = info.name, info.type
        if isinstance(node, ast.BooleanAttribute):
            if type_ != BOOLEAN:
                self.error("E105", f"`{name}` is {type_}, not boolean: compare it with a value", node.span,
                           f"for example `{name} is set`")
        elif isinstance(node, ast.IsSet):
            pass
        elif isinstance(node, ast.StringMatch):
            if type_ != TEXT:
                self.error("E105", f"`{node.op}` needs a text attribute; `{name}` is {type_}", node.span)
        elif isinstance(node, ast.Compare):
            if type_ in (TEXT, BOOLEAN) and node.op not in ("=", "!="):
                self.error("E105", f"`{node.op}` does not apply to {type_} attribute `{name}`", node.span,
                           "use =, !=, in (…)" + (", starts with, ends with or contains" if type_ == TEXT else ""))
            self._value_type(node.value, name, type_)
        elif isinstance(node, ast.InValues):
            if type_ == BOOLEAN:
                self.error("E105", f"`in (…)` does not apply to boolean attribute `{name}`", node.span)
            for value in node.values:
                self._value_type(value, name, type_)
        elif isinstance(node, ast.BetweenValues):
            if type_ in (TEXT, BOOLEAN):
                self.error("E105", f"`between` does not apply to {type_} attribute `{name}`", node.span)
            else:
                self._value_type(node.low, name, type_)
                self._value_type(node.high, name, type_)
                self._ordered(node.low, node.high, node.span)

    def _value_type(self, value: ast.Value, name: str, type_: str) -> None:
        if isinstance(value, ast.StringValue):
            got = TEXT
        elif isinstance(value, ast.NumberValue):
            got = "number"
            if name == "days_since_last_order":
                self._number(value, Decimal(MAX_COUNT["days"]), "a number of days")
            else:
                self._number(value)
        elif isinstance(value, ast.BooleanValue):
            got = BOOLEAN
        else:
            got = DATE
            self._date(value)
        compatible = (
            (type_ == TEXT and got == TEXT)
            or (type_ in NUMERIC_TYPES and got == "number")
            or (type_ == BOOLEAN and got == BOOLEAN)
            or (type_ in TEMPORAL_TYPES and got == DATE)
        )
        if not compatible:
            article = "" if got == TEXT else "a "
            hint = None
            if type_ == TEXT and isinstance(value, ast.NumberValue):
                hint = f'write the value in double quotes: "{value.value}"'
            elif type_ in TEMPORAL_TYPES and got == TEXT:
                hint = "write dates without quotes: 2024-01-31"
            self.error("E105", f"`{name}` is {type_}; it cannot be compared with {article}{got}", value.span, hint)

    def _expect_string(self, value: ast.Value, what: str) -> None:
        if not isinstance(value, ast.StringValue):
            self.error("E105", f"{what} is written as a string in double quotes", value.span)

    # ------------------------------------------------------------------ behaviour
    def _filters(self, filters: tuple[ast.ItemFilter, ...]) -> None:
        seen: dict[str, ast.ItemFilter] = {}
        for item in filters:
            if item.field in seen:
                self.error("E105", f"`{item.field}` is filtered twice; use `{item.field} in (…)` for several values",
                           item.span)
            seen[item.field] = item
            for value in item.values:
                self._expect_string(value, f"a {item.field}")

    def _has_purchased(self, node: ast.HasPurchased) -> None:
        self._filters(node.filters)
        measure = node.measure
        if measure is not None:
            values = [measure.value] + ([measure.high] if measure.high is not None else [])
            for value in values:
                self._number(value)
                if measure.kind == "orders" and value.value != value.value.to_integral_value():
                    self.error("E105", "a number of orders is a whole number", value.span)
                if value.value < 0:
                    self.warning("W203", f"{measure.kind} is never negative; this test is always "
                                 f"{'true' if measure.op in ('>', '>=', '!=') else 'false'}", value.span)
            if measure.high is not None and measure.high.value < measure.value.value:
                self.error("E106", f"empty range: {measure.value.value} is above {measure.high.value}", measure.span)
        if node.window is not None:
            self._window(node.window, "has_purchased", node.measure is not None)

    def _window(self, window: ast.Window, owner: str, measured: bool = False) -> None:
        """A window's checks; ``owner``: the condition it belongs to (``in N of last M`` is has_purchased's)."""
        if isinstance(window, ast.InPeriods):
            self._periods(window, owner, measured)
        elif isinstance(window, ast.WithinLast):
            if window.count <= 0:
                self.error("E106", "a window of 0 is empty; count at least 1", window.span)
            self._count(window.count, window.unit, window.span)
        elif isinstance(window, ast.Between):
            self._date(window.low)
            self._date(window.high)
            self._ordered(window.low, window.high, window.span)
        else:
            self._date(window.date)

    def _date(self, value: ast.Value) -> dt.date | None:
        if isinstance(value, ast.DateLiteral):
            try:
                return dt.date.fromisoformat(value.text)
            except ValueError:
                year, month, day = (int(x) for x in value.text.split("-"))
                self.error("E106", f"{value.text} is not a date" + _why_not_a_date(year, month, day), value.span)
                return None
        if isinstance(value, ast.Today):
            self._count(value.minus, value.unit, value.span)
        if isinstance(value, ast.HolidayDate):
            self._holiday(value)
        if isinstance(value, ast.DateOffset):
            self._offset(value)
        if isinstance(value, ast.SeasonalDate):
            self._count(value.years_ago, "years", value.span)
            if not 1 <= value.month <= 12 or not 1 <= value.day <= calendar.monthrange(2000, value.month)[1]:
                self.error("E106", f"{value.month:02d}-{value.day:02d} is not a day of the year"
                           + _why_not_a_date(2000, value.month, value.day), value.span)
        return None

    def _count(self, count: int, unit: str, span: Span | None) -> None:
        most = MAX_COUNT.get(unit)
        if most is not None and count > most:
            years = "" if unit == "years" else " (1,000 years)"
            self.error("E118", f"{count:,} {unit} is out of range: at most {most:,} {unit}{years}", span)

    def _number(self, value: ast.NumberValue, most: Decimal = MAX_NUMBER, what: str = "a number") -> None:
        """Numbers that DuckDB, SQLite (a double), PostgreSQL and Spark (DECIMAL(38)) all hold exactly."""
        number = value.value
        digits = number.as_tuple()
        decimals = -digits.exponent if isinstance(digits.exponent, int) and digits.exponent < 0 else 0
        if not number.is_finite() or abs(number) > most:
            self.error("E118", f"{_short(number)} is out of range: {what} lies between -{most:,} and {most:,}",
                       value.span)
        elif decimals > MAX_DECIMALS:
            self.error("E118", f"{_short(number)} has {decimals} digits after the point; at most {MAX_DECIMALS}",
                       value.span)

    def _ordered(self, low: ast.Value, high: ast.Value, span: Span | None) -> None:
        if isinstance(low, ast.DateLiteral) and isinstance(high, ast.DateLiteral):
            try:
                a, b = dt.date.fromisoformat(low.text), dt.date.fromisoformat(high.text)
            except ValueError:
                return
            if a > b:
                self.error("E106", f"empty range: {low.text} is after {high.text}", span,
                           "write the earlier date first")
        elif isinstance(low, ast.NumberValue) and isinstance(high, ast.NumberValue) and low.value > high.value:
            self.error("E106", f"empty range: {low.value} is above {high.value}", span, "write the smaller value first")

    def _list_file(self, node: ast.InFile) -> None:
        declaring = self.current_file
        path = Path(declaring).parent / node.path if declaring else Path(node.path)
        try:
            read = self.read_file(str(path))
        except UnsafeFile as refusal:
            self.error("E115", f'list file "{node.path}" {refusal}', node.span,
                       "keep list files inside the project folder" if isinstance(refusal, OutsideRoots) else None)
            return
        except OSError:
            self.error("E112", f'list file "{node.path}" not found (looked for {path})', node.span)
            return
        first_line = re.split(rb"\r\n|\r|\n", read.content, maxsplit=1)[0][:4096]
        header = first_line.decode("utf-8", "replace").strip().lstrip("\ufeff")
        try:
            columns = next(csv.reader([header]), []) if header else []
        except csv.Error:
            columns = [header]
        if "customer_id" not in [c.strip() for c in columns]:
            self.error("E112", f'list file "{node.path}" has no `customer_id` column'
                       + (f" (its columns: {shown_columns(columns)})" if columns else " (it is empty)"), node.span)
            return
        self.lists[(declaring, node.path)] = ListFile(
            node.path, read.path, hashlib.sha256(read.content).hexdigest(), len(read.content))

    # ------------------------------------------------------------------ destinations
    def _destination(self, destination: ast.Destination) -> None:
        kind = destination.kind
        if kind not in dest_specs.KINDS:
            self.error("E110", f"unknown destination kind `{kind}`", destination.kind_span,
                       did_you_mean(kind, dest_specs.KINDS) or f"one of: {', '.join(dest_specs.KINDS)}")
            return
        specs = dest_specs.settings_for(kind)
        seen: dict[str, ast.Setting] = {}
        listed = next((s.value for s in destination.settings if s.key == "identifiers" and not s.header
                       and isinstance(s.value, ast.ListValue)), None)
        identifiers = tuple(item.value for item in listed.items) if listed is not None else None
        for setting in destination.settings:
            if isinstance(setting.value, ast.TextValue):
                for part in setting.value.parts:
                    if isinstance(part, ast.EnvRef) and not _ENV_NAME.fullmatch(part.variable):
                        self.error("E110", f"env({printable(part.variable)[:60]!r}) is not an environment variable "
                                   "name: letters, digits and `_`, not starting with a digit", part.span)
            if setting.header:
                if kind != "webhook":
                    self.error("E110", f"headers are for webhook destinations, not {kind}", setting.span)
                value = setting.value
                if not isinstance(value, ast.TextValue):
                    self.error("E110", f'header "{setting.key}" takes text', setting.span)
                elif dest_specs.is_secret_header(setting.key) and not value.has_env:
                    self._literal_secret(f'header "{setting.key}"', setting)
                continue
            if setting.key in seen:
                self.error("E110", f"setting `{setting.key}` is given twice", setting.key_span)
                continue
            seen[setting.key] = setting
            spec = specs.get(setting.key)
            if spec is None:
                self.error("E110", f"{kind} destinations have no setting `{setting.key}`", setting.key_span,
                           did_you_mean(setting.key, specs) or f"settings: {', '.join(sorted(specs))}")
                continue
            self._setting_value(kind, setting, spec, identifiers)
        for key, spec in specs.items():
            if spec.required and key not in seen:
                self.error("E110", f"{kind} destination \"{destination.name}\" needs `{key}`", destination.name_span,
                           f'add `{key} = env("…")`' if spec.secret else None)

    def _setting_value(self, kind: str, setting: ast.Setting, spec: dest_specs.SettingSpec,
                       identifiers: tuple[str, ...] | None = None) -> None:
        value = setting.value
        expected = {
            "text": ast.TextValue, "number": ast.NumberValue, "boolean": ast.BooleanValue,
            "word": ast.Word, "list": ast.ListValue,
        }[spec.kind]
        if not isinstance(value, expected):
            shown = {"text": 'text in double quotes or env("…")', "number": "a number", "boolean": "true or false",
                     "word": " or ".join(spec.choices) or "a word", "list": "a list such as (phone, email)"}
            self.error("E110", f"`{setting.key}` takes {shown[spec.kind]}", setting.span)
            return
        if isinstance(value, ast.TextValue):
            self._text_setting(setting, spec, value)
        if isinstance(value, ast.Word) and spec.choices and value.value not in spec.choices:
            self.error("E110", f"`{setting.key}` is one of {', '.join(spec.choices)}, not `{value.value}`",
                       value.span, did_you_mean(value.value, spec.choices))
        if isinstance(value, ast.ListValue) and spec.choices:
            for item in value.items:
                if item.value not in spec.choices:
                    self.error("E110", f"`{item.value}` is not one of {', '.join(spec.choices)}", item.span,
                               did_you_mean(item.value, spec.choices))
        if isinstance(value, ast.NumberValue):
            if setting.key == "batch_size":
                limit = dest_specs.batch_limit(kind, identifiers)
                if value.value < 1 or value.value != value.value.to_integral_value():
                    self.error("E110", "`batch_size` is a whole number of at least 1", value.span)
                elif limit is not None and value.value > limit:
                    per = (f" ({dest_specs.BATCH_LIMITS[kind]:,} identifiers a request, one per identifier sent)"
                           if kind in dest_specs.PER_IDENTIFIER_LIMITS else "")
                    self.error("E110", f"{kind} takes at most {limit:,} members a request{per}", value.span)
            if setting.key == "max_removal" and not Decimal(0) <= value.value <= Decimal(100):
                self.error("E110", "`max_removal` is a percentage from 0 to 100", value.span)

    def _text_setting(self, setting: ast.Setting, spec: dest_specs.SettingSpec, value: ast.TextValue) -> None:
        """A secret only from the environment; a vendor's id in digits; a base URL on https."""
        if dest_specs.is_secret_setting(setting.key, spec) and not value.has_env:
            self._literal_secret(f"`{setting.key}`", setting)
        elif any(isinstance(p, ast.StringValue) and dest_specs.has_literal_password(p.value) for p in value.parts):
            self._literal_secret(f"the password in `{setting.key}`", setting)
        literal = None if value.has_env else "".join(
            p.value for p in value.parts if isinstance(p, ast.StringValue))
        if literal is not None and spec.digits and not re.fullmatch(r"[0-9]{1,30}", literal):
            self.error("E110", f"`{setting.key}` is the vendor's numeric id: digits only, not "
                       f"{printable(literal)[:60]!r}", value.span or setting.span,
                       "write it without dashes or spaces" if re.fullmatch(r"[0-9 -]+", literal) else None)
        if literal is not None and setting.key == "base_url":
            self._base_url(literal, value.span or setting.span)
        if literal is not None and setting.key == "api_version" and not re.fullmatch(r"v[0-9]{1,3}(\.[0-9]{1,3})?",
                                                                                    literal):
            self.error("E110", f"`api_version` is written like v25.0 or v26, not {printable(literal)[:30]!r}",
                       value.span or setting.span)

    def _base_url(self, url: str, span: Span | None) -> None:
        """A vendor's base URL: absolute, https unless it names this machine (a stand-in server), no query
        or fragment (the credentials go in headers, to this origin only)."""
        try:
            parts = urlsplit(url.strip())
            host = parts.hostname
        except ValueError:
            parts, host = None, None
        if parts is None or parts.scheme not in ("http", "https") or not host:
            self.error("E110", f"`base_url` must be an absolute https:// URL, not {printable(url)[:80]!r}", span)
        elif parts.scheme == "http" and not dest_specs.is_local_host(host):
            self.error("E110", f"`base_url` must use https: the credentials travel with every request to "
                       f"{printable(host)[:60]}", span,
                       "plain http is for a stand-in server on 127.0.0.1 or localhost only")
        elif parts.query or parts.fragment:
            self.error("E110", "`base_url` takes no query or fragment: audlang adds the vendor's paths to it", span)

    def _literal_secret(self, what: str, setting: ast.Setting) -> None:
        self.error("E108", f"{what} is a secret and cannot be written in the file", setting.value.span or setting.span,
                   f'read it from the environment: {setting.key if not setting.header else "header"} = env("NAME")'
                   if not setting.header else f'read it from the environment: header "{setting.key}" = env("NAME")')

    # ------------------------------------------------------------------ campaigns
    def _plain_name(self, name: str, what: str, span: Span | None) -> None:
        """Names are printed in plans, logs and pull-request comments: no control characters in them."""
        if _CONTROL.search(name):
            self.error("E119", f"a {what} name cannot hold control characters (a line break, tab or escape "
                       "could forge lines of a CI log or a plan)", span, "write the name on one line, plainly")

    def _campaign(self, campaign: ast.Campaign) -> None:
        groups: tuple[ast.Treatment | ast.SubAudience, ...] = (*campaign.treatments, *campaign.subaudiences)
        for group in groups:
            self._plain_name(group.name, "group", group.span)
        self._campaign_audience(campaign)
        self._campaign_shares(campaign)
        self._campaign_groups(campaign, groups)
        self._subaudiences(campaign)
        if not groups and campaign.audience is not None:
            self.warning("W204", f'campaign "{campaign.name}" has no treatment or sub-audience, so it sends nothing',
                         campaign.name_span)

    def _campaign_audience(self, campaign: ast.Campaign) -> None:
        """E111 for no audience; the segment it names, or its condition."""
        audience = campaign.audience
        if audience is None:
            self.error("E111", f'campaign "{campaign.name}" has no audience', campaign.name_span,
                       'add `audience segment "…"` or `audience < condition >`')
        elif audience.segment is not None:
            if audience.segment not in self.segment_names:
                self.error("E102", f'unknown segment "{audience.segment}"', audience.span,
                           did_you_mean_quoted(audience.segment, self.segment_names))
        elif audience.condition is not None:
            self.current_file = campaign.span.file if campaign.span else ""
            self._condition(audience.condition)

    def _campaign_shares(self, campaign: ast.Campaign) -> None:
        """One way of splitting; each share (treatments and holdout) within 0–100%, and together 100%."""
        if campaign.treatments and campaign.subaudiences:
            self.error("E111", "a campaign splits its audience either by treatment percentages or by "
                       "sub-audience conditions, not both", campaign.subaudiences[0].span,
                       "make a second campaign for the other split")
        percent_items = [(t.percent, t.span) for t in campaign.treatments]
        if campaign.holdout is not None:
            percent_items.append((campaign.holdout, campaign.holdout_span))
        for percent, span in percent_items:
            if not Decimal(0) <= percent <= Decimal(100):
                self.error("E107", f"{percent}% is not a share between 0% and 100%", span)
        if campaign.treatments:
            total = sum((p for p, _ in percent_items), Decimal(0))
            if total != 100:
                parts = " + ".join(f"{p}%" for p, _ in percent_items)
                self.error("E107", f'the holdout and treatments of "{campaign.name}" sum to {total}% ({parts}), '
                           "not 100%", campaign.name_span)

    def _campaign_groups(self, campaign: ast.Campaign, groups: Iterable[ast.Treatment | ast.SubAudience]) -> None:
        """Each group (treatment or sub-audience) named once, sent to destinations that exist."""
        names: dict[str, Span | None] = {}
        for group in groups:
            if group.name in names or (campaign.holdout is not None and group.name == "holdout"):
                self.error("E103", f'group "{group.name}" appears twice in campaign "{campaign.name}"', group.span)
            names[group.name] = group.span
            for dest in group.destinations:
                if dest.value not in self.destination_names:
                    self.error("E109", f'unknown destination "{dest.value}"', dest.span,
                               did_you_mean_quoted(dest.value, self.destination_names))

    def _subaudiences(self, campaign: ast.Campaign) -> None:
        """Each sub-audience's condition; a catch-all (no condition) only last."""
        for i, sub in enumerate(campaign.subaudiences):
            if sub.condition is None:
                if i != len(campaign.subaudiences) - 1:
                    self.error("E111", f'the catch-all "{sub.name}" must be the last sub-audience', sub.span)
            else:
                self.current_file = campaign.span.file if campaign.span else ""
                self._condition(sub.condition)

    # ------------------------------------------------------------------ renames
    def _moves(self, moves: Iterable[ast.Moved], segments: dict[str, ast.Segment], campaigns: dict[str, ast.Campaign],
               destinations: dict[str, ast.Destination]) -> None:
        tables: dict[str, Mapping[str, object]] = {"segment": segments, "campaign": campaigns,
                                                   "destination": destinations}
        seen: dict[tuple[str, str], ast.Moved] = {}
        for move in moves:
            current = tables[move.kind]
            if move.old in current:
                self.error("E114", f'{move.kind} "{move.old}" still exists; a move renames it to "{move.new}"',
                           move.span, f'rename the declaration to "{move.new}"')
            if move.new not in current:
                self.error("E114", f'{move.kind} "{move.new}" (the new name) is not declared', move.span,
                           did_you_mean_quoted(move.new, current))
            if (move.kind, move.old) in seen:
                self.error("E114", f'{move.kind} "{move.old}" is moved twice', move.span)
            seen[(move.kind, move.old)] = move

    # ------------------------------------------------------------------ cycles
    def _combined_depths(self, order: list[str], segments: dict[str, ast.Segment],
                         campaigns: dict[str, ast.Campaign]) -> None:
        """E004 for a condition that nests too deep once the segments it uses are counted in."""
        combined: dict[str, int] = {}
        expanded: dict[str, int] = {}
        scored: dict[str, int] = {}  # a score's depth: its deepest item's, one level for its sum

        def score_depth(name: str) -> int:
            if name not in scored:
                scored[name] = 0  # a cycle (E104) counts once
                items = self.score_names[name].items if name in self.score_names else ()
                scored[name] = 1 + max((_depth(i.condition, combined, score_depth) for i in items), default=0)
            return scored[name]

        def check(condition: ast.Condition, what: str, span: Span | None) -> tuple[int, int]:
            depth, size = _depth(condition, combined, score_depth), _expanded_size(condition, expanded)
            if depth > MAX_COMBINED_DEPTH:
                self.error("E004", f"{what} nests {depth} levels deep counting the segments it uses through "
                           f"`in segment` and the scores it reads (at most {MAX_COMBINED_DEPTH})", span,
                           "materialize a shallower chain: use fewer layers of segments built on segments")
            elif size > MAX_EXPANDED_NODES and size > sum(1 for _ in _nodes(condition)):  # grown by `in segment`
                self.error("E004", f"{what} expands to {size:,} conditions counting the segments it uses through "
                           f"`in segment` (at most {MAX_EXPANDED_NODES:,})", span,
                           "use each segment once per condition, or fewer layers of segments built on segments")
            return depth, size

        def used(decl: ast.Segment | ast.Campaign) -> object:
            """The nesting of the segments ``decl`` uses: all that its own count reads of the others'."""
            if self.memory is None or self._uses(decl).scores:
                return UNREMEMBERED
            return tuple((combined.get(n), expanded.get(n)) for n in self._uses(decl).segments)

        def check_campaign(campaign: ast.Campaign) -> None:
            for condition in _campaign_conditions(campaign):
                check(condition, f'campaign "{campaign.name}"', campaign.name_span)

        for name in order:
            segment = segments[name]
            work = partial(check, segment.condition, f'segment "{name}"', segment.name_span)
            combined[name], expanded[name] = self._remembered("depth", segment, used(segment), work)
        for campaign in campaigns.values():
            self._remembered("depth", campaign, used(campaign), partial(check_campaign, campaign))

    def _order(self, segments: dict[str, ast.Segment], scores: dict[str, ast.Score],
               score_uses: dict[str, _Uses]) -> list[str]:
        """Segments in dependency order (depth-first over segments and the scores between them); a
        cycle is reported once with its path (E104)."""
        order: list[str] = []
        state: dict[tuple[str, str], int] = {}  # 1 visiting, 2 done
        reported: set[frozenset[tuple[str, str]]] = set()

        def edges(node: tuple[str, str]) -> list[tuple[str, str]]:
            kind, name = node
            uses = self._uses(segments[name]) if kind == "segment" else score_uses[name]
            return [("segment", n) for n in uses.segments if n in segments] + \
                [("score", n) for n in uses.scores if n in scores]

        def span_of(node: tuple[str, str], dep: tuple[str, str]) -> Span | None:
            kind, name = node
            conditions = [segments[name].condition] if kind == "segment" else \
                [item.condition for item in scores[name].items]
            for condition in conditions:
                if (found := _ref_span(condition, dep[1], dep[0])) is not None:
                    return found
            return segments[name].name_span if kind == "segment" else scores[name].name_span

        def visit(node: tuple[str, str], path: list[tuple[str, str]]) -> None:
            state[node] = 1
            path.append(node)
            for dep in edges(node):
                if state.get(dep) == 1:
                    cycle = path[path.index(dep):] + [dep]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        self.error("E104", _cycle_message(cycle), span_of(node, dep))
                elif state.get(dep) is None:
                    visit(dep, path)
            path.pop()
            state[node] = 2
            if node[0] == "segment":
                order.append(node[1])

        for name in segments:
            if ("segment", name) not in state:
                visit(("segment", name), [])
        for name in scores:
            if ("score", name) not in state:
                visit(("score", name), [])
        return order


#: The most digits after the point of a percentile's P: the SQL compares whole numbers, P scaled by
#: 10 ** this, exactly on every engine (``compile``'s ``percentile``).
MAX_PERCENT_DECIMALS = 6
_PER_YEAR = {"days": 365, "weeks": 52, "months": 12, "years": 1}


def _in_years(count: int, unit: str) -> float:
    return count / _PER_YEAR[unit]


def _years_reached(base: ast.DateValue) -> float:
    """How many years back from the as-of date a relative date may lie (a year more for a seasonal date
    or a holiday: its day of the year)."""
    if isinstance(base, ast.Today):
        return _in_years(base.minus, base.unit) if base.unit in _PER_YEAR else 0
    if isinstance(base, (ast.SeasonalDate, ast.HolidayDate)):
        return base.years_ago + 1
    return 0


def _moved_in_range(day: dt.date, count: int, unit: str) -> bool:
    """Whether ``day`` moved by ``count`` (signed) units is a date (0001-01-01 … 9999-12-31)."""
    if unit in ("months", "years"):
        months = count * (12 if unit == "years" else 1)
        return 1 <= (day.year * 12 + day.month - 1 + months) // 12 <= dt.MAXYEAR
    return 1 <= day.toordinal() + count * (7 if unit == "weeks" else 1) <= dt.date.max.toordinal()


#: The checks of the forms of SPEC §3.1, by node type (``_Checker`` methods).
_PATTERN_CHECKS: dict[type, str] = {
    ast.Anniversary: "_anniversary", ast.MostPurchased: "_most_purchased", ast.FirstPurchased: "_first_purchased",
    ast.ScoreCompare: "_score_compare", ast.Percentile: "_percentile",
}


def _cycle_message(cycle: list[tuple[str, str]]) -> str:
    if all(kind == "segment" for kind, _ in cycle):
        return "segments use each other in a cycle: " + " → ".join(f'"{n}"' for _, n in cycle)
    return "segments and scores use each other in a cycle: " + " → ".join(f'{k} "{n}"' for k, n in cycle)


def _why_not_a_date(year: int, month: int, day: int) -> str:
    if not 1 <= month <= 12:
        return f": there is no month {month}"
    last = calendar.monthrange(year, month)[1]
    if day > last or day < 1:
        return f": {calendar.month_name[month]} {year} has {last} days"
    return ""


def _values_of(node: _AttributePredicate) -> list[ast.Value]:
    if isinstance(node, ast.Compare):
        return [node.value]
    if isinstance(node, ast.InValues):
        return list(node.values)
    if isinstance(node, ast.BetweenValues):
        return [node.low, node.high]
    return []


def walk(node: ast.Condition) -> Iterator[ast.Condition]:
    """Every condition node under ``node``, itself included."""
    yield node
    if isinstance(node, (ast.And, ast.Or)):
        for operand in node.operands:
            yield from walk(operand)
    elif isinstance(node, ast.Not):
        yield from walk(node.operand)


def _depth(condition: ast.Condition, used: dict[str, int], scores: Callable[[str], int] = lambda _: 0) -> int:
    """The nesting depth of a condition (And, Or and Not one level each), an ``in segment`` counting as
    deep as the segment it uses (``used``), a score as deep as its items (``scores``: the compiler inlines
    them too). Iterative: the depth it measures may be beyond recursion."""
    deepest, stack = 0, [(condition, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.InSegment):
            depth += used.get(node.name, 0)
        elif (name := score_used(node)) is not None:
            depth += scores(name)
        deepest = max(deepest, depth)
        if isinstance(node, (ast.And, ast.Or)):
            stack.extend((operand, depth + 1) for operand in node.operands)
        elif isinstance(node, ast.Not):
            stack.append((node.operand, depth + 1))
    return deepest


def _expanded_size(condition: ast.Condition, used: dict[str, int]) -> int:
    """How many condition nodes ``condition`` becomes with every ``in segment`` inlined (``used``)."""
    return sum(used.get(n.name, 1) if isinstance(n, ast.InSegment) else 1 for n in _nodes(condition))


def _nodes(condition: ast.Condition) -> Iterator[ast.Condition]:
    stack = [condition]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.And, ast.Or)):
            stack.extend(node.operands)
        elif isinstance(node, ast.Not):
            stack.append(node.operand)


def _campaign_conditions(campaign: ast.Campaign) -> list[ast.Condition]:
    """A campaign's conditions: its audience's (when it is one) and its sub-audiences'."""
    conditions = [campaign.audience.condition] if campaign.audience and campaign.audience.condition else []
    return conditions + [sub.condition for sub in campaign.subaudiences if sub.condition is not None]


@attrs.frozen
class _Uses:
    """The names a segment or a campaign uses, each once, in the order they are first written."""

    segments: tuple[str, ...]
    destinations: tuple[str, ...]
    lists: bool  # it reads an ``in list`` file
    scores: tuple[str, ...] = ()  # ``score "…" …`` and percentiles of scores


def _uses_of(decl: ast.Segment | ast.Campaign) -> _Uses:
    segments: list[str] = []
    destinations: tuple[str, ...] = ()
    if isinstance(decl, ast.Segment):
        conditions = [decl.condition]
    else:
        if decl.audience is not None and decl.audience.segment is not None:
            segments.append(decl.audience.segment)
        conditions = _campaign_conditions(decl)
        groups: tuple[ast.Treatment | ast.SubAudience, ...] = (*decl.treatments, *decl.subaudiences)
        destinations = tuple(dict.fromkeys(ref.value for group in groups for ref in group.destinations))
    return _conditions_use(conditions, destinations, segments)


def _conditions_use(conditions: Iterable[ast.Condition], destinations: tuple[str, ...] = (),
                    named: Iterable[str] = ()) -> _Uses:
    """What ``conditions`` use, after the segments ``named`` (a campaign's audience)."""
    segments: list[str] = list(named)
    scores: list[str] = []
    lists = False
    for condition in conditions:
        for node in walk(condition):
            if isinstance(node, ast.InSegment):
                segments.append(node.name)
            elif isinstance(node, ast.InFile):
                lists = True
            elif (name := score_used(node)) is not None:
                scores.append(name)
    return _Uses(tuple(dict.fromkeys(segments)), destinations, lists, tuple(dict.fromkeys(scores)))


def _score_uses(score: ast.Score) -> _Uses:
    """The segments and scores a score's items use."""
    return _conditions_use(item.condition for item in score.items)


def _through_scores(segments: tuple[str, ...], scores: tuple[str, ...], score_uses: Mapping[str, _Uses]
                    ) -> tuple[str, ...]:
    """``segments`` and the segments used by the items of ``scores`` and of the scores those use."""
    found = list(segments)
    seen: set[str] = set()
    stack = list(scores)
    while stack:
        name = stack.pop()
        if name in seen or name not in score_uses:
            continue
        seen.add(name)
        found.extend(score_uses[name].segments)
        stack.extend(score_uses[name].scores)
    return tuple(dict.fromkeys(found))


def score_used(node: ast.Condition) -> str | None:
    """The score a condition node reads (``score "X" …``, ``score "X" in top P%``), if any."""
    if isinstance(node, ast.ScoreCompare):
        return node.score
    if isinstance(node, ast.Percentile):
        return node.score
    return None


def walk_through_scores(condition: ast.Condition, scores: Mapping[str, ast.Score]) -> Iterator[ast.Condition]:
    """Every condition node under ``condition`` and under the items of the scores it reads (and of the
    scores those read), each score once: what compiling it reads (the facts, the columns, the lists)."""
    seen: set[str] = set()
    stack = [condition]
    while stack:
        for node in walk(stack.pop()):
            yield node
            name = score_used(node)
            if name is not None and name not in seen and name in scores:
                seen.add(name)
                stack.extend(item.condition for item in scores[name].items)


def _ref_span(condition: ast.Condition, name: str, kind: str = "segment") -> Span | None:
    for node in walk(condition):
        if kind == "segment" and isinstance(node, ast.InSegment) and node.name == name:
            return node.span
        if kind == "score" and score_used(node) == name:
            return getattr(node, "name_span", None) or node.span
    return None
