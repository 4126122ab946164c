"""Materialized membership: one interface, one storage on every engine.

``for_bind(conn_or_engine)`` gives the storage of that warehouse. Apply, the campaigns, the syncs,
the plan preview and the report all go through it:

- ``ensure``: ready the storage (an older audlang's warehouse is moved into this one here);
- ``materialized``: whether anything was ever materialized here;
- ``members_of(name)``: the SELECT of a segment's materialized customer ids (what ``in segment``
  reads once a segment is materialized): its view;
- ``replace(conn, name, query)``: the new membership in one step, counted against the old
  (members, added, removed); readers see the old membership or the new one, never a mix;
- ``rename`` and ``drop``;
- ``preview(conn, queries)``: what ``replace`` would count, for many segments at once, writing
  nothing that outlives the call;
- ``replace_groups``: the campaigns' assignment, with its members per group.

The storage (``warehouse.generations``): each segment's view ``audlang_members_<slug>``
(``check.names.view_name``) reads one table of its own, a generation written in full by each refresh
(``CREATE TABLE … AS SELECT``) and swapped in under the view; the campaigns' view
``audlang_campaign_members`` likewise. A refresh writes its segment's rows once and touches no other
segment's, so it costs what its segment costs. DuckDB, SQLite and PostgreSQL do it all in the caller's
transaction; Spark, without transactions, swaps the view when the table is complete (one catalog
update) and keeps the previous generation for readers still scanning it.

An older audlang kept every segment in one indexed table ``audlang_membership(segment, customer_id)``
with a view per segment over it. ``ensure`` moves such a warehouse in place, in the caller's
transaction: each view's rows into a generation of its own (read through the view: exactly what
readers saw), the views repointed, the old table dropped. Until then the old views read as before.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

import attrs
import sqlalchemy as sa
from sqlalchemy import func, select

from audlang.check.names import VIEW_PREFIX, view_name
from audlang.warehouse import generations
from audlang.warehouse.tables import ddl_in_transaction, drop_table, has_table, table_names, traits, \
    view_names

#: The one table of an older audlang's membership, moved into generations by ``ensure``.
LEGACY_TABLE = "audlang_membership"
PREVIEW_TABLE = "audlang_preview"
#: Segments per INSERT … SELECT … UNION ALL of the preview.
PREVIEW_CHUNK = 50
CAMPAIGN_COLUMNS = ("campaign", "group_name", "customer_id")


@attrs.frozen
class Change:
    members: int
    added: int
    removed: int

    def to_dict(self) -> dict[str, int]:
        return {"members": self.members, "added": self.added, "removed": self.removed}


@attrs.frozen
class Previewed:
    members: int
    deployed: int
    added: int
    removed: int


def nobody() -> sa.Select:
    """A membership with no one in it (a paused segment never materialized)."""
    return select(sa.literal("", sa.String).label("customer_id")).where(sa.false())


def _count(query) -> sa.ScalarSelect:
    return select(func.count()).select_from(query.subquery()).scalar_subquery()


def _ids(source) -> sa.Select:
    """The customer ids of a table, view or subquery, as text (what every generation holds)."""
    return select(sa.cast(source.c.customer_id, sa.String).label("customer_id"))


def _view(name: str) -> sa.TableClause:
    return sa.table(name, sa.column("customer_id"))


#: ``queries(previewed) -> {key: SELECT}`` for one level of segments: the SELECT of each segment of the
#: level, compiled with ``in segment`` reading ``previewed(key)`` for the segments of earlier levels
#: (None where the storage keeps no preview rows: the compiler computes the segment again).
LevelQueries = Callable[[Callable[[str], sa.Select | None]], Mapping[str, sa.Select]]


class Membership:
    """A generation table per segment behind its view (``warehouse.generations``), on every engine.

    ``Membership(tracked=True)``: for one run of refreshes on one connection under the apply lock (apply),
    the catalog is listed at the first refresh and followed from there (``generations.Catalog``)."""

    def __init__(self, tracked: bool = False):
        self._tracked = tracked
        self._catalog: generations.Catalog | None = None

    def ensure(self, conn: sa.Connection) -> None:
        """Nothing to make: a segment's first ``replace`` makes its table and view. A warehouse an older
        audlang applied is moved into generation tables (``migrate``), in the caller's transaction."""
        if has_table(conn, LEGACY_TABLE):
            migrate(conn)

    def materialized(self, conn: sa.Connection) -> bool:
        return bool(view_names(conn, VIEW_PREFIX)) or has_table(conn, LEGACY_TABLE)

    def members_of(self, name: str) -> sa.Select:
        return select(_view(view_name(name)).c.customer_id.label("customer_id"))

    def replace(self, conn: sa.Connection, name: str, query: sa.Select, previous_name: str | None = None
                ) -> Change:
        """Write the new generation, count it against the view, swap, in the caller's transaction.

        ``previous_name``: the segment was renamed from it (its tables are renamed first)."""
        ddl_in_transaction(conn)
        if previous_name:
            self.rename(conn, previous_name, name)
        view = view_name(name)
        catalog, self._catalog = self._catalog, None  # dropped until this refresh has succeeded
        if catalog is None and self._tracked:
            catalog = generations.Catalog(conn)
        # the one catalog query of a refresh (none when the catalog is tracked)
        before, at_view = catalog.listed(conn, view) if catalog else generations.listed(conn, view)
        new_table = generations.write(conn, view, _ids(query.subquery("members")), before=before)
        change = _counted(conn, new_table, view if before or at_view == "view" else None)
        generations.swap(conn, view, new_table, before=before, at_view=at_view)
        if catalog is not None:
            catalog.refreshed(conn, view, new_table, before)
            self._catalog = catalog
        return change

    def rename(self, conn: sa.Connection, old: str, new: str) -> None:
        """The tables are renamed and the view made under the new name: no row is read or written."""
        ddl_in_transaction(conn)
        self._catalog = None
        generations.rename(conn, view_name(old), view_name(new))

    def drop(self, conn: sa.Connection, name: str, drop_view: bool = True) -> None:
        """The view and its tables; ``drop_view=False`` when another segment has the same view (a name
        that differs only in case): what is behind it is that segment's now, and stays."""
        ddl_in_transaction(conn)
        self._catalog = None
        if drop_view:
            generations.drop(conn, view_name(name))

    def preview(self, conn: sa.Connection, levels: Sequence[LevelQueries], used: Collection[str] = ()
                ) -> dict[str, Previewed]:
        """Count each level's segments against their deployed membership (keys are deployed names)."""
        deployed = set(view_names(conn, VIEW_PREFIX))
        if traits(conn).temporary_tables:
            return _preview_in_temporary_tables(conn, levels, deployed, used)
        return _preview_each(conn, levels, deployed)

    def replace_groups(self, conn: sa.Connection, table: sa.Table, queries: Mapping[str, sa.Select],
                       kept: Sequence[str]) -> dict[str, dict[str, int]]:
        """The campaigns' assignments (``campaign, group_name, customer_id``) as one new generation behind
        the view ``table.name``: each campaign of ``queries`` computed, those of ``kept`` carried over as
        the view showed them, any other gone; members per group of each campaign of ``queries``."""
        if not queries:
            return {}
        ddl_in_transaction(conn)
        parts = []
        for name, query in queries.items():
            q = query.subquery("q")
            parts.append(select(sa.cast(sa.literal(name, sa.String()), sa.String).label("campaign"),
                                sa.cast(q.c.group_name, sa.String).label("group_name"),
                                sa.cast(q.c.customer_id, sa.String).label("customer_id")))
        if kept and has_table(conn, table.name):  # the view, or an older audlang's table of that name
            before = sa.table(table.name, *(sa.column(c) for c in CAMPAIGN_COLUMNS))
            parts.append(select(*(before.c[c] for c in CAMPAIGN_COLUMNS))
                         .where(before.c.campaign.in_([sa.literal(n, sa.String()) for n in kept])))
        everything = parts[0] if len(parts) == 1 else sa.union_all(*parts)
        new_table = generations.write(conn, table.name, everything, index=("campaign", "group_name"))
        t = sa.table(new_table, sa.column("campaign"), sa.column("group_name"))
        out: dict[str, dict[str, int]] = {name: {} for name in queries}
        for campaign, group_name, count in conn.execute(
                select(t.c.campaign, t.c.group_name, func.count()).group_by(t.c.campaign, t.c.group_name)):
            if campaign in out:
                out[campaign][group_name] = int(count)
        generations.swap(conn, table.name, new_table, columns=CAMPAIGN_COLUMNS)
        return out


