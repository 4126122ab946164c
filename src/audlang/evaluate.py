"""Evaluate segments in the warehouse: members, insights and the SQL itself.

Everything here runs in the database; Python receives only the answer (the
member ids to print, or a few numbers).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import and_, case, column, func, or_, select, table, true

from audlang import warehouse
from audlang.check import Model
from audlang.check.datamodel import BOOLEAN, NUMBER
from audlang.compile import AsOf, SegmentCompiler, list_files_used
from audlang.compile import dialects
from audlang.compile.facts import SharedFacts
from audlang.compile.identifiers import email_sql, phone_sql
from audlang.diagnostics import AudlangError, Diagnostic
from audlang.diagnostics import did_you_mean_quoted

if TYPE_CHECKING:
    from audlang.warehouse.engine_output import EarlyQuery

INSIGHT_KEYS = ("members", "revenue_last_365_days", "active", "reachable_email", "reachable_phone",
                "reachable_ad_platforms", "sms_opt_in", "predicted_revenue")
#: The insights that are sums of money (the others are counts of customers).
MONEY_INSIGHTS = ("revenue_last_365_days", "predicted_revenue")


def require_segment(model: Model, name: str) -> None:
    if name not in model.segments:
        raise AudlangError(Diagnostic.sourceless(
            "E201", "no such segment" + (f"; {did_you_mean_quoted(name, model.segments)}"
                                          if did_you_mean_quoted(name, model.segments) else ""), f'"{name}"'))


def ensure_lists(conn: sa.Connection, model: Model, name: str) -> None:
    for listed in list_files_used(model, model.segments[name].condition):
        warehouse.load_list(conn, listed)


def _customers(model: Model):
    info = model.data_model.tables["customer_360"]
    schema, _, physical = info.physical.rpartition(".")
    return table(physical, *(column(info.column(c)) for c in info.types), schema=schema or None).alias("profile"), info


def members_query(model: Model, name: str, as_of: AsOf, fields: list[str] | None = None,
                  limit: int | None = None) -> sa.Select:
    compiled = SegmentCompiler(model, as_of).segment(name).subquery("members")
    if fields:
        profile, info = _customers(model)
        columns = [compiled.c.customer_id] + [profile.c[info.column(f)].label(f) for f in fields]
        query = select(*columns).select_from(
            compiled.join(profile, profile.c[info.column("customer_id")] == compiled.c.customer_id, isouter=True))
    else:
        query = select(compiled.c.customer_id)
    query = query.order_by(compiled.c.customer_id)
    if limit is not None:
        query = query.limit(limit)
    return query


def check_fields(model: Model, fields: list[str]) -> None:
    known = [c for c in model.data_model.tables["customer_360"].types]
    for f in fields:
        if f not in known:
            from audlang.diagnostics import did_you_mean

            hint = did_you_mean(f, known)
            raise AudlangError(Diagnostic.sourceless(
                "E202", "--fields takes columns of customer_360" + (f"; {hint}" if hint else ""), f))


def _members_header_query(model: Model, name: str, as_of: AsOf, fields: list[str] | None,
                          limit: int | None) -> tuple[list[str], sa.Select]:
    require_segment(model, name)
    fields = [f for f in (fields or []) if f != "customer_id"]
    check_fields(model, fields)
    return ["customer_id", *fields], members_query(model, name, as_of, fields, limit)


def members(engine: sa.Engine, url: str, model: Model, name: str, as_of: AsOf,
            fields: list[str] | None = None, limit: int | None = None):
    """(header, rows) of the segment's members ordered by customer_id."""
    header, query = _members_header_query(model, name, as_of, fields, limit)
    with warehouse.errors_translated(url, model), engine.begin() as conn:
        ensure_lists(conn, model, name)
        rows = fetch_raw(conn, query)
    return header, rows


def members_output(url: str, model: Model, name: str, as_of: AsOf, fields: list[str] | None = None,
                   limit: int | None = None, fmt: str = "csv", early: EarlyQuery | None = None) -> list[str]:
    """The text of ``audlang members`` (``fmt`` csv or json) from the warehouse at ``url``, in pieces to
    write in order.

    Where the engine can make the text itself (``warehouse.engine_output``: a DuckDB file) it does, without
    a row passing through Python; elsewhere, or when it cannot make exactly this text, the rows are
    fetched and written here (``format_members``). Either way the bytes are the same. ``early``: the query
    the command started before reading the project (``engine_output.start_early``)."""
    from audlang.warehouse import engine_output

    header, query = _members_header_query(model, name, as_of, fields, limit)
    lists = bool(list_files_used(model, model.segments[name].condition))
    if not lists:
        made = engine_output.members_text(url, query, header, fmt, early)
        if made is not None:
            return made
    engine = warehouse.connect(url, role=warehouse.Role.READ)
    try:
        with warehouse.errors_translated(url, model):
            made = engine_output.members_text_on(engine, query, header, fmt,
                                                 lambda conn: ensure_lists(conn, model, name)) if lists else None
            if made is not None:
                return made
            with engine.begin() as conn:
                ensure_lists(conn, model, name)
                rows = fetch_raw(conn, query)
    finally:
        engine.dispose()  # a DuckDB file is let go of at once
    return format_members(header, rows, fmt)


