"""Delta sync of campaign groups to destinations, with exactly-once effect.

Two databases take part. The **warehouse** holds what each *target* (a
campaign group sent to one destination) acknowledged, as an append-only log
beside the membership it is compared with (``sync.delta``): the delta is one
SQL query and only the changes reach Python, to be sent. The **state
database** (transactional: DuckDB, SQLite or PostgreSQL, never Spark) holds
the control data: each target's id, audience and tick counter
(``audlang_sync_targets``), the batches planned and not yet done
(``audlang_sync_batches``), rejected members (``audlang_sync_errors``) and
every run (``audlang_sync_runs``). By default both are one DuckDB file.

A sync of one target:

1. finishes what an interrupted sync left: a batch marked acknowledged is
   appended to the log (what of it is not there already), then dropped; a
   batch still planned is sent again under its recorded idempotency key;
2. computes the delta in the warehouse: the group's members joined with
   ``customer_360``, identifiers normalized in SQL, members without a usable
   key and duplicates counted and dropped, compared with the acknowledged
   (customer, key) pairs; ``mirror`` sends adds and removes, ``add`` only
   adds; a removal only ever removes what audlang itself added (the log holds
   nothing else), and a removal of a key that a desired member of any group
   sent to the same vendor audience holds is *retired* (recorded, not sent);
   the vendor audience of a target is what its destination writes for the
   group, defaults included (``sync.audience``);
3. checks the guards: a sync that would empty the audience, or remove more
   than ``max_removal`` percent of it (default 20), is held back unless the
   destination allows it (``allow_empty``, a higher ``max_removal``) or the
   caller passed ``allow_removals``;
4. records the batch plan (retirements, removes, then adds, each sorted by key,
   cut at the destination's batch size) in one state transaction *before
   sending*;
5. sends the batches in order. After each: one state transaction records the
   rejected members and marks the batch acknowledged under the target's next
   tick (with the members the destination accepted); the accepted members are
   appended to the warehouse log under that tick; a last state transaction
   drops the batch.

Killed anywhere, the next sync re-sends at most the one batch that was in
flight (under the same idempotency key: for the vendors an add or remove of
the same members is a no-op the second time, for webhooks the key lets the
receiver drop it) and loses nothing: every change not acknowledged is still
planned or still in the delta, and an acknowledgement is never appended twice
(its tick). Rejected members are not acknowledged, so the next sync tries them
again. A paused campaign or destination is not synced and keeps its state.

May import ``campaigns``, ``destinations``, ``check``, ``compile``, ``state``,
``warehouse`` and SQLAlchemy (STYLE §1).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import attrs
import sqlalchemy as sa

from audlang import ast, interrupts
from audlang.campaigns import groups as campaign_groups, materialize_campaigns, prepare_connection
from audlang.check import Model
from audlang.destinations import (
    Batch, BatchResult, DestinationUnavailable, Member, SettingsError, Target, missing_env,
    open_destination, resolve_settings,
)
from audlang.state.clock import now
from audlang.sync import audience
from audlang.sync import delta as wh
from audlang.sync.delta import ADD, REMOVE, Acked, Counts
from audlang.vocabulary import BatchStatus, MemberOperation, ObjectKind, SyncPreviewStatus, SyncStatus

#: A removal recorded without sending: the key is a desired member's now (see ``delta.removes``).
RETIRE = MemberOperation.RETIRE

SYNC_SCHEMA_VERSION = 2
#: Test hook: ``point:seq`` (points before_send, after_send, after_ack, after_append) kills this process
#: with SIGKILL there.
FAULT_ENV = "AUDLANG_SYNC_FAULT"

metadata = sa.MetaData()
meta_table = sa.Table(
    "audlang_sync_meta", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
)
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
    sa.Column("status", sa.String(10)),  # planned (NULL in version 1), acked
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
#: A target the project no longer sends: what the plan and apply say of it.
STOPPED_MESSAGE = ("no longer in the project: its members stay in the destination (audlang sends no removals "
                   "for a sync it no longer has) and its sync state is dropped; sending the group again later "
                   "starts over with the whole group")
#: Version 1 kept the acknowledged membership in the state database; ``migrate_v1`` moves it.
V1_MEMBERS = "audlang_sync_members"


# ------------------------------------------------------------------ values


@attrs.frozen
class Delta:
    """What one sync would send to one target (counted before anything is sent)."""

    target: Target
    counts: Counts = Counts()
    adds: tuple[Acked, ...] = ()  # fetched only to send (a plan counts)
    removes: tuple[Acked, ...] = ()
    retires: tuple[Acked, ...] = ()  # removals recorded, not sent
    mode: str = "mirror"
    pending_batches: int = 0  # planned by an interrupted sync, sent first
    guard: str | None = None  # why the sync is held back

    @property
    def n_adds(self) -> int:
        return self.counts.adds

    @property
    def n_removes(self) -> int:
        return self.counts.stale - self.counts.retire if self.mode == "mirror" else 0

    @property
    def skipped(self) -> int:
        return self.counts.skipped_no_identifier + self.counts.skipped_duplicate


@attrs.frozen
class SyncResult:
    target: Target
    kind: str  # the destination's kind
    status: SyncStatus = attrs.field(converter=SyncStatus)
    added: int = 0
    removed: int = 0
    skipped: int = 0
    rejected: int = 0
    requests: int = 0
    retries: int = 0
    batches: int = 0
    resumed_batches: int = 0
    message: str | None = None
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {"campaign": self.target.campaign, "group": self.target.group,
                "destination": self.target.destination, "kind": self.kind, "status": self.status,
                "added": self.added, "removed": self.removed, "skipped": self.skipped, "rejected": self.rejected,
                "requests": self.requests, "retries": self.retries, "batches": self.batches,
                "resumed_batches": self.resumed_batches, "message": self.message,
                "seconds": round(self.seconds, 3)}


@attrs.frozen
class SyncError:
    campaign: str
    group: str
    destination: str
    customer_id: str
    key: str
    operation: MemberOperation = attrs.field(converter=MemberOperation)
    status: str  # the destination's, as it answered
    message: str
    attempts: int
    first_at: str
    last_at: str

    def to_json(self) -> dict:
        return attrs.asdict(self)


# ------------------------------------------------------------------ targets


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


# ------------------------------------------------------------------ the state tables


def prepare_state(engine: sa.Engine) -> int:
    """Create or upgrade the sync tables of the state database; the schema version found (0: none)."""
    with engine.begin() as conn:
        inspector = sa.inspect(conn)
        if not inspector.has_table("audlang_sync_meta"):
            metadata.create_all(conn)
            conn.execute(meta_table.insert().values(id=1, schema_version=SYNC_SCHEMA_VERSION))
            return 0
        version = conn.execute(sa.select(meta_table.c.schema_version)).scalar() or 1
        if version > SYNC_SCHEMA_VERSION:
            raise RuntimeError(f"the sync state was written by a newer audlang (version {version})")
        if version == 1:
            for table, columns in (("audlang_sync_targets", ("target_id VARCHAR(64)", "ticks BIGINT")),
                                   ("audlang_sync_batches", ("status VARCHAR(10)", "tick BIGINT", "accepted TEXT"))):
                have = _columns(conn, table)
                for column in columns:
                    if column.split()[0] not in have:
                        conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {column}"))
            conn.execute(meta_table.update().values(schema_version=SYNC_SCHEMA_VERSION))
        metadata.create_all(conn)
        return version


def _columns(conn: sa.Connection, table: str) -> set[str]:
    """The table's column names (DuckDB's SQLAlchemy dialect cannot reflect columns)."""
    return set(conn.execute(sa.select(sa.text("*")).select_from(sa.table(table)).limit(0)).keys())


def migrate_v1(state: sa.Engine, warehouse_engine: sa.Engine) -> None:
    """Version 1 kept each target's acknowledged membership in the state database: append it to the
    warehouse log (one tick per target, a new target id), then drop the old table, so nothing acknowledged
    is sent again. Batches version 1 planned keep their members ([customer_id, key, data]: no fingerprint,
    so those members are sent once more on the next change)."""
    with state.connect() as conn:
        if not sa.inspect(conn).has_table(V1_MEMBERS):
            return
        old = sa.table(V1_MEMBERS, sa.column("target"), sa.column("customer_id"), sa.column("member_key"),
                       sa.column("fingerprint"), sa.column("data"))
        rows = conn.execute(sa.select(old.c.target, old.c.customer_id, old.c.member_key, old.c.fingerprint,
                                      old.c.data).order_by(old.c.target)).fetchall()
        known = dict(conn.execute(sa.select(targets_table.c.target, targets_table.c.target_id)).fetchall())
    by_target: dict[str, list[Acked]] = {}
    for target, customer_id, key, print_, data in rows:
        by_target.setdefault(target, []).append(Acked(customer_id, key, print_, data))
    ids = {target: known.get(target) or uuid.uuid4().hex for target in by_target}
    with warehouse_engine.begin() as conn:
        wh.ensure_log(conn)
        for target, members in by_target.items():
            if not wh.has_tick(conn, ids[target], 1):
                wh.append(conn, ids[target], 1, ADD, members)
    with state.begin() as conn:
        for target, target_id in ids.items():
            if conn.execute(sa.select(targets_table.c.target).where(targets_table.c.target == target)).first():
                conn.execute(targets_table.update().where(targets_table.c.target == target)
                             .values(target_id=target_id, ticks=1))
            else:
                conn.execute(targets_table.insert().values(target=target, audience="", target_id=target_id, ticks=1))
        conn.execute(sa.text(f"DROP TABLE {V1_MEMBERS}"))


def _encode(rows: Iterable[Acked]) -> str:
    """``[[customer_id, key, fingerprint, data], …]``; each ``data`` is JSON text already, embedded as it is."""
    dumps = json.dumps
    return "[" + ",".join(f"[{dumps(r.customer_id)},{dumps(r.key)},{dumps(r.fingerprint)},{r.data}]"
                          for r in rows) + "]"


def _decode(text: str) -> list[Acked]:
    out = []
    for row in json.loads(text):
        if len(row) == 3:  # planned by version 1: no fingerprint
            row = [row[0], row[1], "", row[2]]
        out.append(Acked(row[0], row[1], row[2], json.dumps(row[3], separators=(",", ":"))))
    return out


def _member(row: Acked) -> Member:
    return Member(row.customer_id, row.key, json.loads(row.data))


@attrs.frozen
class Planned:
    """A batch of the plan as the state database holds it."""

    batch: Batch
    rows: tuple[Acked, ...]
    status: BatchStatus = attrs.field(default=BatchStatus.PLANNED, converter=BatchStatus)
    tick: int | None = None
    accepted: tuple[Acked, ...] = ()


def _pending(conn: sa.Connection, target: Target) -> list[Planned]:
    t = batches_table
    out = []
    for r in conn.execute(sa.select(t).where(t.c.target == target.key).order_by(t.c.seq)).fetchall():
        rows = tuple(_decode(r.members))
        batch = Batch(target, r.operation, r.seq, r.idempotency_key, tuple(_member(m) for m in rows))
        out.append(Planned(batch, rows, r.status or BatchStatus.PLANNED, r.tick,
                           tuple(_decode(r.accepted)) if r.accepted else ()))
    return out


def plan_batches(target: Target, removes: list[Acked], adds: list[Acked], batch_size: int, run_id: str,
                 first_seq: int = 1, retires: list[Acked] = ()) -> list[Planned]:
    """Retirements, removes, then adds, each cut at ``batch_size``: deterministic; keys derived from the run
    and the seq."""
    out: list[Planned] = []
    seq = first_seq
    for operation, rows in ((RETIRE, list(retires)), (REMOVE, removes), (ADD, adds)):
        for start in range(0, len(rows), batch_size):
            key = hashlib.sha256(f"{target.key}\x1f{run_id}\x1f{seq}".encode()).hexdigest()[:40]
            chunk = tuple(rows[start:start + batch_size])
            out.append(Planned(Batch(target, operation, seq, key, tuple(_member(r) for r in chunk)), chunk))
            seq += 1
    return out


def guard_of(counts: Counts, mode: str, max_removal: float = 20.0, allow_empty: bool = False,
             allow_removals: bool = False) -> str | None:
    """Why a sync is held back: it would empty the audience, or remove more than ``max_removal`` percent."""
    departing = counts.departing if mode == "mirror" else 0
    acked = counts.acknowledged
    if not acked or not departing or allow_removals:
        return None
    if not counts.desired and not allow_empty:
        return (f"held back: this sync would empty the audience (remove all {acked:,} members); set "
                "allow_empty = true on the destination or plan with --allow-removals to send it")
    if counts.desired and departing * 100 > max_removal * acked:
        return (f"held back: this sync would remove {departing:,} of {acked:,} members "
                f"({departing / acked:.0%}, more than max_removal = {max_removal:g}%); raise max_removal "
                "on the destination or plan with --allow-removals to send it")
    return None


# ------------------------------------------------------------------ running


def _fault(point: str, seq: int, hook: Callable[[str, int], None] | None) -> None:
    if hook is not None:
        hook(point, seq)
    wanted = os.environ.get(FAULT_ENV)
    if wanted and wanted == f"{point}:{seq}":
        os.kill(os.getpid(), signal.SIGKILL)


class Syncer:
    """Runs the syncs of one apply: computes deltas in the warehouse, keeps the state, talks to the destinations."""

    def __init__(self, model: Model, warehouse: sa.Engine, state: sa.Engine, root: Path | str = ".",
                 env: Mapping[str, str] | None = None, allow_removals: bool = False,
                 hook: Callable[[str, int], None] | None = None, http_options: dict | None = None,
                 progress: Callable[[Target, int, int], None] | None = None, prepare: bool = True,
                 exports_root: Path | str | None = None):
        self.model = model
        self.warehouse = warehouse
        self.state = state
        self.root = Path(root)
        #: the folder outside the project that file destinations may also write under (audlang.toml)
        self.exports_root = Path(exports_root) if exports_root is not None else None
        self.env = os.environ if env is None else env
        self.allow_removals = allow_removals
        self.hook = hook
        self.http_options = http_options or {}
        self.progress = progress
        self.run_id = str(uuid.uuid4())
        self._errored: set[str] = set()
        #: campaign -> its live assignment query (a plan, before the campaigns are materialized)
        self.sources: dict[str, sa.Select] = {}
        #: the vendor audience of every target (``sync.audience``): its own state, and who shares it
        self.audiences = audience.Audiences(targets(model))
        if prepare:
            prepare_state(state)
            migrate_v1(state, warehouse)

    # ------------------------------------------------------------------ reading
    def _recorded(self, conn: sa.Connection, target: Target, decl: ast.Destination
                  ) -> tuple[str | None, int, bool]:
        """The target's id in the warehouse log (None: nothing acknowledged yet), its pending batches, and
        whether its state still has the key of before #16 (``audience.legacy_key``; ``_upgrade``)."""
        inspector = sa.inspect(conn)
        if not inspector.has_table("audlang_sync_targets"):  # a plan before the first sync
            return None, 0, False
        if "target_id" not in _columns(conn, "audlang_sync_targets"):
            return None, 0, False  # version 1, migrated by the next apply: the plan counts the whole group
        t = targets_table
        key = target
        row = conn.execute(sa.select(t.c.audience, t.c.target_id).where(t.c.target == key.key)).first()
        if row is None:  # a plan before the move is followed: the old name's state
            previous = self._before_moves(target)
            if previous != target:
                key = previous
                row = conn.execute(sa.select(t.c.audience, t.c.target_id).where(t.c.target == key.key)).first()
        target_id, legacy = None, False
        if row is not None and row.audience in ("", self.audiences.key(target, decl)):
            target_id = row.target_id  # another audience now: the whole group is sent to it
        elif row is not None and row.audience == audience.legacy_key(decl):
            target_id, legacy = row.target_id, row.target_id is not None
        pending = conn.execute(sa.select(sa.func.count()).select_from(batches_table)
                               .where(batches_table.c.target == key.key)).scalar()
        return target_id, int(pending or 0), legacy

    def compute(self, campaign: ast.Campaign, group: str, decl: ast.Destination,
                source: sa.Select | None = None, fetch: bool = False) -> Delta:
        """The delta of one target, counted in the warehouse; with ``fetch`` the changed members too."""
        target = Target(campaign.name, group, decl.name)
        settings = resolve_settings(decl, {v: "-" for _k, v in _env_refs(decl)})  # secrets not needed to count
        identifiers, fields = settings.identifiers, settings.fields
        with self.state.connect() as conn:
            target_id, pending, legacy = self._recorded(conn, target, decl)
        want = wh.desired(self.model, campaign.name, group, identifiers, fields, source)
        want = attrs.evolve(want, shared=tuple(self._shared(target, decl)))
        # A plan on a state keyed before #16 counts what the apply's ``_upgrade`` appends first.
        split = self._split(target, decl) if legacy and target_id else None
        with self.warehouse.connect() as conn:
            prepare_connection(conn)  # SQLite: the functions the normalization and the buckets use
            exists = wh.has_log(conn)
            with wh.staged(conn, want) if fetch else contextlib.nullcontext(want) as want:
                extra = wh.unsent_removals(target_id, want.desired, *split) if split and exists else None
                counts = wh.counts(conn, want, target_id, exists, extra)
                guard = guard_of(counts, settings.mode, settings.max_removal, settings.allow_empty,
                                 self.allow_removals)
                adds: list[Acked] = []
                removes: list[Acked] = []
                retires: list[Acked] = []
                if fetch and guard is None:
                    if counts.adds:
                        adds = wh.adds(conn, want, target_id, exists, identifiers, extra)
                    if settings.mode == "mirror" and counts.stale:
                        removes, retires = wh.removes(conn, want, target_id, exists, extra)
        return Delta(target, counts, tuple(adds), tuple(removes), tuple(retires), settings.mode, pending, guard)

    def _shared(self, target: Target, decl: ast.Destination) -> Iterable[sa.CTE]:
        """The desired rows of the other targets that write to the same vendor audience with the same member
        key (``audience.Audiences.sharing``: two Attentive groups of one segment, not two Braze values)."""
        for i, c, g, d in self.audiences.sharing(target, decl):
            settings = audience.settings_of(d)
            yield wh.desired(self.model, c.name, g, settings.identifiers, settings.fields,
                             self.sources.get(c.name), prefix=f"audlang_shared{i}").desired

    def _split(self, target: Target, decl: ast.Destination) -> tuple[list[str], list[sa.CTE]] | None:
        """For a target whose state has the key of before #16: the log ids and desired rows of the targets
        that key merged it with and the current key tells apart (``audience.Audiences.split_from``; for
        ``delta.unsent_removals``), or None when it merged none."""
        partners = self.audiences.split_from(target, decl)
        if not partners:
            return None
        t = targets_table
        ids, wanted = [], []
        with self.state.connect() as conn:
            for i, c, g, d in partners:
                other = Target(c.name, g, d.name)
                for key in dict.fromkeys((other.key, self._before_moves(other).key)):
                    found = conn.execute(sa.select(t.c.target_id).where(t.c.target == key)).scalar()
                    if found:
                        ids.append(found)
                        break
                settings = audience.settings_of(d)
                wanted.append(wh.desired(self.model, c.name, g, settings.identifiers, settings.fields,
                                         self.sources.get(c.name), prefix=f"audlang_split{i}").desired)
        return ids, wanted

    def _upgrade(self, campaign: ast.Campaign, group: str, decl: ast.Destination, target_id: str) -> None:
        """Re-key a target whose state has the audience key of before #16 (``audience.legacy_key``): its
        acknowledged membership stays (the legacy key named the same audience, so nothing is sent again).
        When that key took it for one audience with targets the current key tells apart, the removals it
        may have retired (``delta.unsent_removals``) are first appended to its log as acknowledged, under a
        tick of their own, so this sync's delta sends them (and the guards count them). Run once the
        batches of an interrupted sync are done; killed halfway, the next sync finds what is left to do."""
        target = Target(campaign.name, group, decl.name)
        legacy, current = audience.legacy_key(decl), self.audiences.key(target, decl)
        t = targets_table
        with self.state.connect() as conn:
            recorded = conn.execute(sa.select(t.c.audience).where(t.c.target == target.key)).scalar()
        if recorded != legacy:
            return
        settings = audience.settings_of(decl)
        split = self._split(target, decl)
        rows: list[Acked] = []
        if split is not None:
            own = wh.desired(self.model, campaign.name, group, settings.identifiers, settings.fields,
                             self.sources.get(campaign.name))
            with self.warehouse.connect() as conn:
                prepare_connection(conn)
                if wh.has_log(conn):
                    rows = wh.fetch(conn, wh.unsent_removals(target_id, own.desired, *split))
        if rows:
            with self.state.begin() as conn:  # the tick first: a later batch never reuses it
                tick = int(conn.execute(sa.select(t.c.ticks).where(t.c.target == target.key)).scalar() or 0) + 1
                conn.execute(t.update().where(t.c.target == target.key).values(ticks=tick))
            with self.warehouse.begin() as conn:
                wh.append(conn, target_id, tick, ADD, rows)
        with self.state.begin() as conn:
            conn.execute(t.update().where(t.c.target == target.key, t.c.audience == legacy).values(audience=current))

    # ------------------------------------------------------------------ writing
    def _record_plan(self, batches: list[Planned]) -> None:
        stamp = now()
        with self.state.begin() as conn:
            rows = [{"target": p.batch.target.key, "seq": p.batch.seq, "operation": p.batch.operation,
                     "idempotency_key": p.batch.idempotency_key, "members": _encode(p.rows),
                     "planned_at": stamp, "status": BatchStatus.PLANNED} for p in batches]
            for start in range(0, len(rows), 100):
                conn.execute(batches_table.insert(), rows[start:start + 100])

    def _acknowledge(self, planned: Planned, result: BatchResult) -> Planned:
        """One state transaction: rejections are recorded and the batch is marked acknowledged under the
        target's next tick, with the members the destination accepted (as it returned them)."""
        batch = planned.batch
        target = batch.target
        e, t = errors_table, targets_table
        stamp = now()
        prints = {r.customer_id: r.fingerprint for r in planned.rows}
        accepted = tuple(Acked(m.customer_id, m.key, prints.get(m.customer_id, ""),
                               json.dumps(dict(m.data), separators=(",", ":"))) for m in result.accepted)
        operation = REMOVE if batch.operation == RETIRE else batch.operation
        with self.state.begin() as conn:
            ids = [m.customer_id for m in result.accepted]
            errored = [i for i in ids if i in self._errored]
            for start in range(0, len(errored), 500):
                conn.execute(e.delete().where(e.c.target == target.key, e.c.operation == operation,
                                              e.c.customer_id.in_(errored[start:start + 500])))
            for rejection in result.rejected:
                m = rejection.member
                self._errored.add(m.customer_id)
                where = sa.and_(e.c.target == target.key, e.c.customer_id == m.customer_id,
                                e.c.operation == batch.operation)
                before = conn.execute(sa.select(e.c.attempts, e.c.first_at).where(where)).first()
                conn.execute(e.delete().where(where))
                conn.execute(e.insert().values(
                    target=target.key, customer_id=m.customer_id, operation=batch.operation,
                    campaign=target.campaign, group_name=target.group, destination=target.destination,
                    member_key=m.key, status=str(rejection.status)[:100], message=rejection.message[:2000],
                    attempts=(before.attempts if before else 0) + max(1, rejection.attempts),
                    first_at=before.first_at if before else stamp, last_at=stamp))
            tick = int(conn.execute(sa.select(t.c.ticks).where(t.c.target == target.key)).scalar() or 0) + 1
            conn.execute(t.update().where(t.c.target == target.key).values(ticks=tick))
            conn.execute(batches_table.update()
                         .where(batches_table.c.target == target.key, batches_table.c.seq == batch.seq)
                         .values(status=BatchStatus.ACKED, tick=tick, accepted=_encode(accepted)))
        return attrs.evolve(planned, status=BatchStatus.ACKED, tick=tick, accepted=accepted)

    def _append(self, planned: Planned, target_id: str) -> None:
        """The accepted members into the warehouse log (unless already there), then the batch is done."""
        batch = planned.batch
        if planned.accepted:
            with self.warehouse.begin() as conn:
                wh.ensure_log(conn)
                done = wh.appended(conn, target_id, planned.tick)
                wh.append(conn, target_id, planned.tick, REMOVE if batch.operation == RETIRE else batch.operation,
                          [a for a in planned.accepted if a.customer_id not in done])
        _fault("after_append", batch.seq, self.hook)
        with self.state.begin() as conn:
            conn.execute(batches_table.delete().where(batches_table.c.target == batch.target.key,
                                                      batches_table.c.seq == batch.seq))

    def _target_id(self, target: Target, decl: ast.Destination) -> str:
        """The target's id in the warehouse log, recorded with the audience its destination writes; when
        that is another audience now, a new id (what the old one acknowledged says nothing about the new
        one) and the old plan and rejections are dropped: the group goes to the new audience in full. A
        state with the key of before #16 keeps its id (``_upgrade`` re-keys it)."""
        current, legacy = self.audiences.key(target, decl), audience.legacy_key(decl)
        t = targets_table
        with self.state.begin() as conn:
            row = conn.execute(sa.select(t.c.audience, t.c.target_id).where(t.c.target == target.key)).first()
            if row is not None and row.audience in ("", current, legacy) and row.target_id:
                if row.audience == "":
                    conn.execute(t.update().where(t.c.target == target.key).values(audience=current))
                return row.target_id
            if row is not None and row.audience in (current, legacy):  # version 1, nothing acknowledged: keep its plan
                target_id = uuid.uuid4().hex
                conn.execute(t.update().where(t.c.target == target.key)
                             .values(audience=current, target_id=target_id, ticks=0))
                return target_id
            old = row.target_id if row is not None else None
            if row is not None:
                for table in (batches_table, errors_table):
                    conn.execute(table.delete().where(table.c.target == target.key))
                conn.execute(t.delete().where(t.c.target == target.key))
            target_id = uuid.uuid4().hex
            conn.execute(t.insert().values(target=target.key, audience=current, target_id=target_id, ticks=0))
        if old:
            with self.warehouse.begin() as conn:
                wh.forget(conn, old)
        return target_id

    def _forget_stale_errors(self, target: Target, d: Delta) -> None:
        """Rejections of members whose change is no longer wanted (they left, or came back) are dropped."""
        e = errors_table
        wanted = {(m.customer_id, ADD) for m in d.adds} | \
            {(m.customer_id, REMOVE) for m in (*d.removes, *d.retires)}
        with self.state.begin() as conn:
            rows = conn.execute(sa.select(e.c.customer_id, e.c.operation).where(e.c.target == target.key)).fetchall()
            for cid, operation in rows:
                if (cid, operation) not in wanted:
                    conn.execute(e.delete().where(e.c.target == target.key, e.c.customer_id == cid,
                                                  e.c.operation == operation))

    def _record_run(self, result: SyncResult, started: str) -> None:
        with self.state.begin() as conn:
            conn.execute(runs_table.insert().values(
                run_id=self.run_id, target=result.target.key, campaign=result.target.campaign,
                group_name=result.target.group, destination=result.target.destination, started_at=started,
                finished_at=now(), status=result.status, detail=json.dumps(result.to_json(), sort_keys=True)))

    def _file_shared(self, target: Target) -> str | None:
        """Why a csv target must not write: an earlier target of the model writes the file its path resolves
        to with the environment's values (``destinations.files.shared_files``, once for all targets)."""
        try:
            shared = self._shared_files
        except AttributeError:
            from audlang.destinations.files import shared_files

            shared = self._shared_files = shared_files(
                [(Target(c.name, g, d.name), d) for c, g, d in targets(self.model)], self.env, self.root,
                self.exports_root)
        return shared.get(target)

    # ------------------------------------------------------------------ one target
    def sync(self, campaign: ast.Campaign, group: str, decl: ast.Destination) -> SyncResult:
        target = Target(campaign.name, group, decl.name)
        interrupts.check()  # a stop swallowed by a failing sync (a sql destination's query) ends here
        started, clock = now(), time.monotonic()
        if campaign.paused or decl.paused:
            what = "campaign" if campaign.paused else "destination"
            return SyncResult(target, decl.kind, SyncStatus.PAUSED, message=f"{what} paused: nothing sent, state kept")
        clash = self._file_shared(target)
        if clash is not None:  # another target writes this csv file: never overwrite its rows
            result = SyncResult(target, decl.kind, SyncStatus.FAILED, message=clash)
            self._record_run(result, started)
            return result
        try:
            destination = open_destination(decl, target, self.root, self.env, exports_root=self.exports_root,
                                           **self.http_options)
        except (SettingsError, OSError) as error:
            message = str(error) if isinstance(error, SettingsError) else f"{type(error).__name__}: {error}"
            result = SyncResult(target, decl.kind, SyncStatus.FAILED, message=message)
            self._record_run(result, started)
            return result
        counts = {"added": 0, "removed": 0, "rejected": 0, "batches": 0, "resumed": 0}
        target_id = self._target_id(target, decl)
        with self.state.connect() as conn:
            self._errored = {r[0] for r in conn.execute(sa.select(errors_table.c.customer_id)
                                                        .where(errors_table.c.target == target.key))}
        status, message, skipped = SyncStatus.OK, None, 0
        try:
            with self.state.connect() as conn:
                pending = _pending(conn, target)
            counts["resumed"] = len(pending)
            # An interrupted sync's batches go first, then this sync's own delta.
            for _round in range(2 if pending else 1):
                if not pending:
                    self._upgrade(campaign, group, decl, target_id)
                    d = self.compute(campaign, group, decl, fetch=True)
                    skipped = d.skipped
                    if d.guard:
                        status, message = SyncStatus.HELD, d.guard
                        break
                    pending = plan_batches(target, list(d.removes), list(d.adds), destination.batch_size,
                                           self.run_id, retires=list(d.retires))
                    self._forget_stale_errors(target, d)
                    if not pending:
                        break
                    self._record_plan(pending)
                total = sum(len(p.batch.members) for p in pending)
                done = 0
                for planned in pending:
                    batch = planned.batch
                    # Sent, acknowledged and logged whole: an interrupt waits for the end of the batch
                    # (a second one stops at once; the batch is then sent again under the same key).
                    with interrupts.shielded():
                        if planned.status != BatchStatus.ACKED:
                            _fault("before_send", batch.seq, self.hook)
                            if batch.operation == RETIRE:
                                result = BatchResult(accepted=batch.members)
                            else:
                                result = (destination.add if batch.operation == ADD else destination.remove)(batch)
                            _fault("after_send", batch.seq, self.hook)
                            planned = self._acknowledge(planned, result)
                            _fault("after_ack", batch.seq, self.hook)
                            if batch.operation != RETIRE:
                                counts["added" if batch.operation == ADD else "removed"] += len(result.accepted)
                            counts["rejected"] += len(result.rejected)
                            counts["batches"] += 1
                        self._append(planned, target_id)
                    done += len(batch.members)
                    if self.progress is not None:
                        self.progress(target, done, total)
                pending = []
            if getattr(destination, "needs_membership", False):
                with self.warehouse.connect() as conn:
                    destination.finish(_member(a) for a in wh.acknowledged(conn, target_id))
            with self.warehouse.begin() as conn:
                if wh.has_log(conn):
                    wh.compact(conn, target_id)
            if counts["rejected"] and status == SyncStatus.OK:
                status, message = SyncStatus.PARTIAL, f"{counts['rejected']:,} members rejected (audlang sync errors)"
        except DestinationUnavailable as error:
            status, message = SyncStatus.FAILED, str(error)
        except SettingsError as error:
            status, message = SyncStatus.FAILED, str(error)
        except OSError as error:
            status, message = SyncStatus.FAILED, f"{type(error).__name__}: {error}"
        except sa.exc.SQLAlchemyError as error:
            if decl.kind != "sql":
                raise
            status, message = SyncStatus.FAILED, destination.settings.redact(str(getattr(error, "orig", error)))
        finally:
            requests, retries = getattr(destination, "stats", (0, 0))
            destination.close()
        if status == SyncStatus.OK and not counts["batches"]:
            status = SyncStatus.UNCHANGED
        result = SyncResult(target, decl.kind, status, counts["added"], counts["removed"], skipped,
                            counts["rejected"], requests, retries, counts["batches"], counts["resumed"], message,
                            time.monotonic() - clock)
        self._record_run(result, started)
        return result

    def _before_moves(self, target: Target) -> Target:
        campaign, destination = target.campaign, target.destination
        for m in reversed(self.model.moves):
            if m.kind == ObjectKind.CAMPAIGN and campaign == m.new:
                campaign = m.old
            elif m.kind == ObjectKind.DESTINATION and destination == m.new:
                destination = m.old
        return Target(campaign, target.group, destination)

    def follow_moves(self) -> None:
        """``moved campaign`` / ``moved destination``: the sync state of the old name passes to the new one,
        so a rename sends nothing again (run before syncing; a move already followed changes nothing)."""
        moves = [(m.kind, m.old, m.new) for m in self.model.moves
                 if m.kind in (ObjectKind.CAMPAIGN, ObjectKind.DESTINATION)]
        if not moves:
            return
        # The runs stay under the names they had (history); the live state moves.
        tables = (batches_table, errors_table, targets_table)
        forgotten = []
        with self.state.begin() as conn:
            keys = set()
            for t in tables:
                keys.update(r[0] for r in conn.execute(sa.select(t.c.target).distinct()))
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
                    for table in tables:
                        conn.execute(table.delete().where(table.c.target == key))
                    continue
                for table in tables:
                    values = {"target": new_key}
                    if "campaign" in table.c:
                        values.update(campaign=campaign, destination=destination)
                    conn.execute(table.update().where(table.c.target == key).values(**values))
        if forgotten:
            with self.warehouse.begin() as conn:
                for target_id in forgotten:
                    wh.forget(conn, target_id)

    def stopped(self) -> list[tuple[Target, str | None]]:
        """Targets with sync state that the project no longer sends (a campaign, group or destination
        deleted, or a group no longer sent there), with their ids in the warehouse log."""
        with self.state.connect() as conn:
            if not sa.inspect(conn).has_table("audlang_sync_targets"):
                return []
            has_ids = "target_id" in _columns(conn, "audlang_sync_targets")
            t = targets_table
            rows = conn.execute(sa.select(t.c.target, t.c.target_id if has_ids else sa.null())).fetchall()
        current = set()
        for c, g, d in targets(self.model):
            target = Target(c.name, g, d.name)
            current.update((target.key, self._before_moves(target).key))
        out = []
        for key, target_id in sorted(rows, key=lambda r: r[0]):
            if key not in current:
                out.append((Target(*key.split("\x1f")), target_id))
        return out

    def drop_stopped(self) -> list[SyncResult]:
        """Forget the sync state of stopped targets (their members stay in the destination: audlang sends
        no removals for a sync it no longer has); recorded as runs with status ``stopped``."""
        out = []
        for target, target_id in self.stopped():
            started = now()
            with self.state.begin() as conn:
                for table in (targets_table, batches_table, errors_table):
                    conn.execute(table.delete().where(table.c.target == target.key))
            if target_id:
                with self.warehouse.begin() as conn:
                    wh.forget(conn, target_id)
            kind = self.model.destinations[target.destination].kind \
                if target.destination in self.model.destinations else "removed"
            result = SyncResult(target, kind, SyncStatus.STOPPED, message=STOPPED_MESSAGE)
            self._record_run(result, started)
            out.append(result)
        return out

    def sync_all(self, only: Iterable[str] | None = None) -> list[SyncResult]:
        """Every target of the model (optionally only these campaigns); one failing does not stop the others.
        Targets the project no longer has are dropped first (all campaigns only)."""
        self.follow_moves()
        wanted = set(only) if only is not None else None
        stopped = self.drop_stopped() if wanted is None else []
        return stopped + [self.sync(c, g, d) for c, g, d in targets(self.model) if wanted is None or c.name in wanted]


