"""Materialized membership: one interface, two storages.

``for_bind(conn_or_engine)`` gives the storage of that warehouse. Apply, the campaigns, the syncs,
the plan preview and the report all go through it:

- ``ensure``: make the storage (once);
- ``materialized``: whether anything was ever materialized here;
- ``members_of(name)``: the SELECT of a segment's materialized customer ids (what ``in segment``
  reads once a segment is materialized);
- ``replace(conn, name, query)``: the new membership in one step, counted against the old
  (members, added, removed); readers see the old membership or the new one, never a mix;
- ``rename`` and ``drop``;
- ``preview(conn, queries)``: what ``replace`` would count, for many segments at once, writing
  nothing that outlives the call;
- ``replace_groups``: a campaign's assignment, with its members per group.

``TableMembership`` (DuckDB, SQLite, PostgreSQL: transactions): one table
``audlang_membership(segment, customer_id)`` and a view per segment. ``SparkMembership`` (no
transactions, no DELETE): a generation table per refresh behind a view per segment, swapped when
complete (``warehouse.spark``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence

import attrs
import sqlalchemy as sa
from sqlalchemy import func, select

from audlang.check.names import view_name
from audlang.warehouse import spark
from audlang.warehouse.tables import create_table, has_table, is_spark

MEMBERSHIP_TABLE = "audlang_membership"
PREVIEW_TABLE = "audlang_preview"
PREVIEW_KEYS_TABLE = "audlang_preview_keys"
#: Segments per INSERT … SELECT … UNION ALL of the preview.
PREVIEW_CHUNK = 50

_metadata = sa.MetaData()
membership_table = sa.Table(
    MEMBERSHIP_TABLE, _metadata,
    sa.Column("segment", sa.String(500), nullable=False),
    sa.Column("customer_id", sa.String, nullable=False),
    sa.Index("audlang_membership_segment", "segment"),
)


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


#: ``queries(previewed) -> {key: SELECT}`` for one level of segments: the SELECT of each segment of the
#: level, compiled with ``in segment`` reading ``previewed(key)`` for the segments of earlier levels
#: (None where the storage keeps no preview rows: the compiler computes the segment again).
LevelQueries = Callable[[Callable[[str], sa.Select | None]], Mapping[str, sa.Select]]


class Membership(abc.ABC):
    @abc.abstractmethod
    def ensure(self, conn: sa.Connection) -> None: ...

    @abc.abstractmethod
    def materialized(self, conn: sa.Connection) -> bool: ...

    @abc.abstractmethod
    def members_of(self, name: str) -> sa.Select: ...

    @abc.abstractmethod
    def replace(self, conn: sa.Connection, name: str, query: sa.Select, previous_name: str | None = None,
                staging_key: str | None = None) -> Change: ...

    @abc.abstractmethod
    def rename(self, conn: sa.Connection, old: str, new: str) -> None: ...

    @abc.abstractmethod
    def drop(self, conn: sa.Connection, name: str, drop_view: bool = True) -> None: ...

    @abc.abstractmethod
    def preview(self, conn: sa.Connection, levels: Sequence[LevelQueries]) -> dict[str, Previewed]:
        """Count each level's segments against their deployed membership (keys are deployed names)."""

    @abc.abstractmethod
    def replace_groups(self, conn: sa.Connection, table: sa.Table, queries: Mapping[str, sa.Select],
                       kept: Sequence[str]) -> dict[str, dict[str, int]]:
        """Write campaigns' assignments (``campaign, group_name, customer_id``) into ``table``: the
        campaigns of ``queries`` replaced, those of ``kept`` left as they are; members per group."""


