"""Plan a project against the deployed state, and carry a plan out: lock, materialize, record.

Library entry points (the CLI and ``audlang demo`` call these):

- ``plan_project(loaded, warehouse_url=None, state_url=None, as_of=None) -> Plan``: the membership
  preview is counted in the warehouse (SQL set differences against the deployed
  membership), then the pure planner runs;
- ``apply_plan(plan, warehouse_url, state_url=None, root=".", model=None, echo=None) -> ApplyResult``:
  takes the lock, refuses a stale plan (lineage and serial), materializes each
  segment in dependency order in one warehouse transaction of its own, and
  records every change in the state under a new serial, with its history event.

Membership lives in the warehouse, beside the data it is computed from, in one
table ``audlang_membership(segment, customer_id)`` and a view per segment
``audlang_members_<slug>`` (README, "Where membership lives"). Rows never pass
through Python: ``INSERT … SELECT``, counts by ``EXCEPT``.

May import ``plan``, ``state``, ``compile``, ``warehouse``, ``project``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import attrs
import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from audlang import interrupts, warehouse
from audlang.check import Model
from audlang.check.names import view_name
from audlang.compile import AsOf, SegmentCompiler, list_files_used
from audlang.diagnostics import AudlangError, Diagnostic
from audlang.plan import MembershipPreview, Plan, desired_from_model, plan as make_plan
from audlang.plan.model import Action
from audlang.plan.render import reason_text
from audlang.state import DeployedObject, Snapshot, StateStore
from audlang.state.store import begin, connect, now
from audlang.vocabulary import ObjectKind, PlanAction, SyncStatus

MEMBERSHIP_TABLE = "audlang_membership"
#: Seconds to wait after each step (AUDLANG_APPLY_STEP_DELAY): lets tests and demonstrations watch an apply
#: in flight (a second apply, a reader, a kill).
STEP_DELAY = float(os.environ.get("AUDLANG_APPLY_STEP_DELAY", "0") or 0)


_metadata = sa.MetaData()
membership_table = sa.Table(
    MEMBERSHIP_TABLE, _metadata,
    sa.Column("segment", sa.String(500), nullable=False),
    sa.Column("customer_id", sa.String, nullable=False),
    sa.Index("audlang_membership_segment", "segment"),
)


@attrs.frozen
class ApplyResult:
    serial: int
    applied: tuple[str, ...]  # "action kind name: detail" lines
    lock_id: str
    taken_over: str | None = None  # a dead apply's lock that was taken over
    syncs: tuple = ()  # audlang.sync.SyncResult of each campaign group and destination


def state_url_for(warehouse_url: str, state_option: str | None = None, config_state: str | None = None,
                  root: Path | None = None) -> str:
    """``--state`` over AUDLANG_STATE over ``state`` in audlang.toml over the warehouse."""
    resolved = warehouse.resolve_url(state_option, config_state, Path(root or "."), env_var="AUDLANG_STATE",
                                     default=None)
    return resolved or warehouse_url


def open_warehouse(url: str) -> Engine:
    """The warehouse engine; a DuckDB file is opened per transaction so that another process can read
    the state between two steps of a long apply."""
    engine = warehouse.connect(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "duckdb" and parsed.database not in (None, "", ":memory:"):
        engine.dispose()
        engine = warehouse.harden(sa.create_engine(engine.url, poolclass=NullPool))
    return engine


class _FileKeeper:
    """Keeps the DuckDB files of an apply open (so each step does not reopen them), letting go of them
    for a moment every ``EVERY`` seconds: DuckDB lets one process at a time open a file, and a second
    apply must get in to read the lock and fail at once, naming its holder."""

    EVERY, PAUSE = 0.5, 0.1

    def __init__(self, *targets: tuple[Engine, str]):
        self.targets = [(e, u) for e, u in targets if e.dialect.name == "duckdb"]
        self.held: list[sa.Connection] = []
        self.since = time.monotonic()
        self.hold()

    def hold(self) -> None:
        self.held = [connect(engine, url) for engine, url in self.targets]
        self.since = time.monotonic()

    def let_go(self) -> None:
        for conn in self.held:
            conn.close()
        self.held = []

    def tick(self) -> None:
        if self.targets and time.monotonic() - self.since > self.EVERY:
            self.let_go()
            time.sleep(self.PAUSE)
            self.hold()


# ------------------------------------------------------------------ preview


def _has_membership(conn: sa.Connection) -> bool:
    if warehouse.spark_engine(conn):
        return False  # Spark: no shared table; a view per segment over its latest generation (_materialize_spark)
    return sa.inspect(conn).has_table(MEMBERSHIP_TABLE)


def _members_of(name: str) -> sa.Select:
    return select(membership_table.c.customer_id.label("customer_id")).where(membership_table.c.segment == name)


PREVIEW_TABLE = "audlang_preview"
PREVIEW_KEYS_TABLE = "audlang_preview_keys"
PREVIEW_CHUNK = 50


def preview_membership(conn: sa.Connection, model: Model, as_of: AsOf, deployed: Snapshot) -> dict[str, MembershipPreview]:
    """For every segment that is not paused: members, deployed members, added and removed, counted by SQL.

    Each segment's would-be members go into a temporary table (``INSERT … SELECT``, in dependency
    order, so ``in segment`` reads the previewed members of the segments it uses, as apply will);
    then three grouped queries count, for all segments at once, the members and the set differences
    (``EXCEPT``) against the deployed membership. The temporary tables are dropped at the end.
    """
    deployed_segments = deployed.of_kind(ObjectKind.SEGMENT)
    moves = {m.new: m.old for m in model.moves if m.kind == ObjectKind.SEGMENT}
    have_table = _has_membership(conn)
    meta = sa.MetaData()
    preview = sa.Table(PREVIEW_TABLE, meta, sa.Column("segment", sa.String(500)), sa.Column("customer_id", sa.String),
                       prefixes=["TEMPORARY"])
    keys = sa.Table(PREVIEW_KEYS_TABLE, meta, sa.Column("segment", sa.String(500)), prefixes=["TEMPORARY"])
    meta.drop_all(conn, checkfirst=True)
    meta.create_all(conn)

    def key(name: str) -> str:
        """The deployed name the membership is compared with (the old name of a rename)."""
        return name if name in deployed_segments else moves.get(name, name)

    nobody = select(sa.literal("", sa.String).label("customer_id")).where(sa.false())
    membership: dict[str, sa.Select] = {}
    for name, segment in model.segments.items():
        if segment.paused:
            membership[name] = _members_of(key(name)) if have_table else nobody
        else:
            membership[name] = select(preview.c.customer_id).where(preview.c.segment == key(name))
    compiler = SegmentCompiler(model, as_of, membership=membership)
    loaded: set[str] = set()
    previewed: dict[str, str] = {}
    # Segments by level (0: uses no other previewed segment); one INSERT … SELECT … UNION ALL per level
    # and chunk, so that a thousand segments are a handful of statements.
    level: dict[str, int] = {}
    for name, segment in model.segments.items():
        if segment.paused:
            continue
        level[name] = 1 + max((level[d] for d in model.dependencies.get(name, ()) if d in level), default=-1)
        for listed in list_files_used(model, segment.condition):
            if listed.sha256 not in loaded:
                warehouse.load_list(conn, listed)
                loaded.add(listed.sha256)
        previewed[key(name)] = name
    for depth in sorted(set(level.values())):
        names = [n for n in level if level[n] == depth]
        for start in range(0, len(names), PREVIEW_CHUNK):
            parts = []
            for name in names[start:start + PREVIEW_CHUNK]:
                members = compiler.segment(name).subquery()
                parts.append(select(sa.literal(key(name), sa.String).label("segment"), members.c.customer_id))
            conn.execute(preview.insert().from_select(["segment", "customer_id"],
                                                      parts[0] if len(parts) == 1 else sa.union_all(*parts)))
    if previewed:
        conn.execute(keys.insert(), [{"segment": k} for k in previewed])

    def grouped(query) -> dict[str, int]:
        sub = query.subquery()
        return {row[0]: int(row[1]) for row in conn.execute(
            select(sub.c.segment, func.count()).group_by(sub.c.segment))}

    new_rows = select(preview.c.segment, preview.c.customer_id)
    counts = grouped(new_rows)
    deployed_counts: dict[str, int] = {}
    added, removed = dict(counts), {}
    if have_table:
        m = membership_table
        old_rows = select(m.c.segment, m.c.customer_id).where(m.c.segment.in_(select(keys.c.segment)))
        deployed_counts = grouped(old_rows)
        added = grouped(sa.except_(new_rows, old_rows))
        removed = grouped(sa.except_(old_rows, new_rows))
    meta.drop_all(conn)
    return {name: MembershipPreview(counts.get(k, 0), deployed_counts.get(k, 0), added.get(k, 0), removed.get(k, 0))
            for k, name in previewed.items()}


def _env_warnings(model: Model) -> list[str]:
    from audlang import ast

    warnings = []
    for destination in model.destinations.values():
        if destination.paused:
            continue
        for setting in destination.settings:
            if isinstance(setting.value, ast.TextValue):
                for part in setting.value.parts:
                    if isinstance(part, ast.EnvRef) and part.variable not in os.environ:
                        warnings.append(f'destination "{destination.name}": environment variable {part.variable} '
                                        f"({setting.key}) is not set; syncing will need it")
    return warnings


def _relative_sources(sources: dict[str, str], root: Path) -> dict[str, str]:
    out = {}
    for path, text in sources.items():
        try:
            rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
        except ValueError:
            rel = path
        out[rel.replace(os.sep, "/")] = text
    return out


def plan_project(loaded, warehouse_url: str | None = None, state_url: str | None = None,
                 as_of: AsOf | None = None, allow_removals: bool = False) -> Plan:
    """Plan a loaded, checked project (``audlang.project.load``) against the deployed state.

    ``warehouse_url`` and ``state_url`` default to the project's settings
    (environment, then audlang.toml; the state defaults to the warehouse).
    """
    config = loaded.config
    if loaded.errors:
        raise AudlangError(loaded.errors)
    warehouse_url = warehouse_url or warehouse.resolve_url(None, config.warehouse, config.root)
    state_url = state_url or state_url_for(warehouse_url, None, config.state, config.root)
    as_of = as_of or AsOf.today()
    store = StateStore(state_url)
    deployed = store.snapshot()
    engine = open_warehouse(warehouse_url)
    try:
        with warehouse.errors_translated(warehouse_url, loaded.model), begin(engine, warehouse_url) as conn:
            interrupts.hold("plan", conn)
            preview = (_preview_spark if warehouse.spark_engine(conn) else preview_membership)(
                conn, loaded.model, as_of, deployed)
    finally:
        engine.dispose()
    desired = desired_from_model(loaded.model, _relative_sources(loaded.sources, config.root), config.name)
    planned = make_plan(desired, deployed, preview, str(as_of), tuple(_env_warnings(loaded.model)))
    return attrs.evolve(planned, syncs=_sync_preview(loaded.model, warehouse_url, store, as_of, allow_removals),
                        allow_removals=allow_removals)


def _has_sync_state(store: StateStore) -> bool:
    """Whether an earlier apply synced something (targets the project no longer has are then dropped)."""
    from audlang import sync

    with connect(store.engine, store.url) as conn:
        return sync.has_targets(conn)


def _sync_preview(model: Model, warehouse_url: str, store: StateStore, as_of: AsOf, allow_removals: bool) -> tuple:
    """What the syncs after materialization would send, per campaign group and destination (issue 10)."""
    from audlang import sync

    if not sync.targets(model) and not _has_sync_state(store):
        return ()
    engine = open_warehouse(warehouse_url)
    try:
        with warehouse.errors_translated(warehouse_url, model):
            return sync.preview(model, engine, store.engine, as_of, allow_removals,
                                membership=_frozen_membership(model, engine, warehouse_url, store))
    finally:
        engine.dispose()


def _frozen_membership(model: Model, engine: Engine, url: str, store: StateStore) -> dict[str, sa.Select]:
    """What the campaigns will read at apply for the paused segments (their membership as last
    materialized), so the plan counts a campaign on a paused segment as apply will sync it; the other
    segments are computed live at plan time, as apply is about to materialize them."""
    paused = {name for name, segment in model.segments.items() if segment.paused}
    if not paused:
        return {}
    if warehouse.spark_engine(engine):
        return {n: q for n, q in _spark_membership(model, store.snapshot()).items() if n in paused}
    with begin(engine, url) as conn:
        materialized = _has_membership(conn)
    return {name: _members_of(name) for name in paused} if materialized else {}


# ------------------------------------------------------------------ apply


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


def _ensure_membership_table(engine: Engine, url: str) -> None:
    if engine.dialect.name in warehouse.SPARK_DIALECTS:
        return  # Spark: a table per refresh behind a view per segment (_materialize_spark)
    with begin(engine, url) as conn:
        if not _has_membership(conn):
            _metadata.create_all(conn)


def _quote(conn: sa.Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def _replace_view(conn: sa.Connection, segment: str, old: str | None = None) -> None:
    for name in {view_name(segment), *( [view_name(old)] if old else [])}:
        conn.execute(sa.text(f"DROP VIEW IF EXISTS {_quote(conn, name)}"))
    literal = segment.replace("'", "''")
    conn.execute(sa.text(
        f"CREATE VIEW {_quote(conn, view_name(segment))} AS SELECT customer_id FROM {MEMBERSHIP_TABLE} "
        f"WHERE segment = '{literal}'"))


def _materialize(conn: sa.Connection, compiler: SegmentCompiler, model: Model, action: Action,
                 object_id: str) -> dict:
    """Replace one segment's membership in this transaction: build under a staging key, count the
    change, swap. Other sessions see the old rows or the new, never a mix."""
    if warehouse.spark_engine(conn):
        return _materialize_spark(conn, compiler, model, action)
    name = action.name
    m = membership_table
    if action.previous_name:
        conn.execute(m.update().where(m.c.segment == action.previous_name).values(segment=name))
    for listed in list_files_used(model, model.segments[name].condition):
        warehouse.load_list(conn, listed)
    staging = f"audlang:staging:{object_id}"
    conn.execute(m.delete().where(m.c.segment == staging))
    query = compiler.segment(name).subquery("members")
    conn.execute(m.insert().from_select(["segment", "customer_id"],
                                        select(sa.literal(staging, sa.String).label("segment"), query.c.customer_id)))
    new, old = _members_of(staging), _members_of(name)
    count = lambda q: select(func.count()).select_from(q.subquery()).scalar_subquery()  # noqa: E731
    row = conn.execute(select(count(new).label("members"), count(sa.except_(new, old)).label("added"),
                              count(sa.except_(old, new)).label("removed"))).one()
    conn.execute(m.delete().where(m.c.segment == name))
    conn.execute(m.update().where(m.c.segment == staging).values(segment=name))
    _replace_view(conn, name, action.previous_name)
    return {"members": int(row.members), "added": int(row.added), "removed": int(row.removed)}


# ------------------------------------------------------------------ Spark SQL
# Spark has no transactions and cannot DELETE from or UPDATE Parquet tables, so a segment's membership is
# a new table per refresh behind the view ``audlang_members_<slug>``, swapped when the table is complete
# (``warehouse.materialize_counted``); ``in segment`` reads that view.


def _preview_spark(conn: sa.Connection, model: Model, as_of: AsOf, deployed: Snapshot) -> dict[str, MembershipPreview]:
    """``preview_membership`` on Spark: per segment, the would-be members counted against the deployed view."""
    deployed_segments = deployed.of_kind(ObjectKind.SEGMENT)
    moves = {m.new: m.old for m in model.moves if m.kind == ObjectKind.SEGMENT}
    nobody = select(sa.literal("", sa.String).label("customer_id")).where(sa.false())
    views = {name: view_name(name if name in deployed_segments else moves.get(name, name)) for name in model.segments}
    existing = {v for v in set(views.values()) if warehouse.spark_has_view(conn, v)}
    frozen = {name: warehouse.members_view(views[name]) if views[name] in existing else nobody
              for name, seg in model.segments.items() if seg.paused}
    compiler = SegmentCompiler(model, as_of, membership=frozen)
    count = lambda q: select(func.count()).select_from(q.subquery()).scalar_subquery()  # noqa: E731
    out: dict[str, MembershipPreview] = {}
    for name, segment in model.segments.items():
        if segment.paused:
            continue
        for listed in list_files_used(model, segment.condition):
            warehouse.load_list(conn, listed)
        new = compiler.segment(name).cte("new_members")
        if views[name] in existing:
            old = warehouse.members_view(views[name]).cte("old_members")
            row = conn.execute(select(
                count(select(new.c.customer_id)).label("members"), count(select(old.c.customer_id)).label("deployed"),
                count(sa.except_(select(new.c.customer_id), select(old.c.customer_id))).label("added"),
                count(sa.except_(select(old.c.customer_id), select(new.c.customer_id))).label("removed"))).one()
            out[name] = MembershipPreview(int(row.members), int(row.deployed), int(row.added), int(row.removed))
        else:
            members = int(conn.execute(select(count(select(new.c.customer_id)))).scalar())
            out[name] = MembershipPreview(members, 0, members, 0)
    return out


def _spark_membership(model: Model, deployed: Snapshot) -> dict[str, sa.Select]:
    """What the campaigns read for each segment after the segments are applied on Spark: what
    ``audlang_membership`` gives them elsewhere. A segment materialized (by this apply or before: the
    state records its member count) is its view ``audlang_members_<slug>``, read instead of computing
    the segment again — a paused one's as it was frozen, as ``in segment`` reads it; a paused segment
    never materialized has no members. Known from the state, without a query to Spark."""
    segments = deployed.of_kind(ObjectKind.SEGMENT)
    nobody = select(sa.literal("", sa.String).label("customer_id")).where(sa.false())
    out: dict[str, sa.Select] = {}
    for name, segment in model.segments.items():
        have = segments.get(name)
        if have is not None and have.members is not None:
            out[name] = warehouse.members_view(view_name(name))
        elif segment.paused:
            out[name] = nobody
    return out


def _materialize_spark(conn: sa.Connection, compiler: SegmentCompiler, model: Model, action: Action) -> dict:
    name = action.name
    if action.previous_name:
        warehouse.rename_materialized(conn, view_name(action.previous_name), view_name(name))
    for listed in list_files_used(model, model.segments[name].condition):
        warehouse.load_list(conn, listed)
    return warehouse.materialize_counted(conn, view_name(name), compiler.segment(name))


def apply_plan(plan: Plan, warehouse_url: str, state_url: str | None = None, root: str | Path = ".",
               model: Model | None = None, echo: Callable[[str], None] | None = None,
               sync_progress: Callable | None = None) -> ApplyResult:
    """Carry out exactly ``plan``: lock, stale check, materialize in order, record each change.

    ``model`` is the checked project the plan was made from; without it (a
    saved plan) the definitions recorded in the plan are checked again.
    ``echo`` receives one line per step; after the segments, the campaigns are computed and synced to
    their destinations (``audlang.sync``), ``sync_progress(target, done, total)`` following each batch.
    """
    echo = echo or (lambda _line: None)
    state_url = state_url or warehouse_url
    root = Path(root)
    if model is None:
        model = model_from_plan(plan, root)
    store = StateStore(state_url)
    engine = open_warehouse(warehouse_url)
    applied: list[str] = []
    keeper = None
    apply_id = None
    try:
        lock, taken_over = store.acquire("apply")  # inside the try: an interrupt right after still releases it
        apply_id = lock.lock_id
        keeper = _FileKeeper((engine, warehouse_url), (store.engine, state_url))
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
        if any(a.materialize or a.kind == ObjectKind.SEGMENT for a in plan.actions):
            _ensure_membership_table(engine, warehouse_url)
        # `in segment` reads what is materialized: upstream segments come first in the plan's order.
        membership = {name: warehouse.members_view(view_name(name)) if warehouse.spark_engine(engine)
                      else _members_of(name) for name in model.segments}
        compiler = SegmentCompiler(model, as_of, membership=membership)
        serial = deployed.serial
        for action in plan.actions:
            line, written = _carry_out(action, store, engine, warehouse_url, compiler, model, deployed, plan,
                                       apply_id)
            serial = serial if written is None else written  # a paused object writes nothing
            applied.append(line)
            echo(line)
            if STEP_DELAY:
                keeper.let_go()
                time.sleep(STEP_DELAY)
                keeper.hold()
            keeper.tick()
            interrupts.check()
        syncs = _run_syncs(plan, model, engine, warehouse_url, store, root, as_of, apply_id, echo, sync_progress)
        store.log(apply_id, "apply finished", {"serial": serial, "actions": len(applied),
                                               "syncs_failed": sum(r.status == SyncStatus.FAILED for r in syncs)})
        return ApplyResult(serial, tuple(applied), lock.lock_id, taken_over.lock_id if taken_over else None,
                           tuple(syncs))
    except BaseException as error:
        if apply_id is not None:
            _log_stop(store, apply_id, error, len(applied))
        raise
    finally:
        if keeper is not None:
            keeper.let_go()
        store.release()
        engine.dispose()


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

    if not sync.targets(model) and not _has_sync_state(store):
        return []
    if warehouse.spark_engine(engine):
        membership = _spark_membership(model, store.snapshot())
    else:
        with begin(engine, url) as conn:
            materialized = _has_membership(conn)
        membership = {name: _members_of(name) for name in model.segments} if materialized else None
    with warehouse.errors_translated(url, model):
        results = sync.apply_syncs(model, engine, store.engine, as_of, root, membership, plan.allow_removals,
                                   progress, exports_root=load_config(root).exports_root)
    for r in results:
        store.log(apply_id, "synced", {k: v for k, v in r.to_json().items() if k != "seconds"})
        echo(f'synced "{r.target.campaign}" / "{r.target.group}" \u2192 "{r.target.destination}": {r.status}, '
             f"+{r.added:,} \u2212{r.removed:,}, {r.skipped:,} skipped, {r.rejected:,} rejected"
             + (f" ({r.message})" if r.message else ""))
    return results


def _carry_out(action: Action, store: StateStore, engine: Engine, url: str, compiler: SegmentCompiler,
               model: Model, deployed: Snapshot, plan: Plan, apply_id: str) -> tuple[str, int | None]:
    """Carry out one action; returns its line and the serial it wrote (None: it wrote nothing).

    An interrupt rolls the action's warehouse transaction back; from its commit to the state's record of
    it (a shield entered in ``recording`` inside the transaction) it waits, so the two never disagree."""
    with contextlib.ExitStack() as recording:
        return _carry_out_recorded(action, store, engine, url, compiler, model, deployed, plan, apply_id, recording)


def _carry_out_recorded(action: Action, store: StateStore, engine: Engine, url: str, compiler: SegmentCompiler,
                        model: Model, deployed: Snapshot, plan: Plan, apply_id: str,
                        recording: contextlib.ExitStack) -> tuple[str, int | None]:
    have = deployed.get(action.kind, action.previous_name or action.name)
    object_id = action.object_id or (have.object_id if have else None) or str(uuid.uuid4())
    title = f'{action.kind} "{action.name}"'
    reasons = [reason_text(r, action.kind) for r in action.reasons]  # the history keeps the sentences
    if action.action == PlanAction.DELETE:
        if action.kind == ObjectKind.SEGMENT:
            with warehouse.errors_translated(url, model), begin(engine, url) as conn:
                if _has_membership(conn):
                    conn.execute(membership_table.delete().where(membership_table.c.segment == action.name))
                if view_name(action.name) not in {view_name(n) for n in model.segments}:
                    if warehouse.spark_engine(conn):
                        warehouse.drop_materialized(conn, view_name(action.name))
                    else:
                        conn.execute(sa.text(f"DROP VIEW IF EXISTS {_quote(conn, view_name(action.name))}"))
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
        with warehouse.errors_translated(url, model), begin(engine, url) as conn:
            counts = _materialize(conn, compiler, model, action, object_id)
            interrupts.hold("materialize", conn)
            recording.enter_context(interrupts.shielded())
        members, as_of, refreshed = counts["members"], plan.as_of, now()
    elif action.previous_name and action.kind == ObjectKind.SEGMENT:
        with warehouse.errors_translated(url, model), begin(engine, url) as conn:
            if _has_membership(conn):
                conn.execute(membership_table.update().where(membership_table.c.segment == action.previous_name)
                             .values(segment=action.name))
                _replace_view(conn, action.name, action.previous_name)
            elif warehouse.spark_engine(conn):
                warehouse.rename_materialized(conn, view_name(action.previous_name), view_name(action.name))
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
    suffix = f": {counts['members']:,} members (+{counts['added']:,} \u2212{counts['removed']:,})" if counts else ""
    prefix = f'renamed {action.kind} "{action.previous_name}" to "{action.name}"' if action.previous_name \
        else f"{event} {title}"
    return prefix + suffix, serial


# ------------------------------------------------------------------ audlang demo


def demo_model(model: Model, attentive_url: str) -> Model:
    """The example project as ``audlang demo`` runs it (cli/data.py): Attentive destinations pointed at
    the local sandbox; the destinations with no local stand-in (Klaviyo, Braze, webhooks) paused."""
    from audlang import ast

    destinations = {}
    for name, d in model.destinations.items():
        if d.kind == "attentive":
            settings = tuple(s for s in d.settings if s.key != "base_url") + (
                ast.Setting("base_url", ast.TextValue((ast.StringValue(attentive_url),))),)
            d = attrs.evolve(d, settings=settings)
        elif d.kind not in ("csv", "sql"):
            d = attrs.evolve(d, paused=True)
        destinations[name] = d
    return attrs.evolve(model, destinations=destinations)
