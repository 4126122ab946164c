"""Shared facts: the per-customer aggregates that the segments of a run read, computed once.

A project's segments mostly read the same few facts: orders in a window, spend, purchases of a
category, a tag, an abandoned checkout. Compiled one by one (``SegmentCompiler.segment``) each
segment scans the orders again. ``SharedFacts`` finds every such fact of the segments of a run and
computes them in as few passes as there are source shapes: one ``GROUP BY customer_id`` per source
(orders; itemized rows; itemized rows joined to their orders; tags; checkouts), each fact one
conditional aggregate column (``SUM(CASE WHEN <window and filters> THEN 1 ELSE 0 END)``, portable
to every engine, unlike ``FILTER``); a pass whose facts all have a window reads only the events from
the earliest of them on. The warehouse layer writes each pass into a temporary table
(``warehouse.scratch``); a compiler given the facts (``SegmentCompiler(facts=…)``) then reads a
behaviour condition as a predicate over that table:

- ``has_purchased …``: ``customer_id IN (SELECT customer_id FROM facts WHERE f3 > 0)``;
- with a measure: ``… WHERE f3 > 0 AND f4 IS NOT NULL AND f4 >= 2`` (``f3`` counts the customer's rows
  that match, as the ``GROUP BY … HAVING`` of the direct query only sees customers with such rows);
- ``tagged``, ``abandoned_checkout``: the same with their own pass;
- the lifetime attributes (``lifetime_revenue``, ``first_order_date``, …): four columns of the orders
  pass, outer-joined as the direct query joins its derived subquery;
- ``first_purchased …``: ``MIN(CASE WHEN <filters> THEN order_datetime END)``, tested against the
  window; ``has_purchased … in N of last M``: ``COUNT(DISTINCT CASE WHEN <filters> THEN <period> END)``
  (``SegmentCompiler.period_index``), tested ``>= N`` (``most_purchased`` ranks values per customer, not
  one aggregate: it compiles directly);
- an ``orders`` measure (a distinct count of order ids): a pass of its own over the rows of its shape,
  in two steps: ``GROUP BY customer_id, order_id`` flags each order that has a matching row
  (``MAX(CASE WHEN <window and filters> AND order_id IS NOT NULL THEN 1 ELSE 0 END)``), then ``GROUP BY
  customer_id`` sums the flags: the number of distinct non-NULL order ids among the matching rows, which
  is ``COUNT(DISTINCT order_id)`` of the direct query. One grouping by order serves every distinct count
  of the shape; a ``COUNT(DISTINCT …)`` column per fact would cost a distinct set each.

The answers are the direct query's: every aggregate is the direct one over the same rows (a ``CASE``
without ``ELSE`` is NULL where the row does not match, which ``COUNT``, ``SUM``, ``MIN`` and ``MAX``
skip), and each predicate is two-valued. A fact the facts do not hold (a condition not collected)
compiles directly, so collecting less is never wrong, only slower. ``audlang sql NAME`` prints the
direct, readable query: it compiles without facts.

On a cluster the passes are what partitions well: each is one aggregation by ``customer_id``, the key
every segment joins on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from decimal import Decimal
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy import and_, case, column, func, literal, select, table
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.sql.selectable import Subquery

from audlang import ast
from audlang.check import Model, walk_through_scores
from audlang.compile import dialects
from audlang.compile.asof import AsOf, period_starts, window_range

if TYPE_CHECKING:
    from audlang.compile.compiler import SegmentCompiler

FACTS_TABLE_PREFIX = "audlang_facts_"
#: Fact columns per pass table (SQLite allows 2,000 columns, PostgreSQL 1,600; wide aggregations
#: also plan slower): a source with more facts gets a second pass.
MAX_FACTS_PER_TABLE = 240

#: The last pass: ``customer_360`` (the columns the segments read) left-joined to every facts table,
#: one row per customer row. Each segment is then a filter over this one table.
WIDE_TABLE = FACTS_TABLE_PREFIX + "wide"
#: Past this many columns the wide table is not made (each segment joins the facts tables it reads).
MAX_WIDE_COLUMNS = 1000

_SOURCES = ("orders", "items", "items+orders", "tags", "checkouts")
_PURCHASE_SHAPES = ("orders", "items", "items+orders")
#: The passes of distinct order counts are ``DISTINCT + shape``: grouped by order, then by customer.
DISTINCT = "distinct:"
_DERIVED = ("revenue", "orders", "first_order", "last_order")


@attrs.frozen
class _Fact:
    """One fact of one pass: its key, and how to build its aggregate over the pass's rows."""

    key: tuple[Any, ...]
    build: Callable[[_Rows], ColumnElement[Any]]
    since: dt.datetime | None  # the earliest event it reads (None: the whole history)


