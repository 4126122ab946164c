"""The standard data model of SPEC §4, and schema mappings applied on top of it.

A ``DataModel`` says, for every attribute the language can name, which table
and column stand behind it and its type; and for every standard table, which
physical table and columns hold it. Teams whose tables are named otherwise
declare ``table`` mappings in their ``.aud`` files; custom tables keyed by
``customer_id`` add attributes the same way.
"""

from __future__ import annotations

import attrs

# Attribute types of the language.
TEXT, NUMBER, INTEGER, BOOLEAN, DATE, TIMESTAMP = "text", "number", "integer", "boolean", "date", "timestamp"
TYPES = (TEXT, NUMBER, INTEGER, BOOLEAN, DATE, TIMESTAMP)
NUMERIC_TYPES = (NUMBER, INTEGER)
TEMPORAL_TYPES = (DATE, TIMESTAMP)

STANDARD_TABLES: dict[str, dict[str, str]] = {
    "customer_360": {
        "customer_id": TEXT, "given_name": TEXT, "surname": TEXT, "email": TEXT, "phone": TEXT,
        "city": TEXT, "state": TEXT, "postal": TEXT, "country": TEXT, "birthdate": DATE,
        "gender": TEXT, "loyalty_tier": TEXT, "created_at": TIMESTAMP, "sms_opt_in": BOOLEAN,
        "email_opt_in": BOOLEAN, "contactable_phone": BOOLEAN, "contactable_email": BOOLEAN,
        "predicted_lifecycle_status": TEXT, "predicted_clv": NUMBER, "latitude": NUMBER,
        "longitude": NUMBER,
    },
    "unified_transactions": {
        "order_id": TEXT, "customer_id": TEXT, "order_datetime": TIMESTAMP, "order_revenue": NUMBER,
        "order_quantity": INTEGER, "channel": TEXT, "store_id": TEXT,
    },
    "unified_itemized_transactions": {
        "order_id": TEXT, "customer_id": TEXT, "order_datetime": TIMESTAMP, "product_id": TEXT,
        "product_name": TEXT, "product_category": TEXT, "product_collection": TEXT,
        "product_brand": TEXT, "item_quantity": INTEGER, "item_revenue": NUMBER,
    },
    "customer_tags": {"customer_id": TEXT, "tag": TEXT},
    "checkouts": {"checkout_id": TEXT, "customer_id": TEXT, "started_at": TIMESTAMP, "completed": BOOLEAN},
    "stores": {"store_id": TEXT, "name": TEXT, "city": TEXT, "state": TEXT, "postal": TEXT,
               "latitude": NUMBER, "longitude": NUMBER},
}

#: Derived attributes (SPEC §3), computed from orders dated on or before the as-of date.
DERIVED_ATTRIBUTES: dict[str, str] = {
    "lifetime_revenue": NUMBER,
    "lifetime_orders": INTEGER,
    "first_order_date": DATE,
    "last_order_date": DATE,
    "average_order_value": NUMBER,
    "days_since_last_order": INTEGER,
}

PREDICTED_LIFECYCLE_STATUSES = ("Active", "Cooling down", "At risk", "Highly at risk", "Lost", "New")

#: The item filters of has_purchased and the column each one reads.
ITEM_FILTER_COLUMNS = {
    "product": ("unified_itemized_transactions", "product_name"),
    "category": ("unified_itemized_transactions", "product_category"),
    "collection": ("unified_itemized_transactions", "product_collection"),
    "brand": ("unified_itemized_transactions", "product_brand"),
    "channel": ("unified_transactions", "channel"),
    "store": ("unified_transactions", "store_id"),
}


@attrs.frozen
class AttributeInfo:
    """Where an attribute lives. ``table`` is the logical table; ``None`` for derived attributes."""

    name: str
    type: str
    table: str | None
    column: str | None
    derived: bool = False


@attrs.frozen
class TableInfo:
    """A logical table (standard or custom) and the physical table and columns behind it."""

    name: str
    physical: str  # possibly schema-qualified: "crm.customers"
    columns: dict[str, str]  # logical column -> physical column
    types: dict[str, str]  # logical column -> type
    custom: bool = False

    def column(self, logical: str) -> str:
        return self.columns.get(logical, logical)


@attrs.frozen
class DataModel:
    tables: dict[str, TableInfo]
    attributes: dict[str, AttributeInfo]

    def table(self, name: str) -> TableInfo:
        return self.tables[name]


def standard_model() -> DataModel:
    tables = {
        name: TableInfo(name, name, {c: c for c in cols}, dict(cols))
        for name, cols in STANDARD_TABLES.items()
    }
    attributes = {
        col: AttributeInfo(col, type_, "customer_360", col)
        for col, type_ in STANDARD_TABLES["customer_360"].items()
    }
    for name, type_ in DERIVED_ATTRIBUTES.items():
        attributes[name] = AttributeInfo(name, type_, None, None, derived=True)
    return DataModel(tables, attributes)
