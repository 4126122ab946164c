"""The synthetic warehouse: deterministic, consistent, realistic enough for every example segment."""

from __future__ import annotations

import datetime as dt
import decimal

import duckdb
import pytest
import sqlalchemy as sa

from audlang.check.datamodel import STANDARD_TABLES
from audlang.datagen import DEFAULT_AS_OF, TABLES, generate, generate_parquet, sqlalchemy_tables

CUSTOMERS = 3000  # big enough that every example segment finds members, small enough for seconds
AS_OF = DEFAULT_AS_OF
INSTANT = f"TIMESTAMP '{AS_OF + dt.timedelta(days=1)} 00:00:00'"  # the as-of instant T


def build(customers: int = CUSTOMERS, **kwargs) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    generate(con, customers, **kwargs)
    return con


@pytest.fixture(scope="module")
def warehouse() -> duckdb.DuckDBPyConnection:
    return build()


def scalar(con, sql: str):
    return con.execute(sql).fetchone()[0]


def table_rows(con, table: str) -> list[tuple]:
    return con.execute(f"SELECT * FROM {table}").fetchall()


def sorted_rows(rows) -> list[tuple]:
    return sorted((tuple(r) for r in rows), key=lambda row: [(v is not None, v) for v in row])


# -- shape -----------------------------------------------------------------------------------------

def test_tables_have_the_standard_columns_and_types(warehouse):
    duckdb_types = {"text": "VARCHAR", "date": "DATE", "timestamp": "TIMESTAMP", "boolean": "BOOLEAN",
                    "decimal": "DECIMAL(12,2)", "double": "DOUBLE", "integer": "INTEGER"}
    for table, columns in TABLES.items():
        found = warehouse.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position", [table]).fetchall()
        assert found == [(c, duckdb_types[k]) for c, k in columns], table
    # The same columns as the checker's standard data model, plus the custom churn_scores table.
    for table, columns in STANDARD_TABLES.items():
        assert [c for c, _ in TABLES[table]] == list(columns), table
    assert set(TABLES) - set(STANDARD_TABLES) == {"churn_scores"}


def test_row_counts_and_ratios(warehouse):
    counts = {table: scalar(warehouse, f"SELECT count(*) FROM {table}") for table in TABLES}
    assert counts["customer_360"] == CUSTOMERS
    assert counts["stores"] >= 9
    assert 6 <= counts["unified_transactions"] / CUSTOMERS <= 14  # about 10 orders a customer
    assert 1.5 <= counts["unified_itemized_transactions"] / counts["unified_transactions"] <= 2.5
    assert 0.5 <= counts["checkouts"] / CUSTOMERS <= 1.2
    assert 0.9 <= counts["churn_scores"] / CUSTOMERS < 1.0
    # Heavy-tailed repeat buying: many one-order customers, a few with dozens, some with none.
    per_customer = dict(warehouse.execute("""
        SELECT bucket, count(*) FROM (
            SELECT CASE WHEN n = 0 THEN 'none' WHEN n = 1 THEN 'one' WHEN n >= 30 THEN 'many' ELSE 'some' END bucket
            FROM (SELECT c.customer_id, count(o.order_id) n FROM customer_360 c
                  LEFT JOIN unified_transactions o USING (customer_id) GROUP BY 1)) GROUP BY 1""").fetchall())
    assert 0.05 < per_customer["none"] / CUSTOMERS < 0.2
    assert 0.2 < per_customer["one"] / CUSTOMERS < 0.5
    assert 0.02 < per_customer["many"] / CUSTOMERS < 0.15
    most = "SELECT max(n) FROM (SELECT count(*) n FROM unified_transactions GROUP BY customer_id)"
    assert scalar(warehouse, most) >= 100
    # Orders span about three years before the as-of date, and a few run past it.
    first, last = warehouse.execute(
        "SELECT min(order_datetime), max(order_datetime) FROM unified_transactions").fetchone()
    three_years_before = AS_OF.replace(year=AS_OF.year - 3)
    assert three_years_before <= first.date() <= three_years_before + dt.timedelta(days=7)
    assert last.date() > AS_OF