class TableMembership(Membership):
    """One indexed table of (segment, customer_id) and a view per segment, in transactions."""

    def ensure(self, conn: sa.Connection) -> None:
        if not self.materialized(conn):
            create_table(conn, membership_table)

    def materialized(self, conn: sa.Connection) -> bool:
        return has_table(conn, MEMBERSHIP_TABLE)

    def members_of(self, name: str) -> sa.Select:
        m = membership_table
        return select(m.c.customer_id.label("customer_id")).where(m.c.segment == name)

    def replace(self, conn: sa.Connection, name: str, query: sa.Select, previous_name: str | None = None,
                staging_key: str | None = None) -> Change:
        """Build under a staging key, count the change, swap, in the caller's transaction."""
        m = membership_table
        if previous_name:
            conn.execute(m.update().where(m.c.segment == previous_name).values(segment=name))
        staging = staging_key or f"audlang:staging:{name}"
        conn.execute(m.delete().where(m.c.segment == staging))
        members = query.subquery("members")
        conn.execute(m.insert().from_select(
            ["segment", "customer_id"], select(sa.literal(staging, sa.String).label("segment"),
                                               members.c.customer_id)))
        new, old = self.members_of(staging), self.members_of(name)
        row = conn.execute(select(_count(new).label("members"), _count(sa.except_(new, old)).label("added"),
                                  _count(sa.except_(old, new)).label("removed"))).one()
        conn.execute(m.delete().where(m.c.segment == name))
        conn.execute(m.update().where(m.c.segment == staging).values(segment=name))
        self._replace_view(conn, name, previous_name)
        return Change(int(row.members), int(row.added), int(row.removed))

    def rename(self, conn: sa.Connection, old: str, new: str) -> None:
        if not self.materialized(conn):
            return
        m = membership_table
        conn.execute(m.update().where(m.c.segment == old).values(segment=new))
        self._replace_view(conn, new, old)

    def drop(self, conn: sa.Connection, name: str, drop_view: bool = True) -> None:
        if self.materialized(conn):
            conn.execute(membership_table.delete().where(membership_table.c.segment == name))
        if drop_view:
            conn.execute(sa.text(f"DROP VIEW IF EXISTS {_quote(conn, view_name(name))}"))

    def _replace_view(self, conn: sa.Connection, segment: str, old: str | None = None) -> None:
        for name in {view_name(segment), *([view_name(old)] if old else [])}:
            conn.execute(sa.text(f"DROP VIEW IF EXISTS {_quote(conn, name)}"))
        literal = segment.replace("'", "''")
        conn.execute(sa.text(
            f"CREATE VIEW {_quote(conn, view_name(segment))} AS SELECT customer_id FROM {MEMBERSHIP_TABLE} "
            f"WHERE segment = '{literal}'"))

    def preview(self, conn: sa.Connection, levels: Sequence[LevelQueries]) -> dict[str, Previewed]:
        """Each level's would-be members go into a temporary table (one INSERT … SELECT … UNION ALL per
        chunk of a level, so a thousand segments are a handful of statements); then three grouped
        queries count, for all segments at once, the members and the set differences (``EXCEPT``)
        against the deployed membership. The temporary tables are dropped at the end."""
        have_table = self.materialized(conn)
        meta = sa.MetaData()
        rows = sa.Table(PREVIEW_TABLE, meta, sa.Column("segment", sa.String(500)),
                        sa.Column("customer_id", sa.String), prefixes=["TEMPORARY"])
        keys = sa.Table(PREVIEW_KEYS_TABLE, meta, sa.Column("segment", sa.String(500)), prefixes=["TEMPORARY"])
        meta.drop_all(conn, checkfirst=True)
        meta.create_all(conn)

        def previewed_members(key: str) -> sa.Select:
            return select(rows.c.customer_id).where(rows.c.segment == key)

        seen: list[str] = []
        for level in levels:
            queries = dict(level(previewed_members))
            names = list(queries)
            seen.extend(names)
            for start in range(0, len(names), PREVIEW_CHUNK):
                parts = []
                for key in names[start:start + PREVIEW_CHUNK]:
                    members = queries[key].subquery()
                    parts.append(select(sa.literal(key, sa.String).label("segment"), members.c.customer_id))
                conn.execute(rows.insert().from_select(["segment", "customer_id"],
                                                       parts[0] if len(parts) == 1 else sa.union_all(*parts)))
        if seen:
            conn.execute(keys.insert(), [{"segment": k} for k in seen])

        def grouped(query) -> dict[str, int]:
            sub = query.subquery()
            return {row[0]: int(row[1]) for row in conn.execute(
                select(sub.c.segment, func.count()).group_by(sub.c.segment))}

        new_rows = select(rows.c.segment, rows.c.customer_id)
        counts = grouped(new_rows)
        deployed: dict[str, int] = {}
        added, removed = dict(counts), {}
        if have_table:
            m = membership_table
            old_rows = select(m.c.segment, m.c.customer_id).where(m.c.segment.in_(select(keys.c.segment)))
            deployed = grouped(old_rows)
            added = grouped(sa.except_(new_rows, old_rows))
            removed = grouped(sa.except_(old_rows, new_rows))
        meta.drop_all(conn)
        return {k: Previewed(counts.get(k, 0), deployed.get(k, 0), added.get(k, 0), removed.get(k, 0))
                for k in seen}

    def replace_groups(self, conn: sa.Connection, table: sa.Table, queries: Mapping[str, sa.Select],
                       kept: Sequence[str]) -> dict[str, dict[str, int]]:
        create_table(conn, table)
        out: dict[str, dict[str, int]] = {}
        for name, query in queries.items():
            conn.execute(table.delete().where(table.c.campaign == name))
            q = query.subquery("q")
            conn.execute(table.insert().from_select(
                ["campaign", "group_name", "customer_id"],
                select(sa.literal(name, sa.String()).label("campaign"), q.c.group_name, q.c.customer_id)))
            out[name] = {g: int(n) for g, n in conn.execute(
                select(table.c.group_name, func.count()).where(table.c.campaign == name)
                .group_by(table.c.group_name))}
        return out


