"""Oracle: compiled SQL on every engine gives exactly the reference evaluator's members.

Both paths are checked: each segment's own query, and the shared facts of both segments computed
once (``compile.facts``) with each segment a predicate over them.

Hypothesis generates small warehouses full of edge cases (NULLs, events on
window edges and month ends, events after the as-of instant, duplicate tag
rows) and well-typed segments over every condition form; each is evaluated by
the SQL compiler on DuckDB, SQLite and PostgreSQL and by the plain-Python
reference, and the member sets must be equal. The engines are the ``warehouse``
fixture's (conftest.py), one at a time; Spark SQL (marker ``spark``) gets fewer
examples.

SQLite runs three times: with typed tables, and with the same rows as text in
tables that declare no column types (``CREATE TABLE t(a, b)``) or only TEXT, as
CSV imports make them (``text_tables``): numbers, dates, timestamps and
booleans spelled the ways CSV files spell them, missing values NULL or empty.
"""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from audlang import ast
from audlang.holidays import HOLIDAYS
from audlang.compile import AsOf, SegmentCompiler
from audlang.compile.facts import SharedFacts
from audlang.deploy.preview import previewed_part
from audlang.project import analyze
from audlang.syntax import format_file
from audlang.warehouse import traits
from audlang.warehouse.membership import numbered
from audlang.warehouse.scratch import shared_facts
from evaluate import text_tables
from evaluate.reference import Reference
from helpers import WITH_SPARK

AS_OFS = [AsOf.parse("2024-03-31"), AsOf.parse("2024-02-29"), AsOf.parse("2023-12-31"),
          AsOf.parse("2024-03-31T15:30:00Z")]

T_TEXT, T_DATE, T_TS, T_BOOL, T_NUM, T_DOUBLE, T_INT = "text", "date", "ts", "bool", "num", "double", "int"
TABLES = {
    "customer_360": [("customer_id", T_TEXT), ("state", T_TEXT), ("city", T_TEXT), ("email", T_TEXT),
                     ("loyalty_tier", T_TEXT), ("birthdate", T_DATE), ("created_at", T_TS),
                     ("sms_opt_in", T_BOOL), ("contactable_phone", T_BOOL), ("predicted_clv", T_NUM),
                     ("latitude", T_DOUBLE), ("longitude", T_DOUBLE)],
    "unified_transactions": [("order_id", T_TEXT), ("customer_id", T_TEXT), ("order_datetime", T_TS),
                             ("order_revenue", T_NUM), ("order_quantity", T_INT), ("channel", T_TEXT),
                             ("store_id", T_TEXT)],
    "unified_itemized_transactions": [("order_id", T_TEXT), ("customer_id", T_TEXT), ("order_datetime", T_TS),
                                      ("product_name", T_TEXT), ("product_category", T_TEXT),
                                      ("product_collection", T_TEXT), ("product_brand", T_TEXT),
                                      ("item_quantity", T_INT), ("item_revenue", T_NUM)],
    "customer_tags": [("customer_id", T_TEXT), ("tag", T_TEXT)],
    "checkouts": [("checkout_id", T_TEXT), ("customer_id", T_TEXT), ("started_at", T_TS), ("completed", T_BOOL)],
    "stores": [("store_id", T_TEXT), ("latitude", T_DOUBLE), ("longitude", T_DOUBLE)],
}
SA_TYPES = {T_TEXT: sa.Text, T_DATE: sa.Date, T_TS: sa.DateTime, T_BOOL: sa.Boolean,
            T_NUM: lambda: sa.Numeric(12, 2), T_DOUBLE: sa.Double, T_INT: sa.Integer}

IDS = [f"C{i}" for i in range(1, 7)]
WORDS = ["OR", "WA", "or", "Portland", "Port", "land", "", "a_b", "50%", "Gold"]

# ------------------------------------------------------------------ data


COUNTS = [1, 2, 3, 7, 12, 24, 30, 90, 365]


