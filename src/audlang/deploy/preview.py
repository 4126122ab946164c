"""Plan a project against the deployed state: the membership preview, then the pure planner.

``plan_project(loaded, warehouse_url=None, state_url=None, as_of=None) -> Plan``: the membership
preview is counted in the warehouse (``warehouse.Membership.preview``: SQL set differences against
the deployed membership), the syncs are previewed (``sync.preview``), then ``plan.plan`` decides.
The warehouse is only read: a DuckDB file is opened read-only, so a plan never disturbs an apply.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from audlang import interrupts, warehouse
from audlang.check import Model
from audlang.compile import AsOf, SegmentCompiler, list_files_used
from audlang.compile.facts import SharedFacts
from audlang.deploy.session import Session
from audlang.diagnostics import AudlangError
from audlang.plan import MembershipPreview, Plan, desired_from_model, plan as make_plan
from audlang.state import Snapshot, StateStore
from audlang.state.store import begin, connect
from audlang.vocabulary import ObjectKind


def frozen_membership(model: Model, deployed: Snapshot, mem: warehouse.Membership,
                      names=None) -> dict[str, sa.Select]:
    """What ``in segment`` and the campaigns read for segments not computed now: a segment
    materialized before (the state records its members) is its materialized membership; a paused
    segment never materialized has no one. ``names`` limits it (default: every segment)."""
    segments = deployed.of_kind(ObjectKind.SEGMENT)
    out: dict[str, sa.Select] = {}
    for name, segment in model.segments.items():
        if names is not None and name not in names:
            continue
        have = segments.get(name)
        if have is not None and have.members is not None:
            out[name] = mem.members_of(name)
        elif segment.paused:
            out[name] = warehouse.nobody()
    return out


def previewed_part(compiler: SegmentCompiler, name: str) -> sa.Select | warehouse.Filter:
    """What the preview counts for a segment: a filter over the compiler's one row source where the
    segment is one (the preview tests all of them on one scan), else its query."""
    test = compiler.segment_test(name)
    if test is None:
        return compiler.segment(name)
    return warehouse.Filter(compiler.filter_source(), compiler.source_customer_id(), test)


def preview_membership(conn: sa.Connection, model: Model, as_of: AsOf, deployed: Snapshot,
                       session: Session | None = None) -> dict[str, MembershipPreview]:
    """For every segment that is not paused: members, deployed members, added and removed, counted by SQL.

    Segments go level by level (level 0 uses no other previewed segment), so ``in segment`` reads the
    previewed members of the segments it uses, as apply will; a paused segment is read as it was
    last materialized. A renamed segment is compared with the membership under its old name. The
    segments' shared facts are computed once first (``compile.facts``), as apply computes them."""
    mem = warehouse.for_bind(conn)
    deployed_segments = deployed.of_kind(ObjectKind.SEGMENT)
    moves = {m.new: m.old for m in model.moves if m.kind == ObjectKind.SEGMENT}

    def key(name: str) -> str:
        return name if name in deployed_segments else moves.get(name, name)

    frozen: dict[str, sa.Select] = {}
    for name, segment in model.segments.items():
        if segment.paused:
            have = deployed_segments.get(key(name))
            frozen[name] = mem.members_of(key(name)) if have is not None and have.members is not None \
                else warehouse.nobody()
    level: dict[str, int] = {}
    loaded: set[str] = set()
    for name, segment in model.segments.items():
        if segment.paused:
            continue
        level[name] = 1 + max((level[d] for d in model.dependencies.get(name, ()) if d in level), default=-1)
        for listed in list_files_used(model, segment.condition):
            if listed.sha256 not in loaded:
                warehouse.load_list(conn, listed)
                loaded.add(listed.sha256)

    def level_queries(names: list[str]):
        def queries(previewed):
            membership = dict(frozen)
            used = {d for n in names for d in model.dependencies.get(n, ()) if d in level}
            for other in used:  # what `in segment` reads: the previewed members of earlier levels
                query = previewed(key(other))
                if query is not None:
                    membership[other] = query
            compiler = SegmentCompiler(model, as_of, membership=membership, facts=facts)
            return {key(n): previewed_part(compiler, n) for n in names}
        return queries

    levels = [level_queries([n for n in level if level[n] == depth]) for depth in sorted(set(level.values()))]
    used = {key(d) for n in level for d in model.dependencies.get(n, ()) if d in level}  # read by `in segment`
    if session is not None:  # the facts stay for the apply that follows (``deploy.session``)
        facts = session.facts(model, as_of, level)
        counted = mem.preview(conn, levels, used)
    else:
        with warehouse.shared_facts(conn, SharedFacts.collect(model, as_of, level)) as facts:
            counted = mem.preview(conn, levels, used)
    return {name: MembershipPreview(c.members, c.deployed, c.added, c.removed)
            for name in level for c in [counted[key(name)]]}


