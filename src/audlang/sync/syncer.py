"""The syncer: sends each target's batches and acknowledges them, with exactly-once effect.

Two databases take part. The **warehouse** holds what each *target* (a
campaign group sent to one destination) acknowledged, as an append-only log
beside the membership it is compared with (``sync.delta``): the delta is one
SQL query and only the changes reach Python, to be sent. The **state
database** (transactional: DuckDB, SQLite or PostgreSQL, never Spark) holds
the control data: each target's id, audience and tick counter
(``audlang_sync_targets``), the batches planned and not yet done
(``audlang_sync_batches``), rejected members (``audlang_sync_errors``) and
every run (``audlang_sync_runs``); those tables, their schema version and
their upgrades are the state's (``state.sync_tables``). By default both are
one DuckDB file.

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

The batches are planned without I/O (``batches``), the targets' records are
read and written by ``targets``; the plan's counts are ``preview``'s.

May import ``campaigns``, ``destinations``, ``check``, ``compile``, ``state``,
``warehouse`` and SQLAlchemy (STYLE §1).
"""

from __future__ import annotations

import contextlib
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
from audlang.campaigns import materialize_campaigns, prepare_connection
from audlang.check import Model
from audlang.destinations import (
    BatchResult, DestinationUnavailable, SettingsError, Target, open_destination, resolve_settings,
)
from audlang.state import sync_tables
from audlang.state.clock import now
from audlang.state.sync_tables import batches_table, errors_table, runs_table
from audlang.sync import audience
from audlang.sync import delta as wh
from audlang.sync.batches import (
    RETIRE, Delta, Planned, accepted_of, encode, guard_of, logged_operation, member_of, plan_batches, planned_of,
    unwanted_errors,
)
from audlang.sync.delta import ADD, Acked
from audlang.sync.targets import (
    STOPPED_MESSAGE, audience_of, before_moves, drop, follow_moves, log_id_for, migrate_v1, next_tick, recorded,
    recorded_log_id, rekey, stopped, targets,
)
from audlang.vocabulary import BatchStatus, SyncStatus, counted

#: Test hook: ``point:seq`` (points before_send, after_send, after_ack, after_append) kills this process
#: with SIGKILL there.
FAULT_ENV = "AUDLANG_SYNC_FAULT"


@attrs.frozen
class SyncResult:
    """What one sync of one target did (recorded as a run, and in the history by apply)."""

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


