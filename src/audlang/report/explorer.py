"""The Data Explorer: every table and attribute of the project's data model, with what it holds.

For each table of the data model (standard, mapped or custom) and each of its columns: the type, a
description, the share of rows missing it, its distinct values, its most common values with their
counts, min and max for numbers and dates, and the segments (and scores) that read it. Everything is
counted in the warehouse: one aggregate query per table for the counts, distinct counts and ranges,
and one ``GROUP BY … ORDER BY count DESC LIMIT`` per column for the common values. Only aggregates
come back to Python.

What is not shown, so that a report can be shared inside a company without exposing customers:
- a value held by fewer than ``MIN_SHOWN`` rows (so no unique value, such as an id or an email, is
  ever listed, whatever the column);
- any value of the columns that identify a person (``IDENTIFYING``): names, email, phone, the
  birthdate and the location; their counts are shown, their values and ranges are not.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal

import attrs
import sqlalchemy as sa
from sqlalchemy import func, select

from audlang import ast
from audlang.check import Model, walk_through_scores
from audlang.warehouse.tables import column_names
from audlang.check.datamodel import (
    BOOLEAN, DERIVED_ATTRIBUTES, ITEM_FILTER_COLUMNS, NUMERIC_TYPES, TEMPORAL_TYPES, TableInfo,
)

#: the most common values listed per column
TOP_VALUES = 5
#: a value is listed only when at least this many rows hold it
MIN_SHOWN = 5
#: (table, column): counts only, never a value
IDENTIFYING = {("customer_360", c) for c in ("customer_id", "given_name", "surname", "email", "phone",
                                              "birthdate", "latitude", "longitude")}
DERIVED_TABLE = "derived"

#: What the standard tables and columns hold (SPEC §4); a mapping keeps the logical meaning.
DESCRIPTIONS: dict[str, str] = {
    "customer_360": "One row per customer: profile, consent and predictions.",
    "customer_360.customer_id": "The customer's id, the key every table joins on.",
    "customer_360.given_name": "Given name.",
    "customer_360.surname": "Surname.",
    "customer_360.email": "Email address.",
    "customer_360.phone": "Phone number.",
    "customer_360.city": "City of the customer's address.",
    "customer_360.state": "State or region of the customer's address.",
    "customer_360.postal": "Postal code.",
    "customer_360.country": "Country.",
    "customer_360.birthdate": "Date of birth (for birthday and anniversary segments).",
    "customer_360.gender": "Gender, as the customer gave it.",
    "customer_360.loyalty_tier": "Loyalty programme tier.",
    "customer_360.created_at": "When the customer's record was created.",
    "customer_360.sms_opt_in": "Opted in to marketing SMS.",
    "customer_360.email_opt_in": "Opted in to marketing email.",
    "customer_360.contactable_phone": "Has a phone number that can be reached.",
    "customer_360.contactable_email": "Has an email address that can be reached.",
    "customer_360.predicted_lifecycle_status": "Predicted lifecycle status: Active, Cooling down, At risk, "
                                               "Highly at risk, Lost or New.",
    "customer_360.predicted_clv": "Predicted customer lifetime value (the insights' predicted revenue).",
    "customer_360.latitude": "Latitude of the customer's address (near_store).",
    "customer_360.longitude": "Longitude of the customer's address (near_store).",
    "unified_transactions": "One row per order, from every channel (has_purchased and the derived attributes).",
    "unified_transactions.order_id": "The order's id.",
    "unified_transactions.customer_id": "Who placed the order.",
    "unified_transactions.order_datetime": "When the order was placed.",
    "unified_transactions.order_revenue": "The order's revenue (`spend`).",
    "unified_transactions.order_quantity": "Items in the order.",
    "unified_transactions.channel": "Where the order was placed (the `channel` filter).",
    "unified_transactions.store_id": "The store of an in-store order (the `store` filter).",
    "unified_itemized_transactions": "One row per item of an order (the product filters).",
    "unified_itemized_transactions.order_id": "The item's order.",
    "unified_itemized_transactions.customer_id": "Who bought the item.",
    "unified_itemized_transactions.order_datetime": "When the item's order was placed.",
    "unified_itemized_transactions.product_id": "The product's id.",
    "unified_itemized_transactions.product_name": "The product's name (the `product` filter).",
    "unified_itemized_transactions.product_category": "The product's category (the `category` filter).",
    "unified_itemized_transactions.product_collection": "The product's collection (the `collection` filter).",
    "unified_itemized_transactions.product_brand": "The product's brand (the `brand` filter).",
    "unified_itemized_transactions.item_quantity": "How many of the product (`quantity`).",
    "unified_itemized_transactions.item_revenue": "The item's revenue (`spend` with product filters).",
    "customer_tags": "Tags on customers, one row per tag (`tagged`).",
    "customer_tags.customer_id": "The tagged customer.",
    "customer_tags.tag": "The tag.",
    "checkouts": "Checkouts started, completed or not (`abandoned_checkout`).",
    "checkouts.checkout_id": "The checkout's id.",
    "checkouts.customer_id": "Who started the checkout.",
    "checkouts.started_at": "When the checkout started.",
    "checkouts.completed": "Whether it ended in an order.",
    "stores": "The stores (`near_store`).",
    "stores.store_id": "The store's id.",
    "stores.name": "The store's name.",
    "stores.city": "The store's city.",
    "stores.state": "The store's state or region.",
    "stores.postal": "The store's postal code.",
    "stores.latitude": "The store's latitude.",
    "stores.longitude": "The store's longitude.",
    DERIVED_TABLE: "Computed per customer from the orders dated on or before the as-of date.",
    "derived.lifetime_revenue": "Sum of the customer's order revenue.",
    "derived.lifetime_orders": "Number of the customer's orders.",
    "derived.first_order_date": "Date of the customer's first order.",
    "derived.last_order_date": "Date of the customer's last order.",
    "derived.average_order_value": "Lifetime revenue divided by lifetime orders.",
    "derived.days_since_last_order": "Days from the last order to the as-of date.",
}

#: the derived attributes read straight from the lifetime aggregates (``SegmentCompiler.derived``)
_DERIVED_COLUMNS = {"lifetime_revenue": "revenue", "lifetime_orders": "orders", "first_order_date": "first_order",
                    "last_order_date": "last_order"}


@attrs.frozen
class Column:
    table: str
    name: str  # the logical column (for customer_360 and custom tables, the attribute's name)
    physical: str
    type: str
    description: str
    attributes: tuple[str, ...]  # the attributes that read it
    missing: int | None = None
    distinct: int | None = None
    low: object = None
    high: object = None
    top: tuple[tuple[str, int], ...] = ()
    shown: bool = True  # values may be listed (not an identifying column)
    used_by: tuple[str, ...] = ()  # segments and scores, as "segment:Name" / "score:Name"

    @property
    def anchor(self) -> str:
        """The row's id: the attribute's (what a definition links to), else the table's column."""
        return anchor(self.attributes[0]) if self.attributes else anchor(f"{self.table}.{self.name}", "column-")


