"""Why one customer is, or is not, in a segment: the condition as a tree of verdicts and facts.

``explain(engine, url, model, name, customer_id, as_of)`` compiles every clause
of the segment's condition (and, for ``in segment``, of the segment it names,
expanded) with the compiler's own per-node SQL (``SegmentCompiler.customer_scope``)
and evaluates them all in ONE ``SELECT`` over that one customer's row: a column
per clause with its truth value, and columns for the facts behind it (the
attribute's value, the matching orders counted and the measure, the tags, the
checkouts, the distance to the store). Because each verdict is the very
expression ``members`` puts in its WHERE clause, the two cannot disagree;
``member`` itself is read from the segment's own members query.

Values out: ``Explanation`` and ``Clause`` (frozen attrs), ``to_json`` and
``render_text``. Imports ``check``, ``compile``, ``evaluate``, ``warehouse``
and the formatter's ``condition_text``; prints nothing.
"""

from __future__ import annotations

import calendar
import datetime as dt
from decimal import Decimal
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy import Float, String, case, func, literal, select

from audlang import ast, evaluate, warehouse
from audlang.check import Model
from audlang.check.datamodel import BOOLEAN, DATE, INTEGER, NUMBER, TIMESTAMP
from audlang.compile import AsOf, SegmentCompiler, dialects
from audlang.compile.compiler import percentile_held
from audlang.diagnostics import AudlangError, Diagnostic
from audlang.syntax.formatter import condition_text, quote
from audlang.vocabulary import counted

FORMAT_VERSION = 1

#: The clause kinds of the tree, by syntax node.
KINDS = {
    ast.And: "and", ast.Or: "or", ast.Not: "not", ast.Compare: "compare", ast.InValues: "in",
    ast.BetweenValues: "between", ast.StringMatch: "match", ast.IsSet: "is_set", ast.BooleanAttribute: "boolean",
    ast.HasPurchased: "has_purchased", ast.Tagged: "tagged", ast.AbandonedCheckout: "abandoned_checkout",
    ast.InSegment: "in_segment", ast.InFile: "in_list", ast.NearStore: "near_store",
    ast.Anniversary: "anniversary", ast.MostPurchased: "most_purchased", ast.FirstPurchased: "first_purchased",
    ast.ScoreCompare: "score", ast.Percentile: "percentile",
}


@attrs.frozen
class Clause:
    """One node of the condition with its verdict for the customer and the facts behind it."""

    kind: str
    text: str  # the clause's canonical text (as ``audlang fmt`` writes it)
    value: bool
    facts: dict = attrs.field(factory=dict)
    children: tuple[Clause, ...] = ()
    #: ``in segment``: the segment named, whose condition is the single child
    segment: str | None = None


@attrs.frozen
class Explanation:
    segment: str
    customer_id: str
    as_of: str
    member: bool  # read from the segment's members query: always ``audlang members``' answer
    condition: Clause


# ------------------------------------------------------------------ building the query


@attrs.frozen
class _Pending:
    """A clause before the query ran: the labels of its columns."""

    node: Any
    verdict: str
    facts: dict  # fact name -> label, or ("const", value), or a tuple of labels for derived facts
    children: tuple = ()
    segment: str | None = None