@attrs.frozen
class _Rows:
    """The rows one pass aggregates: the row getter (and the joined orders' getter for itemized rows)."""

    rcol: Callable[[str], ColumnElement[Any]]
    ocol: Callable[[str], ColumnElement[Any]] | None


@attrs.define
class _Table:
    name: str
    source: str
    facts: list[_Fact] = attrs.Factory(list)


class SharedFacts:
    """The facts of a set of segments at one as-of instant (``collect``), the queries that compute
    them (``passes``), and the predicates a compiler reads instead of the behaviour subqueries."""

    def __init__(self, model: Model, as_of: AsOf):
        from audlang.compile.compiler import SegmentCompiler

        self.model = model
        self.as_of = as_of
        self._compiler: SegmentCompiler = SegmentCompiler(model, as_of)
        self._tables: list[_Table] = []
        self._where: dict[tuple[Any, ...], tuple[str, str]] = {}  # key -> (table, column)
        self._customer: set[str] = {"customer_id"}  # the customer_360 columns the segments read
        self._aliases = 0

    # ------------------------------------------------------------------ collecting
    @classmethod
    def collect(cls, model: Model, as_of: AsOf, names: Iterable[str], follow_segments: bool = False
                ) -> SharedFacts:
        """The facts the segments ``names`` read. ``follow_segments``: also those of the segments they
        use through ``in segment`` (for a compiler that inlines them rather than reading a membership)."""
        facts = cls(model, as_of)
        seen: set[str] = set()
        stack = [n for n in names if n in model.segments]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            facts._customer.update(facts._compiler._customer_columns(model.segments[name].condition))
            for node in walk_through_scores(model.segments[name].condition, model.scores):
                facts.add(node)
                if follow_segments and isinstance(node, ast.InSegment) and node.name in model.segments:
                    stack.append(node.name)
        return facts

    def add(self, node: ast.Condition) -> None:
        """Register the fact one condition node reads, if it reads one."""
        if isinstance(node, ast.HasPurchased) and isinstance(node.window, ast.InPeriods):
            self._add_periods(node)
        elif isinstance(node, ast.FirstPurchased):
            self._add_first(node)
        elif isinstance(node, ast.HasPurchased):
            self._add_purchase(node)
        elif isinstance(node, ast.Tagged):
            self._register(("tags", _tags_key(node)), "tags", _tagged_fact(node))
        elif isinstance(node, ast.AbandonedCheckout):
            window = self._range_key(node.window)
            self._register(("checkouts", window), "checkouts", self._checkout_fact(node), window[0])
        elif isinstance(node, ast.ATTRIBUTE_READERS) or (isinstance(node, ast.Percentile) and node.attribute):
            attribute = node.attribute
            assert attribute is not None, "an attribute reader or a percentile of an attribute"
            info = self.model.data_model.attributes.get(attribute.name)
            if info is not None and info.derived:
                self._add_derived()

    def _add_purchase(self, node: ast.HasPurchased) -> None:
        matched_key, value_key = self._purchase_keys(node)
        shape, window = matched_key[1], matched_key[2]
        cc = self._compiler

        def conditions(rows: _Rows) -> ColumnElement[bool] | None:
            return _all(cc.purchase_conditions(node, rows.rcol, rows.ocol, horizon=True))

        since = window[0]
        self._register(matched_key, shape, lambda rows: func.sum(_when(conditions(rows), literal(1))), since)
        if node.measure is None or value_key is None:
            return
        kind = node.measure.kind
        prefix = "order" if shape == "orders" else "item"
        if kind == "orders":
            def order_matches(rows: _Rows) -> ColumnElement[Any]:
                order_id = rows.rcol("order_id")
                return func.max(case((and_(order_id.is_not(None), *cc.purchase_conditions(
                    node, rows.rcol, rows.ocol, horizon=True)), 1), else_=0))

            self._register(value_key, DISTINCT + shape, order_matches, since)
            return

        def value(rows: _Rows) -> ColumnElement[Any]:
            column = rows.rcol(f"{prefix}_quantity" if kind == "quantity" else f"{prefix}_revenue")
            if kind == "quantity":
                return func.sum(_when(conditions(rows), column))
            return dialects.money_sum(_when(conditions(rows), column))

        self._register(value_key, shape, value, since)

    def _add_first(self, node: ast.FirstPurchased) -> None:
        """``first_purchased``: the earliest matching row's instant up to T (the window is the test's)."""
        key = self._first_key(node)
        cc = self._compiler
        plain = ast.HasPurchased(node.filters)

        def first(rows: _Rows) -> ColumnElement[Any]:
            conditions = _all(cc.purchase_conditions(plain, rows.rcol, rows.ocol, horizon=True))
            return func.min(_when(conditions, rows.rcol("order_datetime")))

        self._register(key, key[1], first)

    def _add_periods(self, node: ast.HasPurchased) -> None:
        """``in N of last M``: how many of the M periods hold a matching row (the test compares with N)."""
        key = self._periods_key(node)
        window = node.window
        assert isinstance(window, ast.InPeriods), "a has_purchased in N of last M units"
        cc = self._compiler
        plain = attrs.evolve(node, window=None)

        def periods(rows: _Rows) -> ColumnElement[Any]:
            conditions = _all(cc.purchase_conditions(plain, rows.rcol, rows.ocol, horizon=True))
            return func.count(_when(conditions, cc.period_index(rows.rcol("order_datetime"), window)).distinct())

        self._register(key, key[1], periods, period_starts(window, self.as_of)[-1])

    def _add_derived(self) -> None:
        # Every row of the orders pass is an order up to T: the lifetime aggregates are plain ones.
        builders: dict[str, Callable[[_Rows], ColumnElement[Any]]] = {
            "revenue": lambda rows: dialects.money_sum(rows.rcol("order_revenue")),
            "orders": lambda rows: func.count(rows.rcol("order_id")),
            "first_order": lambda rows: func.min(rows.rcol("order_datetime")),
            "last_order": lambda rows: func.max(rows.rcol("order_datetime")),
        }
        for name, build in builders.items():
            self._register(("derived", name), "orders", build)

    def _checkout_fact(self, node: ast.AbandonedCheckout) -> Callable[[_Rows], ColumnElement[Any]]:
        cc = self._compiler

        def build(rows: _Rows) -> ColumnElement[Any]:
            completed = rows.rcol("completed")
            not_completed = completed.is_(None) | (completed == False)  # noqa: E712
            window = cc._range(rows.rcol("started_at"), node.window, horizon=True)
            return func.sum(case((and_(not_completed, *window), 1), else_=0))

        return build

    def _register(self, key: tuple[Any, ...], source: str, build: Callable[[_Rows], ColumnElement[Any]],
                  since: dt.datetime | None = None) -> None:
        if key in self._where:
            return
        tables = [t for t in self._tables if t.source == source and len(t.facts) < MAX_FACTS_PER_TABLE]
        if tables:
            target = tables[0]
        else:
            count = sum(t.source == source for t in self._tables)
            suffix = source.replace("+", "_").replace(":", "_") + (f"_{count + 1}" if count else "")
            target = _Table(FACTS_TABLE_PREFIX + suffix, source)
            self._tables.append(target)
        target.facts.append(_Fact(key, build, since))
        self._where[key] = (target.name, f"f{len(target.facts)}")

    def _range_key(self, window: ast.Window | None) -> tuple[dt.datetime | None, dt.datetime]:
        r = window_range(window, self.as_of)
        return (r.low, r.high)

    # ------------------------------------------------------------------ the passes
    def __bool__(self) -> bool:
        return bool(self._tables)

    @property
    def wide(self) -> bool:
        """Whether the last pass makes the wide table (``WIDE_TABLE``)."""
        return bool(self._tables) and len(self._where) + len(self._customer) <= MAX_WIDE_COLUMNS

    @property
    def table_names(self) -> list[str]:
        return [t.name for t in self._tables] + ([WIDE_TABLE] if self.wide else [])

    def passes(self) -> list[tuple[str, Select[Any]]]:
        """``(table name, query)`` of each pass, in order: one ``GROUP BY customer_id`` over each source,
        then the wide table joining them to the customers."""
        passes = [(t.name, self._pass_query(t)) for t in self._tables]
        return passes + ([(WIDE_TABLE, self._wide_query())] if self.wide else [])

    def _wide_name(self, key: tuple[Any, ...]) -> str:
        name, col = self._where[key]
        return f"audlang_{name[len(FACTS_TABLE_PREFIX):]}_{col}"

    def _wide_query(self) -> Select[Any]:
        cc = self._compiler
        info = self.model.data_model.tables["customer_360"]
        c = cc._alias("customer_360", "c", frozenset(self._customer))
        cid = c.c[info.column("customer_id")]
        columns: list[ColumnElement[Any]] = [c.c[info.column(n)].label(info.column(n)) for n in sorted(self._customer)]
        source: Any = c
        for i, t in enumerate(self._tables, start=1):
            ft = table(t.name, column("customer_id"), *(column(f"f{j}") for j in range(1, len(t.facts) + 1))) \
                .alias(f"w{i}")
            source = source.outerjoin(ft, ft.c.customer_id == cid)
            columns.extend(ft.c[f"f{j}"].label(self._wide_name(f.key)) for j, f in enumerate(t.facts, start=1))
        return select(*columns).select_from(source).where(cid.is_not(None))

    def _pass_query(self, t: _Table) -> Select[Any]:
        cc = self._compiler
        shape = t.source.removeprefix(DISTINCT)
        if shape in _PURCHASE_SHAPES:
            source, rcol, ocol = cc.purchase_source(shape)
            rows = _Rows(rcol, ocol)
            ts = rcol("order_datetime")
            where = [rcol("customer_id").is_not(None), *cc._range(ts, None)]
        elif t.source == "tags":
            tags = cc._alias("customer_tags", "t")
            source = tags
            rows = _Rows(lambda n: cc._col(tags, "customer_tags", n), None)
            where = [rows.rcol("customer_id").is_not(None)]
        else:
            checkouts = cc._alias("checkouts", "k")
            source = checkouts
            rows = _Rows(lambda n: cc._col(checkouts, "checkouts", n), None)
            where = [rows.rcol("customer_id").is_not(None), *cc._range(rows.rcol("started_at"), None)]
        earliest = [f.since for f in t.facts]
        if t.source != "tags" and None not in earliest:  # no fact reads older events: the pass skips them
            ts = rows.rcol("started_at" if t.source == "checkouts" else "order_datetime")
            where.append(ts >= dialects.timestamp_param(min(e for e in earliest if e is not None)))
        cid = rows.rcol("customer_id")
        columns = [f.build(rows).label(f"f{i}") for i, f in enumerate(t.facts, start=1)]
        if t.source.startswith(DISTINCT):  # per order first, then the orders with a match per customer
            oid = rows.rcol("order_id")
            orders = select(cid.label("customer_id"), *columns).select_from(source).where(*where) \
                .group_by(cid, oid).subquery("per_order")
            return select(orders.c.customer_id, *(func.sum(orders.c[f"f{i}"]).label(f"f{i}")
                                                  for i in range(1, len(t.facts) + 1))) \
                .group_by(orders.c.customer_id)
        return select(cid.label("customer_id"), *columns).select_from(source).where(*where).group_by(cid)

    # ------------------------------------------------------------------ reading the wide table
    def wide_alias(self, condition: ast.Condition, alias: str) -> Any | None:
        """An alias of the wide table with the columns ``condition`` reads (customer columns under their
        physical names, facts under ``_wide_name``), or None when it reads a customer column the wide
        table does not hold (a condition the facts were not collected for)."""
        names = self._wide_columns(condition)
        return None if names is None else table(WIDE_TABLE, *(column(n) for n in names)).alias(alias)

    def covers(self, condition: ast.Condition) -> bool:
        """Whether ``condition`` is a test on the wide table's row alone (``wide_alias`` is not None)."""
        return self._wide_columns(condition) is not None

    def wide_row(self, alias: str) -> Any | None:
        """An alias of the whole wide table, every column, or None without one: the row many segments'
        tests share when one scan tests them all (``SegmentCompiler.segment_test``)."""
        if not self.wide:
            return None
        info = self.model.data_model.tables["customer_360"]
        names = [info.column(n) for n in sorted(self._customer)]
        names.extend(self._wide_name(f.key) for t in self._tables for f in t.facts)
        return table(WIDE_TABLE, *(column(n) for n in dict.fromkeys(names))).alias(alias)

    def _wide_columns(self, condition: ast.Condition) -> list[str] | None:
        needed = self._compiler._customer_columns(condition)
        if not self.wide or not needed <= self._customer:
            return None
        info = self.model.data_model.tables["customer_360"]
        names = [info.column(n) for n in sorted(needed)]
        for node in walk_through_scores(condition, self.model.scores):
            keys = self._node_keys(node)
            if keys and keys[0][0] == "derived" and keys[0] not in self._where:
                return None  # the lifetime aggregates were not collected: the direct query joins them
            names.extend(self._wide_name(k) for k in keys if k in self._where)
        return list(dict.fromkeys(names))

    def _node_keys(self, node: ast.Condition) -> list[tuple[Any, ...]]:
        if isinstance(node, ast.HasPurchased) and isinstance(node.window, ast.InPeriods):
            return [self._periods_key(node)]
        if isinstance(node, ast.FirstPurchased):
            return [self._first_key(node)]
        if isinstance(node, ast.HasPurchased):
            matched, value = self._purchase_keys(node)
            return [matched] + ([value] if value else [])
        if isinstance(node, ast.Tagged):
            return [("tags", _tags_key(node))]
        if isinstance(node, ast.AbandonedCheckout):
            return [("checkouts", self._range_key(node.window))]
        if isinstance(node, ast.ATTRIBUTE_READERS):
            info = self.model.data_model.attributes.get(node.attribute.name)
            if info is not None and info.derived:
                return [("derived", name) for name in _DERIVED]
        return []

    def _purchase_keys(self, node: ast.HasPurchased) -> tuple[tuple[Any, ...], tuple[Any, ...] | None]:
        from audlang.compile.compiler import purchase_shape

        rows_key = (purchase_shape(node), self._range_key(node.window), _filters_key(node))
        return ("matched", *rows_key), ((node.measure.kind, *rows_key) if node.measure else None)

    def _first_key(self, node: ast.FirstPurchased) -> tuple[Any, ...]:
        from audlang.compile.compiler import purchase_shape

        plain = ast.HasPurchased(node.filters)
        return ("first", purchase_shape(plain), _filters_key(plain))

    def _periods_key(self, node: ast.HasPurchased) -> tuple[Any, ...]:
        from audlang.compile.compiler import purchase_shape

        window = node.window
        assert isinstance(window, ast.InPeriods), "a has_purchased in N of last M units"
        return ("periods", purchase_shape(node), window.periods, window.unit, _filters_key(node))

    def pattern_test(self, value: ColumnElement[Any], node: ast.Condition) -> ColumnElement[bool]:
        """The test of a pattern's fact: the first instant in the window, or enough periods."""
        if isinstance(node, ast.FirstPurchased):
            return and_(*self._compiler._range(value, node.window))
        assert isinstance(node, ast.HasPurchased) and isinstance(node.window, ast.InPeriods), "a pattern's fact"
        return and_(value.is_not(None), value >= dialects.number_param(Decimal(node.window.count)))

    def pattern(self, node: ast.FirstPurchased | ast.HasPurchased) -> Select[Any] | None:
        """The customers of a ``first_purchased`` or ``has_purchased … in N of last M`` from its fact, or None."""
        (key,) = self._node_keys(node)
        return self._ids_where(key, lambda value: self.pattern_test(value, node))

    def wide_test(self, wide: Any, node: ast.Condition,
                  having: Callable[[ColumnElement[Any]], ColumnElement[bool]] | None = None,
                  guarded: bool = True) -> ColumnElement[bool] | None:
        """A behaviour condition as a two-valued test on the wide table's row (a customer without a
        facts row has NULL there: never a match), or None when its facts were not collected.
        ``guarded=False``: where a NULL test fails as false does (a filter, outside a NOT), the count
        is not first tested for NULL."""
        keys = self._node_keys(node)
        if not keys or any(k not in self._where for k in keys):
            return None
        if keys[0][0] in ("first", "periods"):
            return self.pattern_test(wide.c[self._wide_name(keys[0])], node)
        matched = wide.c[self._wide_name(keys[0])]
        test = and_(matched.is_not(None), matched > 0) if guarded else matched > 0
        if len(keys) == 2:
            assert having is not None, "a measure is tested by its having"
            return and_(test, having(wide.c[self._wide_name(keys[1])]))
        return test

    def wide_derived(self, wide: Any) -> Any | None:
        """The lifetime aggregates as columns of the wide row (``.c.revenue`` …), or None."""
        keys = [("derived", name) for name in _DERIVED]
        if any(k not in self._where for k in keys):
            return None
        return _Aggregates({name: wide.c[self._wide_name(k)] for name, k in zip(_DERIVED, keys, strict=True)})

    # ------------------------------------------------------------------ reading them
    def _alias(self, key: tuple[Any, ...]) -> tuple[Any, str] | None:
        found = self._where.get(key)
        if found is None:
            return None
        name, col = found
        self._aliases += 1
        return table(name, column("customer_id"), column(col)).alias(f"ff{self._aliases}"), col

    def _ids_where(self, key: tuple[Any, ...], test: Callable[[ColumnElement[Any]], ColumnElement[bool]]
                   ) -> Select[Any] | None:
        found = self._alias(key)
        if found is None:
            return None
        t, col = found
        return select(t.c.customer_id).where(test(t.c[col])).correlate(None)

    def purchased(self, node: ast.HasPurchased, having: Callable[[ColumnElement[Any]], ColumnElement[bool]]
                  ) -> Select[Any] | None:
        """The customers of a ``has_purchased`` (``having``: the measure's test of its value), or None."""
        matched_key, value_key = self._purchase_keys(node)
        if value_key is None:
            return self._ids_where(matched_key, lambda n: n > 0)
        matched, value = self._where.get(matched_key), self._where.get(value_key)
        if matched is None or value is None or matched[0] != value[0]:
            return None
        self._aliases += 1
        t = table(matched[0], column("customer_id"), column(matched[1]), column(value[1])).alias(
            f"ff{self._aliases}")
        return select(t.c.customer_id).where(t.c[matched[1]] > 0, having(t.c[value[1]])).correlate(None)

    def tagged(self, node: ast.Tagged) -> Select[Any] | None:
        return self._ids_where(("tags", _tags_key(node)), lambda n: n > 0)

    def abandoned_checkout(self, node: ast.AbandonedCheckout) -> Select[Any] | None:
        return self._ids_where(("checkouts", self._range_key(node.window)), lambda n: n > 0)

    def derived(self) -> Subquery | None:
        """The lifetime aggregates (``customer_id, revenue, orders, first_order, last_order``), or None."""
        found = [self._where.get(("derived", name)) for name in _DERIVED]
        tables = {f[0] for f in found if f is not None}
        if None in found or len(tables) != 1:
            return None
        columns = [f[1] for f in found if f is not None]
        self._aliases += 1
        t = table(tables.pop(), column("customer_id"), *(column(c) for c in columns)).alias(f"ff{self._aliases}")
        return select(t.c.customer_id, *(t.c[c].label(label) for c, label in zip(columns, _DERIVED, strict=True))) \
            .subquery(f"fd{self._aliases}")