def edges(as_of: AsOf) -> list[dt.datetime]:
    """Instants on the edges of the windows the segments use: T, day starts and ends, month ends, hours back."""
    D, T = as_of.date, as_of.instant
    second = dt.timedelta(seconds=1)
    out = [T, T - second, T + second, dt.datetime.combine(D, dt.time()), dt.datetime.combine(D, dt.time(23, 59, 59))]
    for k in COUNTS:
        for back in (dt.timedelta(days=k), dt.timedelta(weeks=k)):
            day = dt.datetime.combine(D - back, dt.time())
            out += [day, day + dt.timedelta(days=1), day + dt.timedelta(days=1) - second]
        out += [T - dt.timedelta(hours=k), T - dt.timedelta(hours=k) - second]
    for months in (1, 3, 12, 24):
        y, m = divmod(D.year * 12 + D.month - 1 - months, 12)
        import calendar

        day = dt.date(y, m + 1, min(D.day, calendar.monthrange(y, m + 1)[1]))
        out += [dt.datetime.combine(day, dt.time()), dt.datetime.combine(day + dt.timedelta(days=1), dt.time()),
                dt.datetime.combine(day, dt.time(23, 59, 59))]
    out += [dt.datetime(2024, 2, 29), dt.datetime(2024, 2, 28, 23), dt.datetime(2023, 12, 31), dt.datetime(2024, 3, 1),
            dt.datetime(2023, 11, 1), dt.datetime(2023, 2, 28, 12), dt.datetime(2023, 3, 1)]
    return out


def moments(as_of: AsOf):
    return st.none() | st.sampled_from(edges(as_of)) | st.sampled_from(edges(as_of)) | st.builds(
        dt.datetime.combine, st.integers(-400, 2).map(lambda k: as_of.date + dt.timedelta(days=k)),
        st.sampled_from([dt.time(0, 0), dt.time(12, 0)]))


MONEY = [Decimal("0"), Decimal("10.50"), Decimal("20"), Decimal("100"), Decimal("250.25"), Decimal("0.10"),
         Decimal("0.20")]
money = st.none() | st.sampled_from(MONEY)


@st.composite
def warehouses(draw, as_of: AsOf):
    ts = moments(as_of)
    customers = []
    for cid in IDS:
        customers.append({
            "customer_id": cid,
            "state": draw(st.none() | st.sampled_from(["OR", "WA", "or"])),
            "city": draw(st.none() | st.sampled_from(["Portland", "Seattle", "portland"])),
            "email": draw(st.none() | st.sampled_from(["a@x.com", "B@Gmail.com", "c_d@gmail.com", "50%@x.io"])),
            "loyalty_tier": draw(st.none() | st.sampled_from(["Gold", "Silver"])),
            "birthdate": draw(st.none() | st.sampled_from([dt.date(2000, 2, 29), dt.date(1990, 3, 31), as_of.date,
                                                            as_of.date - dt.timedelta(days=1)])),
            "created_at": draw(ts),
            "sms_opt_in": draw(st.none() | st.booleans()),
            "contactable_phone": draw(st.none() | st.booleans()),
            "predicted_clv": draw(money),
            "latitude": draw(st.none() | st.sampled_from([45.52, 45.6, 47.6, 45.5231])),
            "longitude": draw(st.none() | st.sampled_from([-122.68, -122.5, -122.33, -122.6765])),
        })
    orders, items = [], []
    for n in range(draw(st.integers(0, 20))):
        order = {
            "order_id": f"O{n}",
            "customer_id": draw(st.none() | st.sampled_from(IDS)) if draw(st.integers(0, 9)) == 0
            else draw(st.sampled_from(IDS)),
            "order_datetime": draw(ts),
            "order_revenue": draw(money),
            "order_quantity": draw(st.none() | st.integers(0, 4)),
            "channel": draw(st.none() | st.sampled_from(["online", "store"])),
            "store_id": draw(st.none() | st.sampled_from(["PDX-01", "SEA-01"])),
        }
        orders.append(order)
        for _ in range(draw(st.integers(0, 2))):
            items.append({
                # now and then an item row without its order's id: no distinct order to count, no join
                "order_id": order["order_id"] if draw(st.integers(0, 7)) else None,
                "customer_id": order["customer_id"],
                "order_datetime": order["order_datetime"] if draw(st.integers(0, 5)) else draw(ts),
                "product_name": draw(st.none() | st.sampled_from(["Socks", "socks", "Shoe"])),
                "product_category": draw(st.sampled_from(["Socks", "Shoes", "Accessories"])),
                "product_collection": draw(st.none() | st.sampled_from(["Cat snacks", "Dog treats"])),
                "product_brand": draw(st.sampled_from(["Nike", "Acme"])),
                "item_quantity": draw(st.none() | st.integers(0, 3)),
                "item_revenue": draw(money),
            })
    tags = [{"customer_id": draw(st.sampled_from(IDS)), "tag": draw(st.sampled_from(["VIP", "vip", "Staff"]))}
            for _ in range(draw(st.integers(0, 6)))]
    tags += tags[: draw(st.integers(0, len(tags)))]  # duplicate tag rows
    checkouts = [{"checkout_id": f"K{n}", "customer_id": draw(st.sampled_from(IDS)), "started_at": draw(ts),
                  "completed": draw(st.none() | st.booleans())} for n in range(draw(st.integers(0, 5)))]
    stores = [{"store_id": "PDX-01", "latitude": 45.5231, "longitude": -122.6765},
              {"store_id": "SEA-01", "latitude": draw(st.none() | st.just(47.6062)), "longitude": -122.3321}]
    return {"customer_360": customers, "unified_transactions": orders, "unified_itemized_transactions": items,
            "customer_tags": tags, "checkouts": checkouts, "stores": stores}