class _Builder:
    def __init__(self, model: Model, compiler: SegmentCompiler, customer_id: str | None = None):
        self.model = model
        self.compiler = compiler
        #: the customer explained, for facts read by an uncorrelated subquery (Spark correlates only
        #: plain WHERE clauses, not a grouping nested in a derived table)
        self.customer_id = customer_id
        self.scope = compiler.customer_scope()
        self.columns: list = []
        self._attributes: dict[str, dict] = {}

    def add(self, expr) -> str:
        label = f"x{len(self.columns)}"
        self.columns.append(expr.label(label))
        return label

    def verdict(self, condition) -> str:
        return self.add(case((condition, 1), else_=0))

    def clause(self, node) -> _Pending:
        scope, cc = self.scope, self.compiler
        if isinstance(node, (ast.And, ast.Or)):
            children = tuple(self.clause(o) for o in node.operands)
            return _Pending(node, self.verdict(scope.condition(node)), {}, children)
        if isinstance(node, ast.Not):
            return _Pending(node, self.verdict(scope.condition(node)), {}, (self.clause(node.operand),))
        if isinstance(node, ast.InSegment):
            # The verdict is the `in segment` test itself; the child expands the named segment's
            # condition over the same customer, so the reader sees why.
            inner = self.clause(self.model.segments[node.name].condition)
            return _Pending(node, self.verdict(scope.condition(node)), {}, (inner,), node.name)
        verdict = self.verdict(scope.condition(node))
        if isinstance(node, ast.ATTRIBUTE_PREDICATES):
            return _Pending(node, verdict, self.attribute(node.attribute.name))
        if isinstance(node, ast.HasPurchased):
            return _Pending(node, verdict, self.purchases(node))
        if isinstance(node, ast.Tagged):
            facts = {}
            for tag in node.tags:
                t = cc._alias("customer_tags", "t")
                cid, value = cc._col(t, "customer_tags", "customer_id"), cc._col(t, "customer_tags", "tag")
                has = sa.exists(select(literal(1)).select_from(t).where(
                    cid == scope.customer_id, value == literal(tag.value, String())))
                facts[tag.value] = self.add(case((has, 1), else_=0))
            return _Pending(node, verdict, {"tags": facts})
        if isinstance(node, ast.AbandonedCheckout):
            facts = {}
            for name, aggregate in (("abandoned_checkouts", func.count), ("last_started_at", func.max)):
                t, col, conditions = cc.checkout_rows(node)
                facts[name] = self.add(select(aggregate(col("checkout_id") if name == "abandoned_checkouts"
                                                        else col("started_at")))
                                       .where(col("customer_id") == scope.customer_id, *conditions)
                                       .scalar_subquery())
            return _Pending(node, verdict, facts)
        if isinstance(node, ast.InFile):
            return _Pending(node, verdict, {"list": ("const", node.path)})
        if isinstance(node, ast.NearStore):
            s = cc._alias("stores", "s")
            lat = cc._col(scope.c, "customer_360", "latitude")
            lon = cc._col(scope.c, "customer_360", "longitude")
            slat, slon = cc._col(s, "stores", "latitude"), cc._col(s, "stores", "longitude")
            distance = select(dialects.haversine_km(lat, lon, slat, slon)).select_from(s).where(
                cc._col(s, "stores", "store_id") == literal(node.store, String()),
                slat.is_not(None), slon.is_not(None), lat.is_not(None), lon.is_not(None),
            ).limit(1).scalar_subquery()
            return _Pending(node, verdict, {"store": ("const", node.store), "unit": ("const", node.unit),
                                            "distance_km": self.add(sa.cast(distance, Float()))})
        return self.pattern(node, verdict)

    # ------------------------------------------------------------------ SPEC §3.1 (calendar and behaviour)
    def pattern(self, node, verdict: str) -> _Pending:
        """The facts shown beside each form of SPEC §3.1's verdict."""
        if isinstance(node, ast.Anniversary):
            return self.anniversary(node, verdict)
        if isinstance(node, (ast.MostPurchased, ast.FirstPurchased)):
            return self.behaviour(node, verdict)
        if isinstance(node, (ast.ScoreCompare, ast.Percentile)):
            return self.score(node, verdict)
        raise TypeError(f"cannot explain {node!r}")

    def anniversary(self, node: ast.Anniversary, verdict: str) -> _Pending:
        """The attribute's value (its columns, shared with the other clauses on it) and the anniversary
        the window is about, worked out from that value and D once the row is read (``_anniversary``)."""
        return _Pending(node, verdict, {**self.attribute(node.attribute.name), "anniversary": ("const", node.side)})

    def behaviour(self, node: ast.MostPurchased | ast.FirstPurchased, verdict: str) -> _Pending:
        scope, cc = self.scope, self.compiler
        if isinstance(node, ast.FirstPurchased):  # the first matching order's date, whatever the window
            rows = cc.first_purchase_rows(node)
            first = select(func.min(rows.when)).select_from(rows.source) \
                .where(rows.customer_id == scope.customer_id, *rows.where).scalar_subquery()
            return _Pending(node, verdict, {"first_order": self.add(first)})
        # most_purchased: the customer's top count, the first of the values holding it and how many do,
        # and the orders of each value named
        customer = literal(self.customer_id, String())

        def ranked():
            return cc.ranked_values(node, customer)

        r = ranked()
        top = select(func.max(r.c.orders)).scalar_subquery()
        r = ranked()
        first_top = select(func.min(r.c.field_value)).where(r.c.orders == r.c.most_orders).scalar_subquery()
        r = ranked()
        tied = select(func.count()).select_from(r).where(r.c.orders == r.c.most_orders).scalar_subquery()
        orders = {}
        for value in node.filters[0].values:
            per_value = cc.orders_per_value(node, customer)
            orders[value.value] = self.add(select(func.max(per_value.c.orders)).where(
                per_value.c.field_value == literal(value.value, String())).scalar_subquery())
        return _Pending(node, verdict, {"field": ("const", node.filters[0].field), "top_orders": self.add(top),
                                        "top_value": self.add(first_top), "top_values": self.add(tied),
                                        "orders": orders})

    def periods(self, node: ast.HasPurchased) -> dict:
        """``in N of last M``: how many of the M periods held a matching order, over the direct query's rows."""
        scope, cc = self.scope, self.compiler
        window = node.window
        assert isinstance(window, ast.InPeriods), "a has_purchased in N of last M units"
        rows = cc.purchase_rows(attrs.evolve(node, window=None))
        held = select(func.count(cc.period_index(rows.when, window).distinct())).select_from(rows.source) \
            .where(rows.customer_id == scope.customer_id, *rows.where).scalar_subquery()
        return {"periods_held": self.add(held), "periods": ("const", window.periods),
                "needed": ("const", window.count), "unit": ("const", window.unit)}

    def score(self, node: ast.ScoreCompare | ast.Percentile, verdict: str) -> _Pending:
        """A score point by point (each item's points and whether its condition held, and the total);
        a percentile with the customer's value, rank and the population, and the edge (the last rank
        and value that are in)."""
        scope, cc = self.scope, self.compiler
        facts: dict = {}
        if node.score is not None:
            score = self.model.scores[node.score]
            facts["score"] = ("const", node.score)
            facts["items"] = [{"points": ("const", item.points), "condition": ("const", condition_text(item.condition)),
                               "held": self.verdict(scope.condition(item.condition))} for item in score.items]
            facts["total"] = self.add(scope.score_value(node.score))
        if isinstance(node, ast.Percentile):
            if node.attribute is not None:
                facts["attribute"] = ("const", node.attribute.name)
            facts["side"], facts["percent"] = ("const", node.side), ("const", node.percent)

            def of_customer(column: str) -> str:
                ranks = cc.percentile_ranks(node)
                return self.add(select(ranks.c[column]).where(ranks.c.customer_id == scope.customer_id)
                                .limit(1).scalar_subquery())

            def edge(aggregate: Any, column: str) -> str:
                ranks = cc.percentile_ranks(node)
                return self.add(select(aggregate(ranks.c[column]))
                                .where(percentile_held(ranks, node.percent)).scalar_subquery())

            facts["value"] = of_customer("ranked_value")
            facts["rank"] = of_customer("ranked_position")
            ranks = cc.percentile_ranks(node)
            facts["population"] = self.add(select(func.count()).select_from(ranks).scalar_subquery())
            facts["edge_rank"] = edge(func.max, "ranked_position")
            facts["edge_value"] = edge(func.min if node.side == "top" else func.max, "ranked_value")
        return _Pending(node, verdict, facts)

    def attribute(self, name: str) -> dict:
        """The attribute's value for the customer (one set of columns per attribute, however often used)."""
        if name in self._attributes:
            return self._attributes[name]
        scope, cc = self.scope, self.compiler
        info = self.model.data_model.attributes[name]
        facts: dict = {"attribute": ("const", name), "type": ("const", info.type)}
        if info.derived:
            d = scope.derived()
            if name == "lifetime_revenue":
                facts["value"] = self.add(func.coalesce(d.c.revenue, 0))
            elif name == "lifetime_orders":
                facts["value"] = self.add(func.coalesce(d.c.orders, 0))
            elif name == "first_order_date":
                facts["value"] = self.add(d.c.first_order)
            elif name in ("last_order_date", "days_since_last_order"):
                facts["value"] = self.add(d.c.last_order)
            elif name == "average_order_value":
                facts["value"] = (self.add(d.c.revenue), self.add(d.c.orders))
        elif info.table == "customer_360":
            facts["value"] = self.add(cc._col(scope.c, "customer_360", info.column))
        else:  # a custom table keyed by customer_id: its rows for this customer
            def rows():
                t = cc._alias(info.table, "x")
                return t, cc._col(t, info.table, "customer_id"), cc._col(t, info.table, info.column)

            t, cid, value = rows()
            facts["value"] = self.add(select(value).select_from(t).where(cid == scope.customer_id,
                                                                         value.is_not(None))
                                      .order_by(value).limit(1).scalar_subquery())
            t, cid, value = rows()
            facts["rows"] = self.add(select(func.count()).select_from(t).where(cid == scope.customer_id)
                                     .scalar_subquery())
        self._attributes[name] = facts
        return facts

    def purchases(self, node: ast.HasPurchased) -> dict:
        """The matching orders counted, the last one's date, and the measure's value, over the same rows."""
        scope, cc = self.scope, self.compiler
        if isinstance(node.window, ast.InPeriods):
            return self.periods(node)

        def aggregate(build) -> str:
            rows = cc.purchase_rows(node)
            return self.add(select(build(rows)).select_from(rows.source)
                            .where(rows.customer_id == scope.customer_id, *rows.where).scalar_subquery())

        facts = {"matching_orders": aggregate(lambda r: func.count(r.order_id.distinct())),
                 "last_order": aggregate(lambda r: func.max(r.when))}
        if node.measure is not None:
            kind = node.measure.kind
            facts["measure"] = ("const", kind)
            if kind == "orders":
                facts["measure_value"] = facts["matching_orders"]
            elif kind == "quantity":
                facts["measure_value"] = aggregate(lambda r: func.coalesce(func.sum(r.quantity), 0))
            else:
                facts["measure_value"] = aggregate(lambda r: func.coalesce(dialects.money_sum(r.revenue), 0))
        return facts


