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

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable, DropTable
from sqlalchemy.sql.functions import Function

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
#: For a statement run once: SQLAlchemy skips the cache key of its compiled form (a walk of the
#: whole statement that a big preview statement pays for nothing).
ONCE = {"compiled_cache": None}
_K = TypeVar("_K")


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


@attrs.frozen(eq=False)
class Filter:
    """A segment whose members are the ``customer_id`` of the rows of ``source`` where ``test`` holds.
    The preview tests all the filters over one source on one scan of it."""

    source: Any  # a FromClause
    customer_id: Any  # the column of ``source``
    test: Any  # a boolean ColumnElement over ``source``

    def query(self) -> sa.Select:
        """The members as a segment's query: ``SELECT DISTINCT customer_id``."""
        return select(self.customer_id.label("customer_id")).select_from(self.source) \
            .where(self.customer_id.is_not(None), self.test).distinct()


#: ``queries(previewed) -> {key: SELECT or Filter}`` for one level of segments: each segment of the
#: level, compiled with ``in segment`` reading ``previewed(key)`` for the segments of earlier levels
#: (None where the storage keeps no preview rows: the compiler computes the segment again).
LevelQueries = Callable[[Callable[[str], sa.Select | None]], Mapping[str, "sa.Select | Filter"]]


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
        new_table, rows = generations.write(conn, view, _ids(query.subquery("members")), before=before)
        change = _counted(conn, new_table, view if before or at_view == "view" else None, rows)
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
        new_table, _rows = generations.write(conn, table.name, everything, index=("campaign", "group_name"))
        t = sa.table(new_table, sa.column("campaign"), sa.column("group_name"))
        out: dict[str, dict[str, int]] = {name: {} for name in queries}
        for campaign, group_name, count in conn.execute(
                select(t.c.campaign, t.c.group_name, func.count()).group_by(t.c.campaign, t.c.group_name)):
            if campaign in out:
                out[campaign][group_name] = int(count)
        generations.swap(conn, table.name, new_table, columns=CAMPAIGN_COLUMNS)
        return out


def _counted(conn: sa.Connection, new_table: str, old_view: str | None, rows: int | None = None) -> Change:
    """The new generation counted against what the view shows now (before the swap): one query, the two
    sides' sizes and their ``INTERSECT`` (a segment's ids are distinct: its query is a SELECT DISTINCT, and
    each generation is written from one), which costs half of two ``EXCEPT``s. With nothing deployed,
    the rows the write reported (``rows``) are the count, where the engine reports them."""
    new = select(_view(new_table).c.customer_id)
    if old_view is None:
        members = int(conn.execute(select(_count(new))).scalar_one()) if rows is None else rows
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
    written = [(v, generations.write(conn, v, _ids(_view(v)), before=[])[0]) for v in old_views]
    for view, new_table in written:
        generations.swap(conn, view, new_table, before=[])
    drop_table(conn, LEGACY_TABLE)


# ------------------------------------------------------------------ the plan's preview


