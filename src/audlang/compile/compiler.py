"""Checked ``Model`` + as-of → one SQLAlchemy Core ``Select`` per segment.

Each segment is one set-based query over ``customer_360`` selecting distinct
``customer_id``; behaviour conditions are ``IN`` semi-joins on subqueries that
filter and aggregate in the database (``GROUP BY customer_id … HAVING`` for
measures). Every literal is a bound parameter. Every compiled condition is
two-valued (never NULL), so ``not`` means exactly what SPEC §3 says.

Dates are resolved in Python against the as-of date (``asof``) and reach the
database as bound timestamps, so date windows are half-open timestamp ranges
that every engine evaluates alike.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Union

import attrs
from sqlalchemy import (
    BigInteger, Boolean, Float, Integer, Numeric, String, and_, case, cast, column, exists, false, func, literal,
    literal_column, not_, or_, select, table, true,
)
from sqlalchemy.sql import ColumnElement, Select, visitors
from sqlalchemy.sql.elements import ColumnClause
from sqlalchemy.sql.selectable import FromClause, NamedFromClause, Subquery

from audlang import ast
from audlang.check import Model, walk, walk_through_scores
from audlang.check.datamodel import (
    BOOLEAN, DATE, INTEGER, ITEM_FILTER_COLUMNS, NUMBER, TEXT, TIMESTAMP, AttributeInfo,
)
from audlang.check.model import ListFile
from audlang.compile import dialects
from audlang.compile.asof import AsOf, day_after, midnight, period_starts, resolve_date, window_range

if TYPE_CHECKING:
    from audlang.compile.facts import SharedFacts

LIST_TABLE_PREFIX = "audlang_list_"

_SQL_TYPES = {TEXT: String(), NUMBER: Numeric(), INTEGER: Integer(), BOOLEAN: Boolean(), DATE: String(),
              TIMESTAMP: String()}


#: a column of one table alias, by its logical name (``SegmentCompiler._col`` bound to the alias)
_Columns = Callable[[str], ColumnElement[Any]]
#: the predicates on one attribute (``ast.ATTRIBUTE_PREDICATES``)
_AttributePredicate = Union[ast.Compare, ast.InValues, ast.BetweenValues, ast.StringMatch, ast.IsSet,
                            ast.BooleanAttribute]


def list_table_name(sha256: str) -> str:
    """The warehouse table holding an ``in list`` file's ids, named by its content."""
    return LIST_TABLE_PREFIX + sha256[:16]


def purchase_shape(node: ast.HasPurchased) -> str:
    """Which rows a ``has_purchased`` reads: ``orders``; ``items`` (an item filter); ``items+orders`` (item
    and order filters: itemized rows joined to their orders)."""
    tables = {ITEM_FILTER_COLUMNS[f.field][0] for f in node.filters}
    if "unified_itemized_transactions" not in tables:
        return "orders"
    return "items+orders" if "unified_transactions" in tables else "items"


@attrs.frozen
class _Operand:
    """A value to compare: a SQL expression and how to compare it."""

    expr: Any  # a ColumnElement; the derived aggregates (``.c.revenue`` …) for average_order_value
    kind: str  # text, number, boolean, date, timestamp, days_since, average


@attrs.frozen
class PurchaseRows:
    """What a ``has_purchased`` scans: the FROM clause, the filter and window conditions, the columns."""

    source: FromClause
    where: list[ColumnElement[bool]]
    customer_id: ColumnElement[Any]
    order_id: ColumnElement[Any]
    quantity: ColumnElement[Any]
    revenue: ColumnElement[Any]
    when: ColumnElement[Any]  # order_datetime