def _counted(conn: sa.Connection, new_table: str, old_view: str | None) -> Change:
    """The new generation counted against what the view shows now (before the swap): one query, the two
    sides' sizes and their ``INTERSECT`` (a segment's ids are distinct: its query is a SELECT DISTINCT, and
    each generation is written from one), which costs half of two ``EXCEPT``s."""
    new = select(_view(new_table).c.customer_id)
    if old_view is None:
        members = int(conn.execute(select(_count(new))).scalar_one())
        return Change(members, members, 0)
    old = select(_view(old_view).c.customer_id)
    row = conn.execute(select(_count(new).label("members"), _count(old).label("deployed"),
                              _count(sa.intersect(new, old)).label("both"))).one()
    members, deployed, both = int(row.members), int(row.deployed), int(row.both)
    return Change(members, members - both, deployed - both)


def migrate(conn: sa.Connection) -> None:
    """Move an older audlang's membership (one table ``audlang_membership`` and a view per segment over
    it) into a generation per segment, in the caller's transaction (so a failure or an interrupt leaves
    the old layout as it was, still read the same way). Each view's generation is written from the view
    itself, so it holds exactly what readers saw; then every view is repointed at once, then the old
    table goes. A view with our prefix and no generation is an old one (a segment of no members too)."""
    ddl_in_transaction(conn)
    tables = table_names(conn, generations.GENERATION_PREFIX)
    old_views = [v for v in sorted(view_names(conn, VIEW_PREFIX)) if not generations.generations(conn, v, tables)]
    written = [(v, generations.write(conn, v, _ids(_view(v)), before=[])) for v in old_views]
    for view, new_table in written:
        generations.swap(conn, view, new_table, before=[])
    drop_table(conn, LEGACY_TABLE)


