"""The report's figures, computed in the warehouse in a few set-based queries for the whole project.

Membership is computed once into a temporary table ``(seg, customer_id)``, from the segments'
shared facts (``compile.facts``, computed once as apply computes them),
segments in batches by dependency depth, each batch one ``INSERT … SELECT`` of
a ``UNION ALL`` of the segments' compiled queries, ``in segment`` reading the
rows of the earlier batches (``SegmentCompiler(membership=…)``). Every figure
is then one ``GROUP BY seg`` query over that table: the six insights (the same
definitions as ``evaluate.insights_query``), purchases by channel, revenue by
lifetime-spend band; one ``GROUP BY group_name`` per campaign for its
groups; and per score the customers each item holds for and the customers per
total (``score_figures``). Nothing but the aggregates comes back to Python.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import attrs
import sqlalchemy as sa
from sqlalchemy import Integer, String, case, func, literal, select

from audlang import ast, evaluate
from audlang.check import Model, walk
from audlang.check.limits import MAX_DECIMALS
from audlang.compile import AsOf, SegmentCompiler, dialects, list_files_used
from audlang.compile.facts import SharedFacts
from audlang.warehouse import load_list, shared_facts

MEMBERS_TABLE = "audlang_report_members"
BATCH = 64
#: A score's distribution has one bar per distinct total up to this many totals, else equal ranges.
DISTINCT_TOTALS = 30
BUCKETS_OF_TOTALS = 20

#: Lifetime-spend bands (upper bounds, exclusive), as the charts label them.
BANDS = ((Decimal(0), "no spend"), (Decimal(100), "under 100"), (Decimal(500), "100–500"),
         (Decimal(1000), "500–1k"), (Decimal(5000), "1k–5k"), (None, "5k and over"))


@attrs.frozen
class Figures:
    as_of: str
    insights: dict[str, dict]  # segment -> the six figures
    channels: dict[str, list[tuple[str, int, float]]]  # segment -> [(channel, orders, revenue)]
    bands: dict[str, list[tuple[str, int, float]]]  # segment -> [(band, members, lifetime revenue)]
    campaigns: dict[str, dict[str, int]]  # campaign -> group -> members
    scores: dict[str, ScoreFigures] = attrs.Factory(dict)  # score -> its figures


@attrs.frozen
class ScoreFigures:
    """A score over every customer (SPEC §3.1: 0 when no item holds): how many customers each item's
    condition holds for, and the distribution of the totals, one bar per distinct total or, with more
    than ``DISTINCT_TOTALS`` of them, per one of ``BUCKETS_OF_TOTALS`` equal ranges."""

    customers: int
    items: list[int]  # customers whose item condition holds, in the items' order
    bucketed: bool
    #: (low, high, customers): one total (low == high) or the range low ≤ total < high (≤ for the last)
    distribution: list[tuple[Decimal, Decimal, int]]
    lowest: Decimal | None
    highest: Decimal | None


def direct_dependencies(model: Model, name: str) -> set[str]:
    return {n.name for n in walk(model.segments[name].condition) if isinstance(n, ast.InSegment)}


def depths(model: Model) -> dict[str, int]:
    """Longest chain of ``in segment`` below each segment (0: uses no other segment)."""
    depth: dict[str, int] = {}
    for name in model.segments:  # dependency order: what a segment uses comes first
        deps = direct_dependencies(model, name)
        depth[name] = 1 + max((depth.get(d, 0) for d in deps), default=-1)
    return depth


def compute(conn: sa.Connection, model: Model, as_of: AsOf, progress=None) -> Figures:
    names = list(model.segments)
    members = sa.Table(MEMBERS_TABLE, sa.MetaData(), sa.Column("seg", Integer), sa.Column("customer_id", String),
                       prefixes=["TEMPORARY"])
    members.drop(conn, checkfirst=True)
    members.create(conn)
    with shared_facts(conn, SharedFacts.collect(model, as_of, names)) as facts:
        compiler = SegmentCompiler(model, as_of, facts=facts)
        _fill_members(conn, model, compiler, members, names, progress)
        compiler.facts = None  # the figures below read the orders themselves
    insights = _profile_insights(conn, model, members, names)

    # Revenue and active customers in the last 365 days, and the same orders by channel.
    orders, ocol, conditions = compiler.orders_in(None, ast.WithinLast(365, "days"))
    joined = members.join(orders, ocol("customer_id") == members.c.customer_id)
    _add_recent_orders(conn, insights, names, members, joined, ocol, conditions)
    channels = _channels(conn, names, members, joined, ocol, conditions)

    bands = _bands(conn, compiler, members, names)
    campaigns = campaign_groups(conn, model, compiler)
    scores = {name: score_figures(conn, model, compiler, name) for name in model.scores}
    members.drop(conn, checkfirst=True)
    return Figures(str(as_of), insights, channels, bands, campaigns, scores)


def _fill_members(conn: sa.Connection, model: Model, compiler: SegmentCompiler, members: sa.Table,
                  names: list[str], progress) -> None:
    """Every segment's members into ``members`` (``seg`` its index in ``names``), in batches by dependency
    depth; ``compiler`` then reads ``in segment`` from the table."""
    index = {name: i for i, name in enumerate(names)}
    compiler.membership = {}
    loaded: set[str] = set()
    depth = depths(model)
    done = 0
    for level in sorted(set(depth.values())):
        at_level = [n for n in names if depth[n] == level]
        for start in range(0, len(at_level), BATCH):
            chunk = at_level[start:start + BATCH]
            for name in chunk:
                for listed in list_files_used(model, model.segments[name].condition):
                    if listed.sha256 not in loaded:
                        load_list(conn, listed)
                        loaded.add(listed.sha256)
            parts = []
            for name in chunk:
                q = compiler.segment(name).subquery()
                parts.append(select(literal(index[name], Integer()).label("seg"), q.c.customer_id))
            source = parts[0] if len(parts) == 1 else sa.union_all(*parts)
            conn.execute(members.insert().from_select(["seg", "customer_id"], source))
            for name in chunk:
                compiler.membership[name] = select(members.c.customer_id).where(
                    members.c.seg == literal(index[name], Integer()))
            done += len(chunk)
            if progress:
                progress("membership", done / max(1, len(names)))


def _profile_insights(conn: sa.Connection, model: Model, m: sa.Table, names: list[str]) -> dict[str, dict]:
    """Each segment's insights, with the member count and the profile flags filled in (as
    evaluate.insights_query: members left-joined with customer_360); revenue and active are zero."""
    insights = {name: dict.fromkeys(evaluate.INSIGHT_KEYS, 0) for name in names}
    for name in names:
        insights[name].update(dict.fromkeys(evaluate.MONEY_INSIGHTS, Decimal("0.00")))
    profile, info = evaluate._customers(model)
    col = lambda n: profile.c[info.column(n)]  # noqa: E731

    def flag(n):
        return evaluate.count_true(col(n))

    rows = conn.execute(select(m.c.seg, func.count(m.c.customer_id), flag("contactable_email"),
                               flag("contactable_phone"), evaluate.count_ad_reachable(col("email"), col("phone")),
                               flag("sms_opt_in"), evaluate.predicted_revenue(col("predicted_clv")))
                        .select_from(m.outerjoin(profile, col("customer_id") == m.c.customer_id))
                        .group_by(m.c.seg))
    for seg, count, email, phone, ads, sms, predicted in rows:
        figures = insights[names[seg]]
        figures.update(members=int(count), reachable_email=int(email or 0), reachable_phone=int(phone or 0),
                       reachable_ad_platforms=int(ads or 0), sms_opt_in=int(sms or 0),
                       predicted_revenue=evaluate.money(predicted))
    return insights


def _add_recent_orders(conn: sa.Connection, insights: dict[str, dict], names: list[str], m: sa.Table,
                       joined: sa.Join, ocol, conditions) -> None:
    """Revenue and active customers over the orders ``joined`` to the members, into ``insights``."""
    rows = conn.execute(select(m.c.seg, func.coalesce(dialects.money_sum(ocol("order_revenue")), 0),
                               func.count(ocol("customer_id").distinct()))
                        .select_from(joined).where(*conditions).group_by(m.c.seg))
    for seg, revenue, active in rows:
        figures = insights[names[seg]]
        figures["revenue_last_365_days"] = evaluate.money(revenue)
        figures["active"] = int(active or 0)


def _channels(conn: sa.Connection, names: list[str], m: sa.Table, joined: sa.Join, ocol,
              conditions) -> dict[str, list[tuple[str, int, float]]]:
    """Each segment's orders (``joined`` to the members) by channel: (channel, orders, revenue)."""
    channels: dict[str, list] = defaultdict(list)
    channel = func.coalesce(ocol("channel"), literal("unknown", String()))
    rows = conn.execute(select(m.c.seg, channel.label("channel"), func.count(ocol("order_id")),
                               func.coalesce(dialects.money_sum(ocol("order_revenue")), 0))
                        .select_from(joined).where(*conditions).group_by(m.c.seg, channel)
                        .order_by(m.c.seg, channel))
    for seg, name, count, revenue in rows:
        channels[names[seg]].append((str(name), int(count), float(revenue or 0)))
    return dict(channels)


