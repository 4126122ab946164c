"""The targets of the syncs: which campaign groups go to which destinations, and what the state records of
each (its id in the warehouse log, its audience key, its tick counter), under its names before and after a
``moved``; the targets the project no longer sends; the move of the sync's version 1 membership.

A target's key in the state is ``campaign \\x1f group \\x1f destination`` (``destinations.Target.key``).
The tables are the state's (``state.sync_tables``); this module reads and writes their rows for one target
at a time. May import ``campaigns``, ``destinations``, ``check``, ``state`` and SQLAlchemy.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import sqlalchemy as sa

from audlang import ast
from audlang.campaigns import groups as campaign_groups
from audlang.check import Model
from audlang.destinations import Target, missing_env
from audlang.state import sync_tables
from audlang.state.sync_tables import LIVE_TABLES, batches_table, targets_table, v1_members_table
from audlang.sync import delta as wh
from audlang.sync.delta import ADD, Acked
from audlang.vocabulary import ObjectKind

#: A target the project no longer sends: what the plan and apply say of it.
STOPPED_MESSAGE = ("no longer in the project: its members stay in the destination (audlang sends no removals "
                   "for a sync it no longer has) and its sync state is dropped; sending the group again later "
                   "starts over with the whole group")


# ------------------------------------------------------------------ the project's targets


def targets(model: Model) -> list[tuple[ast.Campaign, str, ast.Destination]]:
    """(campaign, group, destination) for every group sent somewhere; holdouts are never sent."""
    out = []
    for campaign in model.campaigns.values():
        for group in campaign_groups(campaign):
            if not group.synced:
                continue
            for name in group.destinations:
                if name in model.destinations:
                    out.append((campaign, group.name, model.destinations[name]))
    return out


def missing_secrets(model: Model, env: Mapping[str, str] | None = None) -> list[str]:
    """Messages for every environment variable a destination that would sync needs and is not set
    (checked at plan time, before anything is sent)."""
    used = {d.name for c, _g, d in targets(model) if not c.paused and not d.paused}
    out = []
    for name in sorted(used):
        for key, variable in missing_env(model.destinations[name], env):
            out.append(f'destination "{name}": environment variable {variable} ({key}) is not set')
    return out


def before_moves(model: Model, target: Target) -> Target:
    """The target under the names it had before the model's ``moved`` campaigns and destinations."""
    campaign, destination = target.campaign, target.destination
    for m in reversed(model.moves):
        if m.kind == ObjectKind.CAMPAIGN and campaign == m.new:
            campaign = m.old
        elif m.kind == ObjectKind.DESTINATION and destination == m.new:
            destination = m.old
    return Target(campaign, target.group, destination)


# ------------------------------------------------------------------ what the state records of a target


def has_targets(conn: sa.Connection) -> bool:
    """Whether the state holds any sync target (so a project without campaigns still drops them)."""
    if not sync_tables.present(conn):
        return False
    return conn.execute(sa.select(targets_table.c.target).limit(1)).first() is not None


def recorded(conn: sa.Connection, model: Model, target: Target, current: str, legacy: str
             ) -> tuple[str | None, int, bool]:
    """The target's id in the warehouse log (None: nothing acknowledged yet, or for another audience than
    ``current`` now), its pending batches, and whether its state still has the key of before #16
    (``legacy``, ``audience.legacy_key``). Read under the names before the moves while a move is not
    followed yet (a plan)."""
    if not sync_tables.present(conn):  # a plan before the first sync
        return None, 0, False
    t = targets_table
    key = target
    row = conn.execute(sa.select(t.c.audience, t.c.target_id).where(t.c.target == key.key)).first()
    if row is None:  # a plan before the move is followed: the old name's state
        previous = before_moves(model, target)
        if previous != target:
            key = previous
            row = conn.execute(sa.select(t.c.audience, t.c.target_id).where(t.c.target == key.key)).first()
    target_id, is_legacy = None, False
    if row is not None and row.audience in ("", current):
        target_id = row.target_id  # another audience now: the whole group is sent to it
    elif row is not None and row.audience == legacy:
        target_id, is_legacy = row.target_id, row.target_id is not None
    pending = conn.execute(sa.select(sa.func.count()).select_from(batches_table)
                           .where(batches_table.c.target == key.key)).scalar()
    return target_id, int(pending or 0), is_legacy