def _pending(conn: sa.Connection, target: Target) -> list[Planned]:
    """The batches an interrupted sync of the target planned and did not finish, in order."""
    t = batches_table
    return [planned_of(target, r.seq, r.operation, r.idempotency_key, r.members, r.status, r.tick, r.accepted)
            for r in conn.execute(sa.select(t).where(t.c.target == target.key).order_by(t.c.seq)).fetchall()]


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
        if prepare:  # the state created or upgraded (the sync tables are the state's), then version 1's move
            sync_tables.prepare(state)
            migrate_v1(state, warehouse)

    # ------------------------------------------------------------------ reading
    def _recorded(self, conn: sa.Connection, target: Target, decl: ast.Destination
                  ) -> tuple[str | None, int, bool]:
        """The target's id in the warehouse log (None: nothing acknowledged yet), its pending batches, and
        whether its state still has the key of before #16 (``audience.legacy_key``; ``_upgrade``)."""
        return recorded(conn, self.model, target, self.audiences.key(target, decl), audience.legacy_key(decl))

    def compute(self, campaign: ast.Campaign, group: str, decl: ast.Destination,
                source: sa.Select | None = None, fetch: bool = False) -> Delta:
        """The delta of one target, counted in the warehouse; with ``fetch`` the changed members too."""
        target = Target(campaign.name, group, decl.name)
        settings = resolve_settings(decl, {v: "-" for _k, v in _env_refs(decl)})  # secrets not needed to count
        identifiers, fields = settings.identifiers, settings.fields
        with self.state.connect() as conn:
            target_id, pending, legacy = self._recorded(conn, target, decl)
        want = wh.desired(self.model, campaign.name, group, identifiers, fields, source, hashed=settings.hashed)
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
                             self.sources.get(c.name), prefix=f"audlang_shared{i}", hashed=settings.hashed).desired

    def _split(self, target: Target, decl: ast.Destination) -> tuple[list[str], list[sa.CTE]] | None:
        """For a target whose state has the key of before #16: the log ids and desired rows of the targets
        that key merged it with and the current key tells apart (``audience.Audiences.split_from``; for
        ``delta.unsent_removals``), or None when it merged none."""
        partners = self.audiences.split_from(target, decl)
        if not partners:
            return None
        ids, wanted = [], []
        with self.state.connect() as conn:
            for i, c, g, d in partners:
                other = Target(c.name, g, d.name)
                found = recorded_log_id(conn, (other.key, before_moves(self.model, other).key))
                if found:
                    ids.append(found)
                settings = audience.settings_of(d)
                wanted.append(wh.desired(self.model, c.name, g, settings.identifiers, settings.fields,
                                         self.sources.get(c.name), prefix=f"audlang_split{i}",
                                         hashed=settings.hashed).desired)
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
        with self.state.connect() as conn:
            if audience_of(conn, target) != legacy:
                return
        settings = audience.settings_of(decl)
        split = self._split(target, decl)
        rows: list[Acked] = []
        if split is not None:
            own = wh.desired(self.model, campaign.name, group, settings.identifiers, settings.fields,
                             self.sources.get(campaign.name), hashed=settings.hashed)
            with self.warehouse.connect() as conn:
                prepare_connection(conn)
                if wh.has_log(conn):
                    rows = wh.fetch(conn, wh.unsent_removals(target_id, own.desired, *split))
        if rows:
            with self.state.begin() as conn:  # the tick first: a later batch never reuses it
                tick = next_tick(conn, target)
            with self.warehouse.begin() as conn:
                wh.append(conn, target_id, tick, ADD, rows)
        with self.state.begin() as conn:
            rekey(conn, target, legacy, current)

    # ------------------------------------------------------------------ writing
    def _record_plan(self, batches: list[Planned]) -> None:
        stamp = now()
        with self.state.begin() as conn:
            rows = [{"target": p.batch.target.key, "seq": p.batch.seq, "operation": p.batch.operation,
                     "idempotency_key": p.batch.idempotency_key, "members": encode(p.rows),
                     "planned_at": stamp, "status": BatchStatus.PLANNED} for p in batches]
            for start in range(0, len(rows), 100):
                conn.execute(batches_table.insert(), rows[start:start + 100])

    def _acknowledge(self, planned: Planned, result: BatchResult) -> Planned:
        """One state transaction: rejections are recorded and the batch is marked acknowledged under the
        target's next tick, with the members the destination accepted (as it returned them)."""
        batch = planned.batch
        target = batch.target
        e = errors_table
        stamp = now()
        accepted = accepted_of(planned, result.accepted)
        operation = logged_operation(batch.operation)
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
            tick = next_tick(conn, target)
            conn.execute(batches_table.update()
                         .where(batches_table.c.target == target.key, batches_table.c.seq == batch.seq)
                         .values(status=BatchStatus.ACKED, tick=tick, accepted=encode(accepted)))
        return attrs.evolve(planned, status=BatchStatus.ACKED, tick=tick, accepted=accepted)

    def _append(self, planned: Planned, target_id: str) -> None:
        """The accepted members into the warehouse log (unless already there), then the batch is done."""
        batch = planned.batch
        if planned.accepted:
            with self.warehouse.begin() as conn:
                wh.ensure_log(conn)
                done = wh.appended(conn, target_id, planned.tick)
                wh.append(conn, target_id, planned.tick, logged_operation(batch.operation),
                          [a for a in planned.accepted if a.customer_id not in done])
        _fault("after_append", batch.seq, self.hook)
        with self.state.begin() as conn:
            conn.execute(batches_table.delete().where(batches_table.c.target == batch.target.key,
                                                      batches_table.c.seq == batch.seq))

    def _target_id(self, target: Target, decl: ast.Destination) -> str:
        """The target's id in the warehouse log for the audience its destination writes (``targets.log_id_for``)."""
        return log_id_for(self.state, self.warehouse, target, self.audiences.key(target, decl),
                          audience.legacy_key(decl))

    def _forget_stale_errors(self, target: Target, d: Delta) -> None:
        """Rejections of members whose change is no longer wanted (they left, or came back) are dropped."""
        e = errors_table
        with self.state.begin() as conn:
            rows = conn.execute(sa.select(e.c.customer_id, e.c.operation).where(e.c.target == target.key)).fetchall()
            for cid, operation in unwanted_errors([(r.customer_id, r.operation) for r in rows], d):
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
                self._send_all(pending, destination, target, target_id, counts)
                pending = []
            self._finish(destination, target_id)
            if counts["rejected"] and status == SyncStatus.OK:
                rejected = counted(counts["rejected"], "member")
                status, message = SyncStatus.PARTIAL, f"{rejected} rejected (audlang sync errors)"
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

    def _send_all(self, pending: list[Planned], destination, target: Target, target_id: str,
                  counts: dict[str, int]) -> None:
        """Send the planned batches in order, following each with ``progress``."""
        total = sum(len(p.batch.members) for p in pending)
        done = 0
        for planned in pending:
            self._send(planned, destination, target_id, counts)
            done += len(planned.batch.members)
            if self.progress is not None:
                self.progress(target, done, total)

    def _send(self, planned: Planned, destination, target_id: str, counts: dict[str, int]) -> None:
        """One batch sent, acknowledged and logged whole: an interrupt waits for the end of the batch
        (a second one stops at once; the batch is then sent again under the same key)."""
        batch = planned.batch
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

    def _finish(self, destination, target_id: str) -> None:
        """A destination that writes whole files gets the acknowledged membership; the log is compacted."""
        if getattr(destination, "needs_membership", False):
            with self.warehouse.connect() as conn:
                destination.finish(member_of(a) for a in wh.acknowledged(conn, target_id))
        with self.warehouse.begin() as conn:
            if wh.has_log(conn):
                wh.compact(conn, target_id)

    def stopped(self) -> list[tuple[Target, str | None]]:
        """Targets with sync state that the project no longer sends, with their ids in the warehouse log."""
        return stopped(self.model, self.state)

    def drop_stopped(self) -> list[SyncResult]:
        """Forget the sync state of stopped targets (their members stay in the destination: audlang sends
        no removals for a sync it no longer has); recorded as runs with status ``stopped``."""
        out = []
        for target, target_id in self.stopped():
            started = now()
            with self.state.begin() as conn:
                drop(conn, target.key)
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
        follow_moves(self.model, self.state, self.warehouse)
        wanted = set(only) if only is not None else None
        dropped = self.drop_stopped() if wanted is None else []
        return dropped + [self.sync(c, g, d) for c, g, d in targets(self.model) if wanted is None or c.name in wanted]


def _env_refs(decl: ast.Destination):
    from audlang.destinations import env_variables

    return env_variables(decl)


def run(model: Model, warehouse: sa.Engine, state: sa.Engine, as_of, root: Path | str = ".", **options
        ) -> list[SyncResult]:
    """Materialize the campaigns and sync every target (what apply does after the segments)."""
    materialize_campaigns(warehouse, model, as_of)
    return Syncer(model, warehouse, state, root, **options).sync_all()


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
