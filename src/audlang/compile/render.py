"""Compiled queries as SQL text for a named dialect (``audlang sql`` and the golden files).

The text is what a SQL console runs: every literal rendered by the dialect (``dialects`` holds
the typed dates, timestamps and numbers, and the string literals of the dialects that need
them), and no ``%`` doubled. SQLAlchemy doubles ``%`` when it compiles for a DB-API whose
paramstyle is ``format``/``pyformat`` (psycopg, duckdb-engine, Snowflake), because such a
driver would read a lone ``%`` as a placeholder; printed text never reaches a driver that way,
so it is compiled with the ``named`` paramstyle, which keeps ``%`` as it is.

A segment that reads ``in list`` files refers to each by its warehouse table
(``audlang_list_<sha256[:16]>``); a comment above the query names the tables and the files, which
``audlang members``, ``insights`` and ``apply`` load into the warehouse when they are missing.
"""

from __future__ import annotations

import json

from sqlalchemy.dialects import registry
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.default import DefaultDialect
from sqlalchemy.exc import CompileError, NoSuchModuleError

from audlang.check import Model
from audlang.compile.asof import AsOf
from audlang.compile.compiler import SegmentCompiler, list_files_used, list_table_name
from audlang.diagnostics import AudlangError, Diagnostic

#: the extra that brings each dialect (pyproject's optional-dependencies; README "Warehouse extras")
INSTALL_HINTS = {
    "snowflake": "pip install 'audlang[snowflake]'",
    "bigquery": "pip install 'audlang[bigquery]'",
    "trino": "pip install 'audlang[trino]'",
    "hive": "pip install 'audlang[spark]'",
}


def dialect_for(name: str) -> Dialect:
    """The dialect to print SQL for: ``named`` paramstyle, so no ``%`` is doubled (module docstring)."""
    try:
        dialect: type[DefaultDialect] = registry.load(name)  # the plugin loader is untyped: a dialect class
        return dialect(paramstyle="named")
    except (NoSuchModuleError, ImportError):
        hint = INSTALL_HINTS.get(name)
        raise AudlangError(Diagnostic.sourceless(
            "E204", "this SQL dialect is not installed" + (f": {hint}" if hint else ""), name)) from None


def list_tables_comment(model: Model, name: str) -> str:
    """``--`` lines naming the list tables the segment reads and the files behind them ("" when none)."""
    listed = list_files_used(model, model.segments[name].condition)
    if not listed:
        return ""
    lines = ["-- reads the customer_id column of in-list files, as warehouse tables:"]
    for item in sorted(listed, key=lambda f: list_table_name(f.sha256)):
        # json.dumps: quoted, and a line break or any control character in a path stays on the line
        lines.append(f"--   {list_table_name(item.sha256)}: {json.dumps(item.written, ensure_ascii=False)}")
    lines.append("-- `audlang apply` loads a missing one "
                 f"(so do `audlang members {json.dumps(name, ensure_ascii=False)}` "
                 "and insights, except on a DuckDB file, which they only read)")
    return "\n".join(lines) + "\n"


def segment_sql(model: Model, name: str, dialect_name: str, as_of: AsOf) -> str:
    query = SegmentCompiler(model, as_of).segment(name)
    dialect = dialect_for(dialect_name)
    try:
        text = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    except (CompileError, NotImplementedError, TypeError):
        # A value the dialect cannot print as a literal (none of the language's values today):
        # the query with placeholders, and the values as comments.
        compiled = query.compile(dialect=dialect)
        params = "\n".join(f"--   {k} = {v!r}" for k, v in compiled.params.items())
        text = f"{compiled}\n-- parameters:\n{params}"
    return list_tables_comment(model, name) + text.strip() + ";\n"