class SparkMembership(Membership):
    """A generation table per refresh behind a view per segment (``view_name``), swapped when written."""

    def ensure(self, conn: sa.Connection) -> None:
        return None  # nothing shared: each segment's generations are made by its first replace

    def materialized(self, conn: sa.Connection) -> bool:
        return False  # no shared table; what a segment has is its view (``has_view``)

    def has_view(self, conn: sa.Connection, name: str) -> bool:
        return spark.has_table(conn, view_name(name).lower())

    def members_of(self, name: str) -> sa.Select:
        t = sa.table(view_name(name).lower(), sa.column("customer_id"))
        return select(t.c.customer_id.label("customer_id"))

    def replace(self, conn: sa.Connection, name: str, query: sa.Select, previous_name: str | None = None,
                staging_key: str | None = None) -> Change:
        """The new generation, counted in Spark against the previous one (kept until the next refresh)."""
        if previous_name:
            self.rename(conn, previous_name, name)
        view = view_name(name).lower()
        had = spark.has_table(conn, view)
        table_name = spark.swap_generation(conn, view, query)
        members = int(conn.execute(sa.text(f"SELECT count(*) FROM {table_name}")).scalar_one())
        if not had:
            return Change(members, members, 0)
        prefix = f"{spark.SPARK_GENERATION_PREFIX}{view}_"
        found = sorted(spark.generations(conn, prefix))
        if len(found) < 2:
            return Change(members, members, 0)
        new, old = (sa.table(f"{prefix}{g}", sa.column("customer_id")) for g in (found[-1], found[-2]))
        row = conn.execute(select(
            _count(sa.except_(select(new.c.customer_id), select(old.c.customer_id))).label("added"),
            _count(sa.except_(select(old.c.customer_id), select(new.c.customer_id))).label("removed"))).one()
        return Change(members, int(row.added), int(row.removed))

    def rename(self, conn: sa.Connection, old: str, new: str) -> None:
        spark.rename_generations(conn, view_name(old), view_name(new))

    def drop(self, conn: sa.Connection, name: str, drop_view: bool = True) -> None:
        if drop_view:
            spark.drop_generations(conn, view_name(name))

    def preview(self, conn: sa.Connection, levels: Sequence[LevelQueries]) -> dict[str, Previewed]:
        """Per segment, the would-be members counted against the deployed view (no temporary tables)."""
        out: dict[str, Previewed] = {}
        for level in levels:
            for key, query in level(lambda _key: None).items():
                new = query.cte("new_members")
                if self.has_view(conn, key):
                    old = self.members_of(key).cte("old_members")
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

    def replace_groups(self, conn: sa.Connection, table: sa.Table, queries: Mapping[str, sa.Select],
                       kept: Sequence[str]) -> dict[str, dict[str, int]]:
        """One generation for every campaign at once: the UNION ALL of each replaced campaign's
        assignment and of the kept campaigns' rows as the view showed them."""
        if not queries:
            return {}
        parts = []
        for name, query in queries.items():
            q = query.subquery("q")
            parts.append(select(sa.literal(name, sa.String()).label("campaign"), q.c.group_name, q.c.customer_id))
        if kept and spark.has_view(conn, table.name):
            view = sa.table(table.name, sa.column("campaign"), sa.column("group_name"), sa.column("customer_id"))
            parts.append(select(view.c.campaign, view.c.group_name, view.c.customer_id)
                         .where(view.c.campaign.in_([sa.literal(n, sa.String()) for n in kept])))
        everything = parts[0] if len(parts) == 1 else sa.union_all(*parts)
        table_name = spark.swap_generation(conn, table.name, everything,
                                           columns=("campaign", "group_name", "customer_id"))
        t = sa.table(table_name, sa.column("campaign"), sa.column("group_name"))
        out: dict[str, dict[str, int]] = {name: {} for name in queries}
        for campaign, group_name, count in conn.execute(
                select(t.c.campaign, t.c.group_name, func.count()).group_by(t.c.campaign, t.c.group_name)):
            if campaign in out:
                out[campaign][group_name] = int(count)
        return out


def _quote(conn: sa.Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def for_bind(bind: sa.Connection | sa.Engine) -> Membership:
    """The membership storage of this warehouse."""
    return SparkMembership() if is_spark(bind) else TableMembership()