def _preview_in_temporary_tables(conn: sa.Connection, levels: Sequence[LevelQueries],
                                 deployed: set[str], used: Collection[str]) -> dict[str, Previewed]:
    """A chunk of segments is counted in one statement (``_counts``): the would-be members of each and
    the rows of their views, keyed by the segment's number, grouped on (number, id), then per number:
    the members, the deployed members, and those in both; added and removed follow. The filters over
    one table are tested on one scan of it (``numbered``); those with nothing deployed, over a table that
    holds each id once, are only counted (``_fresh_counts``). Nothing is written but the members of the
    segments that later levels read (``used``, through ``in segment``): those go into a temporary
    table, keyed by number (each level's rows are inserted together, so the engine skips the other row
    groups), and are counted from there. The temporary table is dropped at the end."""
    meta = sa.MetaData()
    rows = sa.Table(PREVIEW_TABLE, meta, sa.Column("seg", sa.Integer), sa.Column("customer_id", sa.String),
                    prefixes=["TEMPORARY"])
    # DDL without the catalog lookups of create_all/drop_all (DuckDB's pg_catalog is slow with many tables)
    conn.execute(DropTable(rows, if_exists=True))
    conn.execute(CreateTable(rows))
    index: dict[str, int] = {}
    by_index: dict[int, str] = {}
    arrays = traits(conn).arrays
    once: dict[int, bool] = {}  # per filter source: whether it holds each id once (``_fresh_counts``)

    def previewed_members(key: str) -> sa.Select:
        return select(rows.c.customer_id).where(rows.c.seg == index[key])

    out: dict[str, Previewed] = {}
    for level in levels:
        queries = dict(level(previewed_members))
        for key in queries:
            index[key] = len(index)
            by_index[index[key]] = key
        kept = [key for key in queries if key in used]
        for start in range(0, len(kept), PREVIEW_CHUNK):
            n = numbered([(index[k], queries[k]) for k in kept[start:start + PREVIEW_CHUNK]], arrays) \
                .subquery("n")
            conn.execute(rows.insert().from_select(["seg", "customer_id"],
                                                   select(n.c.seg, n.c.customer_id).distinct()), execution_options=ONCE)
        names = list(queries)
        sources = {k: previewed_members(k) if k in used else queries[k] for k in names}
        for start in range(0, len(names), PREVIEW_CHUNK):
            keys = names[start:start + PREVIEW_CHUNK]
            for k in keys:
                out[k] = Previewed(0, 0, 0, 0)
            fresh = _fresh_counts(conn, [(k, part) for k in keys if isinstance(part := sources[k], Filter)
                                         and view_name(k) not in deployed], once)
            for k, members in fresh.items():
                out[k] = Previewed(members, 0, members, 0)
            keys = [k for k in keys if k not in fresh]
            if not keys:
                continue
            old = [(index[k], view_name(k)) for k in keys if view_name(k) in deployed]
            for seg, members, kept_ids, before in conn.execute(
                    _counts(conn, numbered([(index[k], sources[k]) for k in keys], arrays), old),
                    execution_options=ONCE):
                members, kept_ids, before = int(members or 0), int(kept_ids or 0), int(before or 0)
                out[by_index[int(seg)]] = Previewed(members, before, members - kept_ids, before - kept_ids)
    conn.execute(DropTable(rows))
    return out


def _fresh_counts(conn: sa.Connection, filters: Sequence[tuple[str, Filter]], once: dict[int, bool]
                  ) -> dict[str, int]:
    """The members of filters with nothing deployed, where nothing else is needed: per source, one row
    of ``count(CASE WHEN test THEN 1 END)`` per filter, no rows kept or grouped, when the source holds
    each customer id once. The first such scan of a source checks that too (``count(id) =
    count(DISTINCT id)``) and ``once`` keeps the answer for the later chunks. A source that repeats an
    id leaves its filters out (``_counts`` counts their distinct ids)."""
    out: dict[str, int] = {}
    for key_of, group in _by_source(filters).items():
        if once.get(key_of) is False:
            continue
        source, cid = group[0][1].source, group[0][1].customer_id
        checks = [] if once.get(key_of) else [func.count(cid), func.count(cid.distinct())]
        counts = [func.count(sa.case((part.test, _number(1)))) for _key, part in group]
        row = conn.execute(select(*checks, *counts).select_from(source).where(cid.is_not(None)),
                           execution_options=ONCE).one()
        if checks:
            once[key_of] = row[0] == row[1]
            if not once[key_of]:
                continue
        out.update({key: int(n) for (key, _part), n in zip(group, row[len(checks):], strict=True)})
    return out


def _by_source(parts: Iterable[tuple[_K, Filter]]) -> dict[int, list[tuple[_K, Filter]]]:
    """The filters grouped by the table they read (the same alias object), in their order."""
    groups: dict[int, list[tuple[_K, Filter]]] = {}
    for key, part in parts:
        groups.setdefault(id(part.source), []).append((key, part))
    return groups


def _number(n: int) -> sa.ColumnElement[int]:
    return sa.literal_column(str(int(n)), sa.Integer)


