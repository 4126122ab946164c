"""The tables the generator writes: SPEC §4's standard data model plus ``churn_scores``.

One list of columns with a portable kind per column; the DuckDB types and the
SQLAlchemy ``Table`` objects (for SQLite, PostgreSQL and other targets) are
derived from it, so every engine gets the same columns in the same order.
"""

from __future__ import annotations

import sqlalchemy as sa

TEXT, DATE, TIMESTAMP, BOOLEAN, DECIMAL, DOUBLE, INTEGER = (
    "text", "date", "timestamp", "boolean", "decimal", "double", "integer",
)

# table -> ((column, kind), ...); the first column is the key, except in customer_tags
# (duplicate rows are part of the data) and unified_itemized_transactions (one row per line).
TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "customer_360": (
        ("customer_id", TEXT), ("given_name", TEXT), ("surname", TEXT), ("email", TEXT),
        ("phone", TEXT), ("city", TEXT), ("state", TEXT), ("postal", TEXT), ("country", TEXT),
        ("birthdate", DATE), ("gender", TEXT), ("loyalty_tier", TEXT), ("created_at", TIMESTAMP),
        ("sms_opt_in", BOOLEAN), ("email_opt_in", BOOLEAN), ("contactable_phone", BOOLEAN),
        ("contactable_email", BOOLEAN), ("predicted_lifecycle_status", TEXT),
        ("predicted_clv", DECIMAL), ("latitude", DOUBLE), ("longitude", DOUBLE),
    ),
    "unified_transactions": (
        ("order_id", TEXT), ("customer_id", TEXT), ("order_datetime", TIMESTAMP),
        ("order_revenue", DECIMAL), ("order_quantity", INTEGER), ("channel", TEXT), ("store_id", TEXT),
    ),
    "unified_itemized_transactions": (
        ("order_id", TEXT), ("customer_id", TEXT), ("order_datetime", TIMESTAMP), ("product_id", TEXT),
        ("product_name", TEXT), ("product_category", TEXT), ("product_collection", TEXT),
        ("product_brand", TEXT), ("item_quantity", INTEGER), ("item_revenue", DECIMAL),
    ),
    "customer_tags": (("customer_id", TEXT), ("tag", TEXT)),
    "checkouts": (
        ("checkout_id", TEXT), ("customer_id", TEXT), ("started_at", TIMESTAMP), ("completed", BOOLEAN),
    ),
    "stores": (
        ("store_id", TEXT), ("name", TEXT), ("city", TEXT), ("state", TEXT), ("postal", TEXT),
        ("latitude", DOUBLE), ("longitude", DOUBLE),
    ),
    "churn_scores": (("customer_id", TEXT), ("score", DOUBLE), ("model_version", TEXT)),
}

#: Tables whose first column is a key (a primary key on engines that get constraints).
KEYED = ("customer_360", "unified_transactions", "checkouts", "stores", "churn_scores")

#: Columns indexed on server engines after loading (the joins every segment makes).
INDEXES: dict[str, tuple[str, ...]] = {
    "unified_transactions": ("customer_id",),
    "unified_itemized_transactions": ("customer_id", "order_id"),
    "customer_tags": ("customer_id",),
    "checkouts": ("customer_id",),
}

DUCKDB_TYPES = {
    TEXT: "VARCHAR", DATE: "DATE", TIMESTAMP: "TIMESTAMP", BOOLEAN: "BOOLEAN",
    DECIMAL: "DECIMAL(12,2)", DOUBLE: "DOUBLE", INTEGER: "INTEGER",
}


def _sqlalchemy_type(kind: str) -> sa.types.TypeEngine:
    return {
        TEXT: sa.Text(), DATE: sa.Date(), TIMESTAMP: sa.DateTime(), BOOLEAN: sa.Boolean(),
        DECIMAL: sa.Numeric(12, 2), DOUBLE: sa.Double(), INTEGER: sa.Integer(),
    }[kind]


def sqlalchemy_tables(metadata: sa.MetaData | None = None) -> dict[str, sa.Table]:
    """The generated tables as SQLAlchemy Core ``Table`` objects, keys and indexes included."""
    metadata = metadata if metadata is not None else sa.MetaData()
    tables = {}
    for name, columns in TABLES.items():
        cols = [
            sa.Column(column, _sqlalchemy_type(kind), primary_key=(name in KEYED and i == 0),
                      nullable=not (name in KEYED and i == 0))
            for i, (column, kind) in enumerate(columns)
        ]
        table = sa.Table(name, metadata, *cols)
        for column in INDEXES.get(name, ()):
            sa.Index(f"ix_{name}_{column}", table.c[column])
        tables[name] = table
    return tables
