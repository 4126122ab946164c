"""Tables in any warehouse: does one exist, make one, load rows in bulk, and what the engine can do.

Callers ask what an engine *can* do (``traits``), never which engine it is: Spark has no
transactions, no DELETE on its Parquet tables and no temporary tables; DuckDB's ART indexes make
deletes slow and its scans need none.
"""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import sqlalchemy as sa

from audlang import backends


@attrs.frozen
class Traits:
    transactions: bool = True  # DELETE, UPDATE and rollback
    temporary_tables: bool = True
    indexes_help: bool = True  # an index on a log/membership table pays for itself


def traits(bind: sa.Connection | sa.Engine) -> Traits:
    name = bind.dialect.name
    if name in backends.SPARK_BACKENDS:
        return Traits(transactions=False, temporary_tables=False, indexes_help=False)
    if name == "duckdb":
        return Traits(indexes_help=False)
    return Traits()


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