def _bands(conn: sa.Connection, compiler: SegmentCompiler, m: sa.Table,
           names: list[str]) -> dict[str, list[tuple[str, int, float]]]:
    """Members and their lifetime revenue (orders up to the as-of instant) by lifetime-spend band."""
    lifetime = compiler.derived()
    spend = func.coalesce(lifetime.c.revenue, 0)
    whens = []
    for i, (bound, _label) in enumerate(BANDS):
        if bound is None:
            continue
        test = spend <= literal(bound, sa.Numeric()) if i == 0 else spend < literal(bound, sa.Numeric())
        whens.append((test, literal(i, Integer())))
    band = case(*whens, else_=literal(len(BANDS) - 1, Integer()))
    rows = conn.execute(select(m.c.seg, band.label("band"), func.count(m.c.customer_id), func.sum(spend))
                        .select_from(m.outerjoin(lifetime, lifetime.c.customer_id == m.c.customer_id))
                        .group_by(m.c.seg, band).order_by(m.c.seg, band))
    counted: dict[str, dict[int, tuple]] = defaultdict(dict)
    for seg, b, count, revenue in rows:
        counted[names[seg]][int(b)] = (int(count), float(revenue or 0))
    return {name: [(label, *counted[name].get(i, (0, 0.0))) for i, (_b, label) in enumerate(BANDS)]
            for name in names}