# ------------------------------------------------------------------ the plan's preview


def _preview_in_temporary_tables(conn: sa.Connection, levels: Sequence[LevelQueries],
                                 deployed: set[str], used: Collection[str]) -> dict[str, Previewed]:
    """A chunk of segments is counted in one statement: the would-be members of each (``UNION ALL``,
    keyed by the segment's number) full-outer-joined on (number, id) to the rows of their views (the
    ids on each side are distinct), grouped by number: the members, the deployed members, and those in
    both; added and removed follow. Nothing is written but the members of the segments that later
    levels read (``used``, through ``in segment``): those go into a temporary table, keyed by number
    (each level's rows are inserted together, so the engine skips the other row groups), and are
    counted from there. The temporary table is dropped at the end."""
    meta = sa.MetaData()
    rows = sa.Table(PREVIEW_TABLE, meta, sa.Column("seg", sa.Integer), sa.Column("customer_id", sa.String),
                    prefixes=["TEMPORARY"])
    meta.drop_all(conn, checkfirst=True)
    meta.create_all(conn)
    index: dict[str, int] = {}
    by_index: dict[int, str] = {}

    def previewed_members(key: str) -> sa.Select:
        return select(rows.c.customer_id).where(rows.c.seg == index[key])

    def counted(keys: list[str], sources: Mapping[str, sa.Select]) -> None:
        """One statement for a chunk of segments: their would-be members and their views' rows, each keyed
        by the segment's number, in one full outer join on (number, id); grouped, the three counts."""
        new = [select(sa.literal(index[k], sa.Integer).label("seg"),
                      sa.cast(sources[k].subquery().c.customer_id, sa.String).label("customer_id")) for k in keys]
        old = [select(sa.literal(index[k], sa.Integer).label("seg"), _view(view_name(k)).c.customer_id)
               for k in keys if view_name(k) in deployed]
        n = (new[0] if len(new) == 1 else sa.union_all(*new)).subquery("n")
        if not old:
            query = select(n.c.seg, func.count(), sa.literal(0, sa.Integer), sa.literal(0, sa.Integer)) \
                .group_by(n.c.seg)
        else:
            d = (old[0] if len(old) == 1 else sa.union_all(*old)).subquery("d")
            both = func.sum(sa.case((sa.and_(n.c.customer_id.is_not(None), d.c.customer_id.is_not(None)), 1),
                                    else_=0))
            query = select(func.coalesce(n.c.seg, d.c.seg), func.count(n.c.customer_id), both,
                           func.count(d.c.customer_id)) \
                .select_from(n.join(d, sa.and_(n.c.seg == d.c.seg, n.c.customer_id == d.c.customer_id), full=True)) \
                .group_by(func.coalesce(n.c.seg, d.c.seg))
        for k in keys:
            out[k] = Previewed(0, 0, 0, 0)
        for seg, members, kept_ids, before in conn.execute(query):
            members, kept_ids, before = int(members or 0), int(kept_ids or 0), int(before or 0)
            out[by_index[int(seg)]] = Previewed(members, before, members - kept_ids, before - kept_ids)

    out: dict[str, Previewed] = {}
    for level in levels:
        queries = dict(level(previewed_members))
        for key in queries:
            index[key] = len(index)
            by_index[index[key]] = key
        kept = [key for key in queries if key in used]
        for start in range(0, len(kept), PREVIEW_CHUNK):
            parts = [select(sa.literal(index[k], sa.Integer).label("seg"),
                            sa.cast(queries[k].subquery().c.customer_id, sa.String).label("customer_id"))
                     for k in kept[start:start + PREVIEW_CHUNK]]
            conn.execute(rows.insert().from_select(["seg", "customer_id"],
                                                   parts[0] if len(parts) == 1 else sa.union_all(*parts)))
        names = list(queries)
        sources = {k: previewed_members(k) if k in used else queries[k] for k in names}
        for start in range(0, len(names), PREVIEW_CHUNK):
            counted(names[start:start + PREVIEW_CHUNK], sources)
    meta.drop_all(conn)
    return out