# ------------------------------------------------------------------ running it


def require_customer(found: bool, customer_id: str) -> None:
    if not found:
        raise AudlangError(Diagnostic.sourceless(
            "E210", "no such customer in customer_360", customer_id))


def explain_query(model: Model, name: str, customer_id: str, as_of: AsOf) -> tuple[sa.Select, _Pending]:
    compiler = SegmentCompiler(model, as_of)
    builder = _Builder(model, compiler, customer_id)
    root = builder.clause(model.segments[name].condition)
    member = builder.scope.customer_id.in_(compiler.segment(name))
    builder.columns.insert(0, case((member, 1), else_=0).label("member"))
    scope = builder.scope
    query = select(*builder.columns).select_from(scope.from_clause()).where(
        scope.customer_id == literal(customer_id, String()))
    return query, root


def explain(engine: sa.Engine, url: str, model: Model, name: str, customer_id: str, as_of: AsOf) -> Explanation:
    """Why ``customer_id`` is or is not in segment ``name`` at ``as_of``: one query, in the database."""
    evaluate.require_segment(model, name)
    query, root = explain_query(model, name, customer_id, as_of)
    with warehouse.errors_translated(url, model), engine.begin() as conn:
        evaluate.ensure_lists(conn, model, name)
        rows = [dict(r._mapping) for r in conn.execute(query)]
    require_customer(bool(rows), customer_id)
    member = any(bool(r["member"]) for r in rows)
    # customer_360 is keyed by customer_id; should it hold the id twice, show a row that gives the verdict.
    row = next((r for r in rows if bool(r[root.verdict]) == member), rows[0])
    return Explanation(name, customer_id, str(as_of), member, _resolve(root, row, as_of))