# ------------------------------------------------------------------ segments

A = ast.Attribute
num = lambda x: ast.NumberValue(Decimal(str(x)))  # noqa: E731
s = ast.StringValue
dates = st.one_of(
    st.dates(dt.date(2022, 12, 1), dt.date(2024, 4, 2)).map(lambda d: ast.DateLiteral(d.isoformat())),
    st.builds(ast.Today, st.sampled_from([0] + COUNTS), st.sampled_from(["days", "weeks", "months", "years"])),
    st.builds(ast.SeasonalDate, st.integers(1, 12), st.sampled_from([1, 15, 28, 29, 30, 31]).filter(lambda d: d < 30)
              | st.just(29), st.integers(0, 1)).filter(lambda x: not (x.month == 2 and x.day > 29)),
)
# moving holidays (SPEC §3.1), and offsets on any of the dates above
holiday_dates = st.builds(ast.HolidayDate, st.sampled_from(sorted(HOLIDAYS)), st.integers(0, 1))
dates = st.one_of(
    dates, holiday_dates,
    # one offset per date: `today - N units` is already one, so today offsets only when on its own
    st.builds(ast.DateOffset, dates.filter(lambda d: not (isinstance(d, ast.Today) and d.minus)) | holiday_dates,
              st.integers(-40, 40).filter(bool),
              st.sampled_from(["days", "weeks", "months", "years"])),
)
windows = st.none() | st.one_of(
    st.builds(lambda a, b: ast.Between(a, b), dates, dates),
    st.builds(ast.WithinLast, st.sampled_from(COUNTS), st.sampled_from(["hours", "days", "weeks", "months", "years"])),
    st.builds(ast.Since, dates), st.builds(ast.Before, dates), st.builds(ast.After, dates), st.builds(ast.On, dates),
)
ops = st.sampled_from(["=", "!=", ">", ">=", "<", "<="])
eq_ops = st.sampled_from(["=", "!="])
text_attr = st.sampled_from(["state", "city", "email", "loyalty_tier"]).map(A)
number_attr = st.sampled_from(["predicted_clv", "lifetime_revenue", "lifetime_orders", "average_order_value",
                               "days_since_last_order"]).map(A)
date_attr = st.sampled_from(["birthdate", "created_at", "first_order_date", "last_order_date"]).map(A)
bool_attr = st.sampled_from(["sms_opt_in", "contactable_phone"]).map(A)
numbers = st.sampled_from(MONEY + [Decimal("30.50"), Decimal("110.50"), Decimal("0.30"), Decimal("1"),
                                   Decimal("2"), Decimal("3"), Decimal("30"), Decimal("90")]).map(num)
texts = st.sampled_from(WORDS).map(s)

