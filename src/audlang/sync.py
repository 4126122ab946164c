"""Delta sync of campaign groups to destinations, with exactly-once effect.

For every *target* (a campaign group sent to one destination) the state
database keeps the membership the destination last **acknowledged**
(``audlang_sync_members``). A sync:

1. finishes any batches a previous, interrupted sync planned and did not see
   acknowledged (``audlang_sync_batches``), re-sending each under its recorded
   idempotency key;
2. reads the group's members from the warehouse (``audlang_campaign_members``
   joined with ``customer_360``), normalizes identifiers, skips members without
   a usable key and duplicates after normalization (counted), and compares them
   with the acknowledged membership: ``mirror`` sends adds and removes, ``add``
   only adds; a removal only ever removes what audlang itself added (the
   acknowledged membership holds nothing else);
3. checks the guards: a sync that would empty the audience, or remove more
   than ``max_removal`` percent of it (default 20), is held back unless the
   destination allows it (``allow_empty``, a higher ``max_removal``) or the
   caller passed ``allow_removals``;
4. records the whole batch plan (removes then adds, each sorted by key, cut at
   the destination's batch size) in one transaction *before sending anything*;
5. sends the batches in order; after each, one transaction moves what the
   destination acknowledged into the acknowledged membership, records every
   rejected member (key, operation, status, message, attempts) in
   ``audlang_sync_errors`` and deletes the batch from the plan.

A process killed anywhere in this therefore re-sends at most the one batch
that was in flight (under the same idempotency key: for the vendors an add or
remove of the same members is a no-op the second time, for webhooks the key
lets the receiver drop it) and loses nothing: every change not acknowledged
is still in the plan or still in the delta. Rejected members are not
acknowledged, so the next sync tries them again. A paused campaign or
destination is not synced and its state is kept as it is.

The tables live in the state database beside the plan/apply tables; they
carry their own schema version (``audlang_sync_meta``). Targets are keyed by
campaign, group and destination *names*.

May import ``campaigns``, ``destinations``, ``check``, ``compile``, ``state`` and
SQLAlchemy (STYLE §1).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import attrs
import sqlalchemy as sa

from audlang import ast, warehouse
from audlang.campaigns import CAMPAIGN_MEMBERS_TABLE, groups as campaign_groups, materialize_campaigns
from audlang.check import Model
from audlang.destinations import (
    Batch, BatchResult, DestinationUnavailable, Member, SettingsError, Target, missing_env,
    open_destination, resolve_settings,
)

SYNC_SCHEMA_VERSION = 1
ADD, REMOVE = "add", "remove"
#: Test hook: ``point:seq`` (points before_send, after_send, after_ack) kills this process with SIGKILL there.
FAULT_ENV = "AUDLANG_SYNC_FAULT"

metadata = sa.MetaData()
meta_table = sa.Table(
    "audlang_sync_meta", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
)
members_table = sa.Table(
    "audlang_sync_members", metadata,
    sa.Column("target", sa.String(1600), primary_key=True),
    sa.Column("customer_id", sa.String(500), primary_key=True),
    sa.Column("member_key", sa.String(500), nullable=False),
    sa.Column("fingerprint", sa.Text, nullable=False),  # the identifiers and fields as sent, compared as text
    sa.Column("data", sa.Text, nullable=False),  # JSON: the identifiers and fields as sent (+ vendor ids)
)
batches_table = sa.Table(
    "audlang_sync_batches", metadata,
    sa.Column("target", sa.String(1600), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("operation", sa.String(10), nullable=False),
    sa.Column("idempotency_key", sa.String(100), nullable=False),
    sa.Column("members", sa.Text, nullable=False),  # JSON: [[customer_id, key, data], …]
    sa.Column("planned_at", sa.String(40), nullable=False),
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
targets_table = sa.Table(
    "audlang_sync_targets", metadata,
    sa.Column("target", sa.String(1600), primary_key=True),
    sa.Column("audience", sa.String(64), nullable=False),  # hash of the settings naming the vendor audience
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


def now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------ values


@attrs.frozen
class Delta:
    """What one sync would send to one target (counted before anything is sent)."""

    target: Target
    adds: tuple[Member, ...] = ()
    removes: tuple[Member, ...] = ()
    members: int = 0  # usable members of the group now
    acknowledged: int = 0  # members the destination has acknowledged so far
    skipped_no_identifier: int = 0
    skipped_duplicate: int = 0
    pending_batches: int = 0  # planned by an interrupted sync, sent first
    guard: str | None = None  # why the sync is held back

    @property
    def skipped(self) -> int:
        return self.skipped_no_identifier + self.skipped_duplicate


@attrs.frozen
class SyncResult:
    target: Target
    kind: str
    status: str  # ok, held, failed, paused, unchanged
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
    operation: str
    status: str
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


#: The settings that name the audience a destination writes to: when they change, what the old audience
#: acknowledged says nothing about the new one, and the group is sent again in full.
AUDIENCE_SETTINGS = {"csv": ("path",), "sql": ("url", "table"), "webhook": ("url",),
                     "attentive": ("base_url", "segment"), "braze": ("base_url", "attribute", "value"),
                     "klaviyo": ("base_url", "list_id")}


def audience_of(decl: ast.Destination) -> str:
    """A hash of the destination's kind and the settings naming its audience (secrets left as their
    variable names: nothing secret is hashed or stored)."""
    settings = resolve_settings(decl, {v: f"env:{v}" for _k, v in _env_refs(decl)})
    named = [decl.kind] + [f"{k}={settings.get(k)}" for k in AUDIENCE_SETTINGS.get(decl.kind, ())]
    return hashlib.sha256("\x1f".join(named).encode()).hexdigest()


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


def prepare_state(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        inspector = sa.inspect(conn)
        if not inspector.has_table("audlang_sync_meta"):
            metadata.create_all(conn)
            conn.execute(meta_table.insert().values(id=1, schema_version=SYNC_SCHEMA_VERSION))
            return
        version = conn.execute(sa.select(meta_table.c.schema_version)).scalar()
        if version is not None and version > SYNC_SCHEMA_VERSION:
            raise RuntimeError(f"the sync state was written by a newer audlang (version {version})")
        metadata.create_all(conn)


def _member_row(m: Member) -> list:
    return [m.customer_id, m.key, dict(m.data)]


def _member_of(row) -> Member:
    customer_id, key, data = row
    return Member(customer_id, key, data)


def fingerprint(data: Mapping, columns: Iterable[str]) -> str:
    """What decides whether a member changed: its identifiers and fields as sent (not vendor ids)."""
    return "\x1f".join("" if data.get(c) is None else str(data[c]) for c in columns)


class Acknowledged(NamedTuple):
    """A member as the destination acknowledged it: key and fingerprint, its data kept as JSON text."""

    customer_id: str
    key: str
    fingerprint: str
    data_json: str

    def member(self) -> Member:
        return Member(self.customer_id, self.key, json.loads(self.data_json))


def acknowledged(conn: sa.Connection, target: Target) -> dict[str, Acknowledged]:
    t = members_table
    result = conn.execute(sa.select(t.c.customer_id, t.c.member_key, t.c.fingerprint, t.c.data)
                          .where(t.c.target == target.key))
    rows = warehouse.raw_rows(result)
    return dict(zip([r[0] for r in rows], map(Acknowledged._make, rows)))


def _pending(conn: sa.Connection, target: Target) -> list[Batch]:
    t = batches_table
    rows = conn.execute(sa.select(t).where(t.c.target == target.key).order_by(t.c.seq)).fetchall()
    return [Batch(target, r.operation, r.seq, r.idempotency_key,
                  tuple(_member_of(m) for m in json.loads(r.members))) for r in rows]


# ------------------------------------------------------------------ desired membership


def _customer_columns(model: Model, names: Iterable[str]):
    info = model.data_model.tables["customer_360"]
    schema, _, physical = info.physical.rpartition(".")
    wanted = ["customer_id", *[n for n in names if n != "customer_id"]]
    profile = sa.table(physical, *(sa.column(info.column(c)) for c in dict.fromkeys(wanted)),
                       schema=schema or None).alias("profile")
    return profile, {c: profile.c[info.column(c)] for c in dict.fromkeys(wanted)}


def desired_query(model: Model, campaign: str, group: str, columns: Iterable[str],
                  source: sa.Select | None = None) -> sa.Select:
    """customer_id and the identifier and field columns of the group's members, ordered by customer_id.

    ``source`` is a (customer_id, group_name) query (the live assignment, for a preview); by default the
    materialized ``audlang_campaign_members``."""
    if source is None:
        cm = sa.table(CAMPAIGN_MEMBERS_TABLE, sa.column("campaign"), sa.column("group_name"),
                      sa.column("customer_id"))
        members = sa.select(cm.c.customer_id).where(cm.c.campaign == sa.literal(campaign, sa.String),
                                                     cm.c.group_name == sa.literal(group, sa.String)).subquery("m")
    else:
        s = source.subquery("a")
        members = sa.select(s.c.customer_id).where(s.c.group_name == sa.literal(group, sa.String)).subquery("m")
    profile, cols = _customer_columns(model, columns)
    selected = [members.c.customer_id.label("customer_id")] + \
        [cols[c].label(c) for c in cols if c != "customer_id"]
    return (sa.select(*selected)
            .select_from(members.outerjoin(profile, cols["customer_id"] == members.c.customer_id))
            .order_by(members.c.customer_id))


def desired_columns(identifiers: tuple[str, ...], fields: tuple[str, ...]) -> list[str]:
    return list(dict.fromkeys(["customer_id", *identifiers, *fields]))


def desired_members(rows: Iterable, identifiers: tuple[str, ...], fields: tuple[str, ...]
                    ) -> tuple[dict[str, tuple[Member, str]], int, int]:
    """(member, fingerprint) by customer_id from rows ordered by customer_id; (members, no identifier,
    duplicates).

    Rows are tuples in ``desired_columns`` order, or mappings. Of several customers with the same key
    after normalization, the first by customer_id is kept."""
    from audlang.destinations.base import NORMALIZERS

    columns = desired_columns(identifiers, fields)
    position = {name: i for i, name in enumerate(columns)}
    normalizers = [(name, position[name], NORMALIZERS[name]) for name in identifiers]
    extra = [(name, position[name]) for name in fields if name not in identifiers]
    key_name = identifiers[0]
    out: dict[str, tuple[Member, str]] = {}
    seen: set[str] = set()
    no_identifier = duplicates = 0
    join = "\x1f".join
    for row in rows:
        if isinstance(row, Mapping):
            row = tuple(row.get(c) for c in columns)
        data = {}
        parts = []
        for name, i, normalize in normalizers:
            value = normalize(row[i])
            if value is not None:
                data[name] = value
                parts.append(value)
            else:
                parts.append("")
        key = data.get(key_name)
        if key is None:
            no_identifier += 1
            continue
        customer_id = str(row[0])
        if key in seen or customer_id in out:
            duplicates += 1
            continue
        for name, i in extra:
            value = row[i]
            data[name] = None if value is None else (value if isinstance(value, (str, int, float, bool))
                                                     else str(value))
            parts.append("" if value is None else str(data[name]))
        seen.add(key)
        out[customer_id] = (Member(customer_id, key, data), join(parts))
    return out, no_identifier, duplicates


def delta(target: Target, desired: Mapping[str, tuple[Member, str]], acked: Mapping[str, Acknowledged], mode: str,
          max_removal: float = 20.0, allow_empty: bool = False, allow_removals: bool = False,
          skipped_no_identifier: int = 0, skipped_duplicate: int = 0, pending_batches: int = 0) -> Delta:
    """The changes to send (pure): adds for new or changed members, removes (mirror) for departed ones
    and for a changed key; then the guards."""
    adds, removes = [], []
    for cid, (member, print_) in desired.items():
        have = acked.get(cid)
        if have is None or have.key != member.key or have.fingerprint != print_:
            adds.append(member)
            if have is not None and have.key != member.key and mode == "mirror":
                removes.append(have.member())
    if mode == "mirror":
        removes.extend(m.member() for cid, m in acked.items() if cid not in desired)
    adds.sort(key=lambda m: (m.key, m.customer_id))
    removes.sort(key=lambda m: (m.key, m.customer_id))
    guard = None
    departing = sum(1 for cid in acked if cid not in desired) if mode == "mirror" else 0
    if acked and departing and not allow_removals:
        if not desired and not allow_empty:
            guard = (f"held back: this sync would empty the audience (remove all {len(acked):,} members); set "
                     "allow_empty = true on the destination or plan with --allow-removals to send it")
        elif departing * 100 > max_removal * len(acked) and desired:
            guard = (f"held back: this sync would remove {departing:,} of {len(acked):,} members "
                     f"({departing / len(acked):.0%}, more than max_removal = {max_removal:g}%); raise max_removal "
                     "on the destination or plan with --allow-removals to send it")
    return Delta(target, tuple(adds), tuple(removes), len(desired), len(acked), skipped_no_identifier,
                 skipped_duplicate, pending_batches, guard)


def plan_batches(d: Delta, batch_size: int, run_id: str, first_seq: int = 1) -> list[Batch]:
    """Removes, then adds, each cut at ``batch_size``: deterministic; keys derived from the run and the seq."""
    out: list[Batch] = []
    seq = first_seq
    for operation, members in ((REMOVE, d.removes), (ADD, d.adds)):
        for start in range(0, len(members), batch_size):
            key = hashlib.sha256(f"{d.target.key}\x1f{run_id}\x1f{seq}".encode()).hexdigest()[:40]
            out.append(Batch(d.target, operation, seq, key, tuple(members[start:start + batch_size])))
            seq += 1
    return out


# ------------------------------------------------------------------ running


def _fault(point: str, seq: int, hook: Callable[[str, int], None] | None) -> None:
    if hook is not None:
        hook(point, seq)
    wanted = os.environ.get(FAULT_ENV)
    if wanted and wanted == f"{point}:{seq}":
        os.kill(os.getpid(), signal.SIGKILL)


class Syncer:
    """Runs the syncs of one apply: reads the warehouse, keeps the state, talks to the destinations."""

    def __init__(self, model: Model, warehouse: sa.Engine, state: sa.Engine, root: Path | str = ".",
                 env: Mapping[str, str] | None = None, allow_removals: bool = False,
                 hook: Callable[[str, int], None] | None = None, http_options: dict | None = None,
                 progress: Callable[[Target, int, int], None] | None = None, prepare: bool = True):
        self.model = model
        self.warehouse = warehouse
        self.state = state
        self.root = Path(root)
        self.env = os.environ if env is None else env
        self.allow_removals = allow_removals
        self.hook = hook
        self.http_options = http_options or {}
        self.progress = progress
        self.run_id = str(uuid.uuid4())
        self._columns: dict[Target, tuple[str, ...]] = {}
        self._errored: set[str] = set()
        if prepare:
            prepare_state(state)

    # ------------------------------------------------------------------ reading
    def compute(self, campaign: ast.Campaign, group: str, decl: ast.Destination,
                source: sa.Select | None = None) -> Delta:
        target = Target(campaign.name, group, decl.name)
        settings = resolve_settings(decl, {v: "-" for _k, v in _env_refs(decl)})  # secrets not needed to count
        identifiers, fields = settings.identifiers, settings.fields
        self._columns[target] = _fingerprint_columns(identifiers, fields)
        query = desired_query(self.model, campaign.name, group, desired_columns(identifiers, fields), source)
        with self.warehouse.connect() as conn:
            if source is not None:
                from audlang.campaigns import prepare_connection

                prepare_connection(conn)
            rows = warehouse.raw_rows(conn.execute(query))
        desired, no_identifier, duplicates = desired_members(rows, identifiers, fields)
        with self.state.connect() as conn:
            if not sa.inspect(conn).has_table("audlang_sync_members"):  # a plan before the first sync
                return delta(target, desired, {}, settings.mode, settings.max_removal, settings.allow_empty,
                             self.allow_removals, no_identifier, duplicates, 0)
            key = target
            acked = acknowledged(conn, target)
            if not acked:  # a plan before the move is followed: the old name's state
                previous = self._before_moves(target)
                if previous != target:
                    key, acked = previous, acknowledged(conn, previous)
            recorded = conn.execute(sa.select(targets_table.c.audience)
                                    .where(targets_table.c.target == key.key)).scalar()
            if recorded is not None and recorded != audience_of(decl):
                acked = {}  # another audience now: the whole group is sent to it
            pending = conn.execute(sa.select(sa.func.count()).select_from(batches_table)
                                   .where(batches_table.c.target == target.key)).scalar()
        return delta(target, desired, acked, settings.mode, settings.max_removal, settings.allow_empty,
                     self.allow_removals, no_identifier, duplicates, pending)

    # ------------------------------------------------------------------ writing
    def _record_plan(self, batches: list[Batch]) -> None:
        stamp = now()
        with self.state.begin() as conn:
            rows = [{"target": b.target.key, "seq": b.seq, "operation": b.operation,
                     "idempotency_key": b.idempotency_key,
                     "members": json.dumps([_member_row(m) for m in b.members], separators=(",", ":")),
                     "planned_at": stamp} for b in batches]
            for start in range(0, len(rows), 100):
                conn.execute(batches_table.insert(), rows[start:start + 100])

    def _acknowledge(self, batch: Batch, result: BatchResult) -> None:
        """One transaction: the acknowledged members move, rejections are recorded, the batch leaves the plan."""
        target = batch.target
        t, e = members_table, errors_table
        stamp = now()
        with self.state.begin() as conn:
            ids = [m.customer_id for m in result.accepted]
            errored = [i for i in ids if i in self._errored]
            for start in range(0, len(errored), 500):
                conn.execute(e.delete().where(e.c.target == target.key,
                                              e.c.customer_id.in_(errored[start:start + 500])))
            if batch.operation == REMOVE:
                for start in range(0, len(ids), 500):
                    conn.execute(t.delete().where(t.c.target == target.key, t.c.customer_id.in_(ids[start:start + 500])))
            elif result.accepted:
                rows = [{"target": target.key, "customer_id": m.customer_id, "member_key": m.key,
                         "fingerprint": fingerprint(m.data, self._columns[target]),
                         "data": json.dumps(dict(m.data), separators=(",", ":"))}
                        for m in result.accepted]
                _upsert(conn, t, rows)
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
            conn.execute(batches_table.delete().where(batches_table.c.target == target.key,
                                                      batches_table.c.seq == batch.seq))

    def _check_audience(self, target: Target, decl: ast.Destination) -> None:
        """Record which audience the target writes to; when its settings now name another one, forget what
        the old audience acknowledged (and its plan and rejections): the group goes to the new one in full."""
        audience = audience_of(decl)
        t = targets_table
        with self.state.begin() as conn:
            recorded = conn.execute(sa.select(t.c.audience).where(t.c.target == target.key)).scalar()
            if recorded == audience:
                return
            if recorded is not None:
                for table in (members_table, batches_table, errors_table):
                    conn.execute(table.delete().where(table.c.target == target.key))
                conn.execute(t.delete().where(t.c.target == target.key))
            conn.execute(t.insert().values(target=target.key, audience=audience))

    def _forget_stale_errors(self, target: Target, d: Delta) -> None:
        """Rejections of members whose change is no longer wanted (they left, or came back) are dropped."""
        e = errors_table
        wanted = {(m.customer_id, ADD) for m in d.adds} | {(m.customer_id, REMOVE) for m in d.removes}
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

    # ------------------------------------------------------------------ one target
    def sync(self, campaign: ast.Campaign, group: str, decl: ast.Destination) -> SyncResult:
        target = Target(campaign.name, group, decl.name)
        started, clock = now(), time.monotonic()
        if campaign.paused or decl.paused:
            what = "campaign" if campaign.paused else "destination"
            return SyncResult(target, decl.kind, "paused", message=f"{what} paused: nothing sent, state kept")
        try:
            destination = open_destination(decl, target, self.root, self.env, **self.http_options)
        except SettingsError as error:
            result = SyncResult(target, decl.kind, "failed", message=str(error))
            self._record_run(result, started)
            return result
        counts = {"added": 0, "removed": 0, "rejected": 0, "batches": 0, "resumed": 0}
        self._columns[target] = _fingerprint_columns(destination.settings.identifiers, destination.settings.fields)
        self._check_audience(target, decl)
        with self.state.connect() as conn:
            self._errored = {r[0] for r in conn.execute(sa.select(errors_table.c.customer_id)
                                                        .where(errors_table.c.target == target.key))}
        status, message, skipped = "ok", None, 0
        try:
            with self.state.connect() as conn:
                pending = _pending(conn, target)
            counts["resumed"] = len(pending)
            # An interrupted sync's batches go first, then this sync's own delta.
            for _round in range(2 if pending else 1):
                if not pending:
                    d = self.compute(campaign, group, decl)
                    skipped = d.skipped
                    if d.guard:
                        status, message = "held", d.guard
                        break
                    pending = plan_batches(d, destination.batch_size, self.run_id)
                    self._forget_stale_errors(target, d)
                    if not pending:
                        break
                    self._record_plan(pending)
                total = sum(len(b.members) for b in pending)
                done = 0
                for batch in pending:
                    _fault("before_send", batch.seq, self.hook)
                    send = destination.add if batch.operation == ADD else destination.remove
                    result = send(batch)
                    _fault("after_send", batch.seq, self.hook)
                    self._acknowledge(batch, result)
                    _fault("after_ack", batch.seq, self.hook)
                    counts["added" if batch.operation == ADD else "removed"] += len(result.accepted)
                    counts["rejected"] += len(result.rejected)
                    counts["batches"] += 1
                    done += len(batch.members)
                    if self.progress is not None:
                        self.progress(target, done, total)
                pending = []
            with self.state.connect() as conn:
                destination.finish(a.member() for a in acknowledged(conn, target).values())
            if counts["rejected"] and status == "ok":
                status, message = "partial", f"{counts['rejected']:,} members rejected (audlang sync errors)"
        except DestinationUnavailable as error:
            status, message = "failed", str(error)
        except SettingsError as error:
            status, message = "failed", str(error)
        except OSError as error:
            status, message = "failed", f"{type(error).__name__}: {error}"
        except sa.exc.SQLAlchemyError as error:
            if decl.kind != "sql":
                raise
            status, message = "failed", destination.settings.redact(str(getattr(error, "orig", error)))
        finally:
            requests, retries = getattr(destination, "stats", (0, 0))
            destination.close()
        if status == "ok" and not counts["batches"]:
            status = "unchanged"
        result = SyncResult(target, decl.kind, status, counts["added"], counts["removed"], skipped,
                            counts["rejected"], requests, retries, counts["batches"], counts["resumed"], message,
                            time.monotonic() - clock)
        self._record_run(result, started)
        return result

    def _before_moves(self, target: Target) -> Target:
        campaign, destination = target.campaign, target.destination
        for m in reversed(self.model.moves):
            if m.kind == "campaign" and campaign == m.new:
                campaign = m.old
            elif m.kind == "destination" and destination == m.new:
                destination = m.old
        return Target(campaign, target.group, destination)

    def follow_moves(self) -> None:
        """``moved campaign`` / ``moved destination``: the sync state of the old name passes to the new one,
        so a rename sends nothing again (run before syncing; a move already followed changes nothing)."""
        moves = [(m.kind, m.old, m.new) for m in self.model.moves if m.kind in ("campaign", "destination")]
        if not moves:
            return
        tables = (members_table, batches_table, errors_table, runs_table, targets_table)
        with self.state.begin() as conn:
            keys = set()
            for t in tables:
                keys.update(r[0] for r in conn.execute(sa.select(t.c.target).distinct()))
            for key in sorted(keys):
                campaign, group, destination = key.split("\x1f")
                for kind, old, new in moves:
                    if kind == "campaign" and campaign == old:
                        campaign = new
                    elif kind == "destination" and destination == old:
                        destination = new
                new_key = Target(campaign, group, destination).key
                if new_key == key:
                    continue
                for t in tables:
                    values = {"target": new_key}
                    if "campaign" in t.c:
                        values.update(campaign=campaign, destination=destination)
                    conn.execute(t.update().where(t.c.target == key).values(**values))

    def sync_all(self, only: Iterable[str] | None = None) -> list[SyncResult]:
        """Every target of the model (optionally only these campaigns); one failing does not stop the others."""
        self.follow_moves()
        wanted = set(only) if only is not None else None
        return [self.sync(c, g, d) for c, g, d in targets(self.model) if wanted is None or c.name in wanted]


def _fingerprint_columns(identifiers: tuple[str, ...], fields: tuple[str, ...]) -> tuple[str, ...]:
    return (*identifiers, *[f for f in fields if f not in identifiers])


def _env_refs(decl: ast.Destination):
    from audlang.destinations import env_variables

    return env_variables(decl)


def _upsert(conn: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    """Insert or replace by primary key: ON CONFLICT on SQLite, PostgreSQL and DuckDB, else delete + insert."""
    if not rows:
        return
    name = conn.dialect.name
    keys = [c.name for c in table.primary_key.columns]
    if name in ("sqlite", "postgresql", "duckdb"):
        if name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        statement = insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=keys, set_={c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys})
        if name == "duckdb":
            # DuckDB's executemany runs one statement per row: a multi-row VALUES is two orders faster.
            for start in range(0, len(rows), 1000):
                chunk = rows[start:start + 1000]
                values = insert(table).values(chunk)
                conn.execute(values.on_conflict_do_update(
                    index_elements=keys,
                    set_={c.name: values.excluded[c.name] for c in table.columns if c.name not in keys}))
            return
        conn.execute(statement, rows)
        return
    for row in rows:
        conn.execute(table.delete().where(*(table.c[k] == row[k] for k in keys)))
    conn.execute(table.insert(), rows)


# ------------------------------------------------------------------ reading the state


def _has_state(state: sa.Engine) -> bool:
    with state.connect() as conn:
        return sa.inspect(conn).has_table("audlang_sync_meta")


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

    Reads only: the groups are computed by the live assignment query, compared with the acknowledged
    membership; nothing is written to the state."""
    from audlang.campaigns import assignment_query
    from audlang.compile import SegmentCompiler
    from audlang.plan.model import SyncPreview

    env = os.environ if env is None else env
    compiler = SegmentCompiler(model, as_of, membership=dict(membership or {}))
    syncer = Syncer(model, warehouse, state, env=env, allow_removals=allow_removals, prepare=False)
    out = []
    for campaign, group, decl in targets(model):
        common = dict(campaign=campaign.name, group=group, destination=decl.name, kind=decl.kind)
        if campaign.paused or decl.paused:
            what = "campaign" if campaign.paused else "destination"
            out.append(SyncPreview(**common, status="paused", message=f"{what} paused: nothing sent, state kept"))
            continue
        missing = missing_env(decl, env)
        d = syncer.compute(campaign, group, decl, assignment_query(model, campaign.name, compiler))
        common.update(adds=len(d.adds), removes=len(d.removes), skipped=d.skipped, pending=d.pending_batches)
        if missing:
            names = ", ".join(f"{variable} ({key})" for key, variable in missing)
            out.append(SyncPreview(**common, status="blocked",
                                   message=f"environment variable {names} is not set; this sync would fail"))
        elif d.guard:
            out.append(SyncPreview(**common, status="held", message=d.guard))
        elif d.adds or d.removes or d.pending_batches:
            out.append(SyncPreview(**common, status="send"))
        else:
            out.append(SyncPreview(**common, status="unchanged"))
    return tuple(out)


def apply_syncs(model: Model, warehouse: sa.Engine, state: sa.Engine, as_of, root: Path | str = ".",
                membership: Mapping[str, sa.Select] | None = None, allow_removals: bool = False,
                progress: Callable[[Target, int, int], None] | None = None,
                env: Mapping[str, str] | None = None) -> list[SyncResult]:
    """After the segments are materialized: compute the campaigns (reading the materialized segments)
    and sync every campaign group to its destinations. One failing sync does not stop the others."""
    materialize_campaigns(warehouse, model, as_of, membership)
    syncer = Syncer(model, warehouse, state, root, env=env, allow_removals=allow_removals, progress=progress)
    return syncer.sync_all()
