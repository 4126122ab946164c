"""Scratch tables of one connection: the shared facts of a run (``compile.facts``), made and dropped.

``CREATE TEMPORARY TABLE name AS <query>`` on DuckDB, SQLite and PostgreSQL (visible to this
connection only, gone when it closes, allowed on a DuckDB file opened read-only); on Spark,
``CACHE TABLE name AS <query>``: a temporary view of the Thrift session, computed once and kept in
memory. ``shared_facts(conn, facts)`` makes every pass, yields, and drops them, whatever happens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from audlang.compile.facts import FACTS_TABLE_PREFIX, WIDE_TABLE, SharedFacts
from audlang.warehouse.tables import CreateTableAs, is_spark


def CreateScratch(name: str, query: sa.Select[Any]) -> CreateTableAs:  # noqa: N802 (reads as the statement)
    """``CREATE TEMPORARY TABLE name AS query`` (Spark: ``CACHE TABLE name AS query``) of a facts table."""
    if not name.startswith(FACTS_TABLE_PREFIX):
        raise ValueError(f"not a scratch table name: {name!r}")
    try:
        return CreateTableAs(name, query, temporary=True)
    except ValueError:
        raise ValueError(f"not a scratch table name: {name!r}") from None


def drop_scratch(conn: sa.Connection, name: str) -> None:
    driver = conn.execution_options(no_parameters=True)
    if is_spark(conn):
        driver.exec_driver_sql(f"UNCACHE TABLE IF EXISTS {name}")
        driver.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")
    else:
        driver.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")


def make_facts(conn: sa.Connection, facts: SharedFacts) -> None:
    """Compute every pass of ``facts`` into its scratch table on this connection (any left by an earlier
    run on this pooled connection dropped first)."""
    drop_facts(conn, facts)
    for name, query in facts.passes():
        conn.execute(CreateScratch(name, query))


def drop_facts(conn: sa.Connection, facts: SharedFacts) -> None:
    """The scratch tables, the wide one first (on Spark it is a view reading the others)."""
    for name in dict.fromkeys([WIDE_TABLE, *reversed(facts.table_names)]):
        drop_scratch(conn, name)


def _transaction(conn: sa.Connection) -> contextlib.AbstractContextManager[Any]:
    """The caller's transaction when there is one, else one of our own (committed at the end)."""
    return contextlib.nullcontext() if conn.in_transaction() else conn.begin()


@contextlib.contextmanager
def shared_facts(conn: sa.Connection, facts: SharedFacts) -> Iterator[SharedFacts]:
    """The facts computed on ``conn`` for the block, dropped after it (also when it fails). Outside a
    transaction the tables are made in one of their own, so the block may begin its own."""
    if facts:
        with _transaction(conn):
            make_facts(conn, facts)
    try:
        yield facts
    finally:
        if facts and not conn.closed and not conn.invalidated:
            with contextlib.suppress(sa.exc.DBAPIError), _transaction(conn):
                drop_facts(conn, facts)