predicates = st.one_of(
    st.builds(ast.Compare, text_attr, eq_ops, texts),
    st.builds(ast.Compare, number_attr, ops, numbers),
    st.builds(ast.Compare, date_attr, ops, dates),
    st.builds(ast.Compare, bool_attr, eq_ops, st.builds(ast.BooleanValue, st.booleans())),
    st.builds(lambda a, v, n: ast.InValues(a, tuple(v), n), text_attr, st.lists(texts, min_size=1, max_size=3),
              st.booleans()),
    st.builds(lambda a, v, n: ast.InValues(a, tuple(v), n), number_attr, st.lists(numbers, min_size=1, max_size=3),
              st.booleans()),
    st.builds(lambda a, v, n: ast.InValues(a, tuple(v), n), date_attr, st.lists(dates, min_size=1, max_size=2),
              st.booleans()),
    st.builds(lambda a, x, y: ast.BetweenValues(a, *sorted((x, y), key=lambda n: n.value)), number_attr, numbers,
              numbers),
    st.builds(ast.BetweenValues, date_attr, dates, dates),
    st.builds(ast.StringMatch, text_attr, st.sampled_from(["starts with", "ends with", "contains"]), texts),
    st.builds(ast.IsSet, text_attr | number_attr | date_attr | bool_attr, st.booleans()),
    st.builds(ast.BooleanAttribute, bool_attr),
)
behaviour = st.one_of(
    st.builds(
        lambda filters, measure, window: ast.HasPurchased(tuple({f.field: f for f in filters}.values()), measure,
                                                          window),
        st.lists(st.builds(lambda field, vals: ast.ItemFilter(field, tuple(s(v) for v in vals), len(vals) > 1),
                           st.sampled_from(["product", "category", "collection", "brand", "channel", "store"]),
                           st.lists(st.sampled_from(["Socks", "Shoes", "Cat snacks", "Nike", "online", "PDX-01",
                                                     "Accessories", "store"]), min_size=1, max_size=2)),
                 max_size=2),
        st.none() | st.builds(ast.Measure, st.sampled_from(["orders", "quantity", "spend"]), ops,
                              st.integers(0, 5).map(num) | numbers)
        | st.builds(lambda k, a, b: ast.Measure(k, "between", num(min(a, b)), num(max(a, b))),
                    st.sampled_from(["orders", "quantity", "spend"]), st.integers(0, 6), st.integers(0, 600)),
        windows,
    ),
    st.builds(lambda tags: ast.Tagged(tuple(s(t) for t in tags), len(tags) > 1),
              st.lists(st.sampled_from(["VIP", "Staff", "vip"]), min_size=1, max_size=2)),
    st.builds(ast.AbandonedCheckout, windows),
    st.builds(ast.NearStore, st.sampled_from(["PDX-01", "SEA-01", "NOPE"]), st.sampled_from([1, 5, 10, 200]).map(num),
              st.sampled_from(["miles", "km"])),
)


def _flat(kind, operands):
    out = []
    for o in operands:
        out.extend(o.operands if isinstance(o, kind) else [o])
    return kind(tuple(out))


predicates = st.one_of(predicates, behaviour)
conditions = st.recursive(
    predicates,
    lambda inner: st.one_of(
        st.builds(ast.Not, inner),
        st.builds(lambda ops_: _flat(ast.And, ops_), st.lists(inner, min_size=2, max_size=3)),
        st.builds(lambda ops_: _flat(ast.Or, ops_), st.lists(inner, min_size=2, max_size=3)),
    ),
    max_leaves=5,
)


def _build_model(conds: list):
    """Two generated segments, the second able to use the first with ``in segment``."""
    segs = [ast.Segment("First", conds[0]), ast.Segment("Second", ast.Or((ast.InSegment("First"), conds[1])))
            if conds[1] is not None else ast.Segment("Second", ast.Not(ast.InSegment("First")))]
    text = format_file(ast.SourceFile("gen.aud", ()), "")
    from audlang.syntax.formatter import format_declaration

    text = "\n\n".join("\n".join(format_declaration(_spanned(d, i), [])) for i, d in enumerate(segs)) + "\n"
    model, diagnostics = analyze({"gen.aud": text})
    errors = [d for d in diagnostics if d.is_error]
    # The checker refuses some generated shapes (backward ranges, empty windows): not SQL's business.
    assume(all(e.code in ("E106", "W203") for e in errors))
    assume(not errors)
    return model, text