@attrs.frozen
class Table:
    name: str
    physical: str
    description: str
    custom: bool
    mapped: bool
    rows: int | None
    columns: tuple[Column, ...]
    used_by: tuple[str, ...] = ()


def anchor(name: str, prefix: str = "attr-") -> str:
    return prefix + re.sub(r"[^a-z0-9_]+", "-", name.lower())


def profile(conn: sa.Connection, model: Model, derived: sa.Subquery | None = None) -> list[Table]:
    """Every table of the data model, counted in the warehouse. ``derived`` is the per-customer lifetime
    aggregates at the report's as-of (``SegmentCompiler.derived()``), for the derived attributes."""
    users = usage(model)
    descriptions = _mapping_descriptions(model)
    out = []
    for info in model.data_model.tables.values():
        attributes = _attributes_of(model, info.name)
        physical = _table(info)
        columns = []
        present = _present_columns(conn, info)
        kinds = {c: t for c, t in info.types.items() if info.column(c).lower() in present}
        stats, rows = _column_stats(conn, physical, {c: (physical.c[info.column(c)], t) for c, t in kinds.items()}) \
            if present else ({}, None)
        listed = {c: (physical.c[info.column(c)], t) for c, t in kinds.items() if (info.name, c) not in IDENTIFYING}
        tops = _top_values(conn, listed) if listed else {}
        for logical, type_ in info.types.items():
            shown = (info.name, logical) not in IDENTIFYING
            top = tops.get(logical, ())
            missing, distinct, low, high = stats.get(logical, (None, None, None, None))
            columns.append(Column(
                info.name, logical, info.column(logical), type_,
                DESCRIPTIONS.get(f"{info.name}.{logical}", "") if not info.custom else "",
                tuple(attributes.get(logical, ())), missing, distinct,
                low if shown else None, high if shown else None, top, shown,
                tuple(sorted(users.get((info.name, logical), ())))))
        out.append(Table(info.name, info.physical, descriptions.get(info.name) or DESCRIPTIONS.get(info.name, ""),
                         info.custom, info.physical != info.name or any(info.column(c) != c for c in info.types),
                         rows, tuple(columns), tuple(sorted(users.get((info.name, None), ())))))
    if derived is not None:
        out.append(_derived(conn, model, derived, users))
    return out