def env_warnings(model: Model) -> list[str]:
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


def relative_sources(sources: dict[str, str], root: Path) -> dict[str, str]:
    out = {}
    for path, text in sources.items():
        try:
            rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
        except ValueError:
            rel = path
        out[rel.replace(os.sep, "/")] = text
    return out


def plan_project(loaded, warehouse_url: str | None = None, state_url: str | None = None,
                 as_of: AsOf | None = None, allow_removals: bool = False, session: Session | None = None) -> Plan:
    """Plan a loaded, checked project (``audlang.project.load``) against the deployed state.

    ``warehouse_url`` and ``state_url`` default to the project's settings (``warehouse.resolve``).
    ``session``: the plan is made on the session's connection and leaves its shared facts there for the
    apply that follows (``deploy.session``); without one the warehouse is opened read-only.
    """
    config = loaded.config
    if loaded.errors:
        raise AudlangError(loaded.errors)
    warehouse_url = warehouse_url or warehouse.resolve_url(None, config.warehouse, config.root)
    state_url = state_url or warehouse.state_url_for(warehouse_url, None, config.state, config.root)
    as_of = as_of or config.resolved_as_of()  # `as_of` in audlang.toml, else today
    store = StateStore(state_url)
    deployed = store.snapshot()
    engine = session.engine if session is not None else warehouse.open_engine(warehouse_url, warehouse.Role.READ)
    try:
        with warehouse.errors_translated(warehouse_url, loaded.model), \
                (_begun(session.conn) if session is not None else begin(engine, warehouse_url)) as conn:
            interrupts.hold("plan", conn)
            preview = preview_membership(conn, loaded.model, as_of, deployed, session)
        desired = desired_from_model(loaded.model, relative_sources(loaded.sources, config.root), config.name)
        planned = make_plan(desired, deployed, preview, str(as_of), tuple(env_warnings(loaded.model)))
        syncs = sync_preview(loaded.model, engine, warehouse_url, store, deployed, as_of, allow_removals)
    finally:
        if session is None:
            engine.dispose()
    return attrs.evolve(planned, syncs=syncs, allow_removals=allow_removals)


@contextlib.contextmanager
def _begun(conn: sa.Connection) -> Iterator[sa.Connection]:
    with conn.begin():
        yield conn


def has_sync_state(store: StateStore) -> bool:
    """Whether an earlier apply synced something (targets the project no longer has are then dropped)."""
    from audlang import sync

    with connect(store.engine, store.url) as conn:
        return sync.has_targets(conn)


def sync_preview(model: Model, engine: Engine, warehouse_url: str, store: StateStore, deployed: Snapshot,
                 as_of: AsOf, allow_removals: bool) -> tuple:
    """What the syncs after materialization would send, per campaign group and destination. The
    campaigns read the paused segments as last materialized (as apply will); the other segments are
    computed live, as apply is about to materialize them."""
    from audlang import sync

    if not sync.targets(model) and not has_sync_state(store):
        return ()
    paused = {name for name, segment in model.segments.items() if segment.paused}
    membership = frozen_membership(model, deployed, warehouse.for_bind(engine), paused)
    with warehouse.errors_translated(warehouse_url, model):
        return sync.preview(model, engine, store.engine, as_of, allow_removals, membership=membership)