def _resolve(pending: _Pending, row: dict, as_of: AsOf) -> Clause:
    node = pending.node
    facts = {key: _fact(value, row) for key, value in pending.facts.items()}
    if "value" in facts and "type" in facts:
        facts["value"] = _attribute_value(facts["attribute"], facts["type"], pending.facts["value"], row, as_of)
    if "anniversary" in facts:
        side = facts.pop("anniversary")
        key = {"month": "anniversary_this_year", "next": "next_anniversary", "last": "last_anniversary"}[side]
        facts[key] = _anniversary(row[pending.facts["value"]], side, as_of.date)
    if "last_order" in facts:
        facts["last_order"] = _timestamp(facts["last_order"])
    if "last_started_at" in facts:
        facts["last_started_at"] = _timestamp(facts["last_started_at"])
    if "matching_orders" in facts:
        facts["matching_orders"] = int(facts["matching_orders"] or 0)
    if "abandoned_checkouts" in facts:
        facts["abandoned_checkouts"] = int(facts["abandoned_checkouts"] or 0)
    if "measure_value" in facts:
        facts["measure_value"] = _number(facts["measure_value"], facts["measure"] != "spend")
    if "tags" in facts:
        facts["tags"] = {tag: bool(v) for tag, v in facts["tags"].items()}
    if "rows" in facts:
        facts["rows"] = int(facts["rows"] or 0)
    if "first_order" in facts:
        facts["first_order"] = _timestamp(facts["first_order"])
    if "periods_held" in facts:
        facts["periods_held"] = int(facts["periods_held"] or 0)
    if "top_orders" in facts:
        facts["top_orders"] = int(facts["top_orders"] or 0)
        facts["top_values"] = int(facts["top_values"] or 0)
        facts["orders"] = {value: int(n or 0) for value, n in facts["orders"].items()}
    _score_values(facts)
    if "distance_km" in facts:
        km = facts.pop("distance_km")
        if km is None:
            facts["distance"] = None
        else:
            per = dialects.KM_PER_MILE if node.unit == "miles" else 1.0
            facts["distance"] = round(float(km) / per, 2)
    children = tuple(_resolve(c, row, as_of) for c in pending.children)
    return Clause(KINDS[type(node)], condition_text(node), bool(row[pending.verdict]), facts, children,
                  pending.segment)