def _table(info: TableInfo) -> sa.TableClause:
    schema, _, name = info.physical.rpartition(".")
    return sa.table(name, *(sa.column(info.column(c)) for c in info.types), schema=schema or None)


def _column_stats(conn: sa.Connection, source: sa.FromClause, columns: dict[str, tuple[sa.ColumnElement, str]]):
    """Rows of ``source``, and per column: missing, distinct, min and max (numbers and dates), in one query."""
    selected = [func.count().label("rows")]
    for i, (column, type_) in enumerate(columns.values()):
        selected += [func.count(column).label(f"n{i}"), func.count(column.distinct()).label(f"d{i}")]
        if type_ in NUMERIC_TYPES or type_ in TEMPORAL_TYPES:
            selected += [func.min(column).label(f"lo{i}"), func.max(column).label(f"hi{i}")]
    row = conn.execute(select(*selected).select_from(source)).one()._mapping
    rows = int(row["rows"])
    stats = {}
    for i, logical in enumerate(columns):
        stats[logical] = (rows - int(row[f"n{i}"]), int(row[f"d{i}"]), row.get(f"lo{i}"), row.get(f"hi{i}"))
    return stats, rows


def _present_columns(conn: sa.Connection, info: TableInfo) -> set[str]:
    """The table's columns in the warehouse (lower case); none when the table is not there. A column the
    data model names and the warehouse lacks is listed without figures, not queried."""
    names = column_names(conn, info.physical)
    return {n.lower() for n in names or ()}


def _top_values(conn: sa.Connection, columns: dict[str, tuple[sa.ColumnElement, str]]) -> dict[str, tuple]:
    """Per column, the ``TOP_VALUES`` most common values held by at least ``MIN_SHOWN`` rows, most common
    first (ties by value, in the column's own order): one ``UNION ALL`` query for all the columns, each
    branch ranked with ``ROW_NUMBER()``, the values as text."""
    branches = []
    for i, (column, _type) in enumerate(columns.values()):
        count = func.count()
        rank = func.row_number().over(order_by=(count.desc(), column))
        grouped = (select(sa.literal(i, sa.Integer()).label("idx"), sa.cast(column, sa.String()).label("value"),
                          count.label("n"), rank.label("rk"))
                   .where(column.is_not(None)).group_by(column).having(count >= MIN_SHOWN).subquery(f"v{i}"))
        branches.append(select(grouped.c.idx, grouped.c.value, grouped.c.n, grouped.c.rk)
                        .where(grouped.c.rk <= TOP_VALUES))
    query = branches[0] if len(branches) == 1 else sa.union_all(*branches)
    found: dict[int, list[tuple[int, str, int]]] = defaultdict(list)
    for idx, value, n, rk in conn.execute(query):
        found[int(idx)].append((int(rk), value, int(n)))
    out = {}
    for i, (logical, (_column, type_)) in enumerate(columns.items()):
        out[logical] = tuple((shown_value(value, type_), n) for _rk, value, n in sorted(found.get(i, [])))
    return out


def shown_value(value: object, type_: str) -> str:
    """A value as the language writes it, from whatever text the engine made of it: booleans (``1``,
    ``t``, ``true``) as true/false, numbers without trailing zeros."""
    text = str(value)
    if type_ == BOOLEAN:
        return "true" if text.lower() in ("true", "1", "t") else "false"
    if type_ in NUMERIC_TYPES:
        try:
            number = Decimal(text)
        except ArithmeticError:
            return text
        return format(number.normalize(), "f") if number.is_finite() else text
    return text