class SegmentCompiler:
    """Compiles the segments of one model at one as-of instant.

    ``membership`` maps segment names to a SQL table (or subquery) holding
    their materialized members; ``in segment`` reads it instead of composing
    the query again (plan/apply uses it). ``facts``: the shared facts of the
    run, already in the warehouse (``compile.facts``); behaviour conditions
    then read them instead of scanning the orders again.
    """

    def __init__(self, model: Model, as_of: AsOf, membership: dict[str, Select[Any]] | None = None,
                 facts: SharedFacts | None = None):
        if facts is not None and facts.as_of != as_of:
            raise ValueError("the shared facts were collected at another as-of instant")
        self.model = model
        self.as_of = as_of
        self.membership = membership or {}
        self.facts = facts
        self._aliases = 0
        self._filter_source: tuple[NamedFromClause, bool] | None = None

    # ------------------------------------------------------------------ tables
    def _alias(self, logical: str, base: str, only: frozenset[str] | None = None) -> NamedFromClause:
        """A fresh alias of a data-model table; ``only``: just these logical columns (a narrow table is
        cheaper to build, and a thousand segments build one each)."""
        info = self.model.data_model.tables[logical]
        schema, _, name = info.physical.rpartition(".")
        columns: list[ColumnClause[Any]] = [column(info.column(c)) for c in info.types if only is None or c in only]
        t = table(name, *columns, schema=schema or None)
        self._aliases += 1
        return t.alias(f"{base}{self._aliases}")

    def _customer_columns(self, condition: ast.Condition) -> frozenset[str]:
        """The ``customer_360`` columns a condition reads, with the items of the scores it reads (not
        those of the segments it uses)."""
        needed = {"customer_id"}
        attributes = self.model.data_model.attributes
        for node in walk_through_scores(condition, self.model.scores):
            if isinstance(node, ast.ATTRIBUTE_READERS):
                info = attributes.get(node.attribute.name)
                if info is not None and info.table == "customer_360" and info.column is not None:
                    needed.add(info.column)
            elif isinstance(node, ast.NearStore):
                needed.update(("latitude", "longitude"))
        return frozenset(needed)

    def _col(self, alias: FromClause, logical_table: str, logical_column: str) -> ColumnElement[Any]:
        """The column, read by the data model's type (on SQLite, whatever the table declares:
        ``dialects.declared``)."""
        info = self.model.data_model.tables[logical_table]
        return dialects.as_declared(alias.c[info.column(logical_column)], info.types.get(logical_column, TEXT))

    # ------------------------------------------------------------------ queries
    def segment(self, name: str) -> Select[Any]:
        """``SELECT DISTINCT customer_id`` of the segment's members, as of the compiler's date."""
        return self.condition_query(self.model.segments[name].condition)

    def condition_query(self, condition: ast.Condition) -> Select[Any]:
        wide = None
        if self.facts is not None:  # the facts' wide table: the segment is a filter over one table
            self._aliases += 1
            wide = self.facts.wide_alias(condition, f"c{self._aliases}")
        c = wide if wide is not None else self._alias("customer_360", "c", self._customer_columns(condition))
        scope = _Scope(self, c, wide=wide is not None)
        where = scope.condition(condition)
        customer_id = self._col(c, "customer_360", "customer_id")
        source = scope.from_clause()
        return (
            select(customer_id.label("customer_id"))
            .select_from(source)
            .where(customer_id.is_not(None), where)
            .distinct()
        )

    def filter_source(self) -> NamedFromClause:
        """The one alias of this compiler's segment tests (``segment_test``), so that one scan of it tests
        many segments: the shared facts' wide table, every column, when there is one; else
        ``customer_360``."""
        if self._filter_source is None:
            wide = self.facts.wide_row("w") if self.facts is not None else None
            self._filter_source = (wide, True) if wide is not None else (self._alias("customer_360", "w"), False)
        return self._filter_source[0]

    def segment_test(self, name: str) -> ColumnElement[bool] | None:
        """The segment as a test on one row of ``filter_source()``: its members are the customer ids
        (``source_customer_id``) of the rows where it holds. None when the segment is not a filter over
        that one table (it joins another): ``segment`` compiles it."""
        source = self.filter_source()
        wide = self._filter_source is not None and self._filter_source[1]
        condition = self.model.segments[name].condition
        if wide and not (self.facts is not None and self.facts.covers(condition)):
            return None
        scope = _Scope(self, source, wide=wide, filtering=True)
        test = scope.condition(condition)
        return test if scope.from_clause() is source else None

    def source_customer_id(self) -> ColumnElement[Any]:
        """The customer id of ``filter_source()``'s row."""
        return self._col(self.filter_source(), "customer_360", "customer_id")

    def customer_scope(self) -> _Scope:
        """A fresh alias of ``customer_360`` and the compiler of conditions over it (``audlang explain``
        compiles each clause of a condition as its own column from this)."""
        return _Scope(self, self._alias("customer_360", "c"))

    def percentile_ranks(self, node: ast.Percentile) -> Subquery:
        """Every customer whose value is present, with the value (``ranked_value``), one more than the number of
        customers with a strictly better value (``ranked_position``: RANK, greater first for top) and the
        number of customers with a value (``ranked_population``): SPEC §3.1's percentiles."""
        scope = _Scope(self, self._alias("customer_360", "p"))
        value = scope.ranked_value(node)
        keys = scope.rank_keys(node, value)
        cid = scope.customer_id
        self._aliases += 1
        # a key that is the value itself is ordered by the value's own column: the value (a score's
        # whole sum, say) is written once, not twice
        names = ["ranked_value" if k is value else f"ranked_key{i}" for i, k in enumerate(keys)]
        values = select(cid.label("customer_id"), value.label("ranked_value"),
                        *(k.label(n) for k, n in zip(keys, names, strict=True) if k is not value)) \
            .select_from(scope.from_clause()).where(cid.is_not(None)).subquery(f"v{self._aliases}")
        order = [values.c[n].desc() if node.side == "top" else values.c[n].asc() for n in names]
        return (
            select(values.c.customer_id, values.c.ranked_value,
                   func.rank().over(order_by=order).label("ranked_position"),
                   func.count().over().label("ranked_population"))
            .where(values.c.ranked_value.is_not(None))
            .subquery(f"r{self._aliases}")
        )

    def segment_ids(self, name: str) -> Select[Any]:
        """What ``in segment`` reads: the materialized membership when given, else the query."""
        if name in self.membership:
            return self.membership[name]
        return self.segment(name)

    # ------------------------------------------------------------------ behaviour subqueries
    def orders_in(self, customer_ids: ColumnElement[Any], window: ast.Window | None
                  ) -> tuple[NamedFromClause, _Columns, list[ColumnElement[bool]]]:
        t = self._alias("unified_transactions", "o")
        col: _Columns = lambda n: self._col(t, "unified_transactions", n)  # noqa: E731
        return t, col, self._range(col("order_datetime"), window)

    def _range(self, ts: ColumnElement[Any], window: ast.Window | None, horizon: bool = False
               ) -> list[ColumnElement[bool]]:
        """The window's conditions on ``ts``. ``horizon``: the rows are already those with a ``ts`` before
        T (a facts pass's WHERE), so only what narrows them further."""
        r = window_range(window, self.as_of)
        conditions = [] if horizon and r.high == self.as_of.instant else [ts.is_not(None),
                                                                          ts < dialects.timestamp_param(r.high)]
        if r.low is not None:
            conditions.append(ts >= dialects.timestamp_param(r.low))
        return conditions

    def purchase_source(self, shape: str) -> tuple[FromClause, _Columns, _Columns | None]:
        """The FROM clause of purchase rows of ``shape`` (``purchase_shape``), the column getter of the rows,
        and that of the orders joined to itemized rows (None unless the shape joins them)."""
        if shape == "orders":
            orders = self._alias("unified_transactions", "o")
            ocol: _Columns = lambda n: self._col(orders, "unified_transactions", n)  # noqa: E731
            return orders, ocol, ocol
        rows = self._alias("unified_itemized_transactions", "i")
        rcol: _Columns = lambda n: self._col(rows, "unified_itemized_transactions", n)  # noqa: E731
        if shape == "items":
            return rows, rcol, None
        orders = self._alias("unified_transactions", "o")
        jcol: _Columns = lambda n: self._col(orders, "unified_transactions", n)  # noqa: E731
        return rows.join(orders, jcol("order_id") == rcol("order_id")), rcol, jcol

    def purchase_conditions(self, node: ast.HasPurchased, rcol: _Columns, ocol: _Columns | None,
                            horizon: bool = False) -> list[ColumnElement[bool]]:
        """The window and filter conditions of a ``has_purchased`` over rows of its shape (``horizon``:
        as ``_range``)."""
        where = self._range(rcol("order_datetime"), node.window, horizon)
        for f in node.filters:
            logical_table, name = ITEM_FILTER_COLUMNS[f.field]
            getter = rcol if logical_table == "unified_itemized_transactions" else ocol
            assert getter is not None, "order filters on itemized rows join the orders"
            where.append(_in_strings(getter(name), f.values))
        return where

    def purchase_rows(self, node: ast.HasPurchased) -> PurchaseRows:
        """The rows a ``has_purchased`` reads (orders, or itemized rows with an item filter) and its filters."""
        shape = purchase_shape(node)
        source, rcol, ocol = self.purchase_source(shape)
        where = self.purchase_conditions(node, rcol, ocol)
        prefix = "order" if shape == "orders" else "item"
        return PurchaseRows(source, where, rcol("customer_id"), rcol("order_id"), rcol(f"{prefix}_quantity"),
                            rcol(f"{prefix}_revenue"), rcol("order_datetime"))

    def has_purchased(self, node: ast.HasPurchased) -> Select[Any]:
        if self.facts is not None:
            shared = self.facts.purchased(node, lambda value: _measure_test(node, value))
            if shared is not None:
                return shared
        rows = self.purchase_rows(node)
        source, where, customer_id, order_id = rows.source, rows.where, rows.customer_id, rows.order_id
        quantity, revenue = rows.quantity, rows.revenue
        query = select(customer_id).select_from(source).where(customer_id.is_not(None), *where)
        measure = node.measure
        if measure is None:
            return query.correlate(None)
        value: ColumnElement[Any]
        if measure.kind == "orders":
            value = func.count(order_id.distinct())
        elif measure.kind == "quantity":
            value = func.sum(quantity)
        else:
            value = dialects.money_sum(revenue)
        return query.group_by(customer_id).having(_measure_test(node, value)).correlate(None)

    # ------------------------------------------------------------------ SPEC §3.1 behaviour patterns
    def period_index(self, when: ColumnElement[Any], window: ast.InPeriods) -> ColumnElement[Any]:
        """``in N of last M units``: the period k (1…M) of an event at ``when`` (already before T), by the
        periods' first instants computed in Python (``asof.period_starts``); NULL before period M."""
        starts = period_starts(window, self.as_of)
        # the k are our own whole numbers, written into the SQL (a bound THEN has no type on some engines)
        return case(*((when >= dialects.timestamp_param(start), literal_column(str(k)))
                      for k, start in enumerate(starts, start=1)))

    def purchased_in_periods(self, node: ast.HasPurchased) -> Select[Any]:
        """The customers with a matching order in at least N of the last M periods: one ``GROUP BY
        customer_id … HAVING COUNT(DISTINCT <period>) >= N`` over the rows of the M periods."""
        window = node.window
        assert isinstance(window, ast.InPeriods), "a has_purchased in N of last M units"
        if self.facts is not None and (shared := self.facts.pattern(node)) is not None:
            return shared
        rows = self.purchase_rows(attrs.evolve(node, window=None))
        earliest = period_starts(window, self.as_of)[-1]
        periods = func.count(self.period_index(rows.when, window).distinct())
        return (
            select(rows.customer_id).select_from(rows.source)
            .where(rows.customer_id.is_not(None), *rows.where, rows.when >= dialects.timestamp_param(earliest))
            .group_by(rows.customer_id)
            .having(periods >= dialects.number_param(Decimal(window.count)))
            .correlate(None)
        )

    def first_purchase_rows(self, node: ast.FirstPurchased) -> PurchaseRows:
        """The rows of a ``first_purchased``: those matching its filters up to T, whatever the window."""
        return self.purchase_rows(ast.HasPurchased(node.filters, None, None, node.span))

    def first_purchased(self, node: ast.FirstPurchased) -> Select[Any]:
        """The customers whose earliest matching order (``MIN(order_datetime)``) lies in the window."""
        if self.facts is not None and (shared := self.facts.pattern(node)) is not None:
            return shared
        rows = self.first_purchase_rows(node)
        first = func.min(rows.when)
        return (
            select(rows.customer_id).select_from(rows.source)
            .where(rows.customer_id.is_not(None), *rows.where)
            .group_by(rows.customer_id)
            .having(and_(*self._range(first, node.window)))
            .correlate(None)
        )

    def orders_per_value(self, node: ast.MostPurchased, customer_id: ColumnElement[Any] | None = None
                         ) -> Subquery:
        """``most_purchased FIELD …``: per customer and value of FIELD, the distinct orders in the window
        (``customer_id, field_value, orders``; rows without a value or an order id are not counted).
        ``customer_id``: a condition on the customer (``audlang explain`` reads one customer's)."""
        field = node.filters[0].field
        logical_table, name = ITEM_FILTER_COLUMNS[field]
        source, rcol, _ = self.purchase_source("orders" if logical_table == "unified_transactions" else "items")
        cid, value, order_id = rcol("customer_id"), rcol(name), rcol("order_id")
        where = [cid.is_not(None), value.is_not(None), order_id.is_not(None),
                 *self._range(rcol("order_datetime"), node.window)]
        if customer_id is not None:
            where.append(cid == customer_id)
        self._aliases += 1
        return (
            select(cid.label("customer_id"), value.label("field_value"),
                   func.count(order_id.distinct()).label("orders"))
            .select_from(source).where(*where).group_by(cid, value)
            .subquery(f"v{self._aliases}")
        )

    def ranked_values(self, node: ast.MostPurchased, customer_id: ColumnElement[Any] | None = None
                      ) -> Subquery:
        """``orders_per_value`` with each customer's highest count beside each row (``most_orders``)."""
        per_value = self.orders_per_value(node, customer_id)
        top = func.max(per_value.c.orders).over(partition_by=per_value.c.customer_id)
        self._aliases += 1
        return select(per_value.c.customer_id, per_value.c.field_value, per_value.c.orders,
                      top.label("most_orders")).subquery(f"r{self._aliases}")

    def most_purchased(self, node: ast.MostPurchased) -> Select[Any]:
        """The customers for whom a value of ``node`` has the most orders (ties all hold)."""
        ranked = self.ranked_values(node)
        return select(ranked.c.customer_id) \
            .where(ranked.c.orders == ranked.c.most_orders,
                   _in_strings(ranked.c.field_value, node.filters[0].values)) \
            .correlate(None)

    def tagged(self, node: ast.Tagged) -> Select[Any]:
        if self.facts is not None and (shared := self.facts.tagged(node)) is not None:
            return shared
        t = self._alias("customer_tags", "t")
        cid = self._col(t, "customer_tags", "customer_id")
        return select(cid).where(cid.is_not(None), _in_strings(self._col(t, "customer_tags", "tag"), node.tags)) \
            .correlate(None)

    def checkout_rows(self, node: ast.AbandonedCheckout
                      ) -> tuple[NamedFromClause, _Columns, list[ColumnElement[bool]]]:
        """The checkouts alias, a column getter, and the conditions of an ``abandoned_checkout``."""
        t = self._alias("checkouts", "k")
        col: _Columns = lambda n: self._col(t, "checkouts", n)  # noqa: E731
        not_completed = or_(col("completed").is_(None), col("completed") == false())
        return t, col, [col("customer_id").is_not(None), not_completed, *self._range(col("started_at"), node.window)]

    def abandoned_checkout(self, node: ast.AbandonedCheckout) -> Select[Any]:
        if self.facts is not None and (shared := self.facts.abandoned_checkout(node)) is not None:
            return shared
        _t, col, conditions = self.checkout_rows(node)
        return select(col("customer_id")).where(*conditions).correlate(None)

    def custom_attribute(self, info: AttributeInfo, build: Callable[[_Operand], ColumnElement[bool]]) -> Select[Any]:
        assert info.table is not None and info.column is not None, "an attribute of a custom table"
        t = self._alias(info.table, "x")
        cid = self._col(t, info.table, "customer_id")
        value = self._col(t, info.table, info.column)
        return select(cid).where(cid.is_not(None), build(_Operand(value, _kind(info.type)))).correlate(None)

    def list_ids(self, node: ast.InFile, declaring_file: str) -> Select[Any]:
        listed = self.model.lists[(declaring_file, node.path)]
        t = table(list_table_name(listed.sha256), column("customer_id"))
        return select(t.c.customer_id).where(t.c.customer_id.is_not(None)).correlate(None)

    def derived(self) -> Subquery:
        """Per-customer order aggregates as of T: lifetime revenue and orders, first and last order."""
        if self.facts is not None and (shared := self.facts.derived()) is not None:
            return shared
        orders = self._alias("unified_transactions", "o")
        col: _Columns = lambda n: self._col(orders, "unified_transactions", n)  # noqa: E731
        return (
            select(
                col("customer_id").label("customer_id"),
                dialects.money_sum(col("order_revenue")).label("revenue"),
                func.count(col("order_id")).label("orders"),
                func.min(col("order_datetime")).label("first_order"),
                func.max(col("order_datetime")).label("last_order"),
            )
            .where(col("customer_id").is_not(None), *self._range(col("order_datetime"), None))
            .group_by(col("customer_id"))
            .subquery(f"d{self._aliases}")
        )


