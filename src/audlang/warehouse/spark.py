"""Spark SQL's catalog, as the generation tables need it (``warehouse.generations``).

Spark has no transactions and cannot DELETE from or UPDATE Parquet tables. Membership there is what
it is on every engine, a generation table per refresh behind a view (``warehouse.generations``); what
Spark lacks is handled there: the new table is complete before ``CREATE OR REPLACE VIEW`` points the
view at it (one catalog update: a reader sees the old membership or the new one, never a mix), and
the previous generation is kept for readers still scanning it.

``SHOW TABLES LIKE`` is the catalog here: PyHive's ``has_table`` runs DESCRIBE and misreads Spark 4's
"not found" error, and its inspector knows no views.
"""

from __future__ import annotations

import sqlalchemy as sa


def _rows(conn: sa.Connection, sql: str) -> list[tuple[str, bool]]:
    """(name, is temporary) of each row of ``SHOW TABLES``/``SHOW VIEWS`` (namespace, name, isTemporary)."""
    rows = conn.execution_options(no_parameters=True).exec_driver_sql(sql).fetchall()
    out = []
    for row in rows:
        name = row[1] if len(row) > 1 else row[0]
        out.append((name.lower(), bool(row[2]) if len(row) > 2 else False))
    return out


def tables_like(conn: sa.Connection, pattern: str) -> list[tuple[str, bool]]:
    """(name, is temporary) of the tables and views matching a ``SHOW TABLES LIKE`` pattern (``*``: any)."""
    return _rows(conn, f"SHOW TABLES LIKE '{pattern}'")


def views_like(conn: sa.Connection, pattern: str) -> list[str]:
    return [name for name, temporary in _rows(conn, f"SHOW VIEWS LIKE '{pattern}'") if not temporary]


def has_table(conn: sa.Connection, name: str) -> bool:
    """A table or a view of that name."""
    return any(found == name.lower() for found, _ in tables_like(conn, name))


def has_view(conn: sa.Connection, name: str) -> bool:
    return name.lower() in views_like(conn, name)
