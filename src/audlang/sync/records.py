"""What the syncs recorded in the state, read back: the members a destination rejected and not sent yet
(``audlang sync errors``) and every run (``audlang sync status``, the report).

Reading opens the state as every reader does (``state.sync_tables.prepare`` without creating: an older
state is upgraded in place, a newer one refused). May import ``state`` and SQLAlchemy.
"""

from __future__ import annotations

import json

import attrs
import sqlalchemy as sa

from audlang.state import sync_tables
from audlang.state.sync_tables import errors_table, runs_table
from audlang.vocabulary import MemberOperation


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


def _has_state(state: sa.Engine) -> bool:
    if sync_tables.prepare(state, create=False) is None:
        return False
    with state.connect() as conn:
        return sync_tables.present(conn)


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