class _Scope:
    """Compiles the conditions of one query over one customer alias."""

    def __init__(self, compiler: SegmentCompiler, customers: NamedFromClause, wide: bool = False,
                 filtering: bool = False):
        self.compiler = compiler
        self.c = customers
        self.wide = wide  # ``customers`` is the shared facts' wide table (``compile.facts``)
        #: the condition only filters rows (a WHERE, a CASE WHEN): a NULL test fails there as false
        #: does, so outside a NOT a test needs no ``IS NOT NULL`` before it (``guarded``)
        self.filtering = filtering
        self._negations = 0
        self._derived: Any = None  # a Subquery, or the wide row's aggregates
        self.file = ""

    def from_clause(self) -> FromClause:
        if self._derived is None or self.wide:
            return self.c
        cid = self.compiler._col(self.c, "customer_360", "customer_id")
        return self.c.outerjoin(self._derived, self._derived.c.customer_id == cid)

    @property
    def customer_id(self) -> ColumnElement[Any]:
        return self.compiler._col(self.c, "customer_360", "customer_id")

    def derived(self) -> Any:
        """The lifetime aggregates (``.c.revenue``, ``.c.orders``, ``.c.first_order``, ``.c.last_order``)."""
        if self._derived is None:
            facts = self.compiler.facts
            found = facts.wide_derived(self.c) if self.wide and facts is not None else None
            assert found is not None or not self.wide, "wide_alias holds the aggregates a wide query reads"
            self._derived = found if found is not None else self.compiler.derived()
        return self._derived

    def _wide_test(self, node: ast.Condition) -> ColumnElement[bool] | None:
        facts = self.compiler.facts
        if not self.wide or facts is None:
            return None
        having = (lambda value: _measure_test(node, value)) if isinstance(node, ast.HasPurchased) \
            and node.measure else None
        return facts.wide_test(self.c, node, having, guarded=self.guards)

    @property
    def guards(self) -> bool:
        """Whether a test must be two-valued here: false, not NULL, when its value is missing."""
        return not self.filtering or self._negations > 0

    def guarded(self, present: ColumnElement[bool], *tests: ColumnElement[bool]) -> ColumnElement[bool]:
        """``present AND tests``, or the tests alone where no guard is needed (``guards``). A test that
        reads no column (``days_since_last_order != 2.5`` is a constant true) keeps its guard: only a
        test of the value is NULL where the value is."""
        if self.guards or not all(_reads_a_column(t) for t in tests):
            return and_(present, *tests)
        return tests[0] if len(tests) == 1 else and_(*tests)

    # ------------------------------------------------------------------ conditions
    def condition(self, node: ast.Condition) -> ColumnElement[bool]:
        if isinstance(node, ast.And):
            return and_(*(self.condition(o) for o in node.operands))
        if isinstance(node, ast.Or):
            return or_(*(self.condition(o) for o in node.operands))
        if isinstance(node, ast.Not):
            self._negations += 1
            try:
                return not_(self.condition(node.operand))
            finally:
                self._negations -= 1
        if isinstance(node, ast.ATTRIBUTE_PREDICATES):
            return self.attribute_predicate(node)
        cc = self.compiler
        if isinstance(node, (ast.HasPurchased, ast.Tagged, ast.AbandonedCheckout, ast.FirstPurchased)) \
                and (test := self._wide_test(node)) is not None:
            return test
        if isinstance(node, ast.HasPurchased) and not isinstance(node.window, ast.InPeriods):
            return self.customer_id.in_(cc.has_purchased(node))
        if isinstance(node, ast.Tagged):
            return self.customer_id.in_(cc.tagged(node))
        if isinstance(node, ast.AbandonedCheckout):
            return self.customer_id.in_(cc.abandoned_checkout(node))
        if isinstance(node, ast.InSegment):
            return self.customer_id.in_(cc.segment_ids(node.name))
        if isinstance(node, ast.InFile):
            return self.customer_id.in_(cc.list_ids(node, _declaring_file(cc.model, node)))
        if isinstance(node, ast.NearStore):
            return self.near_store(node)
        if isinstance(node, ast.HasPurchased):  # `in N of last M units`
            return self.purchased_in_periods(node)
        return self.pattern(node)

    # ------------------------------------------------------------------ SPEC §3.1 (calendar and behaviour)
    def pattern(self, node: ast.Condition) -> ColumnElement[bool]:
        """The forms of SPEC §3.1 (the checker lets each through once its compiling is in)."""
        if isinstance(node, ast.Anniversary):
            return self.anniversary(node)
        if isinstance(node, ast.MostPurchased):
            return self.most_purchased(node)
        if isinstance(node, ast.FirstPurchased):
            return self.first_purchased(node)
        if isinstance(node, ast.ScoreCompare):
            return self.score_compare(node)
        if isinstance(node, ast.Percentile):
            return self.percentile(node)
        raise TypeError(f"cannot compile {node!r}")

    def purchased_in_periods(self, node: ast.HasPurchased) -> ColumnElement[bool]:
        return self.customer_id.in_(self.compiler.purchased_in_periods(node))

    def anniversary(self, node: ast.Anniversary) -> ColumnElement[bool]:
        """SPEC §3.1: the attribute's month and day (``dialects.month_day``) among those whose anniversary
        falls in the window, worked out here from D (``anniversary_ranges``); false when it is missing."""
        operand, info = self.operand(node.attribute.name)
        # every month and day has an anniversary in the window: every real date (not SQLite's '2023-02-30')
        ranges = anniversary_ranges(node, self.compiler.as_of.date) or ((101, 1231),)

        def build(op: _Operand) -> ColumnElement[bool]:
            value: ColumnElement[Any] = op.expr  # a column (only average_order_value is not; it is a number)
            present = value.is_not(None)
            md = dialects.month_day(value)
            return and_(present, or_(*(md == literal(low, Integer()) if low == high
                                       else md.between(literal(low, Integer()), literal(high, Integer()))
                                       for low, high in ranges)))

        if operand is None:  # a custom table: any of the customer's rows
            return self.customer_id.in_(self.compiler.custom_attribute(info, build))
        return build(operand)

    def most_purchased(self, node: ast.MostPurchased) -> ColumnElement[bool]:
        return self.customer_id.in_(self.compiler.most_purchased(node))

    def first_purchased(self, node: ast.FirstPurchased) -> ColumnElement[bool]:
        return self.customer_id.in_(self.compiler.first_purchased(node))

    def score_value(self, name: str) -> ColumnElement[Decimal]:
        """The customer's score: the sum of the points of the items whose condition holds (each compiled
        as any condition of this scope, two-valued), 0 when none does. A scalar over the customer row."""
        zero = dialects.points_param(Decimal(0))
        terms = [case((self.condition(item.condition), dialects.points_param(item.points)), else_=zero)
                 for item in self.compiler.model.scores[name].items]
        return dialects.points_sum(terms) if terms else zero

    def score_compare(self, node: ast.ScoreCompare) -> ColumnElement[bool]:
        value = self.score_value(node.score)
        number: Callable[[ast.Value], ColumnElement[Decimal]] = \
            lambda v: dialects.points_param(_number_of(v))  # noqa: E731
        if node.op == "between":
            assert node.high is not None, "a score between two numbers has both"
            return and_(value >= number(node.value), value <= number(node.high))
        return _compare(value, node.op, number(node.value))

    def ranked_value(self, node: ast.Percentile) -> ColumnElement[Any]:
        """What a percentile ranks, as shown (``explain``): the score, the number attribute, the days since
        the last order, the average order value (the checker lets no other through); NULL when missing."""
        if node.score is not None:
            return self.score_value(node.score)
        assert node.attribute is not None, "a percentile of an attribute or of a score"
        operand, _info = self.operand(node.attribute.name)
        if operand is not None and operand.kind == "days_since":
            return dialects.days_before(operand.expr, dialects.date_param(self.compiler.as_of.date))
        if operand is not None and operand.kind == "average":
            d = operand.expr
            average: ColumnElement[Any] = d.c.revenue / d.c.orders
            return average
        if operand is None or operand.kind != NUMBER or not isinstance(operand.expr, ColumnElement):
            raise TypeError(f"cannot rank {node.attribute.name!r}")
        return operand.expr

    def rank_keys(self, node: ast.Percentile, value: ColumnElement[Any]) -> list[ColumnElement[Any]]:
        """What the ranking orders by, exactly: the value itself (a decimal, a whole number of days), but
        for ``average_order_value`` the exact quotient of the lifetime revenue R by the orders n, in whole
        numbers: u = R in millionths (``AVERAGE_UNITS``), then (u div n, (u mod n) × 10^12 div n), compared
        in that order. Two averages that are equal give equal keys; two that differ differ by at least
        1 / (n₁ n₂) millionths, more than the 2 × 10^-12 the second key can lose while n ≤ 700,000
        (docs/language.md, "Percentiles")."""
        if node.attribute is None or node.attribute.name != "average_order_value":
            return [value]
        d = self.derived()
        units = cast(func.round(d.c.revenue * literal(AVERAGE_UNITS, BigInteger())), BigInteger())
        orders = cast(d.c.orders, BigInteger())
        whole = dialects.whole_quotient(units, orders)
        remainder = units - whole * orders
        fraction = dialects.whole_quotient(remainder * literal(AVERAGE_FRACTION, BigInteger()), orders)
        return [whole, fraction]

    def percentile(self, node: ast.Percentile) -> ColumnElement[bool]:
        """``v in top P%``: fewer than P% of the population has a better value. In whole numbers, exactly on
        every engine: (position − 1) × 100 × 10^k < P × 10^k × population, k the decimals of P."""
        ranks = self.compiler.percentile_ranks(node)
        held = percentile_held(ranks, node.percent)
        return self.customer_id.in_(select(ranks.c.customer_id).where(held).correlate(None))

    def near_store(self, node: ast.NearStore) -> ColumnElement[bool]:
        cc = self.compiler
        s = cc._alias("stores", "s")
        lat = cc._col(self.c, "customer_360", "latitude")
        lon = cc._col(self.c, "customer_360", "longitude")
        slat, slon = cc._col(s, "stores", "latitude"), cc._col(s, "stores", "longitude")
        km = float(node.distance.value) * (dialects.KM_PER_MILE if node.unit == "miles" else 1.0)
        distance = dialects.haversine_km(lat, lon, slat, slon)
        return exists(
            select(literal(1)).select_from(s).where(
                cc._col(s, "stores", "store_id") == literal(node.store, String()),
                slat.is_not(None), slon.is_not(None), lat.is_not(None), lon.is_not(None),
                distance <= literal(km, Float()),
            ).correlate(self.c)
        )

    def operand(self, name: str) -> tuple[_Operand | None, AttributeInfo]:
        """The attribute's SQL expression, or a builder for attributes that live in other tables."""
        info = self.compiler.model.data_model.attributes[name]
        if info.derived:
            d = self.derived()
            if name == "lifetime_revenue":
                return _Operand(func.coalesce(d.c.revenue, 0), NUMBER), info
            if name == "lifetime_orders":
                return _Operand(func.coalesce(d.c.orders, 0), NUMBER), info
            if name == "first_order_date":
                return _Operand(d.c.first_order, TIMESTAMP), info
            if name == "last_order_date":
                return _Operand(d.c.last_order, TIMESTAMP), info
            if name == "days_since_last_order":
                return _Operand(d.c.last_order, "days_since"), info
            if name == "average_order_value":
                return _Operand(d, "average"), info
        if info.table == "customer_360":
            assert info.column is not None, "a column of customer_360"
            return _Operand(self.compiler._col(self.c, "customer_360", info.column), _kind(info.type)), info
        return None, info

    def attribute_predicate(self, node: _AttributePredicate) -> ColumnElement[bool]:
        operand, info = self.operand(node.attribute.name)
        build: Callable[[_Operand], ColumnElement[bool]] = lambda op: self.test(op, node)  # noqa: E731
        if operand is None:  # a custom table: any of the customer's rows passes
            if isinstance(node, ast.IsSet) and node.negated:  # no row with a value: missing
                present = ast.IsSet(node.attribute, False)
                absent = self.compiler.custom_attribute(info, lambda op: self.test(op, present))
                return not_(self.customer_id.in_(absent))
            return self.customer_id.in_(self.compiler.custom_attribute(info, build))
        return build(operand)

    def test(self, operand: _Operand, node: _AttributePredicate) -> ColumnElement[bool]:
        """One attribute test, two-valued: false whenever the attribute is missing."""
        as_of = self.compiler.as_of
        if operand.kind == "average":  # the derived sums
            return _average_test(operand.expr, node)
        expr = operand.expr
        assert isinstance(expr, ColumnElement), "only average_order_value tests the derived sums"
        present = expr.is_not(None)
        if isinstance(node, ast.IsSet):
            return expr.is_(None) if node.negated else present
        if isinstance(node, ast.BooleanAttribute):
            return self.guarded(present, expr == true())
        if isinstance(node, ast.StringMatch):
            match = {"starts with": dialects.starts_with, "ends with": dialects.ends_with,
                     "contains": dialects.contains}[node.op]
            return self.guarded(present, match(expr, node.value.value))
        if operand.kind in (TIMESTAMP, "days_since"):
            return self.guarded(present, _timestamp_test(expr, operand.kind, node, as_of))
        value: Callable[[ast.Value], ColumnElement[Any]] = lambda v: _param(v, operand.kind, as_of)  # noqa: E731
        if isinstance(node, ast.Compare):
            return self.guarded(present, _compare(expr, node.op, value(node.value)))
        if isinstance(node, ast.InValues):
            test = expr.in_([value(v) for v in node.values])
            return self.guarded(present, not_(test) if node.negated else test)
        if isinstance(node, ast.BetweenValues):
            return self.guarded(present, expr >= value(node.low), expr <= value(node.high))
        raise TypeError(f"cannot compile {node!r}")