def recorded_log_id(conn: sa.Connection, keys: tuple[str, ...]) -> str | None:
    """The log id the state records under the first of ``keys`` that has one."""
    t = targets_table
    for key in dict.fromkeys(keys):
        found = conn.execute(sa.select(t.c.target_id).where(t.c.target == key)).scalar()
        if found:
            return found
    return None


def audience_of(conn: sa.Connection, target: Target) -> str | None:
    """The audience key the state records for the target."""
    t = targets_table
    return conn.execute(sa.select(t.c.audience).where(t.c.target == target.key)).scalar()


def rekey(conn: sa.Connection, target: Target, old: str, new: str) -> None:
    """The target's audience key ``old`` replaced by ``new`` (nothing when it records another)."""
    t = targets_table
    conn.execute(t.update().where(t.c.target == target.key, t.c.audience == old).values(audience=new))


def next_tick(conn: sa.Connection, target: Target) -> int:
    """The target's next tick, taken (in the caller's transaction: a later batch never reuses it)."""
    t = targets_table
    tick = int(conn.execute(sa.select(t.c.ticks).where(t.c.target == target.key)).scalar() or 0) + 1
    conn.execute(t.update().where(t.c.target == target.key).values(ticks=tick))
    return tick


def drop(conn: sa.Connection, key: str) -> None:
    """The target's live sync state (its row, plan and rejections) deleted; its runs stay."""
    for table in LIVE_TABLES:
        conn.execute(table.delete().where(table.c.target == key))


def log_id_for(state: sa.Engine, warehouse: sa.Engine, target: Target, current: str, legacy: str) -> str:
    """The target's id in the warehouse log, recorded with the audience its destination writes (``current``);
    when that is another audience now, a new id (what the old one acknowledged says nothing about the new
    one) and the old plan and rejections are dropped: the group goes to the new audience in full. A state
    with the key of before #16 (``legacy``) keeps its id (the syncer's ``_upgrade`` re-keys it)."""
    t = targets_table
    with state.begin() as conn:
        row = conn.execute(sa.select(t.c.audience, t.c.target_id).where(t.c.target == target.key)).first()
        if row is not None and row.audience in ("", current, legacy) and row.target_id:
            if row.audience == "":
                conn.execute(t.update().where(t.c.target == target.key).values(audience=current))
            return row.target_id
        if row is not None and row.audience in (current, legacy):  # version 1, nothing acknowledged: keep its plan
            new_id = uuid.uuid4().hex
            conn.execute(t.update().where(t.c.target == target.key).values(audience=current, target_id=new_id,
                                                                             ticks=0))
            return new_id
        old = row.target_id if row is not None else None
        if row is not None:
            drop(conn, target.key)
        new_id = uuid.uuid4().hex
        conn.execute(t.insert().values(target=target.key, audience=current, target_id=new_id, ticks=0))
    if old:
        with warehouse.begin() as conn:
            wh.forget(conn, old)
    return new_id


# ------------------------------------------------------------------ moved, stopped


