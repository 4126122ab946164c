"""The warehouse side of the sync: what each destination acknowledged, and the delta, in SQL.

The membership a destination acknowledged lives in the warehouse, beside the
membership it is compared with, so the database computes the delta and only
the changes travel to Python (to be sent). Hightouch's "Lightning" engine and
Census keep their diff snapshots in the warehouse for the same reason.

``audlang_sync_log`` is **append-only**: each acknowledged batch appends one
row per member (``operation`` add or remove) under the target's id and the
batch's *tick* (a number the state database hands out, increasing per target).
A target's acknowledged membership is, per customer and key, the row with the
highest tick, when that row is an add: a customer whose key changed is
acknowledged under the old key until the removal of that key is acknowledged
(a rejected removal is retried; the old key is never forgotten). Appending is the one write every engine takes
(Spark's Parquet tables refuse DELETE and UPDATE), and a half-finished append
is recognised by its tick (``has_tick``). On transactional warehouses
``compact`` deletes superseded rows in one transaction once they outnumber the
live ones; on Spark the log keeps every change (a record of what was sent).

The desired membership is the group's members joined with ``customer_360``,
identifiers normalized in SQL (``compile.identifiers``), members without a
usable key (the first identifier) and duplicates after normalization dropped:
one row per customer (the smallest key), then one per key (the smallest
customer id). ``fingerprint`` — the identifiers and fields as text — decides
whether an acknowledged member changed.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping

import attrs
import sqlalchemy as sa

from audlang import warehouse
from audlang.campaigns import CAMPAIGN_MEMBERS_TABLE
from audlang.check import Model
from audlang.compile.identifiers import SQL_NORMALIZERS, hashed_sql
from audlang.vocabulary import MemberOperation

LOG_TABLE = "audlang_sync_log"
ADD, REMOVE = MemberOperation.ADD, MemberOperation.REMOVE
SEPARATOR = "\x1f"

_metadata = sa.MetaData()
log_table = sa.Table(
    LOG_TABLE, _metadata,
    sa.Column("target_id", sa.String(64), nullable=False),
    sa.Column("tick", sa.BigInteger, nullable=False),
    sa.Column("operation", sa.String(10), nullable=False),
    sa.Column("customer_id", sa.String, nullable=False),
    sa.Column("member_key", sa.String, nullable=False),
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("data", sa.Text, nullable=False),  # JSON: the identifiers and fields as sent (+ vendor ids)
    sa.Index("audlang_sync_log_key", "target_id", "customer_id", "tick"),
)


# ------------------------------------------------------------------ the log


def has_log(conn: sa.Connection) -> bool:
    return warehouse.has_table(conn, LOG_TABLE)


def ensure_log(conn: sa.Connection) -> None:
    """The log table (a Parquet table on Spark; its index only where an index helps: not on DuckDB, whose ART
    indexes make the compaction's deletes slow)."""
    warehouse.create_table(conn, log_table)


@attrs.frozen
class Acked:
    """A member as the destination acknowledged it (or as it is planned to be sent)."""

    customer_id: str
    key: str
    fingerprint: str
    data: str  # JSON text


def append(conn: sa.Connection, target_id: str, tick: int, operation: str, rows: Iterable[Acked]) -> None:
    """Append one acknowledged batch (in the caller's transaction where there is one)."""
    values = [{"target_id": target_id, "tick": tick, "operation": operation, "customer_id": r.customer_id,
               "member_key": r.key, "fingerprint": r.fingerprint, "data": r.data} for r in rows]
    if not values:
        return
    warehouse.bulk_insert(conn, log_table, values)


def appended(conn: sa.Connection, target_id: str, tick: int) -> set[str]:
    """The customers of the batch with this tick already in the log (a sync killed after the append, or on
    Spark, where a batch over 5,000 members is several INSERTs, part-way through it)."""
    t = log_table
    query = sa.select(t.c.customer_id).where(t.c.target_id == target_id, t.c.tick == tick)
    return {row[0] for row in conn.execute(query)}


def has_tick(conn: sa.Connection, target_id: str, tick: int) -> bool:
    return bool(appended(conn, target_id, tick))


def _latest(target_id: str, name: str, t: sa.Table | sa.Alias = log_table) -> sa.Subquery:
    """Each (customer, key) of the target's log with its latest row marked ``rn = 1``."""
    latest = sa.func.row_number().over(partition_by=(t.c.customer_id, t.c.member_key), order_by=t.c.tick.desc())
    return (sa.select(t.c.customer_id, t.c.member_key, t.c.fingerprint, t.c.data, t.c.operation, t.c.tick,
                      latest.label("rn"))
            .where(t.c.target_id == target_id).subquery(name))


def acked_query(target_id: str | None, exists: bool = True, extra: sa.Select | None = None) -> sa.Select:
    """customer_id, member_key, fingerprint, data of the target's acknowledged membership; ``extra`` rows
    (the same columns, none acknowledged already) are counted in (``unsent_removals``, at plan time)."""
    if target_id is None or not exists:
        empty = sa.literal(None, sa.String)
        return (sa.select(empty.label("customer_id"), empty.label("member_key"), empty.label("fingerprint"),
                          empty.label("data")).where(sa.false()))
    ranked = _latest(target_id, "ranked")
    query = (sa.select(ranked.c.customer_id, ranked.c.member_key, ranked.c.fingerprint, ranked.c.data)
             .where(ranked.c.rn == 1, ranked.c.operation == ADD))
    if extra is None:
        return query
    both = sa.union_all(query, extra).subquery("with_unsent")
    return sa.select(both.c.customer_id, both.c.member_key, both.c.fingerprint, both.c.data)


def unsent_removals(target_id: str, own: sa.CTE | sa.TableClause, partner_ids: Iterable[str],
                    partners: Iterable[sa.CTE]) -> sa.Select:
    """Members a target recorded as removed whose removal a state keyed before #16 may never have sent.

    That key took targets the current one tells apart (two Braze groups without ``value``) for one vendor
    audience, and a removal of a key one of them wanted was *retired*: recorded as removed, not sent. A
    partner that wanted a key has it in its log (it added it) or desires it now (``partner_ids``,
    ``partners``): a key it never had cannot have been retired for it. The log does not mark retirements,
    but a batch holds retirements only or sent removals only, under one tick: a tick with a removal of a
    key no partner had was sent. So these rows are the ones that can have been retired: the latest row of
    the (customer, key) is a removal under no such tick, a partner had the key, and the key is in none of
    the target's acknowledged or desired rows (``own``: its desired rows now). The vendor may hold them:
    counted as acknowledged, the delta sends their removal (a removal of an absent member changes
    nothing)."""
    ids = list(partner_ids)
    partners = list(partners)

    def had(column) -> sa.ColumnElement:
        """A partner has the key in its log, or desires it now."""
        found = []
        if ids:
            p = log_table.alias()
            found.append(sa.exists().where(p.c.target_id.in_(ids), p.c.member_key == column).correlate_except(p))
        for cte in partners:
            holder = cte.alias()
            found.append(sa.exists().where(holder.c.member_key == column).correlate_except(holder))
        return sa.or_(*found) if found else sa.false()

    r = _latest(target_id, "unsent", log_table.alias("unsent_log"))
    ranked = _latest(target_id, "unsent_ranked", log_table.alias("unsent_live_log"))
    live = sa.select(ranked.c.member_key).where(ranked.c.rn == 1, ranked.c.operation == ADD).subquery("unsent_live")
    mine = own.alias("unsent_own")
    s = log_table.alias("unsent_sent_log")
    sent_ticks = (sa.select(s.c.tick).where(s.c.target_id == target_id, s.c.operation == REMOVE, ~had(s.c.member_key))
                  .distinct().subquery("unsent_sent"))
    sent = sa.exists().where(sent_ticks.c.tick == r.c.tick).correlate_except(sent_ticks)
    held = [sa.exists().where(live.c.member_key == r.c.member_key).correlate_except(live),
            sa.exists().where(mine.c.member_key == r.c.member_key).correlate_except(mine)]
    return (sa.select(r.c.customer_id, r.c.member_key, r.c.fingerprint, r.c.data)
            .where(r.c.rn == 1, r.c.operation == REMOVE, had(r.c.member_key), ~sent, ~sa.or_(*held)))


def fetch(conn: sa.Connection, query: sa.Select) -> list[Acked]:
    """The rows of a query with the log's four columns (``unsent_removals``)."""
    return [Acked(*row) for row in warehouse.raw_rows(conn.execute(query))]


def acknowledged(conn: sa.Connection, target_id: str | None) -> Iterator[Acked]:
    """The acknowledged membership, streamed in customer_id order (the csv destination writes it)."""
    if target_id is None or not has_log(conn):
        return
    q = acked_query(target_id).subquery("a")
    result = conn.execution_options(stream_results=True).execute(sa.select(q).order_by(q.c.customer_id))
    for row in result:
        yield Acked(row[0], row[1], row[2], row[3])


def count_acknowledged(conn: sa.Connection, target_id: str | None) -> int:
    if target_id is None or not has_log(conn):
        return 0
    return int(conn.execute(sa.select(sa.func.count()).select_from(acked_query(target_id).subquery())).scalar())


def compact(conn: sa.Connection, target_id: str, slack: int = 10_000) -> int:
    """On transactional warehouses: delete the target's superseded rows (and its removes) in this
    transaction once they outnumber the live ones; the rows deleted. Spark keeps its log whole."""
    if not warehouse.traits(conn).transactions:
        return 0
    t = log_table
    total = conn.execute(sa.select(sa.func.count()).select_from(t).where(t.c.target_id == target_id)).scalar()
    live = conn.execute(sa.select(sa.func.count()).select_from(acked_query(target_id).subquery())).scalar()
    if total - live <= max(live, slack):
        return 0
    newer = sa.alias(t, "newer")
    superseded = sa.exists().where(newer.c.target_id == t.c.target_id, newer.c.customer_id == t.c.customer_id,
                                   newer.c.member_key == t.c.member_key, newer.c.tick > t.c.tick)
    result = conn.execute(t.delete().where(t.c.target_id == target_id, sa.or_(t.c.operation == REMOVE, superseded)))
    return result.rowcount or 0


def forget(conn: sa.Connection, target_id: str) -> None:
    """Drop a target's log (its destination now names another audience); Spark keeps it (no DELETE)."""
    if warehouse.traits(conn).transactions and has_log(conn):
        conn.execute(log_table.delete().where(log_table.c.target_id == target_id))


# ------------------------------------------------------------------ the desired membership


def desired_columns(identifiers: tuple[str, ...], fields: tuple[str, ...]) -> list[str]:
    """Every value sent, in fingerprint order: the identifiers, then the fields not among them."""
    return list(dict.fromkeys([*identifiers, *fields]))


def _profile(model: Model, names: Iterable[str]):
    info = model.data_model.tables["customer_360"]
    schema, _, physical = info.physical.rpartition(".")
    wanted = list(dict.fromkeys(["customer_id", *names]))
    profile = sa.table(physical, *(sa.column(info.column(c)) for c in wanted), schema=schema or None).alias("profile")
    return profile, {c: profile.c[info.column(c)] for c in wanted}


def _group_members(campaign: str, group: str, source: sa.Select | None) -> sa.Subquery:
    if source is None:
        cm = sa.table(CAMPAIGN_MEMBERS_TABLE, sa.column("campaign"), sa.column("group_name"),
                      sa.column("customer_id"))
        return (sa.select(cm.c.customer_id).where(cm.c.campaign == sa.literal(campaign, sa.String),
                                                  cm.c.group_name == sa.literal(group, sa.String))
                .subquery("m"))
    s = source.subquery("a")
    return sa.select(s.c.customer_id).where(s.c.group_name == sa.literal(group, sa.String)).subquery("m")


def _as_text(column) -> sa.ColumnElement:
    return sa.func.coalesce(sa.cast(column, sa.String), sa.literal("", sa.String))


@attrs.frozen
class Desired:
    """The desired membership of one target as CTEs: ``group`` (the group's customer ids), ``keyed``
    (one row per customer with a usable key) and ``desired`` (one row per key), with the value columns
    ``v0, v1, …`` in ``columns`` order, ``member_key`` and ``fingerprint``."""

    group: sa.CTE
    keyed: sa.CTE | sa.TableClause  # tables once ``staged``
    desired: sa.CTE | sa.TableClause
    columns: tuple[str, ...]
    #: the desired rows of the other targets writing to the same vendor audience (two treatments sent to one
    #: Attentive segment): a key one of them holds is never removed from the audience by this target
    shared: tuple[sa.CTE, ...] = ()


def desired(model: Model, campaign: str, group: str, identifiers: tuple[str, ...], fields: tuple[str, ...],
            source: sa.Select | None = None, prefix: str = "audlang",
            hashed: Mapping[str, str] | None = None) -> Desired:
    """``source`` is a (customer_id, group_name) query (the live assignment, for a preview); by default the
    materialized ``audlang_campaign_members``. ``hashed`` (the ad platforms: identifier -> its form,
    ``Settings.hashed``) makes every identifier the SHA-256 hex of its normalized form, computed here in
    the warehouse: the keys, the fingerprints, the log and what is sent hold hashes only."""
    columns = desired_columns(identifiers, fields)
    members = _group_members(campaign, group, source)
    group_ids = sa.select(members.c.customer_id).distinct().cte(f"{prefix}_group")
    profile, cols = _profile(model, [c for c in columns if c != "customer_id"])
    values = []
    for i, name in enumerate(columns):
        raw = members.c.customer_id if name == "customer_id" else cols[name]
        if name not in identifiers:
            value = raw
        elif hashed is not None:
            value = hashed_sql(hashed[name], raw)
        else:
            value = SQL_NORMALIZERS[name](raw)
        values.append(value.label(f"v{i}"))
    normalized = (sa.select(sa.cast(members.c.customer_id, sa.String).label("customer_id"), *values)
                  .select_from(members.outerjoin(profile, cols["customer_id"] == members.c.customer_id))
                  .subquery("normalized"))
    v = [normalized.c[f"v{i}"] for i in range(len(columns))]
    key = v[columns.index(identifiers[0])]
    fingerprint = _as_text(v[0])
    for column in v[1:]:
        fingerprint = fingerprint + sa.literal(SEPARATOR, sa.String) + _as_text(column)
    per_customer = sa.func.row_number().over(partition_by=normalized.c.customer_id, order_by=key)
    ranked = (sa.select(normalized.c.customer_id, key.label("member_key"), fingerprint.label("fingerprint"), *v,
                        per_customer.label("rc"))
              .where(key.is_not(None)).subquery("ranked"))
    keyed = (sa.select(*[c for c in ranked.c if c.name != "rc"]).where(ranked.c.rc == 1).cte(f"{prefix}_keyed"))
    per_key = sa.func.row_number().over(partition_by=keyed.c.member_key, order_by=keyed.c.customer_id)
    first = sa.select(*keyed.c, per_key.label("rk")).subquery("first")
    desired_cte = sa.select(*[c for c in first.c if c.name != "rk"]).where(first.c.rk == 1).cte(f"{prefix}_desired")
    return Desired(group_ids, keyed, desired_cte, tuple(columns))


@contextlib.contextmanager
def staged(conn: sa.Connection, want: Desired) -> Iterator[Desired]:
    """``want`` with its keyed and desired rows written once to temporary tables, so the counts and the
    fetches of one sync read them instead of normalizing and ranking the group three times (a third of
    the time at a million members). Spark, without temporary tables, computes them in each query."""
    if not warehouse.traits(conn).temporary_tables:
        yield want
        return
    suffix = uuid.uuid4().hex[:10]
    names = [f"audlang_tmp_keyed_{suffix}", f"audlang_tmp_desired_{suffix}"]
    driver = conn.execution_options(no_parameters=False)
    made = []
    try:
        keyed = _temporary(driver, names[0], sa.select(want.keyed))
        made.append(names[0])
        per_key = sa.func.row_number().over(partition_by=keyed.c.member_key, order_by=keyed.c.customer_id)
        first = sa.select(*keyed.c, per_key.label("rk")).subquery("first")
        desired_rows = _temporary(driver, names[1], sa.select(*[c for c in first.c if c.name != "rk"])
                                  .where(first.c.rk == 1))
        made.append(names[1])
        yield Desired(want.group, keyed, desired_rows, want.columns, want.shared)
    finally:
        for name in made:
            try:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
            except sa.exc.DBAPIError:  # an aborted PostgreSQL transaction: the error that aborted it goes on
                break


def _temporary(conn: sa.Connection, name: str, query: sa.Select) -> sa.Table:
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {name} AS {sql}")
    return sa.table(name, *(sa.column(c.name) for c in query.selected_columns))


# ------------------------------------------------------------------ the delta


@attrs.frozen
class Counts:
    group: int = 0  # customers in the group
    keyed: int = 0  # with a usable key
    desired: int = 0  # after duplicates are dropped
    acknowledged: int = 0  # customers acknowledged (under one key or, while a removal is pending, more)
    adds: int = 0
    departing: int = 0  # customers acknowledged, no longer desired, their key not held by a desired member
    stale: int = 0  # acknowledged (customer, key) no longer desired: removed (mirror)
    retire: int = 0  # of those, keys a desired member holds now: recorded as removed, not sent

    @property
    def skipped_no_identifier(self) -> int:
        return self.group - self.keyed

    @property
    def skipped_duplicate(self) -> int:
        return self.keyed - self.desired


def _changed(d: sa.CTE, a: sa.CTE):
    return sa.or_(a.c.customer_id.is_(None), a.c.fingerprint != d.c.fingerprint)


def _same(d, a):
    return sa.and_(a.c.customer_id == d.c.customer_id, a.c.member_key == d.c.member_key)


def _held(want: Desired, a):
    """The acknowledged key is a desired member's key now (another customer's, after a change or a
    removal that was rejected, or in ``add`` mode; or a member's of another group sent to the same vendor
    audience): removing it would take that member out."""
    held = []
    for d in (want.desired, *want.shared):
        holder = d.alias()
        held.append(sa.exists().where(holder.c.member_key == a.c.member_key).correlate_except(holder))
    return sa.or_(*held)


def counts(conn: sa.Connection, want: Desired, target_id: str | None, log_exists: bool,
           extra: sa.Select | None = None) -> Counts:
    """Everything the plan shows and the guards decide on, in one query."""
    d = want.desired
    a = acked_query(target_id, log_exists, extra).cte("audlang_acked")
    n = lambda q: sa.select(sa.func.count()).select_from(q).scalar_subquery()  # noqa: E731
    customers = sa.select(a.c.customer_id).distinct().subquery("customers")
    adds = sa.select(d.c.customer_id).select_from(d.outerjoin(a, _same(d, a))).where(_changed(d, a)).subquery("adds")
    stale = sa.select(a.c.customer_id, a.c.member_key).select_from(a.outerjoin(d, _same(d, a))) \
        .where(d.c.customer_id.is_(None)).subquery("stale")
    retire = sa.select(stale.c.customer_id).where(_held(want, stale)).subquery("retire")
    # Customers leaving the audience: no longer desired, and their key not held by a desired member.
    gone = sa.select(stale.c.customer_id).where(~_held(want, stale)).subquery("gone")
    departing = sa.select(gone.c.customer_id).distinct() \
        .select_from(gone.outerjoin(d, d.c.customer_id == gone.c.customer_id)) \
        .where(d.c.customer_id.is_(None)).subquery("departing")
    row = conn.execute(sa.select(n(want.group).label("g"), n(want.keyed).label("k"), n(d).label("d"),
                                 n(customers).label("a"), n(adds).label("adds"), n(departing).label("dep"),
                                 n(stale).label("stale"), n(retire).label("retire"))).one()
    return Counts(*(int(x) for x in row))


def _jsonable(value):
    return None if value is None else (value if isinstance(value, (str, int, float, bool)) else str(value))


def adds(conn: sa.Connection, want: Desired, target_id: str | None, log_exists: bool,
         identifiers: tuple[str, ...], extra: sa.Select | None = None) -> list[Acked]:
    """The desired members that are new or changed, by key: only these rows leave the database."""
    d = want.desired
    a = acked_query(target_id, log_exists, extra).cte("audlang_acked")
    values = [d.c[f"v{i}"] for i in range(len(want.columns))]
    query = (sa.select(d.c.customer_id, d.c.member_key, d.c.fingerprint, *values)
             .select_from(d.outerjoin(a, _same(d, a)))
             .where(_changed(d, a)).order_by(d.c.member_key, d.c.customer_id))
    out = []
    for row in warehouse.raw_rows(conn.execute(query)):
        data = {}
        for name, value in zip(want.columns, row[3:], strict=True):
            if name in identifiers:
                if value is not None:
                    data[name] = value
            else:
                data[name] = _jsonable(value)
        out.append(Acked(str(row[0]), row[1], row[2], json.dumps(data, separators=(",", ":"))))
    return out


def removes(conn: sa.Connection, want: Desired, target_id: str | None, log_exists: bool,
            extra: sa.Select | None = None) -> tuple[list[Acked], list[Acked]]:
    """Acknowledged (customer, key) no longer desired — the customer left, or has another key now — by key
    (as acknowledged): (to remove from the destination, to *retire*: recorded as removed without sending,
    because a desired member holds that key now)."""
    if target_id is None or not log_exists:
        return [], []
    d = want.desired
    a = acked_query(target_id, log_exists, extra).cte("audlang_acked")
    held = _held(want, a)
    # Two queries, the predicate in WHERE: Spark takes EXISTS in a filter, not in a CASE in the select list.
    out = []
    for which in (~held, held):
        query = (sa.select(a.c.customer_id, a.c.member_key, a.c.fingerprint, a.c.data)
                 .select_from(a.outerjoin(d, _same(d, a)))
                 .where(d.c.customer_id.is_(None), which)
                 .order_by(a.c.member_key, a.c.customer_id))
        out.append([Acked(*row) for row in warehouse.raw_rows(conn.execute(query))])
    send, retire = out
    return send, retire