# ------------------------------------------------------------------ helpers


#: ``average_order_value`` is ranked on the lifetime revenue in millionths of the money unit (SQLite's
#: sums are rounded to 6 places: ``dialects.money_sum``), its remainder by the orders to 12 digits.
AVERAGE_UNITS = 10**6
AVERAGE_FRACTION = 10**12


def percentile_held(ranks: Subquery, percent: Decimal) -> ColumnElement[bool]:
    """Whether a row of ``percentile_ranks`` is in the top (bottom) ``percent``%: fewer than P% of the
    population has a better value, in whole numbers (P scaled by 10^k, k its digits after the point)."""
    exponent = percent.as_tuple().exponent
    scale = 10 ** max(0, -exponent) if isinstance(exponent, int) else 1
    better = cast(ranks.c.ranked_position, BigInteger()) - literal(1, BigInteger())
    return better * literal(100 * scale, BigInteger()) < \
        literal(int(percent * scale), BigInteger()) * cast(ranks.c.ranked_population, BigInteger())


def _measure_test(node: ast.HasPurchased, value: ColumnElement[Any]) -> ColumnElement[bool]:
    """The measure of a ``has_purchased`` tested on its per-customer ``value`` (NULL never passes)."""
    measure = node.measure
    assert measure is not None, "a has_purchased with a measure"
    if measure.op == "between":
        assert measure.high is not None, "a measure between two numbers has both"
        return and_(value.is_not(None), value >= _number(measure.value), value <= _number(measure.high))
    return and_(value.is_not(None), _compare(value, measure.op, _number(measure.value)))


