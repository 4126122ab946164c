"""What a database URL names, before any engine is opened: part of the engine layer.

The engine layer is ``compile/dialects.py`` (how each dialect writes SQL), this module (which
backend a URL names, which file it opens) and the ``warehouse`` package (engines, membership
storage, bulk loads). No other module compares dialect names (``tests/test_engine_layer.py``).
This module is pure and sits at the bottom of the layers, so that the checker can ask what a
destination's URL opens without importing SQLAlchemy engines.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

#: Backends whose database is a file (relative paths are relative to the project).
FILE_BACKENDS = ("duckdb", "sqlite")
#: Spark SQL through its Thrift server (PyHive), and Databricks: no transactions, no DELETE.
SPARK_BACKENDS = ("hive", "databricks")


def backend(url: str | URL) -> str | None:
    """The backend a URL names (``duckdb``, ``postgresql``, ``hive`` …), or None for a non-URL."""
    try:
        return make_url(url).get_backend_name()
    except ArgumentError:
        return None


def database_file(url: str | URL) -> str | None:
    """The file a DuckDB or SQLite URL opens (as written, maybe relative), or None (a server, memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() not in FILE_BACKENDS:
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith(("md:", "motherduck:")):
        return None
    return database


def is_uri_filename(url: str | URL) -> bool:
    """A URI filename (``file:…``, ``?uri=true``) in a file URL: SQLite decodes it after any check of ours."""
    parsed = make_url(url)
    return parsed.get_backend_name() in FILE_BACKENDS and (
        (parsed.database or "").startswith("file:") or "uri" in parsed.query)


def is_spark(url: str | URL) -> bool:
    return backend(url) in SPARK_BACKENDS


def is_duckdb_file(url: str | URL) -> bool:
    return backend(url) == "duckdb" and database_file(url) is not None


def with_driver(url: str | URL) -> URL:
    """``postgresql://`` means psycopg 3 (the driver audlang installs), not SQLAlchemy's psycopg2 default."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed
