"""Group assignment, computed in the database.

Treatments and the holdout split the audience by a **bucket**: 0..9999 from
the md5 of ``salt + ":" + customer_id`` (``compile.dialects.bucket``; the same
number on DuckDB, SQLite, PostgreSQL and in Python). Groups own contiguous,
cumulative ranges of buckets in declaration order, holdout first: with a 10%
holdout and two 45% treatments, buckets 0–999 are the holdout, 1000–5499 the
first treatment, 5500–9999 the second. So

- a customer keeps their group across runs and engines (the bucket depends on
  nothing but the salt and their id);
- customers joining or leaving the audience move nobody else;
- a change of percentages moves only the customers whose bucket changes
  owner: the fewest a contiguous layout allows (growing the holdout from 10%
  to 12% moves 2% of the audience, all from the first treatment).

Sub-audiences are conditions tested in order, first match wins, with an
optional catch-all; a holdout, when there is one, is taken by bucket before
them. A customer is in at most one group of a campaign.

The assignment is written to ``audlang_campaign_members``: a view over a
generation table that one CREATE TABLE … AS SELECT writes for all campaigns at
once, swapped in whole (``warehouse.Membership.replace_groups``), in one
transaction where the engine has them.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import attrs
import sqlalchemy as sa
from sqlalchemy import String, case, literal, select
from sqlalchemy.sql import Select

from audlang import ast
from audlang.check import Model
from audlang.compile import SegmentCompiler, dialects

HOLDOUT = "holdout"
CAMPAIGN_MEMBERS_TABLE = "audlang_campaign_members"

_metadata = sa.MetaData()
#: The columns of the view ``audlang_campaign_members``. An older audlang kept a table of this name and
#: shape, deleted and inserted into per campaign; the first write of the campaigns replaces it with the
#: view, its paused campaigns' rows carried over. Each generation behind the view is indexed on
#: (campaign, group_name) where an index helps: the syncs read one group at a time.
campaign_members_table = sa.Table(
    CAMPAIGN_MEMBERS_TABLE, _metadata,
    sa.Column("campaign", sa.String(500), nullable=False),
    sa.Column("group_name", sa.String(500), nullable=False),
    sa.Column("customer_id", sa.String, nullable=False),
    sa.Index("audlang_campaign_members_key", "campaign", "group_name"),
)


@attrs.frozen
class Group:
    """One group of a campaign: the holdout, a treatment (a range of buckets) or a sub-audience."""

    name: str
    kind: str  # holdout, treatment, subaudience
    destinations: tuple[str, ...] = ()
    low: int | None = None  # buckets [low, high) for the holdout and treatments
    high: int | None = None
    condition: ast.Condition | None = None  # sub-audiences; None for the catch-all

    @property
    def synced(self) -> bool:
        return self.kind != "holdout"


def salt_of(campaign: ast.Campaign, moves: tuple[ast.Moved, ...] = ()) -> str:
    """The written salt, else the campaign's name, or the first name it had before ``moved`` renames:
    renaming a campaign does not reshuffle its groups."""
    if campaign.salt is not None:
        return campaign.salt
    name, seen = campaign.name, set()
    renamed = {m.new: m.old for m in moves if m.kind == "campaign"}
    while name in renamed and name not in seen:
        seen.add(name)
        name = renamed[name]
    return name


def _buckets(percent: Decimal) -> int:
    return int((Decimal(percent) * dialects.BUCKETS / 100).to_integral_value())


def bucket_ranges(campaign: ast.Campaign) -> list[tuple[str, int, int]]:
    """(group, low, high) for the holdout and each treatment: cumulative ranges, holdout first."""
    out: list[tuple[str, int, int]] = []
    total = Decimal(0)
    low = 0
    parts = ([(HOLDOUT, campaign.holdout)] if campaign.holdout is not None else []) + \
        [(t.name, t.percent) for t in campaign.treatments]
    for name, percent in parts:
        total += Decimal(percent)
        high = min(_buckets(total), dialects.BUCKETS)
        out.append((name, low, high))
        low = high
    return out


def groups(campaign: ast.Campaign) -> tuple[Group, ...]:
    ranges = {name: (low, high) for name, low, high in bucket_ranges(campaign)}
    out: list[Group] = []
    if campaign.holdout is not None:
        out.append(Group(HOLDOUT, "holdout", (), *ranges[HOLDOUT]))
    for t in campaign.treatments:
        out.append(Group(t.name, "treatment", tuple(d.value for d in t.destinations), *ranges[t.name]))
    for s in campaign.subaudiences:
        out.append(Group(s.name, "subaudience", tuple(d.value for d in s.destinations), condition=s.condition))
    return tuple(out)


def audience_query(model: Model, campaign: ast.Campaign, compiler: SegmentCompiler) -> Select:
    audience = campaign.audience
    if audience is not None and audience.segment is not None:
        return compiler.segment_ids(audience.segment)
    if audience is not None and audience.condition is not None:
        return compiler.condition_query(audience.condition)
    return select(literal("", String()).label("customer_id")).where(sa.false())


def assignment_query(model: Model, name: str, compiler: SegmentCompiler) -> Select:
    """``SELECT customer_id, group_name`` of every audience member that falls in a group of the campaign."""
    campaign = model.campaigns[name]
    audience = audience_query(model, campaign, compiler).subquery("audience")
    salt = literal(salt_of(campaign, model.moves) + ":", String())
    members = select(audience.c.customer_id, dialects.bucket(salt + audience.c.customer_id).label("bucket")) \
        .subquery("bucketed")
    cid, bucket = members.c.customer_id, members.c.bucket
    whens = []
    for group in groups(campaign):
        label = literal(group.name, String())
        if group.kind in ("holdout", "treatment"):
            whens.append((sa.and_(bucket >= group.low, bucket < group.high), label))
        elif group.condition is not None:
            whens.append((cid.in_(compiler.condition_query(group.condition)), label))
        else:
            whens.append((sa.true(), label))
    if not whens:
        group_name = sa.null()
    else:
        group_name = case(*whens, else_=sa.null())
    assigned = select(cid.label("customer_id"), group_name.label("group_name")).subquery("assigned")
    return select(assigned.c.customer_id, assigned.c.group_name).where(assigned.c.group_name.is_not(None))


def prepare_connection(conn: sa.Connection) -> None:
    """Register the functions a SQLite connection lacks (the bucket hash); a no-op elsewhere."""
    from audlang import warehouse

    warehouse.prepare_connection(conn)


def materialize_campaigns(engine: sa.Engine, model: Model, as_of, membership: Mapping[str, sa.Select] | None = None
                          ) -> dict[str, dict[str, int]]:
    """Compute every campaign that is not paused into ``audlang_campaign_members``; members per group.

    A paused campaign keeps the rows it has. All of them are written at once as one generation behind
    the view (``warehouse.Membership.replace_groups``), the paused campaigns' rows carried over as the
    view showed them: in one transaction where the warehouse has them (Spark swaps the view when the
    table is complete).
    """
    from audlang import warehouse

    compiler = SegmentCompiler(model, as_of, membership=dict(membership or {}))
    mem = warehouse.for_bind(engine)
    active = [name for name, c in model.campaigns.items() if not c.paused]
    kept = [name for name, c in model.campaigns.items() if c.paused]
    if not active:
        return {}
    with (engine.begin if warehouse.traits(engine).transactions else engine.connect)() as conn:
        prepare_connection(conn)
        for name in active:
            load_lists(conn, model, model.campaigns[name])
        counted = mem.replace_groups(conn, campaign_members_table,
                                     {name: assignment_query(model, name, compiler) for name in active}, kept)
    return {name: {g.name: counted.get(name, {}).get(g.name, 0) for g in groups(model.campaigns[name])}
            for name in active}


def load_lists(conn: sa.Connection, model: Model, campaign: ast.Campaign) -> None:
    """Load the ``in list`` files the campaign's audience and sub-audiences read (once per file content)."""
    from audlang.compile import list_files_used
    from audlang.warehouse import load_list

    conditions = [campaign.audience.condition] if campaign.audience and campaign.audience.condition else []
    if campaign.audience and campaign.audience.segment and campaign.audience.segment in model.segments:
        conditions.append(model.segments[campaign.audience.segment].condition)
    conditions.extend(s.condition for s in campaign.subaudiences if s.condition is not None)
    for condition in conditions:
        for listed in list_files_used(model, condition):
            load_list(conn, listed)