def _kind(type_: str) -> str:
    return NUMBER if type_ in (NUMBER, INTEGER) else type_


def _number(value: ast.NumberValue) -> ColumnElement[Decimal]:
    return dialects.number_param(value.value)


def _number_of(value: ast.Value) -> Decimal:
    """A value compared with a number (the checker lets no other through, E105)."""
    if not isinstance(value, ast.NumberValue):
        raise TypeError(f"cannot compile {value!r} as a number")
    return value.value


def _plain_value(value: ast.Value) -> str | Decimal | bool:
    """A string's, number's or boolean's value (item filters and tags hold strings: the checker's E105)."""
    if not isinstance(value, (ast.StringValue, ast.NumberValue, ast.BooleanValue)):
        raise TypeError(f"cannot compile {value!r} as a value")
    return value.value


def _param(value: ast.Value, kind: str, as_of: AsOf) -> ColumnElement[Any]:
    if isinstance(value, ast.StringValue):
        return literal(value.value, String())
    if isinstance(value, ast.NumberValue):
        return dialects.number_param(value.value)
    if isinstance(value, ast.BooleanValue):
        return true() if value.value else false()
    return dialects.date_param(resolve_date(value, as_of))


def _compare(expr: ColumnElement[Any], op: str, value: ColumnElement[Any]) -> ColumnElement[bool]:
    return {
        "=": lambda: expr == value, "!=": lambda: expr != value, ">": lambda: expr > value,
        ">=": lambda: expr >= value, "<": lambda: expr < value, "<=": lambda: expr <= value,
    }[op]()


