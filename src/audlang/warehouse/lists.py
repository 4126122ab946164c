"""``in list`` files: loaded into the warehouse as a table named by the file's content hash."""

from __future__ import annotations

import csv
import hashlib
import io
import os

import sqlalchemy as sa

from audlang.check.model import ListFile
from audlang.compile.compiler import list_table_name
from audlang.diagnostics import AudlangError, Diagnostic
from audlang.files import UnsafeFile, read_regular
from audlang.warehouse.engines import read_only
from audlang.warehouse.tables import bulk_insert, has_table, traits


def load_list(conn: sa.Connection, listed: ListFile) -> None:
    """Bulk-load an ``in list`` file's customer ids into its table unless it is already there.

    The table is named by the file's content hash, so an edited file is a new table. The file is
    read as the checker read it (a regular file, not through a symlink, no larger than it was) and
    its content must still have the checked hash: a file swapped since is refused, never loaded.
    A read-only warehouse (a command that only reads a DuckDB file) gets a temporary table, which
    the compiled SQL finds under the same name. On Spark the table is written under a temporary name
    and renamed, so a crash never leaves a half-loaded list behind the final name.
    """
    table_name = list_table_name(listed.sha256)
    if has_table(conn, table_name):
        return
    try:
        read = read_regular(listed.path, [os.path.dirname(listed.path)], max(listed.size, 1))
    except (OSError, UnsafeFile) as error:
        raise AudlangError(Diagnostic.sourceless(
            "E407", f"list file {listed.written} cannot be loaded: {error}", listed.written)) from None
    if hashlib.sha256(read.content).hexdigest() != listed.sha256:
        raise AudlangError(Diagnostic.sourceless(
            "E407", f"list file {listed.written} changed since it was checked; run the command again",
            listed.written))
    ids = list_ids(read.content, listed.written)
    rows = [{"customer_id": i} for i in ids]
    if not traits(conn).transactions:
        partial = f"{table_name}_loading"
        driver = conn.execution_options(no_parameters=True)
        driver.exec_driver_sql(f"DROP TABLE IF EXISTS {partial}")
        driver.exec_driver_sql(f"CREATE TABLE {partial} (customer_id STRING) USING parquet")
        bulk_insert(conn, sa.table(partial, sa.column("customer_id")), rows)
        driver.exec_driver_sql(f"ALTER TABLE {partial} RENAME TO {table_name}")
        return
    prefixes = ["TEMPORARY"] if read_only(conn) else []
    t = sa.Table(table_name, sa.MetaData(), sa.Column("customer_id", sa.String, primary_key=True), prefixes=prefixes)
    t.create(conn)
    bulk_insert(conn, t, rows)


def list_ids(content: bytes, written: str) -> list[str]:
    """The distinct ``customer_id`` values of a list file's content, sorted (header names trimmed, as
    the checker reads them; any line ending)."""
    text = content.decode("utf-8-sig", "replace")
    try:
        rows = csv.reader(io.StringIO(text, newline=""))
        header = [name.strip() for name in next(rows, [])]
        column = header.index("customer_id")
        return sorted({row[column].strip() for row in rows if len(row) > column} - {""})
    except (csv.Error, ValueError) as error:
        raise AudlangError(Diagnostic.sourceless(
            "E407", f"list file {written} cannot be read as CSV: {str(error)[:120]}", written)) from None
