"""Carry a plan out: lock, refuse a stale plan, materialize in order, record, sync.

``apply_plan(plan, warehouse_url, state_url=None, root=".", model=None, echo=None) -> ApplyResult``
takes the lock (a second apply fails at once, naming the holder), refuses a stale plan (lineage and
serial), materializes each segment in dependency order in one warehouse transaction of its own
(``warehouse.Membership.replace``), records every change in the state under a new serial with its
history event, then computes the campaigns and syncs them.

The warehouse is opened for writing for the whole run (``warehouse.Role.WRITE``): on a DuckDB file
that means this process holds the file until the apply ends, and a note beside it names the apply
to any reader that has to wait (``warehouse.holding``). The state and the lock are elsewhere (for
the embedded default, a SQLite file beside the warehouse), so other commands can read them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from pathlib import Path

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from audlang import interrupts, warehouse
from audlang.check import Model
from audlang.check.names import view_name
from audlang.compile import AsOf, SegmentCompiler, list_files_used
from audlang.compile.facts import SharedFacts
from audlang.deploy.preview import frozen_membership, has_sync_state
from audlang.deploy.session import Session
from audlang.diagnostics import AudlangError, Diagnostic
from audlang.plan import Plan
from audlang.plan.model import Action
from audlang.plan.render import reason_text
from audlang.state import DeployedObject, Snapshot, StateStore
from audlang.state.clock import now
from audlang.state.store import connect
from audlang.vocabulary import ObjectKind, PlanAction, SyncStatus, counted

#: Seconds to wait after each step (AUDLANG_APPLY_STEP_DELAY): lets tests and demonstrations watch an apply
#: in flight (a second apply, a reader, a kill).
STEP_DELAY = float(os.environ.get("AUDLANG_APPLY_STEP_DELAY", "0") or 0)


@attrs.frozen
class ApplyResult:
    serial: int
    applied: tuple[str, ...]  # "action kind name: detail" lines
    lock_id: str
    taken_over: str | None = None  # a dead apply's lock that was taken over
    syncs: tuple = ()  # audlang.sync.SyncResult of each campaign group and destination


def model_from_plan(plan: Plan, root: Path) -> Model:
    """The desired project recorded in a saved plan, checked again here (list files must be unchanged)."""
    from audlang.project import analyze, load_config

    sources = {os.path.relpath(os.path.join(root, rel)): text for rel, text in plan.sources}
    model, diagnostics = analyze(sources, load_config(root))
    errors = [d for d in diagnostics if d.is_error]
    if errors:
        raise AudlangError(errors + [Diagnostic.sourceless(
            "E531", "the definitions recorded in the saved plan do not check here (a list file missing?)",
            "plan file")])
    recorded = dict(plan.lists)
    for listed in model.lists.values():
        if listed.written in recorded and recorded[listed.written] != listed.sha256:
            raise AudlangError(Diagnostic.sourceless(
                "E532", f"stale plan: the list file {listed.written} changed since the plan was made; "
                "make a new plan", "plan file"))
    return model


def check_fresh(plan: Plan, deployed: Snapshot) -> None:
    """Refuse a plan made against another state (lineage) or an older serial of this one."""
    if plan.lineage is not None and deployed.lineage != plan.lineage:
        raise AudlangError(Diagnostic.sourceless(
            "E533", f"stale plan: it was made against another state (lineage {plan.lineage}, this state is "
            f"{deployed.lineage}); make a new plan", "plan file"))
    if deployed.serial != plan.serial:
        raise AudlangError(Diagnostic.sourceless(
            "E533", f"stale plan: the deployed state moved since the plan was made (plan made at serial "
            f"{plan.serial}, state now at serial {deployed.serial}); make a new plan", "plan file"))


def apply_plan(plan: Plan, warehouse_url: str, state_url: str | None = None, root: str | Path = ".",
               model: Model | None = None, echo: Callable[[str], None] | None = None,
               sync_progress: Callable | None = None, session: Session | None = None) -> ApplyResult:
    """Carry out exactly ``plan``: lock, stale check, materialize in order, record each change.

    ``model`` is the checked project the plan was made from; without it (a
    saved plan) the definitions recorded in the plan are checked again.
    ``echo`` receives one line per step; after the segments, the campaigns are computed and synced to
    their destinations (``audlang.sync``), ``sync_progress(target, done, total)`` following each batch.
    ``session``: the one the plan was made in (``deploy.session``): its connection and shared facts.
    """
    echo = echo or (lambda _line: None)
    state_url = state_url or warehouse.default_state(warehouse_url)
    root = Path(root)
    if model is None:
        model = model_from_plan(plan, root)
    store = StateStore(state_url)
    engine: Engine | None = None
    applied: list[str] = []
    apply_id = None
    try:
        with contextlib.ExitStack() as held:
            lock, taken_over = store.acquire("apply")  # inside the try: an interrupt right after still releases it
            apply_id = lock.lock_id
            held.enter_context(warehouse.holding(warehouse_url, {
                "lock_id": lock.lock_id, "who": lock.who, "pid": lock.pid, "started_at": lock.started_at}))
            engine = session.engine if session is not None else warehouse.open_engine(warehouse_url,
                                                                                       warehouse.Role.WRITE)
            if taken_over is not None:
                store.log(apply_id, "lock taken over", {"lock_id": taken_over.lock_id, "who": taken_over.who,
                                                        "pid": taken_over.pid, "started_at": taken_over.started_at})
                echo(f"took over the lock {taken_over.lock_id} of a dead apply ({taken_over.who}, pid "
                     f"{taken_over.pid}, since {taken_over.started_at})")
            deployed = store.snapshot()
            check_fresh(plan, deployed)
            store.log(apply_id, "apply started", {"as_of": plan.as_of, "planned_serial": plan.serial,
                                                  "actions": len(plan.actions)})
            as_of = AsOf.parse(plan.as_of)
            mem = warehouse.for_bind(engine, tracked=True)  # one connection, under the lock
            materialized = [a.name for a in plan.actions if a.materialize and a.name in model.segments]
            with contextlib.ExitStack() as run:
                # One connection for the segments: the run's shared facts are its scratch tables.
                conn = session.conn if session is not None else \
                    run.enter_context(contextlib.closing(connect(engine, warehouse_url)))
                with warehouse.errors_translated(warehouse_url, model):
                    if any(a.materialize or a.kind == ObjectKind.SEGMENT for a in plan.actions):
                        with conn.begin():
                            mem.ensure(conn)
                    facts = session.facts(model, as_of, materialized) if session is not None else \
                        run.enter_context(warehouse.shared_facts(conn, SharedFacts.collect(model, as_of, materialized)))
                # `in segment` reads what is materialized: upstream segments come first in the plan's order.
                compiler = SegmentCompiler(model, as_of, membership={name: mem.members_of(name)
                                                                     for name in model.segments}, facts=facts)
                serial = deployed.serial
                for action in plan.actions:
                    line, written = _carry_out(action, store, conn, mem, warehouse_url, compiler, model, deployed,
                                               plan, apply_id)
                    serial = serial if written is None else written  # a paused object writes nothing
                    applied.append(line)
                    echo(line)
                    if STEP_DELAY:
                        time.sleep(STEP_DELAY)
                    interrupts.check()
            syncs = _run_syncs(plan, model, engine, warehouse_url, store, root, as_of, apply_id, echo,
                               sync_progress)
            store.log(apply_id, "apply finished", {"serial": serial, "actions": len(applied),
                                                   "syncs_failed": sum(r.status == SyncStatus.FAILED for r in syncs)})
            return ApplyResult(serial, tuple(applied), lock.lock_id, taken_over.lock_id if taken_over else None,
                               tuple(syncs))
    except BaseException as error:
        if apply_id is not None:
            _log_stop(store, apply_id, error, len(applied))
        raise
    finally:
        if engine is not None and session is None:
            engine.dispose()
        store.release()


def _log_stop(store: StateStore, apply_id: str, error: BaseException, done: int) -> None:
    """The history event of an apply that stopped early: interrupted (whatever error the stop surfaced
    as), or failed with a diagnostic."""
    signum = interrupts.received()
    if signum is not None:
        with contextlib.suppress(Exception):  # the stop goes on even when the state cannot record it
            store.log(apply_id, "apply interrupted", {"signal": signal.Signals(signum).name, "done": done})
    elif isinstance(error, AudlangError):
        store.log(apply_id, "apply failed", {"error": str(error), "done": done})


def _run_syncs(plan: Plan, model: Model, engine: Engine, url: str, store: StateStore, root: Path, as_of: AsOf,
               apply_id: str, echo: Callable[[str], None], progress: Callable | None) -> list:
    """Compute the campaigns from the materialized segments and sync each group to its destinations;
    each sync is recorded in the history. A failing destination fails its own sync only."""
    from audlang import sync
    from audlang.project import load_config

    if not sync.targets(model) and not has_sync_state(store):
        return []
    membership = frozen_membership(model, store.snapshot(), warehouse.for_bind(engine))
    with warehouse.errors_translated(url, model):
        results = sync.apply_syncs(model, engine, store.engine, as_of, root, membership or None, plan.allow_removals,
                                   progress, exports_root=load_config(root).exports_root)
    for r in results:
        detail = {k: v for k, v in r.to_json().items() if k != "seconds"}
        store.log(apply_id, "synced", detail)
        echo(f"synced {sync_summary(detail)}")
    return results


def sync_summary(detail: Mapping[str, Any]) -> str:
    """What one sync did, from its history detail (``SyncResult.to_json``): as apply says it, and as
    ``audlang history`` lists it afterwards. Empty for a detail without a destination."""
    if not detail.get("destination"):
        return ""
    return (f'"{detail.get("campaign")}" / "{detail.get("group")}" \u2192 "{detail["destination"]}": '
            f'{detail.get("status")}, +{detail.get("added", 0):,} \u2212{detail.get("removed", 0):,}, '
            f'{detail.get("skipped", 0):,} skipped, {detail.get("rejected", 0):,} rejected'
            + (f' ({detail["message"]})' if detail.get("message") else ""))


def _carry_out(action: Action, store: StateStore, conn: sa.Connection, mem: warehouse.Membership, url: str,
               compiler: SegmentCompiler, model: Model, deployed: Snapshot, plan: Plan,
               apply_id: str) -> tuple[str, int | None]:
    """Carry out one action; returns its line and the serial it wrote (None: it wrote nothing).

    An interrupt rolls the action's warehouse transaction back; from its commit to the state's record of
    it (a shield entered in ``recording`` inside the transaction) it waits, so the two never disagree."""
    with contextlib.ExitStack() as recording:
        return _carry_out_recorded(action, store, conn, mem, url, compiler, model, deployed, plan, apply_id,
                                   recording)


def _carry_out_recorded(action: Action, store: StateStore, conn: sa.Connection, mem: warehouse.Membership,
                        url: str, compiler: SegmentCompiler, model: Model, deployed: Snapshot, plan: Plan,
                        apply_id: str, recording: contextlib.ExitStack) -> tuple[str, int | None]:
    have = deployed.get(action.kind, action.previous_name or action.name)
    object_id = action.object_id or (have.object_id if have else None) or str(uuid.uuid4())
    title = f'{action.kind} "{action.name}"'
    reasons = [reason_text(r, action.kind) for r in action.reasons]  # the history keeps the sentences
    if action.action == PlanAction.DELETE:
        if action.kind == ObjectKind.SEGMENT:
            with warehouse.errors_translated(url, model), conn.begin():
                mem.drop(conn, action.name,
                         drop_view=view_name(action.name) not in {view_name(n) for n in model.segments})
                recording.enter_context(interrupts.shielded())
        serial = store.write(apply_id, "deleted", delete=(action.kind, action.name),
                             detail={"reasons": reasons, "feeds": list(action.feeds)})
        return f"deleted {title}", serial
    if action.action == PlanAction.PAUSED and action.desired is None:
        return f"paused {title}: left as deployed", None
    want = action.desired
    counts: dict = {}
    members, as_of, refreshed = (have.members, have.as_of, have.refreshed_at) if have else (None, None, None)
    if action.materialize:
        with warehouse.errors_translated(url, model), conn.begin():
            for listed in list_files_used(model, model.segments[action.name].condition):
                warehouse.load_list(conn, listed)
            counts = mem.replace(conn, action.name, compiler.segment(action.name), action.previous_name).to_dict()
            interrupts.hold("materialize", conn)
            recording.enter_context(interrupts.shielded())
        members, as_of, refreshed = counts["members"], plan.as_of, now()
    elif action.previous_name and action.kind == ObjectKind.SEGMENT:
        with warehouse.errors_translated(url, model), conn.begin():
            mem.rename(conn, action.previous_name, action.name)
            recording.enter_context(interrupts.shielded())
    record = DeployedObject(
        kind=want.kind, name=want.name, object_id=object_id, definition=want.definition, paused=want.paused,
        description=want.description, depends_on=want.depends_on, lists=want.lists, relative=want.relative,
        members=members, as_of=as_of, refreshed_at=refreshed, created_at=have.created_at if have else None)
    event = {PlanAction.CREATE: "created", PlanAction.UPDATE: "updated", PlanAction.RENAME: "renamed",
             PlanAction.REFRESH: "refreshed", PlanAction.PAUSED: "paused"}[action.action]
    detail = {"reasons": reasons, **counts}
    if action.previous_name:
        detail["previous_name"] = action.previous_name
    serial = store.write(apply_id, event, put=record,
                         rename=(action.kind, action.previous_name, action.name) if action.previous_name else None,
                         detail=detail)
    suffix = (f": {counted(counts['members'], 'member')} (+{counts['added']:,} \u2212{counts['removed']:,})"
              if counts else "")
    prefix = f'renamed {action.kind} "{action.previous_name}" to "{action.name}"' if action.previous_name \
        else f"{event} {title}"
    return prefix + suffix, serial