def _derived(conn: sa.Connection, model: Model, derived: sa.Subquery, users: dict) -> Table:
    """The derived attributes over every customer (a customer without orders has none)."""
    info = model.data_model.tables["customer_360"]
    customers = _table(info)
    source = customers.outerjoin(derived, derived.c.customer_id == customers.c[info.column("customer_id")])
    columns = {name: (derived.c[physical], DERIVED_ATTRIBUTES[name]) for name, physical in _DERIVED_COLUMNS.items()}
    stats, rows = _column_stats(conn, source, columns)
    out = []
    for name, type_ in DERIVED_ATTRIBUTES.items():
        missing = distinct = low = high = None
        top: tuple[tuple[str, int], ...] = ()
        if name in stats:
            missing, distinct, low, high = stats[name]
            if type_ not in NUMERIC_TYPES:
                low, high = (v.date() if hasattr(v, "date") else v for v in (low, high))
            if name == "lifetime_orders":
                top = _top_values(conn, {name: (derived.c[_DERIVED_COLUMNS[name]], type_)})[name]
        out.append(Column(DERIVED_TABLE, name, name, type_, DESCRIPTIONS[f"{DERIVED_TABLE}.{name}"], (name,),
                          missing, distinct, low, high, top, True,
                          tuple(sorted(users.get((DERIVED_TABLE, name), ())))))
    return Table(DERIVED_TABLE, "", DESCRIPTIONS[DERIVED_TABLE], False, False, rows, tuple(out))


def _attributes_of(model: Model, table: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for name, info in model.data_model.attributes.items():
        if info.table == table and info.column is not None:
            out[info.column].append(name)
    return out


def _mapping_descriptions(model: Model) -> dict[str, str]:
    return {decl.name: decl.description for source in model.files for decl in source.declarations
            if isinstance(decl, ast.TableMapping) and decl.description}


# ------------------------------------------------------------------ which segments read what


def usage(model: Model) -> dict[tuple[str, str | None], set[str]]:
    """(table, column) -> the segments and scores that read it; (table, None) for a table read as a whole."""
    users: dict[tuple[str, str | None], set[str]] = defaultdict(set)
    for kind, name, condition in _conditions(model):
        for key in reads(model, condition):
            users[key].add(f"{kind}:{name}")
    return users


def _conditions(model: Model) -> Iterator[tuple[str, str, ast.Condition]]:
    for name, segment in model.segments.items():
        yield "segment", name, segment.condition
    for name, score in model.scores.items():
        for item in score.items:
            yield "score", name, item.condition


def reads(model: Model, condition: ast.Condition) -> set[tuple[str, str | None]]:
    """The (table, column) pairs a condition reads, its scores' items included."""
    attributes = model.data_model.attributes
    found: set[tuple[str, str | None]] = set()
    for node in walk_through_scores(condition, model.scores):
        attribute = getattr(node, "attribute", None)
        if isinstance(attribute, ast.Attribute) and attribute.name in attributes:
            info = attributes[attribute.name]
            if info.derived:
                found |= {(DERIVED_TABLE, info.name), ("unified_transactions", None)}
            elif info.table is not None and info.column is not None:
                found |= {(info.table, info.column), (info.table, None)}
        if isinstance(node, (ast.HasPurchased, ast.MostPurchased, ast.FirstPurchased)):
            tables = {ITEM_FILTER_COLUMNS[f.field][0] for f in node.filters} or {"unified_transactions"}
            found |= {(t, None) for t in tables} | {(t, "order_datetime") for t in tables}
            found |= {ITEM_FILTER_COLUMNS[f.field] for f in node.filters}
        elif isinstance(node, ast.Tagged):
            found |= {("customer_tags", None), ("customer_tags", "tag")}
        elif isinstance(node, ast.AbandonedCheckout):
            found |= {("checkouts", None), ("checkouts", "started_at"), ("checkouts", "completed")}
        elif isinstance(node, ast.NearStore):
            found |= {("stores", None), ("stores", "latitude"), ("stores", "longitude"),
                      ("customer_360", "latitude"), ("customer_360", "longitude")}
    return found


def link_attributes(highlighted: str, model: Model, explorer_href: str) -> str:
    """The attribute names of a highlighted definition (pygments' ``nv`` spans) as links to the explorer."""
    known = model.data_model.attributes

    def link(match: re.Match) -> str:
        name = match.group(1)
        if name not in known:
            return match.group(0)
        return f'<a class="nv attribute" href="{explorer_href}#{anchor(name)}">{name}</a>'

    return re.sub(r'<span class="nv">([A-Za-z_][A-Za-z0-9_]*)</span>', link, highlighted)
