"""The sync's control tables in the state database: their definitions, their creation and their upgrades.

A sync (``audlang.sync``) keeps here, beside what is deployed, what makes its
exactly-once protocol hold across interrupted runs:

- ``audlang_sync_targets``: per target (a campaign group sent to one
  destination) its audience key, its id in the warehouse's acknowledged log
  and its tick counter;
- ``audlang_sync_batches``: the batch plan of a sync in progress;
- ``audlang_sync_errors``: the members a destination rejected, not sent yet;
- ``audlang_sync_runs``: one row per sync (history).

They carry the state's one schema version (``store.SCHEMA_VERSION``) and are
upgraded by its one chain (``schema.UPGRADES``). Before version 2 they kept a
version of their own in ``audlang_sync_meta`` (1, then 2) and could be alone in
a database (a sync run outside plan and apply); ``upgrade`` brings any of
those layouts to the current one, in the caller's transaction. The warehouse
side of a sync (its acknowledged log, ``audlang.sync.delta``) is no state
table and is not here. May import SQLAlchemy and ``audlang.diagnostics`` only.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from audlang.diagnostics import AudlangError, Diagnostic, shown_url

metadata = sa.MetaData()
targets_table = sa.Table(
    "audlang_sync_targets", metadata,
    sa.Column("target", sa.String(1600), primary_key=True),
    sa.Column("audience", sa.String(64), nullable=False),  # hash of the settings naming the vendor audience
    sa.Column("target_id", sa.String(64)),  # names the target's rows in the warehouse log
    sa.Column("ticks", sa.BigInteger),  # the last tick handed out
)
batches_table = sa.Table(
    "audlang_sync_batches", metadata,
    sa.Column("target", sa.String(1600), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("operation", sa.String(10), nullable=False),
    sa.Column("idempotency_key", sa.String(100), nullable=False),
    sa.Column("members", sa.Text, nullable=False),  # JSON: [[customer_id, key, fingerprint, data], …]
    sa.Column("planned_at", sa.String(40), nullable=False),
    sa.Column("status", sa.String(10)),  # planned (NULL when planned before version 2), acked
    sa.Column("tick", sa.BigInteger),  # once acked: the tick its accepted members are appended under
    sa.Column("accepted", sa.Text),  # once acked: JSON like members, as the destination accepted them
)
errors_table = sa.Table(
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
runs_table = sa.Table(
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
#: A target's live sync state (its runs stay: they are history, under the names they had).
LIVE_TABLES = (targets_table, batches_table, errors_table)

#: Before version 2: the sync tables' own schema version, one row (``id = 1``).
OWN_META = "audlang_sync_meta"
#: The last version ``audlang_sync_meta`` recorded; a higher one was written by a newer audlang.
OWN_META_LAST = 2
#: The columns the sync's own version 2 added to its version 1 tables (ALTERed in place: whichever are
#: missing, so a layout of any time between the two is brought up).
ADDED_IN_OWN_2 = {"audlang_sync_targets": ("target_id", "ticks"),
                  "audlang_sync_batches": ("status", "tick", "accepted")}
#: The sync's own version 1 kept the acknowledged membership here; the sync moves it to the warehouse log
#: (``audlang.sync.targets.migrate_v1``, which needs the warehouse), so upgrades leave it where it is.
V1_MEMBERS = "audlang_sync_members"
v1_members_table = sa.table(V1_MEMBERS, sa.column("target"), sa.column("customer_id"), sa.column("member_key"),
                            sa.column("fingerprint"), sa.column("data"))


def columns(conn: sa.Connection, table: str) -> set[str]:
    """The table's column names (DuckDB's SQLAlchemy dialect cannot reflect columns)."""
    return set(conn.execute(sa.select(sa.text("*")).select_from(sa.table(table)).limit(0)).keys())


def present(conn: sa.Connection) -> bool:
    """Whether the database holds the sync tables (a prepared state always does; none before any state)."""
    return sa.inspect(conn).has_table(targets_table.name)


def found(conn: sa.Connection) -> bool:
    """Whether the database holds sync tables of any layout, or their own version of before version 2."""
    inspector = sa.inspect(conn)
    return any(inspector.has_table(name) for name in (OWN_META, *metadata.tables))


def upgrade(conn: sa.Connection) -> None:
    """The sync tables of any earlier layout brought to the current one in the caller's transaction, the
    missing ones created (all of them for a new state), ``audlang_sync_meta`` dropped.

    Refuses (E507) sync tables a newer audlang wrote (a version of their own above ``OWN_META_LAST``)."""
    inspector = sa.inspect(conn)
    own: int | None = None
    if inspector.has_table(OWN_META):
        own = int(conn.execute(sa.text(f"SELECT schema_version FROM {OWN_META}")).scalar() or 1)
        if own > OWN_META_LAST:
            raise AudlangError(Diagnostic.sourceless(
                "E507", f"the sync tables of the state were written by a newer audlang (their own schema version "
                f"{own} in {OWN_META}; this audlang knows up to {OWN_META_LAST}); upgrade audlang",
                shown_url(conn.engine.url)))
    for name, added in ADDED_IN_OWN_2.items():
        if not inspector.has_table(name):
            continue
        have = columns(conn, name)
        for column in (metadata.tables[name].c[c] for c in added if c not in have):
            add_column(conn, name, column)
    if own is not None:
        conn.execute(sa.text(f"DROP TABLE {OWN_META}"))
    metadata.create_all(conn)


def add_column(conn: sa.Connection, table: str, column: sa.Column) -> None:
    """``ALTER TABLE … ADD COLUMN`` for one nullable column of the current definition."""
    kind = column.type.compile(dialect=conn.dialect)
    conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {column.name} {kind}"))


def prepare(engine: Engine, create: bool = True) -> int | None:
    """The state behind ``engine`` created (with ``create``) or upgraded, sync tables included, in one
    transaction (``StateStore.prepare``); the schema version now in the database (None: no state)."""
    from audlang.state.store import StateStore

    return StateStore(str(engine.url), engine).prepare(create)
