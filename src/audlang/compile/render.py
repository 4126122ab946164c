"""Compiled queries as SQL text for a named dialect (``audlang sql`` and the golden files)."""

from __future__ import annotations

from sqlalchemy.dialects import registry
from sqlalchemy.exc import CompileError, NoSuchModuleError

from audlang.check import Model
from audlang.compile.asof import AsOf
from audlang.compile.compiler import SegmentCompiler
from audlang.diagnostics import AudlangError, Diagnostic

INSTALL_HINTS = {
    "snowflake": "pip install snowflake-sqlalchemy",
    "bigquery": "pip install sqlalchemy-bigquery",
    "trino": "pip install trino",
    "hive": "pip install 'audlang[spark]'",
}


def dialect_for(name: str):
    try:
        return registry.load(name)()
    except (NoSuchModuleError, ImportError):
        hint = INSTALL_HINTS.get(name)
        raise AudlangError(Diagnostic.sourceless(
            "E204", "this SQL dialect is not installed" + (f": {hint}" if hint else ""), name)) from None


def segment_sql(model: Model, name: str, dialect_name: str, as_of: AsOf) -> str:
    query = SegmentCompiler(model, as_of).segment(name)
    dialect = dialect_for(dialect_name)
    try:
        text = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    except (CompileError, NotImplementedError, TypeError):
        compiled = query.compile(dialect=dialect)
        params = "\n".join(f"--   {k} = {v!r}" for k, v in compiled.params.items())
        text = f"{compiled}\n-- parameters:\n{params}"
    return text.strip() + ";\n"