def _in_strings(expr: ColumnElement[Any], values: Iterable[ast.Value]) -> ColumnElement[bool]:
    texts = [_plain_value(v) for v in values]
    if len(texts) == 1:
        return expr == literal(texts[0], String())
    return expr.in_([literal(v, String()) for v in texts])


#: every month and day of the calendar (month × 100 + day), in order, February 29 included
MONTH_DAYS = tuple(d.month * 100 + d.day for d in (dt.date(2000, 1, 1) + dt.timedelta(days=k) for k in range(366)))


def anniversary_ranges(node: ast.Anniversary, day: dt.date) -> tuple[tuple[int, int], ...] | None:
    """The month-days (``MONTH_DAYS``) with an anniversary in the window of ``node`` as of ``day`` (D), as
    inclusive ranges in calendar order (two when the window spans New Year); None when all have one.

    ``in this month``: D's month. ``within next N days``: the days D … D + N − 1; ``within last N days``:
    D − N + 1 … D. A month-day has an anniversary on each of them that is the same month and day, and
    February 29 also on February 28 of a common year (SPEC §3.1). Any 366 days in a row hold an
    anniversary of every month-day, so a longer window is 366 days."""
    if node.side == "month":
        return ((day.month * 100 + 1, day.month * 100 + 31),)
    assert node.count is not None, "an anniversary window has a count"
    count = min(node.count, 366)
    first = day if node.side == "next" else day - dt.timedelta(days=count - 1)
    held: set[int] = set()
    for k in range(count):
        on = first + dt.timedelta(days=k)
        held.add(on.month * 100 + on.day)
        if (on.month, on.day) == (2, 28) and not calendar.isleap(on.year):
            held.add(229)
    if len(held) == len(MONTH_DAYS):
        return None
    ranges: list[tuple[int, int]] = []
    run: list[int] = []
    for md in (*MONTH_DAYS, None):
        if md in held:
            run.append(md)
        elif run:
            ranges.append((run[0], run[-1]))
            run = []
    return tuple(ranges)