def _spanned(decl, i):
    import attrs

    from audlang.diagnostics import Span

    return attrs.evolve(decl, span=Span("gen.aud", i * 10 + 1, 1, i * 10 + 1, 2))


# ------------------------------------------------------------------ engines


def load(engine: sa.Engine, data: dict) -> None:
    if engine.dialect.name == "hive":
        load_spark(engine, data)
        return
    metadata = sa.MetaData()
    tables = {name: sa.Table(name, metadata, *(sa.Column(c, SA_TYPES[k]()) for c, k in cols))
              for name, cols in TABLES.items()}
    with engine.begin() as conn:
        metadata.drop_all(conn)
        metadata.create_all(conn)
        for name, rows in data.items():
            if rows:
                conn.execute(tables[name].insert(), rows)


#: the oracle's column kinds as those of ``text_tables`` (audlang.datagen.schema's)
TEXT_KINDS = {T_TEXT: text_tables.TEXT, T_DATE: text_tables.DATE, T_TS: text_tables.TIMESTAMP,
              T_BOOL: text_tables.BOOLEAN, T_NUM: text_tables.DECIMAL, T_DOUBLE: text_tables.DOUBLE,
              T_INT: text_tables.INTEGER}


def load_as_text(engine: sa.Engine, data: dict, declared: str) -> None:
    tables = {name: [(c, TEXT_KINDS[k]) for c, k in cols] for name, cols in TABLES.items()}
    with engine.begin() as conn:
        text_tables.load_as_text(conn, tables, data, declared)


SPARK_TYPES = {T_TEXT: "STRING", T_DATE: "DATE", T_TS: "TIMESTAMP", T_BOOL: "BOOLEAN", T_NUM: "DECIMAL(12,2)",
               T_DOUBLE: "DOUBLE", T_INT: "INT"}


def _spark_value(value) -> str:
    from audlang.compile.dialects import spark_literal, spark_string

    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return spark_string(value)
    if isinstance(value, float):
        return f"{value!r}D"
    return spark_literal(value) or str(value)


def create_spark_tables(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        for name, cols in TABLES.items():
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
            conn.exec_driver_sql(f"CREATE TABLE {name} ({', '.join(f'{c} {SPARK_TYPES[k]}' for c, k in cols)}) "
                                 "USING parquet")


def load_spark(engine: sa.Engine, data: dict) -> None:
    """Real Parquet tables, rewritten whole: one INSERT OVERWRITE per table (a row-by-row executemany
    would be a Spark job per row)."""
    with engine.connect() as conn:
        driver = conn.execution_options(no_parameters=True)
        for name, cols in TABLES.items():
            rows = data.get(name) or []
            if rows:
                values = ", ".join("(" + ", ".join(_spark_value(r[c]) for c, _ in cols) + ")" for r in rows)
                driver.exec_driver_sql(f"INSERT OVERWRITE TABLE {name} VALUES {values}")
            else:
                driver.exec_driver_sql(f"TRUNCATE TABLE {name}")


@pytest.fixture(scope="module")
def engines(warehouse):
    """The engine under test, by name: in memory for DuckDB and SQLite, where SQLite runs three times (typed
    tables, and the text tables of ``text_tables``); a database of the session's server for the others."""
    if warehouse.name == "spark":
        from audlang.warehouse import connect

        engine = connect(warehouse.url)  # sets the session to UTC, as audlang does
        create_spark_tables(engine)
        made = {"spark": engine}
    elif warehouse.name == "duckdb":
        made = {"duckdb": sa.create_engine("duckdb:///:memory:", poolclass=sa.pool.StaticPool)}
    elif warehouse.name == "sqlite":
        from audlang.warehouse import harden

        made = {name: sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool)
                for name in ("sqlite", *text_tables.DECLARED)}
        for engine in made.values():
            harden(engine)  # audlang's SQL functions on SQLite
    else:
        made = {warehouse.name: sa.create_engine(warehouse.url)}
    yield made
    for engine in made.values():
        engine.dispose()


