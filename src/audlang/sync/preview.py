"""The syncs of a plan: per campaign group and destination, what a sync after materialization would send.

Reads only and counts only (the syncer's ``compute`` without fetching); nothing is sent and no member
leaves the database. May import ``campaigns``, ``destinations``, ``check``, ``compile``, ``plan`` (its
values), ``state`` and SQLAlchemy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import sqlalchemy as sa

from audlang.check import Model
from audlang.destinations import missing_env
from audlang.state import sync_tables
from audlang.sync import delta as wh
from audlang.sync.syncer import Syncer
from audlang.sync.targets import STOPPED_MESSAGE, stopped, targets
from audlang.vocabulary import SyncPreviewStatus, counted


def preview(model: Model, warehouse: sa.Engine, state: sa.Engine, as_of, allow_removals: bool = False,
            env: Mapping[str, str] | None = None, membership: Mapping[str, sa.Select] | None = None) -> tuple:
    """Per campaign group and destination, what a sync after materialization would send (plan time).

    Reads only and counts only: the groups are computed by the live assignment query and compared with
    the acknowledged membership in one query per target; nothing is written, no member leaves the database
    (an older state is upgraded in place, as every reader of the state does)."""
    from audlang.campaigns.assign import assignment_query, load_lists
    from audlang.compile import SegmentCompiler
    from audlang.plan.model import SyncPreview

    env = os.environ if env is None else env
    sync_tables.prepare(state, create=False)
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
    for target, target_id in stopped(model, state):
        with warehouse.connect() as conn:
            acked = wh.count_acknowledged(conn, target_id)
        kind = model.destinations[target.destination].kind if target.destination in model.destinations else "removed"
        out.append(SyncPreview(target.campaign, target.group, target.destination, kind, SyncPreviewStatus.STOPPED,
                               message=f"{counted(acked, 'member')} acknowledged; " + STOPPED_MESSAGE))
    return tuple(out)