def json_default(value):
    """How ``json.dumps`` (and the csv output) write what is not a string: money and dates as numbers and ISO text."""
    import datetime as dt

    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def format_members(header: list[str], rows: list[tuple], fmt: str) -> list[str]:
    """The members as csv (a header row, then one row per member) or a json list of objects."""
    if fmt == "json":
        import json

        return [json.dumps([dict(zip(header, row, strict=True)) for row in rows], default=json_default, indent=2),
                "\n"]
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else json_default(v) if not isinstance(v, str) else v for v in row]
                     for row in rows)
    return [out.getvalue()]


def fetch_raw(conn: sa.Connection, query: sa.Select) -> list[tuple]:
    """All rows of ``query`` as the driver returns them."""
    return warehouse.raw_rows(conn.execute(query))


def insights_query(model: Model, name: str, as_of: AsOf, facts: SharedFacts | None = None) -> sa.Select:
    """The figures of SPEC §6 in one query (the segment over ``facts`` when given: ``compile.facts``), and the
    predicted revenue: the members' ``predicted_clv`` summed (SPEC §3.1)."""
    compiler = SegmentCompiler(model, as_of, facts=facts)
    segment = compiler.segment(name).cte("segment_members")
    compiler.facts = None  # the figures read the orders themselves
    profile, info = _customers(model)
    col = lambda n: profile.c[info.column(n)]  # noqa: E731
    orders, ocol, conditions = compiler.orders_in(None, _last_365_days())
    in_segment = ocol("customer_id").in_(select(segment.c.customer_id))
    revenue = select(func.coalesce(dialects.money_sum(ocol("order_revenue")), 0)).where(in_segment, *conditions) \
        .scalar_subquery()
    orders2, ocol2, conditions2 = compiler.orders_in(None, _last_365_days())
    active = select(func.count(ocol2("customer_id").distinct())).where(
        ocol2("customer_id").in_(select(segment.c.customer_id)), *conditions2).scalar_subquery()

    def flag(n):
        return count_true(col(n))

    return select(
        func.count(segment.c.customer_id).label("members"),
        revenue.label("revenue_last_365_days"),
        active.label("active"),
        flag("contactable_email").label("reachable_email"),
        flag("contactable_phone").label("reachable_phone"),
        count_ad_reachable(col("email"), col("phone")).label("reachable_ad_platforms"),
        flag("sms_opt_in").label("sms_opt_in"),
        predicted_revenue(col("predicted_clv")).label("predicted_revenue"),
    ).select_from(segment.outerjoin(profile, col("customer_id") == segment.c.customer_id))


def predicted_revenue(clv) -> sa.ColumnElement:
    """The members' predicted customer lifetime value, summed (a member without one adds nothing)."""
    return func.coalesce(dialects.money_sum(dialects.as_declared(clv, NUMBER)), 0)


def money(value) -> Decimal:
    """A sum of money as the insights show it: to the cent (none: 0.00)."""
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def count_true(column) -> sa.ColumnElement:
    """How many rows hold true in a boolean column (read by its declared type: SQLite text too)."""
    value = dialects.as_declared(column, BOOLEAN)
    return func.coalesce(func.sum(case((and_(value.is_not(None), value == true()), 1), else_=0)), 0)


def count_ad_reachable(email, phone) -> sa.ColumnElement:
    """How many rows hold a usable email or phone: what the ad platforms (Meta, Google Ads) match on,
    hashed. Usable is what a sync would send (``compile.identifiers``: an email shaped like ``a@b.c``, a
    phone in E.164); consent to messages (``contactable_*``) does not enter into it."""
    usable = or_(email_sql(email).is_not(None), phone_sql(phone).is_not(None))
    return func.coalesce(func.sum(case((usable, 1), else_=0)), 0)


def _last_365_days():
    from audlang import ast

    return ast.WithinLast(365, "days")


def insights(engine: sa.Engine, url: str, model: Model, name: str, as_of: AsOf) -> dict:
    require_segment(model, name)
    with warehouse.errors_translated(url, model), engine.begin() as conn:
        ensure_lists(conn, model, name)
        with warehouse.shared_facts(conn, SharedFacts.collect(model, as_of, [name], follow_segments=True)) as facts:
            row = conn.execute(insights_query(model, name, as_of, facts)).one()
    figures = dict(zip(INSIGHT_KEYS, row, strict=True))
    for key in INSIGHT_KEYS:
        figures[key] = money(figures[key]) if key in MONEY_INSIGHTS else int(figures[key] or 0)
    return figures
