"""The warehouse: the one place where engines differ (with ``compile/dialects.py`` and ``backends``).

- ``engines``: ``open_engine(url, role)``, the one way an engine is made (warehouse or state);
- ``duckdb_files``: the embedded DuckDB file shared by a team (one writer, readers, the state beside it);
- ``loading``: whole tables loaded fast into each engine (the synthetic warehouse);
- ``urls``: where the warehouse and the state are, resolved once;
- ``errors``: database errors → one diagnostic;
- ``tables``: ``has_table``, ``create_table``, ``bulk_insert`` and the engine's ``traits``;
- ``lists``: ``in list`` files loaded as tables;
- ``scratch``: a run's shared facts (``compile.facts``) as temporary tables of one connection;
- ``membership``: materialized membership behind one interface (and the move of an older layout);
- ``generations``: its storage, a generation table per refresh behind a view, on every engine;
- ``spark``: Spark's catalog;
- ``engine_output``: ``audlang members`` written by the engine (DuckDB), and its query started early.

Passwords never appear in messages: URLs are shown by ``diagnostics.shown_url``.

The names below load their module when first asked for (``__getattr__``), so that a command loads only
the engine code it uses: ``audlang members`` reads its last query's text before SQLAlchemy is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from audlang.diagnostics import shown_url as shown
    from audlang.warehouse import duckdb_files
    from audlang.warehouse.duckdb_files import WarehouseBusy, holding
    from audlang.warehouse.engines import (
        Role, SessionLock, harden, has_session_locks, open_engine, prepare_connection, read_only, session_lock,
    )
    from audlang.warehouse.errors import errors_translated, reason, translate
    from audlang.warehouse.lists import list_ids, load_list
    from audlang.warehouse.membership import LEGACY_TABLE, Change, Filter, Membership, Previewed, for_bind, nobody
    from audlang.warehouse.scratch import shared_facts
    from audlang.warehouse.tables import Traits, bulk_insert, create_table, csv_text, has_table, raw_rows, traits
    from audlang.warehouse.urls import DEFAULT_WAREHOUSE, Urls, default_state, file_missing, resolve, resolve_url, \
        state_url_for

#: module: the names it gives this package (``shown`` is ``diagnostics.shown_url``).
_MODULES: dict[str, tuple[str, ...]] = {
    "audlang.warehouse.duckdb_files": ("WarehouseBusy", "holding"),
    "audlang.warehouse.engines": ("Role", "SessionLock", "harden", "has_session_locks", "open_engine",
                                  "prepare_connection", "read_only", "session_lock"),
    "audlang.warehouse.errors": ("errors_translated", "reason", "translate"),
    "audlang.warehouse.lists": ("list_ids", "load_list"),
    "audlang.warehouse.membership": ("LEGACY_TABLE", "Change", "Filter", "Membership", "Previewed", "for_bind",
                                     "nobody"),
    "audlang.warehouse.scratch": ("shared_facts",),
    "audlang.warehouse.tables": ("Traits", "bulk_insert", "create_table", "csv_text", "has_table", "raw_rows",
                                 "traits"),
    "audlang.warehouse.urls": ("DEFAULT_WAREHOUSE", "Urls", "default_state", "file_missing", "resolve",
                               "resolve_url", "state_url_for"),
}
_HOME = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    if name == "shown":
        from audlang.diagnostics import shown_url

        value: Any = shown_url
    elif name in _HOME:
        value = getattr(importlib.import_module(_HOME[name]), name)
    elif name == "duckdb_files":
        value = importlib.import_module("audlang.warehouse.duckdb_files")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def connect(url: str, must_exist: bool = True, role: Role | None = None) -> Engine:
    """An Engine for the warehouse at ``url`` (``open_engine``; read commands pass ``Role.READ``, the
    default is ``Role.WRITE``)."""
    from audlang.warehouse.engines import Role, open_engine

    return open_engine(url, Role.WRITE if role is None else role, must_exist)


__all__ = [
    "Change", "DEFAULT_WAREHOUSE", "Filter", "LEGACY_TABLE", "Membership", "Previewed", "Role", "SessionLock",
    "Traits", "Urls",
    "WarehouseBusy", "bulk_insert", "connect", "create_table", "csv_text", "duckdb_files", "default_state",
    "errors_translated", "file_missing", "for_bind", "harden", "has_session_locks", "has_table", "holding",
    "list_ids", "load_list", "nobody", "open_engine",
    "prepare_connection", "raw_rows", "read_only", "reason", "resolve", "resolve_url", "session_lock", "shared_facts",
    "shown", "state_url_for", "traits", "translate",
]


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