def follow_moves(model: Model, state: sa.Engine, warehouse: sa.Engine) -> None:
    """``moved campaign`` / ``moved destination``: the sync state of the old name passes to the new one,
    so a rename sends nothing again (run before syncing; a move already followed changes nothing)."""
    moves = [(m.kind, m.old, m.new) for m in model.moves if m.kind in (ObjectKind.CAMPAIGN, ObjectKind.DESTINATION)]
    if not moves:
        return
    # The runs stay under the names they had (history); the live state moves.
    forgotten = []
    with state.begin() as conn:
        keys = set()
        for table in LIVE_TABLES:
            keys.update(r[0] for r in conn.execute(sa.select(table.c.target).distinct()))
        for key in sorted(keys):
            campaign, group, destination = key.split("\x1f")
            for kind, old, new in moves:
                if kind == ObjectKind.CAMPAIGN and campaign == old:
                    campaign = new
                elif kind == ObjectKind.DESTINATION and destination == old:
                    destination = new
            new_key = Target(campaign, group, destination).key
            if new_key == key:
                continue
            t = targets_table
            if conn.execute(sa.select(t.c.target).where(t.c.target == new_key)).first() is not None:
                # The new name has its own state already (synced before the move was declared): it wins.
                forgotten.extend(r[0] for r in conn.execute(sa.select(t.c.target_id).where(t.c.target == key))
                                 if r[0])
                drop(conn, key)
                continue
            for table in LIVE_TABLES:
                values = {"target": new_key}
                if "campaign" in table.c:
                    values.update(campaign=campaign, destination=destination)
                conn.execute(table.update().where(table.c.target == key).values(**values))
    if forgotten:
        with warehouse.begin() as conn:
            for old_id in forgotten:
                wh.forget(conn, old_id)


def stopped(model: Model, state: sa.Engine) -> list[tuple[Target, str | None]]:
    """Targets with sync state that the project no longer sends (a campaign, group or destination
    deleted, or a group no longer sent there), with their ids in the warehouse log."""
    with state.connect() as conn:
        if not sync_tables.present(conn):
            return []
        t = targets_table
        rows = conn.execute(sa.select(t.c.target, t.c.target_id)).fetchall()
    current = set()
    for c, g, d in targets(model):
        target = Target(c.name, g, d.name)
        current.update((target.key, before_moves(model, target).key))
    return [(Target(*key.split("\x1f")), found) for key, found in sorted(rows, key=lambda r: r[0])
            if key not in current]


# ------------------------------------------------------------------ the sync's version 1


def migrate_v1(state: sa.Engine, warehouse: sa.Engine) -> None:
    """The sync's version 1 kept each target's acknowledged membership in the state database
    (``audlang_sync_members``, left by the state's upgrades for this): append it to the warehouse log (one
    tick per target, a new target id), then drop the old table, so nothing acknowledged is sent again.
    Batches version 1 planned keep their members ([customer_id, key, data]: no fingerprint, so those
    members are sent once more on the next change)."""
    with state.connect() as conn:
        if not sa.inspect(conn).has_table(sync_tables.V1_MEMBERS):
            return
        old = v1_members_table
        rows = conn.execute(sa.select(old.c.target, old.c.customer_id, old.c.member_key, old.c.fingerprint,
                                      old.c.data).order_by(old.c.target)).fetchall()
        known = dict(conn.execute(sa.select(targets_table.c.target, targets_table.c.target_id)).fetchall())
    by_target: dict[str, list[Acked]] = {}
    for target, customer_id, key, print_, data in rows:
        by_target.setdefault(target, []).append(Acked(customer_id, key, print_, data))
    ids = {target: known.get(target) or uuid.uuid4().hex for target in by_target}
    with warehouse.begin() as conn:
        wh.ensure_log(conn)
        for target, members in by_target.items():
            if not wh.has_tick(conn, ids[target], 1):
                wh.append(conn, ids[target], 1, ADD, members)
    t = targets_table
    with state.begin() as conn:
        for target, found in ids.items():
            if conn.execute(sa.select(t.c.target).where(t.c.target == target)).first():
                conn.execute(t.update().where(t.c.target == target).values(target_id=found, ticks=1))
            else:
                conn.execute(t.insert().values(target=target, audience="", target_id=found, ticks=1))
        conn.execute(sa.text(f"DROP TABLE {sync_tables.V1_MEMBERS}"))
