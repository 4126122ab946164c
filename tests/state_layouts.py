"""The state database as earlier audlangs left it, for the tests of its upgrades.

Each layout is the DDL of its time, copied from the code that wrote it (not derived from today's tables,
which would move with them):

- the core tables: version 0 (the prototype: ``audlang_state(serial)``, ``audlang_segments``) and version 1
  (``state/store.py`` before the sync tables joined the state's schema version);
- the sync's control tables with their own version in ``audlang_sync_meta``: version 1 (the acknowledged
  membership in ``audlang_sync_members``; ``audlang_sync_targets`` only from its later days) and version 2
  (``sync/engine.py`` before the sync tables moved to ``state/``), and the layouts between the two that an
  upgrade of that time left (some of version 2's columns added).
"""

from __future__ import annotations

import sqlalchemy as sa

#: What the sync's version 2 added to its version 1 tables (``prepare_state``'s inline ALTERs).
SYNC_2_COLUMNS = {"audlang_sync_targets": ("target_id", "ticks"),
                  "audlang_sync_batches": ("status", "tick", "accepted")}
LINEAGE = "old-lineage"


def _core_v1(metadata: sa.MetaData) -> None:
    sa.Table(
        "audlang_state", metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("lineage", sa.String(64), nullable=False),
        sa.Column("serial", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )
    sa.Table(
        "audlang_objects", metadata,
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("name", sa.String(500), primary_key=True),
        sa.Column("object_id", sa.String(64), nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("depends_on", sa.Text, nullable=False),  # JSON list
        sa.Column("lists", sa.Text, nullable=False),  # JSON list
        sa.Column("relative", sa.Boolean, nullable=False),
        sa.Column("members", sa.Integer),
        sa.Column("as_of", sa.String(40)),
        sa.Column("refreshed_at", sa.String(40)),
        sa.Column("created_at", sa.String(40)),
        sa.Column("updated_at", sa.String(40)),
    )
    sa.Table(
        "audlang_lock", metadata,
        sa.Column("name", sa.String(20), primary_key=True),
        sa.Column("lock_id", sa.String(64), nullable=False),
        sa.Column("operation", sa.String(40), nullable=False),
        sa.Column("who", sa.String(200), nullable=False),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", sa.String(40), nullable=False),
        sa.Column("version", sa.String(40), nullable=False),
    )
    sa.Table(
        "audlang_history", metadata,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("apply_id", sa.String(64), nullable=False),
        sa.Column("recorded_at", sa.String(40), nullable=False),
        sa.Column("serial", sa.Integer, nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(20)),
        sa.Column("name", sa.String(500)),
        sa.Column("object_id", sa.String(64)),
        sa.Column("detail", sa.Text),
    )


def _sync(metadata: sa.MetaData, version: int, targets: bool, added: tuple[str, ...]) -> None:
    """The sync's tables of its own ``version``; for version 1, with those of version 2's columns in ``added``."""
    def kept(table: str, *columns: sa.Column) -> list[sa.Column]:
        late = SYNC_2_COLUMNS.get(table, ())
        return [c for c in columns if c.name not in late or version >= 2 or c.name in added]

    sa.Table(
        "audlang_sync_meta", metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
    )
    if targets:
        sa.Table("audlang_sync_targets", metadata, *kept(
            "audlang_sync_targets",
            sa.Column("target", sa.String(1600), primary_key=True),
            sa.Column("audience", sa.String(64), nullable=False),  # hash of the settings naming the vendor audience
            sa.Column("target_id", sa.String(64)),  # names the target's rows in the warehouse log
            sa.Column("ticks", sa.BigInteger),  # the last tick handed out
        ))
    sa.Table("audlang_sync_batches", metadata, *kept(
        "audlang_sync_batches",
        sa.Column("target", sa.String(1600), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("operation", sa.String(10), nullable=False),
        sa.Column("idempotency_key", sa.String(100), nullable=False),
        sa.Column("members", sa.Text, nullable=False),  # JSON: [[customer_id, key, fingerprint, data], …]
        sa.Column("planned_at", sa.String(40), nullable=False),
        sa.Column("status", sa.String(10)),  # planned (NULL in version 1), acked
        sa.Column("tick", sa.BigInteger),  # once acked: the tick its accepted members are appended under
        sa.Column("accepted", sa.Text),  # once acked: JSON like members, as the destination accepted them
    ))
    sa.Table(
        "audlang_sync_errors", metadata,
        sa.Column("target", sa.String(1600), primary_key=True),
        sa.Column("customer_id", sa.String(500), primary_key=True),
        sa.Column("operation", sa.String(10), primary_key=True),
        sa.Column("campaign", sa.String(500), nullable=False),
        sa.Column("group_name", sa.String(500), nullable=False),
        sa.Column("destination", sa.String(500), nullable=False),
        sa.Column("member_key", sa.String(500), nullable=False),
        sa.Column("status", sa.String(100), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("first_at", sa.String(40), nullable=False),
        sa.Column("last_at", sa.String(40), nullable=False),
    )
    sa.Table(
        "audlang_sync_runs", metadata,
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("target", sa.String(1600), primary_key=True),
        sa.Column("campaign", sa.String(500), nullable=False),
        sa.Column("group_name", sa.String(500), nullable=False),
        sa.Column("destination", sa.String(500), nullable=False),
        sa.Column("started_at", sa.String(40), nullable=False),
        sa.Column("finished_at", sa.String(40)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text),  # JSON: the SyncResult's counts and message
    )
    if version == 1:
        sa.Table(
            "audlang_sync_members", metadata,
            sa.Column("target", sa.String(1600), primary_key=True),
            sa.Column("customer_id", sa.String(500), primary_key=True),
            sa.Column("member_key", sa.String(500), nullable=False),
            sa.Column("fingerprint", sa.Text, nullable=False),  # the identifiers and fields as sent
            sa.Column("data", sa.Text, nullable=False),  # JSON: the identifiers and fields as sent (+ vendor ids)
        )


def make(engine: sa.Engine, core: int | None, sync: int | None, *, targets: bool = True,
         added: tuple[str, ...] = (), meta_row: bool = True) -> sa.MetaData:
    """The state of an earlier audlang in the empty database of ``engine``: its core tables of version
    ``core`` (None: none, a sync run alone), its sync tables of their own version ``sync`` (None: none).
    ``targets``: version 1 had ``audlang_sync_targets`` only later; ``added``: version 2's columns an
    interrupted upgrade of that time added already; ``meta_row``: ``audlang_sync_meta`` holds its row.
    Returns the tables made (not those of version 0, made by hand)."""
    metadata = sa.MetaData()
    if core == 1:
        _core_v1(metadata)
    if sync is not None:
        _sync(metadata, sync, targets, added)
    with engine.begin() as conn:
        if core == 0:
            conn.execute(sa.text("CREATE TABLE audlang_state (serial INTEGER)"))
            conn.execute(sa.text("INSERT INTO audlang_state VALUES (7)"))
            conn.execute(sa.text("CREATE TABLE audlang_segments (name TEXT PRIMARY KEY, definition TEXT, "
                                 "members INTEGER, as_of TEXT)"))
            conn.execute(sa.text("INSERT INTO audlang_segments VALUES ('Recent', "
                                 "'segment \"Recent\" < has_purchased within last 90 days >\n', 0, '2024-11-30')"))
        metadata.create_all(conn)
        if core == 1:
            conn.execute(metadata.tables["audlang_state"].insert().values(
                id=1, schema_version=1, lineage=LINEAGE, serial=3, updated_at="2024-11-30T00:00:00Z"))
            conn.execute(metadata.tables["audlang_history"].insert().values(
                seq=1, apply_id="a1", recorded_at="2024-11-30T00:00:00Z", serial=3, event="apply finished"))
        if sync is not None and meta_row:
            conn.execute(metadata.tables["audlang_sync_meta"].insert().values(id=1, schema_version=sync))
    return metadata


def columns(conn: sa.Connection, table: str) -> set[str]:
    """A table's column names, read the way every engine answers (DuckDB's dialect reflects none)."""
    return set(conn.execute(sa.text(f"SELECT * FROM {table} WHERE 1 = 0")).keys())


def downgrade_sync_to_v1(conn: sa.Connection) -> None:
    """Today's state turned back into one of the sync's version 1 (core version 1): version 2's columns
    dropped, ``audlang_sync_meta`` back at 1 (the members table is the caller's to fill)."""
    for table, added in SYNC_2_COLUMNS.items():
        for column in added:
            conn.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {column}"))
    conn.execute(sa.text("CREATE TABLE audlang_sync_meta (id INTEGER PRIMARY KEY, schema_version INTEGER NOT NULL)"))
    conn.execute(sa.text("INSERT INTO audlang_sync_meta VALUES (1, 1)"))
    conn.execute(sa.text("UPDATE audlang_state SET schema_version = 1"))
    conn.execute(sa.text("CREATE TABLE audlang_sync_members (target VARCHAR(1600), customer_id VARCHAR(500), "
                         "member_key VARCHAR(500), fingerprint TEXT, data TEXT, PRIMARY KEY (target, customer_id))"))