def campaign_groups(conn: sa.Connection, model: Model, compiler: SegmentCompiler) -> dict[str, dict[str, int]]:
    """Each campaign's groups and their sizes, by the same assignment apply uses."""
    from audlang.campaigns import assign

    assign.prepare_connection(conn)
    out: dict[str, dict[str, int]] = {}
    for name, campaign in model.campaigns.items():
        conditions = [s.condition for s in campaign.subaudiences if s.condition is not None]
        if campaign.audience is not None and campaign.audience.condition is not None:
            conditions.append(campaign.audience.condition)
        for condition in conditions:
            for listed in list_files_used(model, condition):
                load_list(conn, listed)
        assigned = assign.assignment_query(model, name, compiler).subquery("assigned")
        sizes = {g.name: 0 for g in assign.groups(campaign)}
        for group, count in conn.execute(select(assigned.c.group_name, func.count())
                                         .group_by(assigned.c.group_name)):
            sizes[group] = int(count)
        out[name] = sizes
    return out


def score_figures(conn: sa.Connection, model: Model, compiler: SegmentCompiler, name: str) -> ScoreFigures:
    """One score's figures in three set-based queries over ``customer_360``, each item's condition and the
    total compiled as a segment's are (``in segment`` reads ``compiler.membership`` when it is set): the
    customers per item; the lowest and highest total and how many distinct totals; the customers per
    total (``GROUP BY`` the total) or per range of totals (``GROUP BY`` a ``CASE`` over the ranges)."""
    score = model.scores[name]
    for item in score.items:
        for listed in list_files_used(model, item.condition):
            load_list(conn, listed)
    scope = compiler.customer_scope()
    holds = [scope.condition(item.condition) for item in score.items]
    total = scope.score_value(name)
    cid = scope.customer_id
    # One row per customer: its id, each item's verdict (1 or 0) and its total.
    rows = (select(cid.label("customer_id"), total.label("total"),
                   *(case((h, literal(1, Integer())), else_=literal(0, Integer())).label(f"item{i}")
                     for i, h in enumerate(holds)))
            .select_from(scope.from_clause()).where(cid.is_not(None)).distinct().subquery("score_rows"))
    counts = conn.execute(select(func.count(), *(func.coalesce(func.sum(rows.c[f"item{i}"]), 0)
                                                 for i in range(len(holds)))).select_from(rows)).one()
    customers, items = int(counts[0]), [int(n) for n in counts[1:]]
    low, high, distinct = conn.execute(select(func.min(rows.c.total), func.max(rows.c.total),
                                              func.count(rows.c.total.distinct())).select_from(rows)).one()
    if not customers:
        return ScoreFigures(0, items, False, [], None, None)
    lowest, highest = _points(low), _points(high)
    if int(distinct) <= DISTINCT_TOTALS:
        grouped = conn.execute(select(rows.c.total, func.count()).select_from(rows)
                               .group_by(rows.c.total).order_by(rows.c.total))
        distribution = [(_points(t), _points(t), int(n)) for t, n in grouped]
        return ScoreFigures(customers, items, False, distribution, lowest, highest)
    width = (highest - lowest) / BUCKETS_OF_TOTALS
    edges = [(lowest + width * k).quantize(Decimal(1).scaleb(-MAX_DECIMALS)) for k in range(1, BUCKETS_OF_TOTALS)]
    bucket = case(*((rows.c.total < dialects.points_param(edge), literal(k, Integer()))
                    for k, edge in enumerate(edges)), else_=literal(BUCKETS_OF_TOTALS - 1, Integer()))
    per_bucket = dict(conn.execute(select(bucket.label("bucket"), func.count()).select_from(rows)
                                   .group_by(bucket)).all())
    bounds = [lowest, *edges, highest]
    distribution = [(bounds[k], bounds[k + 1], int(per_bucket.get(k, 0))) for k in range(BUCKETS_OF_TOTALS)]
    return ScoreFigures(customers, items, True, distribution, lowest, highest)


def _points(value) -> Decimal:
    """A total as the engine returns it (a decimal; a double on SQLite, rounded there to the digits a
    number of the language may have) as a plain Decimal without trailing zeros."""
    number = Decimal(str(value)).quantize(Decimal(1).scaleb(-MAX_DECIMALS))
    return number.normalize() if number != number.to_integral_value() else number.to_integral_value()
