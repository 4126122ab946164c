"""Tables in any warehouse: does one exist, make one, load rows in bulk, and what the engine can do.

Callers ask what an engine *can* do (``traits``), never which engine it is: Spark has no
transactions, no DELETE on its Parquet tables and no temporary tables; DuckDB's ART indexes make
deletes slow and its scans need none.

The catalog operations of the generation tables (``warehouse.generations``) are here too, each one
function for every engine: ``table_names`` and ``view_names`` by prefix, ``has_view``,
``create_table_as``, ``replace_view``, ``rename_table``, ``drop_table``, ``drop_view``,
``create_index``, and ``ddl_in_transaction`` (SQLite's driver opens no transaction before a CREATE).
"""

from __future__ import annotations

import csv
import enum
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

from audlang import backends


@attrs.frozen
class Traits:
    transactions: bool = True  # DELETE, UPDATE and rollback
    temporary_tables: bool = True
    indexes_help: bool = True  # an index on a log/membership table pays for itself
    #: the longest name audlang gives a table it makes (PostgreSQL cuts identifiers at 63 bytes, and
    #: ``check.names.view_name`` keeps to that); None: no cut (Spark, whose generation tables have always
    #: been named in full)
    name_limit: int | None = 63
    #: ``unnest(ARRAY[…])`` in a select list: one row per element (PostgreSQL, DuckDB)
    arrays: bool = False
    #: ``CREATE TABLE … AS`` reports the rows it wrote (DuckDB returns them, PostgreSQL's command tag
    #: ``SELECT n``): a new generation needs no ``count(*)`` after it
    counts_created_rows: bool = False


def traits(bind: sa.Connection | sa.Engine) -> Traits:
    name = bind.dialect.name
    if name in backends.SPARK_BACKENDS:
        return Traits(transactions=False, temporary_tables=False, indexes_help=False, name_limit=None)
    if name == "duckdb":
        return Traits(indexes_help=False, arrays=True, counts_created_rows=True)
    postgresql = name == "postgresql"
    return Traits(arrays=postgresql, counts_created_rows=postgresql)


def is_spark(bind: sa.Connection | sa.Engine) -> bool:
    """Only for the engine layer's own dispatch (``membership.for_bind``); others ask ``traits``."""
    return bind.dialect.name in backends.SPARK_BACKENDS


def has_table(conn: sa.Connection, name: str) -> bool:
    """Whether the warehouse has this table or view (Spark through ``SHOW TABLES``)."""
    if is_spark(conn):
        from audlang.warehouse.spark import has_table as spark_has_table

        return spark_has_table(conn, name)
    return sa.inspect(conn).has_table(name)


_SPARK_TYPES = {sa.BigInteger: "BIGINT", sa.Integer: "INT", sa.Boolean: "BOOLEAN", sa.Float: "DOUBLE"}


def create_table(conn: sa.Connection, table: sa.Table, *, if_missing: bool = True) -> None:
    """Create ``table`` (and its indexes where they help). On Spark: a Parquet table, types mapped."""
    if if_missing and has_table(conn, table.name):
        return
    if is_spark(conn):
        columns = ", ".join(f"{c.name} {_spark_type(c.type)}" for c in table.columns)
        conn.execution_options(no_parameters=True).exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS {table.name} ({columns}) USING parquet")
        return
    indexes = list(table.indexes)
    table.indexes.clear()
    try:
        table.create(conn)
        if traits(conn).indexes_help:
            for index in indexes:
                index.create(conn)
    finally:
        table.indexes.update(indexes)


def _spark_type(type_: Any) -> str:
    for kind, name in _SPARK_TYPES.items():
        if isinstance(type_, kind):
            return name
    return "STRING"


def bulk_insert(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]], chunk: int = 10_000) -> None:
    """Insert ``rows`` (dicts by column name) into ``table`` the fastest way the engine allows.

    - DuckDB: ``executemany`` runs a statement per row and a multi-row VALUES costs SQLAlchemy seconds
      to compile, so the columns go in as list parameters, unnested side by side;
    - Spark: a row-by-row insert is a Spark job per row; one INSERT of literals per 5,000 rows (the
      same escaping as the compiled SQL);
    - elsewhere: ``executemany`` in chunks.
    """
    if not rows:
        return
    columns = [c.name for c in table.columns]
    if is_spark(conn):
        from audlang.compile.dialects import spark_string

        driver = conn.execution_options(no_parameters=True)
        for start in range(0, len(rows), 5_000):
            values = ", ".join(
                "(" + ", ".join(_spark_literal(row.get(c), spark_string) for c in columns) + ")"
                for row in rows[start:start + 5_000])
            driver.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES {values}")
        return
    if conn.dialect.name == "duckdb":
        quote = conn.dialect.identifier_preparer.quote
        for start in range(0, len(rows), 100_000):
            part = rows[start:start + 100_000]
            lists = [[_plain(row.get(c)) for row in part] for c in columns]
            conn.exec_driver_sql(
                f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) SELECT "
                + ", ".join(f"unnest(?::{_duckdb_type(table.c[c].type)}[])" for c in columns), tuple(lists))
        return
    for start in range(0, len(rows), chunk):
        conn.execute(table.insert(), [dict(row) for row in rows[start:start + chunk]])


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _duckdb_type(type_: Any) -> str:
    if isinstance(type_, sa.Boolean):
        return "BOOLEAN"
    if isinstance(type_, (sa.Integer, sa.BigInteger)):
        return "BIGINT"
    if isinstance(type_, sa.Float):
        return "DOUBLE"
    return "VARCHAR"


