"""Spark SQL's catalog, and membership written as generation tables behind a swapped view.

Spark has no transactions and cannot DELETE from or UPDATE Parquet tables, so a DELETE + INSERT
would show readers a half-written membership. Instead each refresh writes a new table
``audlang_gen_<view>_<n>`` in full (CREATE TABLE … AS SELECT, computed in Spark), then points the
view at it with ``CREATE OR REPLACE VIEW`` (one catalog update: a reader sees the old membership or
the new one, never a mix), then drops older generations, keeping ``keep`` of them for readers still
scanning the previous one.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

SPARK_GENERATION_PREFIX = "audlang_gen_"


def has_table(conn: sa.Connection, name: str) -> bool:
    # PyHive's has_table runs DESCRIBE and misreads Spark 4's "not found" error.
    rows = conn.execution_options(no_parameters=True).exec_driver_sql(f"SHOW TABLES LIKE '{name}'").fetchall()
    return any((row[1] if len(row) > 1 else row[0]).lower() == name.lower() for row in rows)


def has_view(conn: sa.Connection, name: str) -> bool:
    rows = conn.execution_options(no_parameters=True).exec_driver_sql(f"SHOW VIEWS LIKE '{name}'").fetchall()
    return any((row[1] if len(row) > 1 else row[0]).lower() == name.lower() for row in rows)


def generations(conn: sa.Connection, prefix: str) -> list[int]:
    rows = conn.execution_options(no_parameters=True).exec_driver_sql(f"SHOW TABLES LIKE '{prefix}*'").fetchall()
    found = []
    for row in rows:
        name = row[1] if len(row) > 1 else row[0]  # (namespace, tableName, isTemporary)
        suffix = name[len(prefix):]
        if name.startswith(prefix) and suffix.isdigit():
            found.append(int(suffix))
    return found


def swap_generation(conn: sa.Connection, view: str, query: sa.Select, keep: int = 1,
                    columns: tuple[str, ...] = ("customer_id",)) -> str:
    """Write ``query`` as the next generation behind ``view``; returns the new generation's table.

    A table (not a view) already under the view's name, with no generations behind it, is what an
    earlier write that was not a swap left there (campaigns did so before they swapped): it is read
    by ``query`` if it likes, then dropped before the view takes its name.
    """
    for name in (view, *columns):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"not a plain identifier: {name!r}")
    view = view.lower()  # Spark's catalog keeps names in lower case
    prefix = f"{SPARK_GENERATION_PREFIX}{view}_"
    found = generations(conn, prefix)
    table_name = f"{prefix}{(max(found) + 1) if found else 1}"
    select_sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    driver = conn.execution_options(no_parameters=True)
    driver.exec_driver_sql(f"DROP TABLE IF EXISTS {table_name}")
    driver.exec_driver_sql(f"CREATE TABLE {table_name} USING parquet AS {select_sql}")
    if not found and has_table(conn, view) and not has_view(conn, view):
        driver.exec_driver_sql(f"DROP TABLE {view}")
    driver.exec_driver_sql(f"CREATE OR REPLACE VIEW {view} AS SELECT {', '.join(columns)} FROM {table_name}")
    for old in sorted(found)[: max(0, len(found) - keep)]:
        driver.exec_driver_sql(f"DROP TABLE IF EXISTS {prefix}{old}")
    return table_name


def rename_generations(conn: sa.Connection, old_view: str, new_view: str) -> None:
    """A renamed set keeps its membership: its generations and view move to the new name."""
    old_view, new_view = old_view.lower(), new_view.lower()
    if old_view == new_view:
        return
    old_prefix, new_prefix = (f"{SPARK_GENERATION_PREFIX}{v}_" for v in (old_view, new_view))
    found = sorted(generations(conn, old_prefix))
    driver = conn.execution_options(no_parameters=True)
    for g in found:
        driver.exec_driver_sql(f"ALTER TABLE {old_prefix}{g} RENAME TO {new_prefix}{g}")
    if found:
        driver.exec_driver_sql(f"CREATE OR REPLACE VIEW {new_view} AS SELECT customer_id FROM "
                               f"{new_prefix}{found[-1]}")
    driver.exec_driver_sql(f"DROP VIEW IF EXISTS {old_view}")


def drop_generations(conn: sa.Connection, view: str) -> None:
    """Remove a swapped view and every generation behind it."""
    view = view.lower()
    prefix = f"{SPARK_GENERATION_PREFIX}{view}_"
    driver = conn.execution_options(no_parameters=True)
    driver.exec_driver_sql(f"DROP VIEW IF EXISTS {view}")
    for old in generations(conn, prefix):
        driver.exec_driver_sql(f"DROP TABLE IF EXISTS {prefix}{old}")
