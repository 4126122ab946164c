"""The state store: what is deployed, under an increasing serial and a lineage, the lock and the history.

Lives in the state database (``state`` in audlang.toml, ``AUDLANG_STATE``, ``--state URL``; by
default a SQLite file beside a DuckDB warehouse file, else the warehouse: ``warehouse.urls``),
opened through ``warehouse.open_engine`` in the state role. Its tables carry a schema version; a
newer audlang upgrades an older state in place (``schema``). May import SQLAlchemy, ``warehouse``
and ``audlang.diagnostics``.
"""

from audlang.state.model import DeployedObject, HistoryEvent, LockInfo, Snapshot
from audlang.state.store import LockHeld, StateStore, open_engine, refuse_unsupported

__all__ = ["DeployedObject", "HistoryEvent", "LockHeld", "LockInfo", "Snapshot", "StateStore", "open_engine",
           "refuse_unsupported"]