def check_engines(engines: dict, data, as_of: AsOf, first, second, data_of=None) -> None:
    """The shared body: the generated segments on each engine in ``engines`` equal the reference's.
    ``data_of``: the warehouse strategy for an as-of (``warehouses`` unless given)."""
    model, text = _build_model([first, second])
    agree_on_engines(engines, model, text, data.draw((data_of or warehouses)(as_of)), as_of)


def agree_on_engines(engines: dict, model, text: str, warehouse, as_of: AsOf) -> None:
    """Segments "First" and "Second" of ``model`` (written as ``text``) over ``warehouse`` on each engine,
    each by its own query and then over the shared facts of both, equal to the reference's members."""
    reference = Reference(warehouse, model, as_of.date, as_of.instant)
    expected = {name: reference.members(name) for name in ("First", "Second")}
    compiler = SegmentCompiler(model, as_of)
    for engine_name, engine in engines.items():
        if engine_name in text_tables.DECLARED:
            load_as_text(engine, warehouse, text_tables.DECLARED[engine_name])
        else:
            load(engine, warehouse)
        with engine.connect() as conn:
            for name in ("First", "Second"):
                got = {row[0] for row in conn.execute(compiler.segment(name))}
                assert got == expected[name], f"{engine_name}, {name}, as of {as_of}:\n{text}"
        # The shared path: the facts of both segments computed once, each segment a predicate over them.
        facts = SharedFacts.collect(model, as_of, ["First", "Second"], follow_segments=True)
        with engine.connect() as conn, shared_facts(conn, facts):
            shared = SegmentCompiler(model, as_of, facts=facts)
            for name in ("First", "Second"):
                got = {row[0] for row in conn.execute(shared.segment(name))}
                assert got == expected[name], f"{engine_name}, {name}, shared facts, as of {as_of}:\n{text}"
            # The plan's preview: each segment that is a filter over the shared row, both tested on one scan.
            parts = [(i, previewed_part(shared, name)) for i, name in enumerate(("First", "Second"))]
            rows = conn.execute(numbered(parts, traits(conn).arrays)).all()
            for i, name in enumerate(("First", "Second")):
                got = {customer_id for seg, customer_id in rows if int(seg) == i}
                assert got == {str(c) for c in expected[name]}, \
                    f"{engine_name}, {name}, preview, as of {as_of}:\n{text}"


SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
CASES = dict(data=st.data(), as_of=st.sampled_from(AS_OFS), first=st.one_of(behaviour, predicates, conditions),
             second=st.none() | behaviour | conditions)


@settings(max_examples=int(os.environ.get("AUDLANG_ORACLE_EXAMPLES", "200")), **SETTINGS)
@given(**CASES)
def test_sql_equals_reference_on_every_engine(engines, data, as_of, first, second):
    check_engines(engines, data, as_of, first, second)


@pytest.mark.parametrize("warehouse", WITH_SPARK, indirect=True)
@settings(max_examples=3, **SETTINGS)
@given(data=st.data(), as_of=st.sampled_from(AS_OFS))
def test_a_test_that_reads_no_column_keeps_its_null_guard(engines, data, as_of):
    """The days since the last order are whole, so ``!= 30.50`` compiles to a constant true and ``not in
    (0.30)`` to ``not false``. Each still holds only where the days are known (a customer with an order),
    on every path: the preview's filters, which drop the other NULL guards, keep these."""
    days = A("days_since_last_order")
    check_engines(engines, data, as_of, ast.Compare(days, "!=", num("30.50")),
                  ast.InValues(days, (num("0.30"),), True))


# Fewer examples on Spark, where each query takes about a second.
@pytest.mark.parametrize("warehouse", ["spark"], indirect=True)
@pytest.mark.spark
@settings(max_examples=int(os.environ.get("AUDLANG_SPARK_EXAMPLES", "30")), **SETTINGS)
@given(**CASES)
def test_sql_equals_reference_on_spark(engines, data, as_of, first, second):
    check_engines(engines, data, as_of, first, second)