def _reads_a_column(test: ColumnElement[Any]) -> bool:
    return any(isinstance(e, ColumnClause) for e in visitors.iterate(test))


def _day_range_test(ts: ColumnElement[Any], op: str, day: dt.date) -> ColumnElement[bool]:
    """``date(ts) OP day`` as a comparison on the timestamp itself (no casts, index-friendly)."""
    start = dialects.timestamp_param(midnight(day))
    end = dialects.timestamp_param(day_after(day))
    return {
        "=": lambda: and_(ts >= start, ts < end),
        "!=": lambda: or_(ts < start, ts >= end),
        ">": lambda: ts >= end,
        ">=": lambda: ts >= start,
        "<": lambda: ts < start,
        "<=": lambda: ts < end,
    }[op]()


_FLIP = {"=": "=", "!=": "!=", ">": "<", ">=": "<=", "<": ">", "<=": ">="}


def _timestamp_test(ts: ColumnElement[Any], kind: str, node: _AttributePredicate, as_of: AsOf) -> ColumnElement[bool]:
    """Tests on timestamps compared by date, and on days_since_last_order (D − date(last order))."""
    if kind == "days_since":
        # days = D − date(ts), a whole number: ``days OP n`` ⟺ ``date(ts) FLIP(OP) D − n``.
        def by_days(op: str, n: Decimal) -> ColumnElement[bool]:
            whole = n == n.to_integral_value()
            if not whole:
                if op == "=":
                    return false()
                if op == "!=":
                    return true()
                import math

                n = Decimal(math.floor(n)) if op in ("<", "<=") else Decimal(math.ceil(n))
                op = {"<": "<=", ">": ">="}.get(op, op)
            day = as_of.date - dt.timedelta(days=int(n))
            return _day_range_test(ts, _FLIP[op], day)

        if isinstance(node, ast.Compare):
            return by_days(node.op, _number_of(node.value))
        if isinstance(node, ast.InValues):
            test = or_(false(), *(by_days("=", _number_of(v)) for v in node.values))
            return not_(test) if node.negated else test
        if isinstance(node, ast.BetweenValues):
            return and_(by_days(">=", _number_of(node.low)), by_days("<=", _number_of(node.high)))
    else:
        day: Callable[[ast.Value], dt.date] = lambda v: resolve_date(v, as_of)  # noqa: E731
        if isinstance(node, ast.Compare):
            return _day_range_test(ts, node.op, day(node.value))
        if isinstance(node, ast.InValues):
            test = or_(false(), *(_day_range_test(ts, "=", day(v)) for v in node.values))
            return not_(test) if node.negated else test
        if isinstance(node, ast.BetweenValues):
            return and_(_day_range_test(ts, ">=", day(node.low)), _day_range_test(ts, "<=", day(node.high)))
    raise TypeError(f"cannot compile {node!r}")