def _preview_each(conn: sa.Connection, levels: Sequence[LevelQueries], deployed: set[str]) -> dict[str, Previewed]:
    """Without temporary tables (Spark): per segment, the would-be members counted against its view."""
    out: dict[str, Previewed] = {}
    for level in levels:
        for key, query in level(lambda _key: None).items():
            new = query.cte("new_members")
            if view_name(key) in deployed:
                old = _view(view_name(key))
                row = conn.execute(select(
                    _count(select(new.c.customer_id)).label("members"),
                    _count(select(old.c.customer_id)).label("deployed"),
                    _count(sa.except_(select(new.c.customer_id), select(old.c.customer_id))).label("added"),
                    _count(sa.except_(select(old.c.customer_id), select(new.c.customer_id))).label("removed"),
                )).one()
                out[key] = Previewed(int(row.members), int(row.deployed), int(row.added), int(row.removed))
            else:
                members = int(conn.execute(select(_count(select(new.c.customer_id)))).scalar())
                out[key] = Previewed(members, 0, members, 0)
    return out


def for_bind(bind: sa.Connection | sa.Engine, tracked: bool = False) -> Membership:
    """The membership storage of this warehouse (one for every engine; ``bind`` is kept for callers);
    ``tracked``: for apply's refreshes (``Membership``)."""
    return Membership(tracked=tracked)