def _score_values(facts: dict) -> None:
    """A score's and a percentile's facts as JSON values."""
    if "items" in facts:  # a score, point by point
        facts["items"] = [{"points": _number(i["points"], False), "condition": i["condition"], "held": bool(i["held"])}
                          for i in facts["items"]]
        facts["total"] = _number(facts["total"], False)
    if "side" in facts:  # a percentile
        facts["percent"] = _number(facts["percent"], False)
        for key in ("rank", "population", "edge_rank"):
            facts[key] = None if facts[key] is None else int(facts[key])
        for key in ("value", "edge_value"):
            facts[key] = _number(facts[key], False)


def _fact(value, row: dict):
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "const":
        return value[1]
    if isinstance(value, dict):
        return {k: _fact(v, row) for k, v in value.items()}
    if isinstance(value, list):
        return [_fact(v, row) for v in value]
    if isinstance(value, tuple):
        return tuple(row[v] for v in value)
    return row[value]


def _attribute_value(name: str, type_: str, labels, row: dict, as_of: AsOf):
    if name == "average_order_value":
        revenue, orders = (row[label] for label in labels)
        if not orders or revenue is None:
            return None
        return _number(Decimal(str(revenue)) / Decimal(int(orders)), False)
    value = row[labels]
    if value is None:
        return None
    if name == "days_since_last_order":
        return (as_of.date - _to_datetime(value).date()).days
    if type_ == BOOLEAN:
        return bool(value)
    if type_ == DATE:
        return _to_datetime(value).date().isoformat()
    if type_ == TIMESTAMP:
        return _timestamp(value)
    if type_ in (NUMBER, INTEGER):
        return _number(value, type_ == INTEGER)
    return value


def _anniversary(value, side: str, day: dt.date) -> str | None:
    """The anniversary (SPEC §3.1: February 29 is February 28 in a common year) of a date or timestamp
    in D's year (``month``), the first on or after D (``next``), or the last on or before D (``last``)."""
    if value is None:
        return None
    born = _to_datetime(value).date()

    def in_year(year: int) -> dt.date:
        leap_day = (born.month, born.day) == (2, 29) and not calendar.isleap(year)
        return dt.date(year, born.month, 28 if leap_day else born.day)

    if side == "month":
        return in_year(day.year).isoformat()
    if side == "next":
        this = in_year(day.year)
        return (this if this >= day else in_year(day.year + 1)).isoformat()
    this = in_year(day.year)
    return (this if this <= day else in_year(day.year - 1)).isoformat()