def _average_test(d: Any, node: _AttributePredicate) -> ColumnElement[bool]:
    """average_order_value OP v  ⟺  revenue OP v × orders (exact: no division), when there are orders."""
    has_orders = and_(d.c.orders.is_not(None), d.c.orders > 0, d.c.revenue.is_not(None))
    scaled: Callable[[ast.Value], ColumnElement[Any]] = \
        lambda v: dialects.money(dialects.number_param(_number_of(v)) * d.c.orders)  # noqa: E731
    revenue = d.c.revenue
    if isinstance(node, ast.IsSet):
        return not_(has_orders) if node.negated else has_orders
    if isinstance(node, ast.Compare):
        return and_(has_orders, _compare(revenue, node.op, scaled(node.value)))
    if isinstance(node, ast.InValues):
        test = or_(false(), *(revenue == scaled(v) for v in node.values))
        return and_(has_orders, not_(test) if node.negated else test)
    if isinstance(node, ast.BetweenValues):
        return and_(has_orders, revenue >= scaled(node.low), revenue <= scaled(node.high))
    raise TypeError(f"cannot compile {node!r}")


def _declaring_file(model: Model, node: ast.InFile) -> str:
    for (file, written) in model.lists:
        if written == node.path:
            for f in model.files:
                if f.path == file and any(n is node for d in f.declarations for n in _conditions_of(d)):
                    return file
    for (file, written) in model.lists:
        if written == node.path:
            return file
    raise KeyError(node.path)


def _conditions_of(decl: ast.Declaration) -> Iterator[ast.Condition]:
    if isinstance(decl, ast.Segment):
        yield from walk(decl.condition)
    elif isinstance(decl, ast.Score):
        for item in decl.items:
            yield from walk(item.condition)
    elif isinstance(decl, ast.Campaign):
        if decl.audience is not None and decl.audience.condition is not None:
            yield from walk(decl.audience.condition)
        for sub in decl.subaudiences:
            if sub.condition is not None:
                yield from walk(sub.condition)


def list_files_used(model: Model, condition: ast.Condition) -> list[ListFile]:
    """The list files a condition reads, following ``in segment`` and scores (to load them before running)."""
    seen: dict[str, ListFile] = {}
    stack = [condition]
    visited: set[str] = set()
    while stack:
        node = stack.pop()
        for n in walk_through_scores(node, model.scores):
            if isinstance(n, ast.InFile):
                listed = model.lists[(_declaring_file(model, n), n.path)]
                seen[listed.sha256] = listed
            elif isinstance(n, ast.InSegment) and n.name not in visited and n.name in model.segments:
                visited.add(n.name)
                stack.append(model.segments[n.name].condition)
    return list(seen.values())


def content_hash(text: bytes) -> str:
    return hashlib.sha256(text).hexdigest()