def test_the_same_seed_gives_the_same_data_and_another_seed_does_not(warehouse):
    again = build()
    other = build(seed=7)
    for table in TABLES:
        assert table_rows(again, table) == table_rows(warehouse, table), table
    assert table_rows(other, "customer_360") != table_rows(warehouse, "customer_360")
    assert table_rows(other, "unified_transactions") != table_rows(warehouse, "unified_transactions")


def test_a_customer_is_the_same_person_at_any_size(warehouse):
    small = build(500)
    columns = "customer_id, given_name, surname, email, phone, postal, birthdate, created_at, sms_opt_in"
    assert (small.execute(f"SELECT {columns} FROM customer_360 ORDER BY customer_id").fetchall()
            == warehouse.execute(f"SELECT {columns} FROM customer_360 WHERE customer_id <= 'C000500' "
                                 "ORDER BY customer_id").fetchall())
    orders = ("SELECT customer_id, order_datetime, order_revenue FROM unified_transactions "
              "WHERE customer_id = 'C000077' ORDER BY ALL")
    assert small.execute(orders).fetchall() == warehouse.execute(orders).fetchall()


def test_ids_are_zero_padded_and_rows_come_in_id_order(warehouse):
    ids = [r[0] for r in warehouse.execute("SELECT customer_id FROM customer_360").fetchall()]
    assert ids[:3] == ["C000001", "C000002", "C000003"] and ids == sorted(ids) and len(set(ids)) == len(ids)
    orders = [r[0] for r in warehouse.execute("SELECT order_id FROM unified_transactions").fetchall()]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)
    # Order numbers follow time, as a shop's do.
    assert scalar(warehouse, """
        SELECT count(*) FROM (SELECT order_datetime, lag(order_datetime) OVER (ORDER BY order_id) prev
                              FROM unified_transactions) WHERE order_datetime < prev""") == 0
    checkouts = [r[0] for r in warehouse.execute("SELECT checkout_id FROM checkouts").fetchall()]
    assert checkouts == sorted(checkouts) and len(set(checkouts)) == len(checkouts)
    assert build(1_000_000 // 1000).execute("SELECT max(customer_id) FROM customer_360").fetchone()[0] == "C001000"


# -- consistency -------------------------------------------------------------------------------

INTEGRITY = {
    "every order's customer exists":
        "SELECT count(*) FROM unified_transactions o ANTI JOIN customer_360 c USING (customer_id)",
    "every item's order exists":
        "SELECT count(*) FROM unified_itemized_transactions i ANTI JOIN unified_transactions o USING (order_id)",
    "every order has items":
        "SELECT count(*) FROM unified_transactions o ANTI JOIN unified_itemized_transactions i USING (order_id)",
    "items carry their order's customer and time":
        """SELECT count(*) FROM unified_itemized_transactions i JOIN unified_transactions o USING (order_id)
           WHERE i.customer_id <> o.customer_id OR i.order_datetime <> o.order_datetime""",
    "item revenues sum to the order revenue and quantities to the order quantity":
        """SELECT count(*) FROM unified_transactions o
           JOIN (SELECT order_id, sum(item_revenue) r, sum(item_quantity) q
                 FROM unified_itemized_transactions GROUP BY 1) i USING (order_id)
           WHERE i.r <> o.order_revenue OR i.q <> o.order_quantity""",
    "store orders, and only they, name an existing store":
        """SELECT count(*) FROM unified_transactions o LEFT JOIN stores s USING (store_id)
           WHERE (o.channel = 'store') <> (o.store_id IS NOT NULL) OR (o.store_id IS NOT NULL AND s.name IS NULL)""",
    "channels are online, store and app":
        "SELECT count(*) FROM unified_transactions WHERE channel NOT IN ('online', 'store', 'app') OR channel IS NULL",
    "revenues and quantities are positive":
        """SELECT count(*) FROM unified_itemized_transactions WHERE item_revenue <= 0 OR item_quantity <= 0""",
    "tags, checkouts and scores belong to customers":
        """SELECT (SELECT count(*) FROM customer_tags ANTI JOIN customer_360 USING (customer_id))
                + (SELECT count(*) FROM checkouts ANTI JOIN customer_360 USING (customer_id))
                + (SELECT count(*) FROM churn_scores ANTI JOIN customer_360 USING (customer_id))""",
    "keys are unique":
        """SELECT (SELECT count(*) - count(DISTINCT customer_id) FROM customer_360)
                + (SELECT count(*) - count(DISTINCT order_id) FROM unified_transactions)
                + (SELECT count(*) - count(DISTINCT checkout_id) FROM checkouts)
                + (SELECT count(*) - count(DISTINCT customer_id) FROM churn_scores)
                + (SELECT count(*) - count(DISTINCT store_id) FROM stores)""",
    "opt-ins and contactability need the phone or email on file":
        """SELECT count(*) FROM customer_360
           WHERE (sms_opt_in AND phone IS NULL) OR (contactable_phone AND phone IS NULL)
              OR (email_opt_in AND email IS NULL) OR (contactable_email AND email IS NULL)
              OR (phone IS NULL AND contactable_phone IS NOT FALSE)
              OR (email IS NULL AND contactable_email IS NOT FALSE)""",
    "lifecycle statuses are the standard six":
        """SELECT count(*) FROM customer_360 WHERE predicted_lifecycle_status IS NULL OR predicted_lifecycle_status
           NOT IN ('Active', 'Cooling down', 'At risk', 'Highly at risk', 'Lost', 'New')""",
    "loyalty tiers are Bronze to Platinum or missing":
        "SELECT count(*) FROM customer_360 WHERE loyalty_tier NOT IN ('Bronze', 'Silver', 'Gold', 'Platinum')",
    "customers are created by the as-of date and born well before":
        f"""SELECT count(*) FROM customer_360 WHERE created_at >= {INSTANT}
            OR birthdate > DATE '{AS_OF}' - INTERVAL 18 YEARS OR birthdate < DATE '{AS_OF}' - INTERVAL 81 YEARS""",
    "nobody orders before their account exists (within the history)":
        """SELECT count(*) FROM unified_transactions o JOIN customer_360 c USING (customer_id)
           WHERE o.order_datetime::DATE < c.created_at::DATE""",
    "postal codes belong to their city and state":
        """SELECT count(*) FROM customer_360 WHERE
           (city = 'Portland' AND (postal NOT LIKE '972%' OR state <> 'OR'))
           OR (city = 'Seattle' AND (postal NOT LIKE '981%' OR state <> 'WA'))
           OR (city = 'Austin' AND (postal NOT LIKE '787%' OR state <> 'TX'))""",
    "positions are near the city":
        """SELECT count(*) FROM customer_360 c JOIN (SELECT city, avg(latitude) lat, avg(longitude) lon
                                                     FROM customer_360 GROUP BY 1) m USING (city)
           WHERE abs(c.latitude - m.lat) > 0.15 OR abs(c.longitude - m.lon) > 0.2""",
    "scores are probabilities":
        "SELECT count(*) FROM churn_scores WHERE score < 0 OR score > 1 OR model_version IS NULL",
}


@pytest.mark.parametrize("rule", INTEGRITY)
def test_integrity(warehouse, rule):
    assert scalar(warehouse, INTEGRITY[rule]) == 0


def test_nulls_where_real_data_has_them(warehouse):
    for column in ("state", "phone", "email", "birthdate", "loyalty_tier", "latitude", "longitude", "gender",
                   "postal", "sms_opt_in"):
        missing = scalar(warehouse, f"SELECT count(*) FROM customer_360 WHERE {column} IS NULL")
        assert 0 < missing < CUSTOMERS * 0.5, column
    assert scalar(warehouse, "SELECT count(*) FROM unified_itemized_transactions WHERE product_collection IS NULL") > 0
    assert scalar(warehouse, "SELECT count(*) FROM unified_itemized_transactions WHERE product_brand IS NULL") > 0


def test_opt_in_rates_are_realistic(warehouse):
    sms, email, phone, mail = warehouse.execute("""
        SELECT avg(sms_opt_in::INT), avg(email_opt_in::INT), avg(contactable_phone::INT), avg(contactable_email::INT)
        FROM customer_360""").fetchone()
    assert 0.3 < sms < 0.55 and 0.45 < email < 0.7 and 0.7 < phone < 0.95 and 0.75 < mail < 0.95


def test_seasons_show_in_the_orders(warehouse):
    def per_day(first: str, last: str) -> float:
        return scalar(warehouse, f"""SELECT count(*) / (DATE '{last}' - DATE '{first}' + 1) FROM unified_transactions
                                     WHERE order_datetime::DATE BETWEEN '{first}' AND '{last}'""")

    ordinary = per_day("2023-03-01", "2023-04-30")
    assert per_day("2023-12-01", "2023-12-23") > 1.8 * ordinary  # holiday peak
    assert per_day("2023-11-24", "2023-11-24") > 4 * ordinary     # Black Friday
    assert per_day("2024-02-07", "2024-02-14") > 1.4 * ordinary   # Valentine's week
    assert per_day("2024-01-02", "2024-01-31") < ordinary         # January lull


def test_duplicate_tag_rows_exist(warehouse):
    assert scalar(warehouse, "SELECT count(*) FROM (SELECT customer_id, tag FROM customer_tags "
                             "GROUP BY ALL HAVING count(*) > 1)") > 0


def test_events_after_the_as_of_instant_exist(warehouse):
    assert scalar(warehouse, f"SELECT count(*) FROM unified_transactions WHERE order_datetime >= {INSTANT}") > 0
    assert scalar(warehouse,
                  f"SELECT count(*) FROM unified_itemized_transactions WHERE order_datetime >= {INSTANT}") > 0
    assert scalar(warehouse, f"SELECT count(*) FROM checkouts WHERE started_at >= {INSTANT}") > 0


def test_as_of_moves_the_history():
    as_of = dt.date(2023, 6, 30)
    con = build(800, as_of=as_of)
    first, last = con.execute("SELECT min(order_datetime), max(order_datetime) FROM unified_transactions").fetchone()
    assert dt.date(2020, 6, 30) < first.date() and as_of < last.date() <= as_of + dt.timedelta(days=14)
    assert con.execute("SELECT max(created_at) FROM customer_360").fetchone()[0].date() <= as_of


# -- every example segment finds members (examples/retail) ---------------------------------------------

D = f"DATE '{AS_OF}'"
HAS_ORDERS = "SELECT customer_id FROM unified_transactions WHERE order_datetime < " + INSTANT
SEGMENT_FACTS = {
    "In-store Customers - Portland":
        "SELECT count(*) FROM customer_360 WHERE contactable_phone AND postal IN ('97201', '97202', '97205', '97209')",
    "In-store Customers - Seattle":
        "SELECT count(*) FROM customer_360 WHERE contactable_phone AND postal IN ('98101', '98102', '98104', '98122')",
    "Holiday Shoppers - SMS":
        """SELECT count(DISTINCT c.customer_id) FROM customer_360 c JOIN unified_transactions o USING (customer_id)
           WHERE c.sms_opt_in AND o.order_datetime::DATE BETWEEN '2023-11-01' AND '2023-12-31'""",
    "Valentine Shoppers":
        """SELECT count(DISTINCT customer_id) FROM unified_transactions
           WHERE order_datetime::DATE BETWEEN '2023-02-07' AND '2023-02-14'""",
    "Churn Prevention - Socks":
        f"""SELECT count(*) FROM customer_360 c JOIN (
                SELECT customer_id FROM unified_itemized_transactions
                WHERE product_name = 'Socks' AND order_datetime::DATE > {D} - INTERVAL 3 MONTHS
                  AND order_datetime::DATE <= {D}
                GROUP BY 1 HAVING sum(item_quantity) = 1) s USING (customer_id)
            WHERE predicted_lifecycle_status IN ('Active', 'Cooling down', 'At risk')""",
    "Socks category buyers in the last 3 months":
        f"""SELECT count(DISTINCT customer_id) FROM unified_itemized_transactions
            WHERE product_category = 'Socks' AND order_datetime::DATE > {D} - INTERVAL 3 MONTHS
              AND order_datetime::DATE <= {D}""",
    "Big Spenders":
        f"SELECT count(*) FROM (SELECT customer_id FROM unified_transactions WHERE order_datetime < {INSTANT} "
        "GROUP BY 1 HAVING sum(order_revenue) > 500)",
    "Lapsed VIP":
        f"""SELECT count(*) FROM (SELECT customer_id FROM unified_transactions WHERE order_datetime < {INSTANT}
                                  GROUP BY 1 HAVING sum(order_revenue) > 500
                                     AND max(order_datetime)::DATE <= {D} - INTERVAL 90 DAYS)
            WHERE customer_id IN (SELECT customer_id FROM customer_tags WHERE tag = 'VIP')""",
    "Win Back - Email":
        """SELECT count(*) FROM customer_360 WHERE predicted_lifecycle_status IN ('Highly at risk', 'Lost')
           AND contactable_email AND predicted_clv >= 250""",
    "New This Quarter":
        f"SELECT count(*) FROM customer_360 WHERE created_at >= {D} - INTERVAL 3 MONTHS AND email_opt_in",
    "Top Tier Northwest":
        "SELECT count(*) FROM customer_360 WHERE loyalty_tier IN ('Gold', 'Platinum') AND state IN ('OR', 'WA')",
    "Outside Oregon (missing state)": "SELECT count(*) FROM customer_360 WHERE state IS NULL",
    "High AOV Active":
        f"""SELECT count(*) FROM (SELECT customer_id FROM unified_transactions WHERE order_datetime < {INSTANT}
                                  GROUP BY 1 HAVING avg(order_revenue) >= 150
                                     AND {D} - max(order_datetime)::DATE <= 60)""",
    "Under 40 - California":
        f"SELECT count(*) FROM customer_360 WHERE birthdate > {D} - INTERVAL 40 YEARS AND state = 'CA'",
    "Gmail Subscribers": "SELECT count(*) FROM customer_360 WHERE email LIKE '%@gmail.com' AND email_opt_in",
    "Birthday Month": f"SELECT count(*) FROM customer_360 WHERE month(birthdate) = month({D}) AND email_opt_in",
    "Birthday This Week - SMS":  # as of 2024-11-30: November 30 to December 6
        """SELECT count(*) FROM customer_360 WHERE sms_opt_in
           AND strftime(birthdate, '%m-%d') BETWEEN '11-30' AND '12-06'""",
    "Model - Likely Churners":
        """SELECT count(*) FROM churn_scores s JOIN customer_360 c USING (customer_id)
           WHERE s.score >= 0.7 AND c.contactable_email""",
    "Wholesale Accounts":
        "SELECT count(*) = 3 FROM customer_360 WHERE customer_id IN ('C000001', 'C000042', 'C000107')",
    "Spent Over 1000 This Year":
        f"""SELECT count(*) FROM customer_360 c JOIN (SELECT customer_id FROM unified_transactions
            WHERE order_datetime::DATE > {D} - INTERVAL 1 YEAR AND order_datetime < {INSTANT}
            GROUP BY 1 HAVING sum(order_revenue) > 1000) USING (customer_id) WHERE c.sms_opt_in""",
    "Spent Under 50":
        f"""SELECT count(*) FROM customer_360 c JOIN (SELECT customer_id FROM unified_transactions
            WHERE order_datetime < {INSTANT} GROUP BY 1 HAVING sum(order_revenue) < 50) USING (customer_id)
            WHERE c.sms_opt_in""",
    "Ordered Last Week":
        f"""SELECT count(*) FROM customer_360 c WHERE c.sms_opt_in AND c.customer_id IN (
              SELECT customer_id FROM unified_transactions
              WHERE order_datetime::DATE > {D} - INTERVAL 7 DAYS AND order_datetime < {INSTANT})""",
    "Black Friday 2023 Buyers":
        """SELECT count(*) FROM customer_360 c WHERE c.sms_opt_in AND c.customer_id IN (
             SELECT customer_id FROM unified_transactions WHERE order_datetime::DATE = '2023-11-24')""",
    "Spring Store Buyers":
        """SELECT count(DISTINCT customer_id) FROM unified_transactions
           WHERE channel = 'store' AND order_datetime::DATE BETWEEN '2024-03-01' AND '2024-05-31'""",
    "Not Ordered in 3 Months":
        f"""SELECT count(*) FROM customer_360 c SEMI JOIN ({HAS_ORDERS}) USING (customer_id)
            WHERE c.sms_opt_in AND c.customer_id NOT IN (SELECT customer_id FROM unified_transactions
              WHERE order_datetime::DATE > {D} - INTERVAL 3 MONTHS AND order_datetime < {INSTANT})""",
    "No Orders Since New Year":
        f"""SELECT count(*) FROM customer_360 c WHERE c.sms_opt_in AND c.customer_id NOT IN (
              SELECT customer_id FROM unified_transactions WHERE order_datetime >= '2024-01-01'
              AND order_datetime < {INSTANT})""",
    "Five Plus Orders":
        f"""SELECT count(*) FROM customer_360 c JOIN (SELECT customer_id FROM unified_transactions
            WHERE order_datetime < {INSTANT} GROUP BY 1 HAVING count(*) >= 5) USING (customer_id) WHERE c.sms_opt_in""",
    "Two to Four Orders":
        f"""SELECT count(*) FROM (SELECT customer_id FROM unified_transactions
            WHERE order_datetime::DATE > {D} - INTERVAL 1 YEAR AND order_datetime < {INSTANT}
            GROUP BY 1 HAVING count(*) BETWEEN 2 AND 4)""",
    "Nike Shoe Buyers":
        """SELECT count(*) FROM customer_360 c WHERE c.sms_opt_in AND c.customer_id IN (
             SELECT customer_id FROM unified_itemized_transactions
             WHERE product_brand = 'Nike' AND product_category = 'Shoes')""",
    "Dog Treat Buyers":
        """SELECT count(*) FROM customer_360 c WHERE c.sms_opt_in AND c.customer_id IN (
             SELECT customer_id FROM unified_itemized_transactions WHERE product_collection = 'Dog treats')""",
    "Cat Snack Buyers":
        f"""SELECT count(*) FROM (SELECT customer_id FROM unified_itemized_transactions
            WHERE product_collection = 'Cat snacks' AND order_datetime::DATE > {D} - INTERVAL 1 YEAR
              AND order_datetime < {INSTANT}
            GROUP BY 1 HAVING count(DISTINCT order_id) >= 2)""",
    "Cart Abandoners - Last Hour":
        f"""SELECT count(*) FROM customer_360 c WHERE c.sms_opt_in AND c.customer_id IN (
              SELECT customer_id FROM checkouts WHERE NOT completed
              AND started_at >= {INSTANT} - INTERVAL 1 HOUR AND started_at < {INSTANT})""",
    "Cart Abandoners - 12 Hours":
        f"""SELECT count(*) FROM customer_360 c WHERE c.sms_opt_in AND c.customer_id IN (
              SELECT customer_id FROM checkouts WHERE NOT completed
              AND started_at >= {INSTANT} - INTERVAL 12 HOURS AND started_at < {INSTANT})""",
    "VIP Accessories Fans":
        """SELECT count(*) FROM (SELECT customer_id FROM unified_itemized_transactions
           WHERE product_category = 'Accessories' GROUP BY 1 HAVING count(DISTINCT order_id) >= 3)
           WHERE customer_id IN (SELECT customer_id FROM customer_tags WHERE tag = 'VIP')""",
    "Staff and Friends":
        """SELECT count(DISTINCT tag) = 2 FROM customer_tags WHERE tag IN ('Employee', 'Friends & Family')""",
    "Near Pearl Store":
        """SELECT count(*) FROM customer_360 c, stores s
           WHERE s.store_id = 'PDX-01' AND c.contactable_phone
             AND 2 * 6371.0088 * asin(sqrt(pow(sin(radians(c.latitude - s.latitude) / 2), 2)
                 + cos(radians(s.latitude)) * cos(radians(c.latitude))
                 * pow(sin(radians(c.longitude - s.longitude) / 2), 2))) <= 10 * 1.609344""",
}


@pytest.mark.parametrize("segment", SEGMENT_FACTS)
def test_example_segments_find_members(warehouse, segment):
    assert scalar(warehouse, SEGMENT_FACTS[segment]) > 0


def test_catalog_names_the_examples_use(warehouse):
    def values(column: str) -> set[str]:
        query = f"SELECT DISTINCT {column} FROM unified_itemized_transactions"
        return {r[0] for r in warehouse.execute(query).fetchall()}

    assert {"Shoes", "Accessories", "Socks"} <= values("product_category")
    assert {"Cat snacks", "Dog treats"} <= values("product_collection")
    assert "Nike" in values("product_brand") and "Socks" in values("product_name")
    stores = dict(warehouse.execute("SELECT store_id, name FROM stores").fetchall())
    assert stores["PDX-01"] == "Pearl District" and "SEA-01" in stores
    tags = {r[0] for r in warehouse.execute("SELECT DISTINCT tag FROM customer_tags").fetchall()}
    assert {"VIP", "Employee", "Friends & Family"} <= tags


# -- sinks ---------------------------------------------------------------------------------------------

SMALL = 400


def typed_rows(engine: sa.Engine) -> dict[str, list[tuple]]:
    """Every table read back through SQLAlchemy's types (dates, datetimes, Decimals, booleans)."""
    tables = sqlalchemy_tables()
    with engine.connect() as connection:
        return {name: sorted_rows(connection.execute(sa.select(table)).all()) for name, table in tables.items()}


@pytest.fixture(scope="module")
def small_reference() -> dict[str, list[tuple]]:
    con = build(SMALL)
    return {table: sorted_rows(table_rows(con, table)) for table in TABLES}


def assert_same_data(found: dict[str, list[tuple]], expected: dict[str, list[tuple]]) -> None:
    for table in TABLES:
        assert len(found[table]) == len(expected[table]), table
        for got, want in zip(found[table], expected[table], strict=True):
            assert len(got) == len(want)
            for g, w in zip(got, want, strict=True):
                if isinstance(w, decimal.Decimal):
                    assert g == w, (table, got, want)
                elif isinstance(w, float):
                    assert g == pytest.approx(w, abs=1e-9), (table, got, want)
                else:
                    assert g == w, (table, got, want)


def test_loads_into_sqlite(tmp_path, small_reference):
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    stages = []
    counts = generate(url, SMALL, progress=lambda stage, fraction: stages.append((stage, fraction)))
    engine = sa.create_engine(url)
    try:
        assert_same_data(typed_rows(engine), small_reference)
        assert counts == {table: len(rows) for table, rows in small_reference.items()}
        with engine.connect() as connection:
            # Text timestamps in SQLite's own format, so its date functions and comparisons work.
            assert connection.execute(sa.text(
                "SELECT count(*) FROM unified_transactions WHERE order_datetime >= '2024-12-01 00:00:00'")).scalar() > 0
            assert connection.execute(sa.text(
                "SELECT count(*) FROM unified_transactions WHERE date(order_datetime) = '2023-11-24'")).scalar() > 0
            assert connection.execute(sa.text("SELECT count(*) FROM customer_360 WHERE sms_opt_in = 1")).scalar() > 0
    finally:
        engine.dispose()
    fractions = [fraction for _, fraction in stages]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert {"customers", "orders"} <= {stage for stage, _ in stages}
    assert any(stage.startswith("load ") for stage, _ in stages)
    # Generating again replaces the tables rather than adding to them.
    generate(url, SMALL)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM customer_360")).scalar() == SMALL
    finally:
        engine.dispose()


def test_loads_into_postgresql(postgresql_url, small_reference):
    counts = generate(postgresql_url, SMALL)
    engine = sa.create_engine(postgresql_url)
    try:
        assert_same_data(typed_rows(engine), small_reference)
        assert counts["customer_360"] == SMALL
        with engine.connect() as connection:
            types = dict(connection.execute(sa.text("""
                SELECT table_name || '.' || column_name, data_type || coalesce('(' || numeric_precision || ','
                       || numeric_scale || ')', '')
                FROM information_schema.columns WHERE table_schema = 'public'
                  AND table_name IN ('customer_360', 'unified_transactions')""")).all())
        assert types["customer_360.created_at"] == "timestamp without time zone"
        assert types["customer_360.birthdate"] == "date"
        assert types["customer_360.sms_opt_in"] == "boolean"
        assert types["customer_360.predicted_clv"] == "numeric(12,2)"
        assert types["customer_360.latitude"].startswith("double precision")
        assert types["unified_transactions.order_quantity"].startswith("integer")
        assert types["unified_transactions.order_id"] == "text"
    finally:
        engine.dispose()
    generate(sa.create_engine(postgresql_url), SMALL)  # an Engine works too, and replaces the tables


def test_duckdb_targets_by_url_and_engine(tmp_path, small_reference):
    path = tmp_path / "target" / "warehouse.duckdb"  # the folder is made as needed
    generate(f"duckdb:///{path}", SMALL)
    with duckdb.connect(str(path)) as con:
        assert {t: sorted_rows(table_rows(con, t)) for t in TABLES} == small_reference
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'other.duckdb'}")
    try:
        generate(engine, SMALL)
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM customer_360")).scalar() == SMALL
    finally:
        engine.dispose()


