"""The Data Explorer's figures (``report.explorer.profile``) on every engine, against the same counts made in
Python over the rows, and the rules of what it never shows.

The data are crafted for the edges: NULLs in every column, a value held by exactly ``MIN_SHOWN`` rows and
one held by one fewer, ties in the most common values (broken by value), booleans (SQLite's 0/1), decimals,
dates and timestamps, a custom table with a column the warehouse lacks, and a table that is not there.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal

import pytest
import sqlalchemy as sa

from audlang import ast
from audlang.check import check
from audlang.compile import AsOf, SegmentCompiler
from audlang.report import explorer
from audlang.syntax import parse_source
from evaluate.test_oracle import TABLES, create_spark_tables, load
from helpers import WITH_SPARK

AS_OF = AsOf.parse("2024-03-31")
SOURCE = """
# Churn, from the data-science team.
table churn_scores from "churn" <
  churn_score number = "score"
  churn_band text = "band"
  churn_model text = "model_not_loaded"
>
segment "Oregon" < state = "OR" and sms_opt_in >
segment "Big" < lifetime_revenue > 100 or churn_score > 0.5 >
score "Tagged" < 1 point if tagged "VIP" >
segment "Scored" < score "Tagged" >= 1 >
segment "Near" < near store "S1" within 5 miles >
"""


def customers() -> list[dict]:
    rows = []
    states = ["OR"] * 5 + ["WA"] * 4 + ["CA"] * 5 + [None] * 3 + ["NY"] * 3  # OR and CA tie at 5; WA has 4
    for i, state in enumerate(states):
        rows.append({"customer_id": f"C{i:02}", "state": state, "city": "Portland" if i % 2 else None,
                     "email": f"c{i}@example.com" if i % 3 else None, "loyalty_tier": ["Gold", "Silver"][i % 2],
                     "birthdate": dt.date(1980 + i, 1 + i % 12, 1), "created_at": dt.datetime(2020, 1, 1, i),
                     "sms_opt_in": [True, False, None][i % 3], "contactable_phone": i % 4 == 0,
                     "predicted_clv": Decimal(f"{i % 7}.50") if i % 5 else None,
                     "latitude": 45.5 if i % 2 else None, "longitude": -122.6})
    return rows


def orders() -> list[dict]:
    return [{"order_id": f"O{i}", "customer_id": f"C{i % 6:02}", "order_datetime": dt.datetime(2024, 1 + i % 3, 2),
             "order_revenue": Decimal(f"{10 * i}.25"), "order_quantity": 1 + i % 2, "channel": "web" if i % 2
             else "store", "store_id": None} for i in range(12)]


DATA = {"customer_360": customers(), "unified_transactions": orders(), "unified_itemized_transactions": [],
        "customer_tags": [{"customer_id": "C01", "tag": "VIP"}], "checkouts": [], "stores": []}


@pytest.fixture(scope="module")
def profiled(warehouse):
    engine = sa.create_engine(warehouse.url) if warehouse.name != "spark" else None
    if engine is None:
        from audlang.warehouse import connect

        engine = connect(warehouse.url)
    if engine.dialect.name == "hive":
        create_spark_tables(engine)
    load(engine, DATA)
    churn = [{"customer_id": f"C{i:02}", "score": Decimal(f"0.{i % 3}"), "band": "high" if i < 6 else "low"}
             for i in range(10)]
    with engine.begin() as conn:
        if engine.dialect.name == "hive":
            conn.exec_driver_sql("DROP TABLE IF EXISTS churn")
            conn.exec_driver_sql("CREATE TABLE churn (customer_id STRING, score DECIMAL(4,2), band STRING) "
                                 "USING parquet")
            values = ", ".join(f"('{r['customer_id']}', {r['score']}BD, '{r['band']}')" for r in churn)
            conn.exec_driver_sql(f"INSERT INTO churn VALUES {values}")
        else:
            table = sa.Table("churn", sa.MetaData(), sa.Column("customer_id", sa.Text),
                             sa.Column("score", sa.Numeric(4, 2)), sa.Column("band", sa.Text))
            table.drop(conn, checkfirst=True)
            table.create(conn)
            conn.execute(table.insert(), churn)
    parsed, problems = parse_source(SOURCE, "x.aud")
    assert not problems
    model, diagnostics = check([parsed])
    assert not [d for d in diagnostics if d.is_error], diagnostics
    try:
        with engine.begin() as conn:
            tables = explorer.profile(conn, model, SegmentCompiler(model, AS_OF).derived())
    finally:
        engine.dispose()
    return model, {t.name: t for t in tables}


ON_ENGINES = pytest.mark.parametrize("warehouse", WITH_SPARK, indirect=True)


def column(tables, table: str, name: str) -> explorer.Column:
    return next(c for c in tables[table].columns if c.name == name)


def expected_top(values: list, type_: str) -> tuple:
    counts = Counter(v for v in values if v is not None)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple((explorer.shown_value(v, type_), n) for v, n in ranked if n >= explorer.MIN_SHOWN)[
        :explorer.TOP_VALUES]


@ON_ENGINES
def test_every_column_counts_as_python_counts_the_rows(profiled):
    model, tables = profiled
    c360 = tables["customer_360"]
    rows = DATA["customer_360"]
    assert c360.rows == len(rows)
    for name, _kind in TABLES["customer_360"]:
        col = column(tables, "customer_360", name)
        values = [r[name] for r in rows]
        assert col.missing == values.count(None), name
        assert col.distinct == len({v for v in values if v is not None}), name
        if col.shown:
            assert col.top == expected_top(values, col.type), name
        else:
            assert col.top == () and col.low is None and col.high is None, name
    # ties broken by value, a value held by MIN_SHOWN - 1 rows left out
    assert column(tables, "customer_360", "state").top == (("CA", 5), ("OR", 5))
    assert column(tables, "customer_360", "sms_opt_in").top == (("false", 7), ("true", 7))
    clv = column(tables, "customer_360", "predicted_clv")
    present = [r["predicted_clv"] for r in rows if r["predicted_clv"] is not None]
    assert (Decimal(str(clv.low)), Decimal(str(clv.high))) == (min(present), max(present))
    created = column(tables, "customer_360", "created_at")
    assert str(created.low).startswith("2020-01-01") and str(created.high).startswith("2020-01-01 19")


@ON_ENGINES
def test_identifying_columns_show_counts_only(profiled):
    _model, tables = profiled
    for name in ("customer_id", "email", "birthdate", "latitude"):
        col = column(tables, "customer_360", name)
        assert not col.shown and col.top == () and col.low is None and col.high is None
        assert col.distinct is not None and col.missing is not None


@ON_ENGINES
def test_custom_tables_mappings_absent_columns_and_tables(profiled):
    _model, tables = profiled
    churn = tables["churn_scores"]
    assert churn.custom and churn.physical == "churn" and churn.rows == 10
    assert churn.description == "Churn, from the data-science team."
    score = column(tables, "churn_scores", "churn_score")
    assert score.physical == "score" and score.attributes == ("churn_score",) and score.distinct == 3
    assert column(tables, "churn_scores", "churn_band").top == (("high", 6),)  # low has 4 < MIN_SHOWN
    absent = column(tables, "churn_scores", "churn_model")
    assert absent.distinct is None and absent.missing is None and absent.top == ()
    assert tables["stores"].rows == 0


@ON_ENGINES
def test_derived_attributes_over_every_customer(profiled):
    _model, tables = profiled
    derived = tables[explorer.DERIVED_TABLE]
    assert derived.rows == len(DATA["customer_360"])
    spend: dict[str, Decimal] = {}
    for o in DATA["unified_transactions"]:
        spend[o["customer_id"]] = spend.get(o["customer_id"], Decimal(0)) + o["order_revenue"]
    revenue = column(tables, explorer.DERIVED_TABLE, "lifetime_revenue")
    assert revenue.missing == len(DATA["customer_360"]) - len(spend)
    assert (Decimal(str(revenue.low)), Decimal(str(revenue.high))) == (min(spend.values()), max(spend.values()))
    orders = column(tables, explorer.DERIVED_TABLE, "lifetime_orders")
    assert orders.top == (("2", 6),)


@ON_ENGINES
def test_which_segments_and_scores_read_each_column(profiled):
    _model, tables = profiled
    assert column(tables, "customer_360", "state").used_by == ("segment:Oregon",)
    assert column(tables, "churn_scores", "churn_score").used_by == ("segment:Big",)
    assert column(tables, explorer.DERIVED_TABLE, "lifetime_revenue").used_by == ("segment:Big",)
    assert column(tables, "customer_tags", "tag").used_by == ("score:Tagged", "segment:Scored")
    assert set(column(tables, "stores", "latitude").used_by) == {"segment:Near"}
    assert tables["unified_transactions"].used_by == ("segment:Big",)


def test_attributes_of_a_definition_link_to_the_explorer():
    parsed, _ = parse_source(SOURCE, "x.aud")
    model, _ = check([parsed])
    html = '<span class="nv">state</span> <span class="nv">no_such</span> <span class="nv">churn_score</span>'
    linked = explorer.link_attributes(html, model, "../explorer.html")
    assert '<a class="nv attribute" href="../explorer.html#attr-state">state</a>' in linked
    assert '<span class="nv">no_such</span>' in linked
    assert 'href="../explorer.html#attr-churn_score"' in linked
    assert isinstance(parsed.declarations[0], ast.TableMapping)