def _env_refs(decl: ast.Destination):
    from audlang.destinations import env_variables

    return env_variables(decl)


# ------------------------------------------------------------------ reading the state


def _has_state(state: sa.Engine) -> bool:
    with state.connect() as conn:
        return sa.inspect(conn).has_table("audlang_sync_meta")


def has_targets(conn: sa.Connection) -> bool:
    """Whether the state holds any sync target (so a project without campaigns still drops them)."""
    if not sa.inspect(conn).has_table("audlang_sync_targets"):
        return False
    return conn.execute(sa.select(targets_table.c.target).limit(1)).first() is not None


def errors(state: sa.Engine, destination: str | None = None) -> list[SyncError]:
    """The members a destination rejected and that are not sent yet, by destination, campaign, group, key."""
    if not _has_state(state):
        return []
    e = errors_table
    query = sa.select(e).order_by(e.c.destination, e.c.campaign, e.c.group_name, e.c.member_key, e.c.operation)
    if destination is not None:
        query = query.where(e.c.destination == destination)
    with state.connect() as conn:
        return [SyncError(r.campaign, r.group_name, r.destination, r.customer_id, r.member_key, r.operation,
                          r.status, r.message, r.attempts, r.first_at, r.last_at) for r in conn.execute(query)]


def runs(state: sa.Engine) -> list[dict]:
    """Every recorded sync, oldest first."""
    if not _has_state(state):
        return []
    with state.connect() as conn:
        rows = conn.execute(sa.select(runs_table).order_by(runs_table.c.started_at)).fetchall()
    return [{"run_id": r.run_id, "status": r.status, **json.loads(r.detail or "{}")} for r in rows]


