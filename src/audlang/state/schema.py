"""Upgrades of the state's tables, one function per version step, run in place in one transaction.

Version 0 is the prototype layout (before locking and history):
``audlang_state(serial INTEGER)`` with one row and
``audlang_segments(name TEXT PRIMARY KEY, definition TEXT, members INTEGER, as_of TEXT)``.
Version 1 (``store``) adds the lineage, campaigns and destinations, stable
object ids, the lock and the history.
"""

from __future__ import annotations

import json
import uuid

import sqlalchemy as sa

from audlang.state import store


def _v0_to_v1(conn: sa.Connection) -> None:
    inspector = sa.inspect(conn)
    serial = conn.execute(sa.text("SELECT serial FROM audlang_state")).scalar() or 0
    segments = []
    if inspector.has_table("audlang_segments"):
        segments = conn.execute(sa.text(
            "SELECT name, definition, members, as_of FROM audlang_segments ORDER BY name")).fetchall()
    conn.execute(sa.text("DROP TABLE audlang_state"))
    store.metadata.create_all(conn)
    stamp = store.now()
    conn.execute(store.state_table.insert().values(
        id=1, schema_version=1, lineage=str(uuid.uuid4()), serial=int(serial) + 1, updated_at=stamp))
    for row in segments:
        conn.execute(store.objects_table.insert().values(
            kind="segment", name=row.name, object_id=str(uuid.uuid4()), definition=row.definition, paused=False,
            description=None, depends_on="[]", lists="[]", relative=False, members=row.members, as_of=row.as_of,
            refreshed_at=None, created_at=stamp, updated_at=stamp))
    if inspector.has_table("audlang_segments"):
        conn.execute(sa.text("DROP TABLE audlang_segments"))
    conn.execute(store.history_table.insert().values(
        seq=1, apply_id="upgrade", recorded_at=stamp, serial=int(serial) + 1, event="state upgraded",
        detail=json.dumps({"from": 0, "to": 1})))


UPGRADES = {0: _v0_to_v1}


def upgrade(conn: sa.Connection, version: int) -> None:
    """Bring the tables from ``version`` to ``store.SCHEMA_VERSION``, step by step."""
    while version < store.SCHEMA_VERSION:
        UPGRADES[version](conn)
        version += 1
    conn.execute(store.state_table.update().values(schema_version=store.SCHEMA_VERSION))