def test_parquet_files_hold_the_same_data(tmp_path, small_reference):
    paths = generate_parquet(tmp_path / "parquet", SMALL)
    assert set(paths) == set(TABLES)
    con = duckdb.connect()
    for table, path in paths.items():
        assert path.name == f"{table}.parquet"
        assert sorted_rows(con.execute(f"SELECT * FROM read_parquet('{path}')").fetchall()) == small_reference[table]
    kinds = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "
                             f"read_parquet('{paths['unified_transactions']}'))").fetchall())
    assert kinds["order_revenue"] == "DECIMAL(12,2)" and kinds["order_datetime"] == "TIMESTAMP"


def test_rejects_an_empty_warehouse_and_unknown_targets():
    with pytest.raises(ValueError):
        generate(duckdb.connect(), 0)
    with pytest.raises(TypeError):
        generate(42, 10)


#: The engine layer datagen may use (#16): what a URL names, and how whole tables get into each engine.
ENGINE_LAYER = ("audlang.backends", "audlang.warehouse.loading")


def test_datagen_imports_nothing_else_of_ours():
    """STYLE §1: datagen stands on SQLAlchemy, DuckDB and numpy, and on the engine layer for the loading."""
    import ast
    from pathlib import Path

    import audlang.datagen

    for path in Path(audlang.datagen.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            # Each imported module or name in full: ``from audlang import backends`` is ``audlang.backends``.
            names = ([f"{node.module or ''}.{a.name}" for a in node.names] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                assert not name.startswith("audlang") or any(
                    name == allowed or name.startswith(allowed + ".")
                    for allowed in ("audlang.datagen", *ENGINE_LAYER)), (path.name, name)


def test_weighted_choices_follow_their_weights():
    import numpy as np

    from audlang.datagen.randomness import Streams

    streams = Streams(42)
    picks = streams.choice("test", np.arange(200_000), [1, 0, 3])
    shares = np.bincount(picks, minlength=3) / len(picks)
    assert shares[1] == 0 and abs(shares[0] - 0.25) < 0.01 and abs(shares[2] - 0.75) < 0.01
    u = streams.uniform("test", np.arange(100_000))
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    assert (streams.uniform("test", np.arange(10)) == Streams(42).uniform("test", np.arange(10))).all()
    assert (streams.uniform("test", np.arange(10)) != Streams(43).uniform("test", np.arange(10))).all()