def _to_datetime(value) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None) if value.tzinfo is None else \
            value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).replace(tzinfo=None)


def _timestamp(value) -> str | None:
    if value is None:
        return None
    moment = _to_datetime(value)
    if moment.time() == dt.time():
        return moment.date().isoformat()
    return moment.replace(microsecond=0).isoformat(sep=" ")


def _number(value, whole: bool):
    if value is None:
        return None
    number = Decimal(str(value))
    if whole or number == number.to_integral_value():
        return int(number)
    return float(number.quantize(Decimal("0.01")))


# ------------------------------------------------------------------ output


def to_json(explanation: Explanation) -> dict:
    def clause(c: Clause) -> dict:
        out = {"kind": c.kind, "text": c.text, "value": c.value}
        if c.facts:
            out["facts"] = c.facts
        if c.segment is not None:
            out["segment"] = c.segment
        if c.children:
            out["children"] = [clause(child) for child in c.children]
        return out

    return {"format_version": FORMAT_VERSION, "segment": explanation.segment,
            "customer_id": explanation.customer_id, "as_of": explanation.as_of, "member": explanation.member,
            "condition": clause(explanation.condition)}


def facts_text(c: Clause) -> str:
    """The facts behind a clause, in words."""
    f = c.facts
    if not f:
        return ""
    pattern = _pattern_facts(f)
    if pattern is not None:
        return pattern
    if "attribute" in f:
        text = _attribute_facts(f)
        for key, words in (("anniversary_this_year", "anniversary this year"),
                           ("next_anniversary", "next anniversary"), ("last_anniversary", "last anniversary")):
            if f.get(key) is not None:
                text += f"; {words} {f[key]}"
        return text
    if "matching_orders" in f:
        return _order_facts(f)
    if "tags" in f:
        has = [t for t, v in f["tags"].items() if v]
        return ("tagged " + ", ".join(f'"{t}"' for t in has)) if has else "no such tag"
    if "abandoned_checkouts" in f:
        n = f["abandoned_checkouts"]
        if not n:
            return "no abandoned checkout in the window"
        return f"{counted(n, 'abandoned checkout')}, last started {f['last_started_at']}"
    if "list" in f:
        return f"{'listed' if c.value else 'not listed'} in {f['list']}"
    if "store" in f:
        if f["distance"] is None:
            return f"no position on file for the customer or store {f['store']}"
        return f"{f['distance']:,} {f['unit']} from store {f['store']}"
    return ""


def _pattern_facts(f: dict) -> str | None:
    """The facts of SPEC §3.1's behaviour forms, scores and percentiles in words (None: another kind)."""
    if "side" in f:
        return _percentile_facts(f)
    if "items" in f:
        return _score_facts(f)
    if "first_order" in f:
        return f"first matching order {f['first_order']}" if f["first_order"] else "no matching order"
    if "periods_held" in f:
        return (f"{f['periods_held']:,} of the last {f['periods']:,} {f['unit']} held a matching order "
                f"(at least {f['needed']:,} needed)")
    if "top_orders" in f:
        return _favourite_facts(f)
    return None


def _points(n) -> str:
    return f"{'+' if n >= 0 else '−'}{abs(n):,}"


def _score_facts(f: dict) -> str:
    """The items that held, with their points, and the total."""
    held = [f"{_points(i['points'])} {i['condition']}" for i in f["items"] if i["held"]]
    return f'score "{f["score"]}" = {f["total"]:,}' + (f" ({'; '.join(held)})" if held else " (no item held)")


def _percentile_facts(f: dict) -> str:
    """The customer's value and rank among the customers with a value, and the edge."""
    what = f'score "{f["score"]}"' if "score" in f and "attribute" not in f else f.get("attribute", "the value")
    if f["value"] is None:
        return f"{what} is missing (not ranked)"
    text = f"{what} = {f['value']:,}, rank {f['rank']:,} of {f['population']:,}"
    if f["edge_rank"] is not None:
        text += f"; the {f['side']} {f['percent']}% reach rank {f['edge_rank']:,} ({what} {f['edge_value']:,})"
    return text