def _spark_literal(value: Any, quote) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return quote(str(value))


def csv_text(rows: Iterable[Sequence[Any]], header: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def raw_rows(result) -> list[tuple]:
    """All rows of an executed result as the driver returns them: no per-row Row objects
    (a third of the time on a few hundred thousand ids)."""
    cursor = getattr(result, "cursor", None)
    if cursor is None:
        return [tuple(r) for r in result.fetchall()]
    try:
        return cursor.fetchall()
    finally:
        result.close()


# ------------------------------------------------------------------ the catalog, for generation tables

_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def plain_name(name: str) -> str:
    """``name`` when it is a lower-case plain identifier (what audlang names its own tables and views:
    safe unquoted on every engine, the same in Spark's lower-casing catalog); else ValueError."""
    if not _PLAIN_NAME.fullmatch(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


def _driver(conn: sa.Connection) -> sa.Connection:
    return conn.execution_options(no_parameters=True) if is_spark(conn) else conn


def ddl_in_transaction(conn: sa.Connection) -> None:
    """Make the CREATEs, DROPs and ALTERs that follow part of the caller's transaction.

    pysqlite (SQLite's driver) opens its transaction only before an INSERT, UPDATE or DELETE, and says
    so in ``in_transaction``: a CREATE first would commit on its own. It gets its BEGIN here, IMMEDIATE
    so that the write lock is taken at once (two writers take turns instead of deadlocking). Every
    other driver is in a transaction already (Spark has none to be in)."""
    if is_spark(conn):
        return
    if getattr(conn.connection.dbapi_connection, "in_transaction", True):
        return
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def table_names(conn: sa.Connection, prefix: str) -> list[str]:
    """The tables whose names start with ``prefix`` (temporary tables, and on Spark views, may be among
    them: a prefix is for names of one kind)."""
    plain_name(prefix)
    if is_spark(conn):
        from audlang.warehouse.spark import tables_like

        return [name for name, _temporary in tables_like(conn, f"{prefix}*")]
    return [name for name in sa.inspect(conn).get_table_names() if name.startswith(prefix)]


def view_names(conn: sa.Connection, prefix: str) -> list[str]:
    """The views whose names start with ``prefix``."""
    plain_name(prefix)
    if is_spark(conn):
        from audlang.warehouse.spark import views_like

        return views_like(conn, f"{prefix}*")
    return [name for name in sa.inspect(conn).get_view_names() if name.startswith(prefix)]


def catalog(conn: sa.Connection, prefix: str, names: Sequence[str] = ()) -> dict[str, str]:
    """The tables and views of the current schema whose names start with ``prefix`` or are one of
    ``names``: name -> ``"table"`` or ``"view"``, in one query (Spark: its ``SHOW`` commands). A refresh
    asks this once, so its cost does not grow with what else is deployed (as listing every table
    would)."""
    plain_name(prefix)
    for name in names:
        plain_name(name)
    if is_spark(conn):
        from audlang.warehouse.spark import tables_like, views_like

        views = set(views_like(conn, f"{prefix}*")) | {n for n in names if n.lower() in views_like(conn, n)}
        found = [n for n, _temporary in tables_like(conn, f"{prefix}*")]
        found += [n.lower() for n in names if any(t == n.lower() for t, _ in tables_like(conn, n))]
        return {n: "view" if n in views else "table" for n in found}
    starts = sa.bindparam("prefix", prefix, type_=sa.String)
    if conn.dialect.name == "sqlite":
        master = sa.table("sqlite_master", sa.column("name", sa.String), sa.column("type", sa.String))
        name_col, kind_col = master.c.name, master.c.type
        query = sa.select(name_col, kind_col).where(kind_col.in_(["table", "view"]))
        view_kind = "view"
    else:  # information_schema: DuckDB and PostgreSQL
        tables = sa.table("tables", sa.column("table_name", sa.String), sa.column("table_type", sa.String),
                          sa.column("table_schema", sa.String), sa.column("table_catalog", sa.String),
                          schema="information_schema")
        name_col, kind_col = tables.c.table_name, tables.c.table_type
        query = sa.select(name_col, kind_col).where(
            tables.c.table_schema == sa.func.current_schema(), tables.c.table_catalog == sa.func.current_database(),
            kind_col.in_(["BASE TABLE", "VIEW"]))
        view_kind = "VIEW"
    wanted = sa.func.substr(name_col, 1, len(prefix)) == starts
    if names:
        wanted = sa.or_(wanted, name_col.in_(list(names)))
    return {str(n): "view" if k == view_kind else "table" for n, k in conn.execute(query.where(wanted))}


def column_names(conn: sa.Connection, physical: str) -> list[str] | None:
    """The columns of a user's table (``physical``: ``name`` or ``schema.name``, as a mapping names it),
    or None when there is no such table. Read from an empty ``SELECT *`` (the inspectors' column queries
    differ by dialect, and DuckDB's fails on SQLAlchemy 2.1); the presence is checked first, so a missing
    table never aborts the transaction (PostgreSQL)."""
    schema, _, name = physical.rpartition(".")
    if is_spark(conn):
        from audlang.warehouse.spark import has_table as spark_has_table

        present = spark_has_table(conn, name) if not schema else sa.inspect(conn).has_table(name, schema=schema)
    else:
        present = sa.inspect(conn).has_table(name, schema=schema or None)
    if not present:
        return None
    everything = sa.select(sa.literal_column("*")).select_from(sa.table(name, schema=schema or None)).limit(0)
    return [str(key) for key in conn.execute(everything).keys()]


def has_view(conn: sa.Connection, name: str) -> bool:
    if is_spark(conn):
        from audlang.warehouse.spark import has_view as spark_has_view

        return spark_has_view(conn, name)
    return name in sa.inspect(conn).get_view_names()


class CreateTableAs(Executable, ClauseElement):
    """``CREATE TABLE name AS query`` (Spark: a Parquet table). ``temporary``: a table of this connection
    only, ``CREATE TEMPORARY TABLE`` (Spark: ``CACHE TABLE``, a temporary view of the session computed
    once and kept in memory)."""

    inherit_cache = False

    def __init__(self, name: str, query: sa.Select, temporary: bool = False):
        self.name = plain_name(name)
        self.query = query
        self.temporary = temporary


@compiles(CreateTableAs)
def _create_table_as(element: CreateTableAs, compiler: SQLCompiler, **kw: Any) -> str:
    kind = "TEMPORARY TABLE" if element.temporary else "TABLE"
    return f"CREATE {kind} {element.name} AS {compiler.process(element.query, **kw)}"


@compiles(CreateTableAs, "hive")
@compiles(CreateTableAs, "databricks")
def _create_parquet_table_as(element: CreateTableAs, compiler: SQLCompiler, **kw: Any) -> str:
    made = "CACHE TABLE" if element.temporary else "CREATE TABLE"
    stored = "" if element.temporary else " USING parquet"
    return f"{made} {element.name}{stored} AS {compiler.process(element.query, **kw)}"


def create_table_as(conn: sa.Connection, name: str, query: sa.Select) -> int | None:
    """Write ``query``'s rows into a new table ``name``: one statement, each row written once. Returns
    the number of rows written where the engine reports it (``Traits.counts_created_rows``), else None.
    On Spark the literals go inline (PyHive takes no parameters), as everywhere audlang runs SQL there."""
    if is_spark(conn):
        sql = str(CreateTableAs(name, query).compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        _driver(conn).exec_driver_sql(sql)
        return None
    result = conn.execute(CreateTableAs(name, query))
    rows = result.rowcount if traits(conn).counts_created_rows else -1
    result.close()
    return rows if rows >= 0 else None


def replace_view(conn: sa.Connection, name: str, select_sql: str) -> None:
    """Point the view ``name`` at ``select_sql`` (SQL audlang wrote, of plain names), made if missing.

    ``CREATE OR REPLACE VIEW`` keeps the view itself (on PostgreSQL its grants and the views built on
    it); SQLite has none: a DROP and a CREATE, in the caller's transaction."""
    plain_name(name)
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")
        conn.exec_driver_sql(f"CREATE VIEW {name} AS {select_sql}")
        return
    _driver(conn).exec_driver_sql(f"CREATE OR REPLACE VIEW {name} AS {select_sql}")


def rename_table(conn: sa.Connection, old: str, new: str) -> None:
    """A catalog change: no row is read or written."""
    _driver(conn).exec_driver_sql(f"ALTER TABLE {plain_name(old)} RENAME TO {plain_name(new)}")


def drop_table(conn: sa.Connection, name: str) -> None:
    _driver(conn).exec_driver_sql(f"DROP TABLE IF EXISTS {plain_name(name)}")


def drop_view(conn: sa.Connection, name: str) -> None:
    _driver(conn).exec_driver_sql(f"DROP VIEW IF EXISTS {plain_name(name)}")


def create_index(conn: sa.Connection, table: str, columns: Sequence[str]) -> None:
    """The index ``<table>_key`` on ``columns``, where indexes help (not on DuckDB, nor Spark)."""
    if not traits(conn).indexes_help:
        return
    conn.exec_driver_sql(f"CREATE INDEX {plain_name(table + '_key')} ON {plain_name(table)} "
                         f"({', '.join(plain_name(c) for c in columns)})")
