"""Builds the synthetic warehouse inside a DuckDB connection.

The numbers are drawn in vectorised numpy from counter-based streams
(``randomness.Streams``), one array per column, never a Python loop over rows,
and put in the tables' final row order; DuckDB then turns the arrays into the
final tables with one set-based projection each (ids, strings looked up in
list literals of ``catalog``, DECIMAL and TIMESTAMP casts). Every sink (a
DuckDB file, SQLite, PostgreSQL, Parquet files) starts from the tables this
module builds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import duckdb
import numpy as np

from audlang.datagen import catalog
from audlang.datagen.randomness import Streams, lookup_table
from audlang.datagen.schema import DUCKDB_TYPES, TABLES

Progress = Callable[[str, float], None]

DEFAULT_AS_OF = dt.date(2024, 11, 30)
HISTORY_YEARS = 3
#: Orders and checkouts run on a little past the as-of date: the language must ignore them.
AFTER_DAYS = 14
_EPOCH = dt.date(1970, 1, 1)
_DAY = 86_400

TAGS = ("VIP", "Employee", "Friends & Family", "Influencer", "Marathon Club", "Pet Parent", "Wholesale")

# Shares and shapes, in one place so that the README and the tests can refer to them.
NEVER_BOUGHT = 0.12           # customers without a single order
CHURNED = 0.45                # buyers whose buying stopped somewhere in the history
ORDER_SCALE, ORDER_ALPHA, MAX_ORDERS = 7.6, 1.35, 1000   # Pareto order counts (heavy tail)
LINES = ((1, 50), (2, 25), (3, 12), (4, 7), (5, 4), (6, 2))
QUANTITIES = ((1, 80), (2, 13), (3, 5), (4, 1), (6, 1))
PROFILE_SHARE = 0.5           # lines drawn from the customer's shopping profile
AFTER_AS_OF = 0.002           # orders of still-active buyers dated after the as-of date


def _days(day: dt.date) -> int:
    return (day - _EPOCH).days


def _shift_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _black_friday(year: int) -> dt.date:
    november_first = dt.date(year, 11, 1)
    first_thursday = 1 + (3 - november_first.weekday()) % 7
    return dt.date(year, 11, first_thursday + 21 + 1)


class _Calendar:
    """The days orders can fall on, with seasonal weights, discounts and seasonal collections."""

    def __init__(self, as_of: dt.date) -> None:
        self.as_of = as_of
        self.start = _shift_years(as_of, -HISTORY_YEARS) + dt.timedelta(days=1)
        self.history = (as_of - self.start).days + 1  # day offsets 0 .. history-1 are <= as_of
        total = self.history + AFTER_DAYS
        dates = [self.start + dt.timedelta(days=k) for k in range(total)]
        self.epoch_day = _days(self.start)
        weight = np.ones(total)
        discount = np.zeros(total)
        self.season = np.full(total, -1, dtype=np.int64)
        special = {}
        for year in {d.year for d in dates}:
            bf = _black_friday(year)
            special[bf - dt.timedelta(days=1)] = (0.7, 0.0)   # Thanksgiving
            special[bf] = (7.0, 0.25)                         # Black Friday
            special[bf + dt.timedelta(days=1)] = (2.5, 0.20)
            special[bf + dt.timedelta(days=2)] = (2.0, 0.20)
            special[bf + dt.timedelta(days=3)] = (4.0, 0.20)  # Cyber Monday
        month_weight = {1: 0.75, 2: 0.9, 3: 1.0, 4: 1.0, 5: 1.05, 6: 1.0, 7: 0.95, 8: 1.0,
                        9: 0.95, 10: 1.0, 11: 1.35, 12: 1.0}
        weekday_weight = (0.92, 0.9, 0.92, 0.95, 1.05, 1.25, 1.15)
        for k, d in enumerate(dates):
            w = month_weight[d.month] * weekday_weight[d.weekday()]
            if d.month == 12:
                w *= 2.4 if d.day <= 23 else (1.2 if d.day == 24 else (0.3 if d.day == 25 else 1.4))
                if d.day <= 24:
                    discount[k] = 0.10
            if d.month == 2 and 7 <= d.day <= 14:
                w *= 2.0
            if d in special:
                factor, off = special[d]
                w *= factor
                discount[k] = max(discount[k], off)
            w *= 1.0 + 0.12 * k / 365.0  # the business grows
            weight[k] = w
            for s, (_, month, first, last, _) in enumerate(catalog.SEASONAL_COLLECTIONS):
                if d.month == month and first <= d.day <= last:
                    self.season[k] = s
        self.weight = weight
        self.discount = discount
        self.cdf = np.concatenate(([0.0], np.cumsum(weight)))

    def sample(self, first: np.ndarray, last: np.ndarray, u: np.ndarray) -> np.ndarray:
        """A day offset in [first, last] for each uniform ``u``, drawn with the seasonal weights."""
        low, high = self.cdf[first], self.cdf[last + 1]
        picked = np.searchsorted(self.cdf, low + u * (high - low), side="right") - 1
        return np.clip(picked, first, last)


class _Groups:
    """Weighted choice of a product within a group (a profile, a collection), vectorised.

    One row of slots per group, so that a pick is a gather rather than a search.
    """

    def __init__(self, groups: list[list[tuple[int, float]]]) -> None:
        self.table = np.stack([
            np.array([p for p, _ in items], dtype=np.int64)[lookup_table([w for _, w in items])]
            for items in groups
        ])

    def pick(self, group: np.ndarray | int, bits: np.ndarray) -> np.ndarray:
        return self.table[group, (bits >> np.uint64(48)).astype(np.int64)]


def _sql_list(values) -> str:
    """A DuckDB list literal of our own constants (index it with ``[i + 1]``)."""
    def literal(v) -> str:
        return "NULL" if v is None else "'" + str(v).replace("'", "''") + "'"
    return "[" + ", ".join(literal(v) for v in values) + "]"


def _pareto_counts(u: np.ndarray) -> np.ndarray:
    return np.minimum(np.floor(ORDER_SCALE * np.power(1.0 - u, -1.0 / ORDER_ALPHA) - ORDER_SCALE + 1.0),
                      MAX_ORDERS).astype(np.int64)


class _Builder:
    def __init__(self, con: duckdb.DuckDBPyConnection, customers: int, seed: int, as_of: dt.date,
                 progress: Progress | None, weight: float) -> None:
        self.con = con
        self.n = int(customers)
        self.rs = Streams(seed)
        self.as_of = as_of
        self.cal = _Calendar(as_of)
        self.progress = progress
        self.weight = weight  # the share of the whole job this build is (the rest is loading)
        self.span = (0.0, 1.0)  # the share of the build the current step is
        self.instant = (_days(as_of) + 1) * _DAY  # the as-of instant T, epoch seconds
        self.id_width = max(6, len(str(self.n)))
        self.counts: dict[str, int] = {}

    def report(self, stage: str, fraction: float) -> None:
        if self.progress is not None:
            low, high = self.span
            done = high if fraction >= 1.0 else low + (high - low) * fraction
            self.progress(stage, done * self.weight)

    def customer_id(self, column: str) -> str:
        """SQL for the customer id of a 0-based customer number: C000001, zero-padded so text order is numeric order."""
        return f"'C' || lpad(CAST({column} + 1 AS VARCHAR), {self.id_width}, '0')"

    def create(self, table: str, select: str, arrays: dict[str, np.ndarray]) -> None:
        """``CREATE OR REPLACE TABLE table AS select`` over the arrays, registered as ``a``.

        The arrays come in the table's final row order and the select only projects
        (no join, no sort), so DuckDB keeps that order and streams the rows through.
        """
        self.con.register("_dg_arrays", arrays)
        try:
            self.con.execute(f"CREATE OR REPLACE TABLE {table} AS {select} FROM _dg_arrays a")
        finally:
            self.con.unregister("_dg_arrays")

    def stores(self) -> None:
        self.con.execute(
            "CREATE OR REPLACE TABLE stores AS SELECT * FROM (VALUES "
            + ", ".join("(?, ?, ?, ?, ?, CAST(? AS DOUBLE), CAST(? AS DOUBLE))" for _ in catalog.STORES)
            + ") AS t(store_id, name, city, state, postal, latitude, longitude)",
            [v for store in catalog.STORES for v in store],
        )
        self.counts["stores"] = len(catalog.STORES)
        self.report("stores", 1.0)

    # -- customers ----------------------------------------------------------------------------

    def customers(self) -> None:
        rs, n = self.rs, self.n
        i = np.arange(n, dtype=np.int64)
        self.report("customers", 0.0)

        postal_weight, postal_city, postal_lat, postal_lon = [], [], [], []
        for c, (_, _, _, share, _, codes) in enumerate(catalog.CITIES):
            total = sum(w for *_, w in codes)
            for _, lat, lon, w in codes:
                postal_weight.append(share * w / total)
                postal_city.append(c)
                postal_lat.append(lat)
                postal_lon.append(lon)
        postal = rs.choice("postal", i, postal_weight)
        city = np.array(postal_city)[postal]
        # Geocoded addresses scatter a kilometre or two around the postal code's centre.
        lat = np.round(np.array(postal_lat)[postal] + (rs.uniform("lat", i) + rs.uniform("lat2", i) - 1.0) * 0.02, 6)
        lon = np.round(np.array(postal_lon)[postal] + (rs.uniform("lon", i) + rs.uniform("lon2", i) - 1.0) * 0.028, 6)

        n_female = len(catalog.GIVEN_NAMES_FEMALE)
        female = rs.uniform("female", i) < 0.52
        given = np.where(female, rs.below("given_f", i, n_female),
                         n_female + rs.below("given_m", i, len(catalog.GIVEN_NAMES_MALE)))
        u_gender = rs.uniform("gender_on_file", i)
        gender = np.where(u_gender < 0.08, 3, np.where(u_gender < 0.09, 2, np.where(female, 0, 1)))

        # Tenure: 5% joined in the last 90 days, the rest over six years.
        new = rs.uniform("new", i) < 0.05
        tenure = np.where(new, rs.uniform("tenure_new", i) * 90 * _DAY,
                          (90 + (6 * 365 - 90) * np.power(rs.uniform("tenure", i), 0.9)) * _DAY)
        created = self.instant - 1 - tenure.astype(np.int64)
        age = 18.01 + 62 * np.power(rs.uniform("age", i), 1.7)  # 18 to 80 years old
        birth = _days(self.as_of) - (age * 365.25).astype(np.int64)

        has_email = rs.uniform("has_email", i) >= 0.08
        has_phone = rs.uniform("has_phone", i) >= 0.15
        # Opt-ins need the channel on file; an unknown (NULL) opt-in is neither yes nor no.
        sms = np.where(rs.uniform("sms_unknown", i) < 0.02, 2,
                       (has_phone & (rs.uniform("sms_opt_in", i) < 0.48)).astype(np.int8))
        mail = np.where(rs.uniform("email_unknown", i) < 0.02, 2,
                        (has_email & (rs.uniform("email_opt_in", i) < 0.62)).astype(np.int8))

        profile = rs.choice("profile", i, [s for _, s in catalog.PROFILES])
        store_index = {s[0]: k for k, s in enumerate(catalog.STORES)}
        home = np.full(n, -1, dtype=np.int64)
        u_home = rs.uniform("home_store", i)
        for c, (*_, homes, _) in enumerate(catalog.CITIES):
            if not homes:
                continue
            cut = np.cumsum([w for _, w in homes])
            choice = np.minimum(np.searchsorted(cut / cut[-1], u_home, side="right"), len(homes) - 1)
            ids = np.array([store_index[s] for s, _ in homes])
            home = np.where(city == c, ids[choice], home)

        self.c = {
            "i": i, "postal": postal, "lat": lat, "lon": lon, "given": given, "gender": gender,
            "created": created, "birth": birth, "has_email": has_email, "has_phone": has_phone,
            "sms": sms, "mail": mail, "profile": profile, "home": home,
        }
        self.report("customers", 1.0)

    # -- orders and their items ---------------------------------------------------------------

    def orders(self) -> None:
        rs, n, cal, c = self.rs, self.n, self.cal, self.c
        i = c["i"]
        self.report("orders", 0.0)
        # Who buys, over which part of the history, how often (heavy-tailed).
        buyer = rs.uniform("buyer", i) >= NEVER_BOUGHT
        created_day = np.floor_divide(c["created"], _DAY) - cal.epoch_day
        first = np.clip(created_day, 0, cal.history - 1)
        churned = rs.uniform("churned", i) < CHURNED
        last = np.where(churned, first + (rs.uniform("churn_day", i) * (cal.history - first)).astype(np.int64),
                        cal.history - 1)
        last = np.minimum(last, cal.history - 1)
        raw = _pareto_counts(rs.uniform("order_count", i))
        span = (last - first + 1) / cal.history
        count = np.where(buyer, np.maximum(1, np.round(raw * span)).astype(np.int64), 0)

        total = int(count.sum())
        customer = np.repeat(i, count)
        offsets = np.cumsum(count) - count
        rank = np.arange(total, dtype=np.int64) - np.repeat(offsets, count)
        key = (customer << 10) | rank  # an order's stream key: customer and rank, size-independent
        del rank, offsets
        self.report("orders", 0.1)

        day = cal.sample(first[customer], last[customer], rs.uniform("order_day", key))
        late = (last[customer] == cal.history - 1) & (rs.uniform("after_as_of", key) < AFTER_AS_OF)
        day = np.where(late, cal.history + rs.below("late_day", key, AFTER_DAYS), day)
        del late

        home = c["home"][customer]
        u_channel = rs.uniform("channel", key)
        # 0 online, 1 store, 2 app: customers near a store shop there; the others mostly online.
        channel = np.where(home >= 0, np.where(u_channel < 0.42, 1, np.where(u_channel < 0.78, 0, 2)),
                           np.where(u_channel < 0.03, 1, np.where(u_channel < 0.65, 0, 2))).astype(np.int8)
        del u_channel
        away = rs.below("visited_store", key, len(catalog.STORES))
        at_home = (home >= 0) & (rs.uniform("home_visit", key) < 0.9)
        store = np.where(channel == 1, np.where(at_home, home, away), -1).astype(np.int8)
        del home, away, at_home
        hours_store = [0] * 9 + [3, 5, 7, 9, 9, 8, 8, 8, 9, 9, 7, 5] + [0] * 3
        hours_online = [2, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 7, 8, 7, 6, 6, 6, 7, 8, 9, 10, 9, 7, 4]
        hour = np.where(channel == 1, rs.choice("hour_store", key, hours_store), rs.choice("hour", key, hours_online))
        when = (cal.epoch_day + day) * _DAY + hour * 3600 + rs.below("second", key, 3600)
        del hour
        self.report("orders", 0.25)

        # Items: lines per order, a product for each line (profile, seasonal collection or popularity).
        lines = np.array([v for v, _ in LINES])[rs.choice("lines", key, [w for _, w in LINES])]
        n_items = int(lines.sum())
        item_offsets = np.cumsum(lines) - lines
        order_of_item = np.repeat(np.arange(total, dtype=np.int64), lines)
        item_key = (key[order_of_item] << 3) | (np.arange(n_items, dtype=np.int64) - item_offsets[order_of_item])

        products = catalog.PRODUCTS
        profile_names = [p for p, _ in catalog.PROFILES]
        by_profile = _Groups([[(k, p[5]) for k, p in enumerate(products) if p[6] == name] for name in profile_names])
        everything = _Groups([[(k, p[5]) for k, p in enumerate(products)]])
        seasons = catalog.SEASONAL_COLLECTIONS
        by_season = _Groups([[(k, p[5]) for k, p in enumerate(products) if p[2] == s[0]] for s in seasons])
        season_share = np.array([s[4] for s in seasons])

        bits = rs.bits("product", item_key)
        from_profile = rs.uniform("from_profile", item_key) < PROFILE_SHARE
        product = np.where(from_profile, by_profile.pick(c["profile"][customer[order_of_item]], bits),
                           everything.pick(0, bits))
        del from_profile
        season = cal.season[day[order_of_item]]
        seasonal = (season >= 0) & (rs.uniform("seasonal", item_key) < season_share[np.maximum(season, 0)])
        product = np.where(seasonal, by_season.pick(np.maximum(season, 0), bits), product).astype(np.int16)
        del season, seasonal, bits
        self.report("orders", 0.4)

        quantity = np.array([v for v, _ in QUANTITIES], dtype=np.int32)[
            rs.choice("quantity", item_key, [w for _, w in QUANTITIES])]
        del item_key
        promo = np.where(rs.uniform("promo", key) < 0.15, 0.15, 0.0)
        discount = np.maximum(cal.discount[day], promo)
        price = np.array([round(p[4] * 100) for p in products], dtype=np.int64)
        item_cents = np.round(price[product] * quantity * (1.0 - discount[order_of_item])).astype(np.int64)
        del promo, discount, order_of_item
        order_cents = np.add.reduceat(item_cents, item_offsets)
        order_quantity = np.add.reduceat(quantity, item_offsets)
        self.report("orders", 0.5)

        # What the customer table derives from the orders up to the as-of date.
        seen = day < cal.history
        revenue = np.bincount(customer, weights=np.where(seen, order_cents, 0), minlength=n)
        recent = seen & (day >= cal.history - 365)
        revenue_year = np.bincount(customer, weights=np.where(recent, order_cents, 0), minlength=n)
        last_day = np.full(n, -1, dtype=np.int64)
        np.maximum.at(last_day, customer[seen], day[seen])
        self.c.update(revenue=revenue, revenue_year=revenue_year, last_day=last_day)
        del seen, recent, day

        # Order numbers follow time, as a shop's do; both tables are written in that order.
        by_time = np.argsort(when, kind="stable")
        customer, when, channel, store = customer[by_time], when[by_time], channel[by_time], store[by_time]
        order_cents, order_quantity = order_cents[by_time], order_quantity[by_time]
        lines, item_offsets = lines[by_time], item_offsets[by_time]
        del by_time
        item_offsets_sorted = np.cumsum(lines) - lines
        order_of_item = np.repeat(np.arange(total, dtype=np.int64), lines)
        item_index = (item_offsets[order_of_item]
                      + (np.arange(n_items, dtype=np.int64) - item_offsets_sorted[order_of_item]))
        product, quantity, item_cents = product[item_index], quantity[item_index], item_cents[item_index]
        del item_index, item_offsets, item_offsets_sorted, lines
        self.report("orders", 0.6)

        ow = max(8, len(str(total)))
        order_id = f"'O' || lpad(CAST(a.number AS VARCHAR), {ow}, '0')"
        self.create("unified_transactions", f"""
            SELECT {order_id} AS order_id,
                   {self.customer_id("a.customer")} AS customer_id,
                   make_timestamp(a."when" * 1000000) AS order_datetime,
                   CAST(CAST(a.cents AS DECIMAL(18, 0)) * 0.01 AS DECIMAL(12, 2)) AS order_revenue,
                   CAST(a.quantity AS INTEGER) AS order_quantity,
                   {_sql_list(catalog.CHANNELS)}[a.channel + 1] AS channel,
                   {_sql_list(s[0] for s in catalog.STORES)}[a.store + 1] AS store_id
        """, {
            "number": np.arange(1, total + 1, dtype=np.int64), "customer": customer, "when": when,
            "cents": order_cents, "quantity": order_quantity, "channel": channel, "store": store,
        })
        del order_cents, order_quantity, channel, store
        self.report("orders", 0.7)
        self.create("unified_itemized_transactions", f"""
            SELECT {order_id} AS order_id,
                   {self.customer_id("a.customer")} AS customer_id,
                   make_timestamp(a."when" * 1000000) AS order_datetime,
                   {_sql_list(f"P{k + 1:04d}" for k in range(len(products)))}[a.product + 1] AS product_id,
                   {_sql_list(p[0] for p in products)}[a.product + 1] AS product_name,
                   {_sql_list(p[1] for p in products)}[a.product + 1] AS product_category,
                   {_sql_list(p[2] for p in products)}[a.product + 1] AS product_collection,
                   {_sql_list(p[3] for p in products)}[a.product + 1] AS product_brand,
                   CAST(a.quantity AS INTEGER) AS item_quantity,
                   CAST(CAST(a.cents AS DECIMAL(18, 0)) * 0.01 AS DECIMAL(12, 2)) AS item_revenue
        """, {
            "number": order_of_item + 1, "customer": customer[order_of_item], "when": when[order_of_item],
            "product": product, "quantity": quantity, "cents": item_cents,
        })
        self.counts["unified_transactions"] = total
        self.counts["unified_itemized_transactions"] = n_items
        self.report("orders", 1.0)

    # -- the customer table, now that orders say who is active ---------------------------------

    def customer_table(self) -> None:
        rs, n, c, cal = self.rs, self.n, self.c, self.cal
        i = c["i"]
        self.report("customer_360", 0.0)
        since = np.where(c["last_day"] >= 0, cal.history - 1 - c["last_day"], -1)
        created_days_ago = (self.instant - c["created"]) // _DAY
        # 0 Active, 1 Cooling down, 2 At risk, 3 Highly at risk, 4 Lost, 5 New
        status = np.select([since < 0, since <= 60, since <= 150, since <= 300, since <= 540], [4, 0, 1, 2, 3], 4)
        status = np.where((since < 0) & (created_days_ago <= 365), 3, status)
        # A model's prediction, not a rule: one customer in eight is a step off.
        u_noise = rs.uniform("status_noise", i)
        status = np.where(u_noise < 0.06, np.maximum(status - 1, 0),
                          np.where(u_noise < 0.12, np.minimum(status + 1, 4), status))
        status = np.where(created_days_ago <= 90, 5, status)
        factor = np.array([1.2, 0.9, 0.7, 0.5, 0.3, 1.5])[status]
        clv = np.round((c["revenue"] * factor + np.where(status == 5, 5000, 0)) * (0.6 + 0.8 * rs.uniform("clv", i)))
        # Loyalty tiers follow the last twelve months' spend; 42% never joined the programme.
        member = rs.uniform("loyalty_member", i) < 0.58
        year = c["revenue_year"]
        tier = np.where(~member, -1, np.select([year >= 150000, year >= 60000, year >= 20000], [3, 2, 1], 0))
        self.c["status"] = status

        postals = [(city, state, area, postal) for city, state, area, _, _, codes in catalog.CITIES
                   for postal, *_ in codes]
        given = catalog.GIVEN_NAMES_FEMALE + catalog.GIVEN_NAMES_MALE
        surnames = [s.lower().replace("'", "") for s in catalog.SURNAMES]
        self.create("customer_360", f"""
            SELECT {self.customer_id("a.i")} AS customer_id,
                   {_sql_list(given)}[a.given + 1] AS given_name,
                   {_sql_list(catalog.SURNAMES)}[a.surname + 1] AS surname,
                   CASE WHEN a.has_email THEN
                       CASE a.email_style
                           WHEN 0 THEN {_sql_list(g.lower() + "." for g in given)}[a.given + 1]
                           WHEN 1 THEN {_sql_list(g.lower() for g in given)}[a.given + 1]
                           WHEN 2 THEN {_sql_list(g[0].lower() for g in given)}[a.given + 1]
                           ELSE {_sql_list(g.lower() + "_" for g in given)}[a.given + 1] END
                       || {_sql_list(surnames)}[a.surname + 1]
                       || CASE WHEN a.email_num > 0 THEN CAST(a.email_num AS VARCHAR) ELSE '' END
                       || '@' || {_sql_list(d for d, _ in catalog.EMAIL_DOMAINS)}[a.domain + 1]
                   END AS email,
                   CASE WHEN a.has_phone THEN '+1' || {_sql_list(p[2] for p in postals)}[a.postal + 1]
                       || CAST(a.phone AS VARCHAR) END AS phone,
                   {_sql_list(p[0] for p in postals)}[a.postal + 1] AS city,
                   CASE WHEN NOT a.state_null THEN {_sql_list(p[1] for p in postals)}[a.postal + 1] END AS state,
                   CASE WHEN NOT a.postal_null THEN {_sql_list(p[3] for p in postals)}[a.postal + 1] END AS postal,
                   'US' AS country,
                   CASE WHEN NOT a.birth_null
                        THEN CAST(DATE '1970-01-01' + CAST(a.birth AS INTEGER) AS DATE) END AS birthdate,
                   ['F', 'M', 'X', NULL][a.gender + 1] AS gender,
                   {_sql_list(catalog.LOYALTY_TIERS)}[a.tier + 1] AS loyalty_tier,
                   make_timestamp(a.created * 1000000) AS created_at,
                   [FALSE, TRUE, NULL][a.sms + 1] AS sms_opt_in,
                   [FALSE, TRUE, NULL][a.mail + 1] AS email_opt_in,
                   a.cphone AS contactable_phone,
                   a.cemail AS contactable_email,
                   {_sql_list(catalog.LIFECYCLE_STATUSES)}[a.status + 1] AS predicted_lifecycle_status,
                   CAST(CAST(a.clv AS DECIMAL(18, 0)) * 0.01 AS DECIMAL(12, 2)) AS predicted_clv,
                   CASE WHEN NOT a.geo_null THEN a.lat END AS latitude,
                   CASE WHEN NOT a.geo_null THEN a.lon END AS longitude
        """, {
            "i": i, "given": c["given"], "surname": rs.below("surname", i, len(catalog.SURNAMES)),
            "gender": c["gender"].astype(np.int8),
            "email_style": rs.below("email_style", i, 4).astype(np.int8),
            "email_num": np.where(rs.uniform("email_has_num", i) < 0.5, 0, 1 + rs.below("email_num", i, 99)),
            "domain": rs.choice("domain", i, [w for _, w in catalog.EMAIL_DOMAINS]),
            "has_email": c["has_email"], "has_phone": c["has_phone"],
            "phone": 2_000_000 + rs.below("phone", i, 7_999_999),
            "postal": c["postal"],
            "state_null": rs.uniform("null_state", i) < 0.03,
            "postal_null": rs.uniform("null_postal", i) < 0.01,
            "geo_null": rs.uniform("null_geo", i) < 0.06, "lat": c["lat"], "lon": c["lon"],
            "birth": c["birth"], "birth_null": rs.uniform("null_birth", i) < 0.18,
            "created": c["created"], "sms": c["sms"].astype(np.int8), "mail": c["mail"].astype(np.int8),
            "cphone": c["has_phone"] & (rs.uniform("phone_invalid", i) >= 0.04),
            "cemail": c["has_email"] & (rs.uniform("email_bounced", i) >= 0.05),
            "status": status.astype(np.int8), "clv": clv.astype(np.int64), "tier": tier.astype(np.int8),
        })
        self.counts["customer_360"] = n
        self.report("customer_360", 1.0)

    # -- tags, checkouts, churn scores ----------------------------------------------------------

    def tags(self) -> None:
        rs, c = self.rs, self.c
        i = c["i"]
        profile_names = [p for p, _ in catalog.PROFILES]
        pets = np.isin(c["profile"], [profile_names.index("cat"), profile_names.index("dog")])
        runner = c["profile"] == profile_names.index("runner")
        chance = {
            "VIP": np.where(c["revenue"] >= 250_000, 0.5, 0.004),
            "Employee": 0.004,
            "Friends & Family": 0.008,
            "Influencer": 0.002,
            "Marathon Club": np.where(runner, 0.08, 0.005),
            "Pet Parent": np.where(pets, 0.35, 0.01),
            "Wholesale": 0.001,
        }
        customer, tag = [], []
        for k, name in enumerate(TAGS):
            who = i[rs.uniform(f"tag/{name}", i) < chance[name]]
            # Real tag tables hold the odd duplicate row (the same tag applied by two tools).
            twice = who[rs.uniform(f"tag_twice/{name}", who) < 0.03]
            both = np.concatenate((who, twice))
            customer.append(both)
            tag.append(np.full(len(both), k, dtype=np.int8))
        customer_all, tag_all = np.concatenate(customer), np.concatenate(tag)
        order = np.lexsort((tag_all, customer_all))
        self.create("customer_tags", f"""
            SELECT {self.customer_id("a.customer")} AS customer_id, {_sql_list(TAGS)}[a.tag + 1] AS tag
        """, {"customer": customer_all[order], "tag": tag_all[order]})
        self.counts["customer_tags"] = len(customer_all)
        self.report("customer_tags", 1.0)

    def checkouts(self) -> None:
        rs, c = self.rs, self.c
        i = c["i"]
        # A geometric number of checkouts per customer (mean about 0.8), most in the last 90
        # days and a cluster in the last two days, so that the 1-hour and 12-hour reminders
        # find people; 1% are dated after the as-of instant.
        count = np.minimum(np.floor(np.log1p(-rs.uniform("checkouts", i)) / np.log(0.45)), 60).astype(np.int64)
        total = int(count.sum())
        customer = np.repeat(i, count)
        offsets = np.cumsum(count) - count
        key = (customer << 6) | (np.arange(total, dtype=np.int64) - np.repeat(offsets, count))
        u_when = rs.uniform("checkout_when", key)
        recent = rs.uniform("checkout_recent", key) < 0.3
        ago = np.where(recent, np.minimum(-np.log1p(-u_when) * 12 * 3600, 72 * 3600), u_when * 90 * _DAY)
        after = rs.uniform("checkout_after", key) < 0.01
        started = np.where(after, self.instant + (u_when * 2 * _DAY).astype(np.int64),
                           self.instant - 1 - ago.astype(np.int64))
        started = np.maximum(started, c["created"][customer])  # not before the account exists
        completed = rs.uniform("checkout_completed", key) < 0.62
        by_time = np.lexsort((key, started))
        width = max(8, len(str(total)))
        self.create("checkouts", f"""
            SELECT 'K' || lpad(CAST(a.number AS VARCHAR), {width}, '0') AS checkout_id,
                   {self.customer_id("a.customer")} AS customer_id,
                   make_timestamp(a.started * 1000000) AS started_at,
                   a.completed AS completed
        """, {
            "number": np.arange(1, total + 1, dtype=np.int64), "customer": customer[by_time],
            "started": started[by_time], "completed": completed[by_time],
        })
        self.counts["checkouts"] = total
        self.report("checkouts", 1.0)

    def churn_scores(self) -> None:
        rs, c = self.rs, self.c
        i = c["i"]
        scored = i[rs.uniform("scored", i) < 0.96]
        base = np.array([0.12, 0.35, 0.55, 0.72, 0.85, 0.30])[c["status"][scored]]
        score = np.round(np.clip(base + (rs.uniform("score", scored) - 0.5) * 0.4, 0.0, 1.0), 4)
        model = (rs.uniform("model_version", scored) < 0.1).astype(np.int8)
        self.create("churn_scores", f"""
            SELECT {self.customer_id("a.customer")} AS customer_id, a.score AS score,
                   {_sql_list(catalog.CHURN_MODEL_VERSIONS)}[a.model + 1] AS model_version
        """, {"customer": scored, "score": score, "model": model})
        self.counts["churn_scores"] = len(scored)
        self.report("churn_scores", 1.0)

    def check_types(self) -> None:
        """Every table has exactly the declared columns and types (a guard against inference drift)."""
        for table, columns in TABLES.items():
            found = self.con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ? AND table_schema = current_schema() ORDER BY ordinal_position", [table]
            ).fetchall()
            wanted = [(col, DUCKDB_TYPES[kind]) for col, kind in columns]
            if found != wanted:
                raise AssertionError(f"datagen built {table} as {found}, not {wanted}")


def build(con: duckdb.DuckDBPyConnection, customers: int, seed: int = 42, as_of: dt.date = DEFAULT_AS_OF,
          progress: Progress | None = None, weight: float = 1.0) -> dict[str, int]:
    """Create the warehouse's tables in ``con`` (replacing any of the same names); return row counts.

    ``progress(stage, fraction)`` is called as the work goes on; fractions run from 0 to
    ``weight`` (the caller's share of the job given to building, the rest being its own loading).
    """
    if customers < 1:
        raise ValueError("customers must be at least 1")
    con.execute("SET enable_progress_bar = false")
    builder = _Builder(con, customers, seed, as_of, progress, weight)
    steps = (
        (builder.stores, 0.01), (builder.customers, 0.06), (builder.orders, 0.85),
        (builder.customer_table, 0.93), (builder.tags, 0.95), (builder.checkouts, 0.98),
        (builder.churn_scores, 0.995), (builder.check_types, 1.0),
    )
    low = 0.0
    for step, high in steps:
        builder.span = (low, high)
        step()
        low = high
    builder.report("done", 1.0)
    return {name: builder.counts[name] for name in TABLES}