def _attribute_facts(f: dict) -> str:
    """An attribute's value (text quoted, money with cents), or that it is missing."""
    value = f.get("value")
    if value is None:
        shown = "missing" if f.get("rows", 1) else "missing (no row)"
        return f"{f['attribute']} is {shown}"
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, str) and f["type"] == "text":
        value = '"' + value + '"'
    elif isinstance(value, float):
        value = f"{value:,.2f}"
    extra = f" (one of {f['rows']} rows)" if f.get("rows", 1) > 1 else ""
    return f"{f['attribute']} = {value}{extra}"


def _favourite_facts(f: dict) -> str:
    """most_purchased: the customer's most ordered value (and how many tie), and the named values' orders."""
    if not f["top_orders"]:
        return f"no {f['field']} ordered in the window"
    n = f["top_orders"]
    text = f"most ordered {f['field']}: {quote(f['top_value'])}, {counted(n, 'order')}"
    if f["top_values"] > 1:
        text += f" (tied with {f['top_values'] - 1:,} more)"
    others = [f"{quote(v)} {k:,}" for v, k in f["orders"].items() if v != f["top_value"]]
    return text + (f"; {', '.join(others)}" if others else "")


def _order_facts(f: dict) -> str:
    """The matching orders: how many, the last one, and the measure when it is not the count."""
    n = f["matching_orders"]
    if not n:
        return "no matching orders"
    text = f"{counted(n, 'matching order')}, last {f['last_order']}"
    if "measure" in f and f["measure"] != "orders":
        value = f["measure_value"]
        text += f"; {f['measure']} {value:,.2f}" if isinstance(value, float) else f"; {f['measure']} {value:,}"
    return text


def render_text(explanation: Explanation, paint=None) -> str:
    """The condition laid out like its source, each clause marked true or false, the facts beside it.

    ``paint(word, value)`` may colour the marks (the CLI passes one on a terminal)."""
    lines: list[tuple[str, bool | None, str]] = []  # (source text, verdict, facts)

    def mark_for(value: bool) -> str:
        return "true" if value else "false"

    def group(c: Clause, indent: str, lead: str) -> None:
        """A clause as a line (a leaf), or a group opening a nested block."""
        if c.kind in ("and", "or"):
            lines.append((f"{indent}{lead}(", c.value, ""))
            body(c, indent + "  ")
            lines.append((f"{indent})", None, ""))
        elif c.kind == "not":
            inner = c.children[0]
            if inner.kind in ("and", "or", "not", "in_segment"):
                lines.append((f"{indent}{lead}not (", c.value, ""))
                body(inner, indent + "  ")
                lines.append((f"{indent})", None, ""))
            else:
                lines.append((f"{indent}{lead}{c.text}", c.value, facts_text(inner)))
        elif c.kind == "in_segment":
            lines.append((f"{indent}{lead}{c.text}", c.value, ""))
            body(c.children[0], indent + "    ")
        else:
            lines.append((f"{indent}{lead}{c.text}", c.value, facts_text(c)))

    def body(c: Clause, indent: str) -> None:
        if c.kind in ("and", "or"):
            for i, child in enumerate(c.children):
                group(child, indent, f"{c.kind} " if i else "")
        else:
            group(c, indent, "")

    head = f"segment {quote(explanation.segment)} <"
    lines.append((head, explanation.member, ""))
    body(explanation.condition, "  ")
    lines.append((">", None, ""))
    width = min(max(len(text) for text, _, _ in lines), 72)

    paint = paint or (lambda word, _value: word)
    out = [f"{explanation.customer_id} {'is' if explanation.member else 'is not'} a member of "
           f"\"{explanation.segment}\" as of {explanation.as_of}.", ""]
    for text, value, facts in lines:
        if value is None:
            out.append(text)
            continue
        word = mark_for(value)
        padded = paint(word.ljust(5), value) if facts else paint(word, value)
        out.append(f"{text.ljust(width)}  {padded}" + (f"  {facts}" if facts else ""))
    return "\n".join(out)