def _all(conditions: list[ColumnElement[bool]]) -> ColumnElement[bool] | None:
    """The conjunction, or None for no condition (every row of the pass)."""
    return and_(*conditions) if conditions else None


def _when(condition: ColumnElement[bool] | None, value: ColumnElement[Any]) -> ColumnElement[Any]:
    """``CASE WHEN condition THEN value END`` (NULL elsewhere), or the value itself for every row."""
    return value if condition is None else case((condition, value))


class _Aggregates:
    """Named aggregate columns read as ``.c.name``, as a derived subquery's are."""

    def __init__(self, columns: dict[str, ColumnElement[Any]]):
        self.c = SimpleNamespace(**columns)


def _filters_key(node: ast.HasPurchased) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(sorted((f.field, tuple(sorted(repr(_value(v)) for v in f.values))) for f in node.filters))


def _tags_key(node: ast.Tagged) -> tuple[str, ...]:
    return tuple(sorted(t.value for t in node.tags))


def _value(value: ast.Value) -> Any:
    return getattr(value, "value", value)


def _tagged_fact(node: ast.Tagged) -> Callable[[_Rows], ColumnElement[Any]]:
    from audlang.compile.compiler import _in_strings

    return lambda rows: func.max(case((_in_strings(rows.rcol("tag"), node.tags), 1), else_=0))