# ------------------------------------------------------------------ a whole run (outside plan/apply)


def run(model: Model, warehouse: sa.Engine, state: sa.Engine, as_of, root: Path | str = ".", **options
        ) -> list[SyncResult]:
    """Materialize the campaigns and sync every target (what apply does after the segments)."""
    materialize_campaigns(warehouse, model, as_of)
    return Syncer(model, warehouse, state, root, **options).sync_all()


# ------------------------------------------------------------------ plan and apply


def preview(model: Model, warehouse: sa.Engine, state: sa.Engine, as_of, allow_removals: bool = False,
            env: Mapping[str, str] | None = None, membership: Mapping[str, sa.Select] | None = None) -> tuple:
    """Per campaign group and destination, what a sync after materialization would send (plan time).

    Reads only and counts only: the groups are computed by the live assignment query and compared with
    the acknowledged membership in one query per target; nothing is written, no member leaves the database."""
    from audlang.campaigns.assign import assignment_query, load_lists
    from audlang.compile import SegmentCompiler
    from audlang.plan.model import SyncPreview

    env = os.environ if env is None else env
    compiler = SegmentCompiler(model, as_of, membership=dict(membership or {}))
    syncer = Syncer(model, warehouse, state, env=env, allow_removals=allow_removals, prepare=False)
    syncer.sources = {name: assignment_query(model, name, compiler) for name, c in model.campaigns.items()}
    out = []
    loaded: set[str] = set()
    for campaign, group, decl in targets(model):
        common = dict(campaign=campaign.name, group=group, destination=decl.name, kind=decl.kind)
        if not campaign.paused and campaign.name not in loaded:  # `in list` files, as the segments' preview
            loaded.add(campaign.name)
            with warehouse.begin() as conn:
                load_lists(conn, model, campaign)
        if campaign.paused or decl.paused:
            what = "campaign" if campaign.paused else "destination"
            out.append(SyncPreview(**common, status=SyncPreviewStatus.PAUSED,
                                   message=f"{what} paused: nothing sent, state kept"))
            continue
        missing = missing_env(decl, env)
        d = syncer.compute(campaign, group, decl, syncer.sources[campaign.name])
        common.update(adds=d.n_adds, removes=d.n_removes, skipped=d.skipped, pending=d.pending_batches)
        if missing:
            names = ", ".join(f"{variable} ({key})" for key, variable in missing)
            out.append(SyncPreview(**common, status=SyncPreviewStatus.BLOCKED,
                                   message=f"environment variable {names} is not set; this sync would fail"))
        elif d.guard:
            out.append(SyncPreview(**common, status=SyncPreviewStatus.HELD, message=d.guard))
        elif d.n_adds or d.n_removes or d.pending_batches:
            out.append(SyncPreview(**common, status=SyncPreviewStatus.SEND))
        else:
            out.append(SyncPreview(**common, status=SyncPreviewStatus.UNCHANGED))
    for target, target_id in syncer.stopped():
        with warehouse.connect() as conn:
            acked = wh.count_acknowledged(conn, target_id)
        kind = model.destinations[target.destination].kind if target.destination in model.destinations else "removed"
        out.append(SyncPreview(target.campaign, target.group, target.destination, kind, SyncPreviewStatus.STOPPED,
                               message=f"{acked:,} members acknowledged; " + STOPPED_MESSAGE))
    return tuple(out)


def apply_syncs(model: Model, warehouse: sa.Engine, state: sa.Engine, as_of, root: Path | str = ".",
                membership: Mapping[str, sa.Select] | None = None, allow_removals: bool = False,
                progress: Callable[[Target, int, int], None] | None = None,
                env: Mapping[str, str] | None = None, exports_root: Path | str | None = None) -> list[SyncResult]:
    """After the segments are materialized: compute the campaigns (reading the materialized segments)
    and sync every campaign group to its destinations. One failing sync does not stop the others."""
    materialize_campaigns(warehouse, model, as_of, membership)
    syncer = Syncer(model, warehouse, state, root, env=env, allow_removals=allow_removals, progress=progress,
                    exports_root=exports_root)
    return syncer.sync_all()
