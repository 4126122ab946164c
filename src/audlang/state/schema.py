"""Upgrades of the state's tables, one function per version step, run in place in one transaction.

The state has one schema version for all its tables (``store.SCHEMA_VERSION``) and this one chain of
upgrades; the history records each upgrade once, with the versions it went from and to.

Version 0 is the prototype layout (before locking and history):
``audlang_state(serial INTEGER)`` with one row and
``audlang_segments(name TEXT PRIMARY KEY, definition TEXT, members INTEGER, as_of TEXT)``.
Version 1 (``store``) adds the lineage, campaigns and destinations, stable
object ids, the lock and the history.
Version 2 makes the sync's control tables state tables (``sync_tables``):
until then they kept a version of their own in ``audlang_sync_meta`` (1 or
2, their version 1 without the targets' ids and ticks and the batches'
status, tick and accepted members); they are brought to the current layout,
created if missing, and ``audlang_sync_meta`` is dropped.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import sqlalchemy as sa

from audlang.state import store, sync_tables
from audlang.state.clock import now


def _v0_to_v1(conn: sa.Connection) -> None:
    inspector = sa.inspect(conn)
    serial = conn.execute(sa.text("SELECT serial FROM audlang_state")).scalar() or 0
    segments = []
    if inspector.has_table("audlang_segments"):
        segments = conn.execute(sa.text(
            "SELECT name, definition, members, as_of FROM audlang_segments ORDER BY name")).fetchall()
    conn.execute(sa.text("DROP TABLE audlang_state"))
    store.metadata.create_all(conn)
    stamp = now()
    conn.execute(store.state_table.insert().values(
        id=1, schema_version=1, lineage=str(uuid.uuid4()), serial=int(serial) + 1, updated_at=stamp))
    for row in segments:
        conn.execute(store.objects_table.insert().values(
            kind="segment", name=row.name, object_id=str(uuid.uuid4()), definition=row.definition, paused=False,
            description=None, depends_on="[]", lists="[]", relative=False, members=row.members, as_of=row.as_of,
            refreshed_at=None, created_at=stamp, updated_at=stamp))
    if inspector.has_table("audlang_segments"):
        conn.execute(sa.text("DROP TABLE audlang_segments"))


def _v1_to_v2(conn: sa.Connection) -> None:
    sync_tables.upgrade(conn)


UPGRADES: dict[int, Callable[[sa.Connection], None]] = {0: _v0_to_v1, 1: _v1_to_v2}


def upgrade(conn: sa.Connection, version: int) -> None:
    """Bring the tables from ``version`` to ``store.SCHEMA_VERSION``, step by step, in the caller's
    transaction; one history event records it."""
    start = version
    while version < store.SCHEMA_VERSION:
        UPGRADES[version](conn)
        version += 1
    h = store.history_table
    seq = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(h.c.seq), 0))).scalar()) + 1
    serial = conn.execute(sa.select(store.state_table.c.serial)).scalar()
    conn.execute(h.insert().values(seq=seq, apply_id="upgrade", recorded_at=now(), serial=serial,
                                   event="state upgraded",
                                   detail=json.dumps({"from": start, "to": store.SCHEMA_VERSION})))
    conn.execute(store.state_table.update().values(schema_version=store.SCHEMA_VERSION))