def numbered(parts: Sequence[tuple[int, sa.Select | Filter]], arrays: bool) -> sa.Select:
    """``(seg, customer_id)`` rows of each numbered segment (as text; a filter's rows may repeat an id
    when its table does). The filters over one source are tested on one scan of it: where the engine
    has arrays, each row's numbers are ``unnest(ARRAY[CASE WHEN test THEN number END, …])``, the NULLs
    dropped; elsewhere one ``SELECT`` per filter over the source, with no subquery."""
    selects: list[sa.Select] = []
    for number, part in parts:
        if not isinstance(part, Filter):
            q = part.subquery()
            selects.append(select(_number(number).label("seg"),
                                  sa.cast(q.c.customer_id, sa.String).label("customer_id")))
    for group in _by_source((n, p) for n, p in parts if isinstance(p, Filter)).values():
        first = group[0][1]
        cid = first.customer_id
        if arrays and len(group) > 1:
            flags = postgresql.array([sa.case((f.test, _number(number))) for number, f in group])
            # Function, not func.unnest: another dialect package may register an `unnest` of its own
            flagged = select(Function("unnest", flags, type_=sa.Integer).label("seg"),
                             sa.cast(cid, sa.String).label("customer_id")) \
                .select_from(first.source).where(cid.is_not(None)).subquery("flagged")
            selects.append(select(flagged.c.seg, flagged.c.customer_id).where(flagged.c.seg.is_not(None)))
        else:
            selects.extend(select(_number(number).label("seg"), sa.cast(f.customer_id, sa.String).label("customer_id"))
                           .select_from(f.source).where(f.customer_id.is_not(None), f.test) for number, f in group)
    return selects[0] if len(selects) == 1 else sa.union_all(*selects)


def _counts(conn: sa.Connection, new: sa.Select, old: Sequence[tuple[int, str]]) -> sa.Select:
    """Per number: the members (``new``'s distinct ids), the ids in both, the deployed members (the
    rows of the views ``old``, distinct already). One ``GROUP BY`` of both sides on (number, id),
    then one per number: no join, and a repeated id counts once."""
    n = new.subquery("n")
    sides: list[Any] = [select(n.c.seg, n.c.customer_id, _number(1).label("in_new"), _number(0).label("in_old"))]
    if old:
        d = _deployed(conn, old).subquery("d")
        sides.append(select(d.c.seg, d.c.customer_id, d.c.in_new, d.c.in_old))
    u = (sides[0] if len(sides) == 1 else sa.union_all(*sides)).subquery("u")
    per = select(u.c.seg, func.max(u.c.in_new).label("in_new"), func.max(u.c.in_old).label("in_old")) \
        .group_by(u.c.seg, u.c.customer_id).subquery("per")
    return select(per.c.seg, func.sum(per.c.in_new), func.sum(per.c.in_new * per.c.in_old),
                  func.sum(per.c.in_old)).group_by(per.c.seg)


def _deployed(conn: sa.Connection, old: Sequence[tuple[int, str]]) -> sa.TextualSelect:
    """The rows of the views ``old`` (number, view name), keyed by number: one ``UNION ALL`` written out
    from quoted names and whole numbers, which a thousand views make in no time (SQLAlchemy would build
    and compile a SELECT each)."""
    quote = conn.dialect.identifier_preparer.quote
    sql = " UNION ALL ".join(f"SELECT {int(number)} AS seg, customer_id, 0 AS in_new, 1 AS in_old FROM {quote(view)}"
                             for number, view in old)
    return sa.text(sql).columns(sa.column("seg", sa.Integer), sa.column("customer_id", sa.String),
                                sa.column("in_new", sa.Integer), sa.column("in_old", sa.Integer))


def _preview_each(conn: sa.Connection, levels: Sequence[LevelQueries], deployed: set[str]) -> dict[str, Previewed]:
    """Without temporary tables (Spark): per segment, the would-be members counted against its view."""
    out: dict[str, Previewed] = {}
    for level in levels:
        for key, part in level(lambda _key: None).items():
            new = (part.query() if isinstance(part, Filter) else part).cte("new_members")
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
