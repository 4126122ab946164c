"""A plain-Python reference evaluator, written from SPEC §3–§4 alone.

It shares no code with ``audlang.compile``: its own calendar arithmetic, its
own window table, its own two-valued logic. The oracle tests compare the SQL
compiler's answers with it on every engine.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import math
from decimal import Decimal
from fractions import Fraction

from dateutil.easter import EASTER_WESTERN, easter
from dateutil.relativedelta import MO, SU, TH, relativedelta

from audlang import ast


def months_back(day: dt.date, months: int) -> dt.date:
    """``months`` calendar months back (forward when negative), the day clamped to the month's end."""
    y, m = day.year, day.month - months
    while m < 1:
        m += 12
        y -= 1
    while m > 12:
        m -= 12
        y += 1
    return dt.date(y, m, min(day.day, calendar.monthrange(y, m)[1]))


def date_of(value, D: dt.date) -> dt.date:
    if isinstance(value, ast.DateLiteral):
        return dt.date.fromisoformat(value.text)
    if isinstance(value, ast.Today):
        n, unit = value.minus, value.unit
        if unit == "days":
            return D - dt.timedelta(days=n)
        if unit == "weeks":
            return D - dt.timedelta(days=7 * n)
        return months_back(D, n * (12 if unit == "years" else 1))
    if isinstance(value, ast.SeasonalDate):
        y = D.year - value.years_ago
        return dt.date(y, value.month, min(value.day, calendar.monthrange(y, value.month)[1]))
    if isinstance(value, ast.HolidayDate):
        return holiday_date(value.name, D.year - value.years_ago)
    if isinstance(value, ast.DateOffset):
        base, n, unit = date_of(value.date, D), value.count, value.unit
        if unit in ("days", "weeks"):
            return base + dt.timedelta(days=n * (7 if unit == "weeks" else 1))
        return months_back(base, -n * (12 if unit == "years" else 1))
    raise TypeError(value)


def holiday_date(name: str, year: int) -> dt.date:
    """The holidays of SPEC §3.1 by dateutil's own rules (an independent computus and weekday arithmetic)."""
    thanksgiving = dt.date(year, 11, 1) + relativedelta(weekday=TH(4))
    return {
        "easter": easter(year, EASTER_WESTERN),
        "thanksgiving": thanksgiving,
        "black_friday": thanksgiving + dt.timedelta(days=1),
        "cyber_monday": thanksgiving + relativedelta(weekday=MO(1)),
        "mothers_day": dt.date(year, 5, 1) + relativedelta(weekday=SU(2)),
        "fathers_day": dt.date(year, 6, 1) + relativedelta(weekday=SU(3)),
        "memorial_day": dt.date(year, 5, 31) + relativedelta(weekday=MO(-1)),
        "labor_day": dt.date(year, 9, 1) + relativedelta(weekday=MO(1)),
    }[name]


def in_window(t: dt.datetime | None, window, D: dt.date, T: dt.datetime) -> bool:
    """SPEC §3's window table, literally: on the date part d, and never an event at or after T."""
    if t is None or not t < T:
        return False
    d = t.date()
    if window is None:
        return d <= D
    if isinstance(window, ast.Between):
        return date_of(window.low, D) <= d <= date_of(window.high, D)
    if isinstance(window, ast.WithinLast):
        if window.unit == "hours":
            return T - dt.timedelta(hours=window.count) <= t
        n = window.count
        start = {"days": lambda: D - dt.timedelta(days=n), "weeks": lambda: D - dt.timedelta(days=7 * n),
                 "months": lambda: months_back(D, n), "years": lambda: months_back(D, 12 * n)}[window.unit]()
        return start < d <= D
    if isinstance(window, ast.Since):
        return date_of(window.date, D) <= d <= D
    if isinstance(window, ast.Before):
        return d < date_of(window.date, D)
    if isinstance(window, ast.After):
        return date_of(window.date, D) < d <= D
    if isinstance(window, ast.On):
        return d == date_of(window.date, D)
    raise TypeError(window)


OPS = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
}


ITEM_FIELDS = {"product": "product_name", "category": "product_category", "collection": "product_collection",
               "brand": "product_brand"}
ORDER_FIELDS = {"channel": "channel", "store": "store_id"}


class Reference:
    def __init__(self, data: dict[str, list[dict]], model, D: dt.date, T: dt.datetime, lists: dict[str, set] = None):
        self.data = data
        self.model = model
        self.D, self.T = D, T
        self.lists = lists or {}
        self.customers = {r["customer_id"]: r for r in data["customer_360"] if r["customer_id"] is not None}
        self.orders_by_id = {o["order_id"]: o for o in data["unified_transactions"]}

    def members(self, name: str) -> set[str]:
        return {c for c in self.customers if self.holds(self.model.segments[name].condition, c)}

    # ------------------------------------------------------------------ logic
    def holds(self, node, c: str) -> bool:
        if isinstance(node, ast.And):
            return all(self.holds(o, c) for o in node.operands)
        if isinstance(node, ast.Or):
            return any(self.holds(o, c) for o in node.operands)
        if isinstance(node, ast.Not):
            return not self.holds(node.operand, c)
        if isinstance(node, ast.HasPurchased):
            return self.has_purchased(node, c)
        if isinstance(node, ast.Tagged):
            tags = {t.value for t in node.tags}
            return any(r["customer_id"] == c and r["tag"] in tags for r in self.data["customer_tags"])
        if isinstance(node, ast.AbandonedCheckout):
            return any(r["customer_id"] == c and r["completed"] is not True
                       and in_window(r["started_at"], node.window, self.D, self.T)
                       for r in self.data["checkouts"])
        if isinstance(node, ast.InSegment):
            return self.holds(self.model.segments[node.name].condition, c)
        if isinstance(node, ast.InFile):
            return c in self.lists[node.path]
        if isinstance(node, ast.NearStore):
            return self.near(node, c)
        if type(node) in PATTERNS:
            return getattr(self, PATTERNS[type(node)])(node, c)
        return self.attribute_test(node, c)

    # ------------------------------------------------------------------ SPEC §3.1 (calendar and behaviour)
    def anniversary(self, node: ast.Anniversary, c: str) -> bool:
        """SPEC §3.1, literally: some year's anniversary of the date falls in the window."""
        info = self.model.data_model.attributes[node.attribute.name]
        if not info.derived and info.table != "customer_360":  # a custom table: any of the customer's rows
            column = self.model.data_model.tables[info.table].column(info.column)
            values = [self.plain(r[column]) for r in self.data[info.table] if r["customer_id"] == c]
        else:
            values = [self.value(node.attribute.name, c)]
        return any(self.anniversary_holds(node, v) for v in values if v is not None)

    def anniversary_holds(self, node: ast.Anniversary, born: dt.date) -> bool:
        D = self.D
        if node.side == "month":
            return born.month == D.month

        def in_year(y: int) -> dt.date:
            leap_day = (born.month, born.day) == (2, 29) and not calendar.isleap(y)
            return dt.date(y, born.month, 28 if leap_day else born.day)

        n = node.count
        if node.side == "next":
            low, high = D, (D + dt.timedelta(days=n)) if D.toordinal() + n <= dt.date.max.toordinal() else None
            years = range(D.year, (high or dt.date.max).year + 1)
            return any(low <= a and (high is None or a < high) for a in map(in_year, years))
        low = (D - dt.timedelta(days=n)) if D.toordinal() - n >= 1 else None
        years = range((low or dt.date.min).year, D.year + 1)
        return any((low is None or low < a) and a <= D for a in map(in_year, years))

    def most_purchased(self, node: ast.MostPurchased, c: str) -> bool:
        """SPEC §3.1: distinct orders in the window per value of FIELD; V among the most ordered."""
        (f,) = node.filters
        column = {**ITEM_FIELDS, **ORDER_FIELDS}[f.field]
        table = "unified_itemized_transactions" if f.field in ITEM_FIELDS else "unified_transactions"
        orders: dict[str, set] = {}
        for r in self.data[table]:
            if r["customer_id"] == c and r[column] is not None and r["order_id"] is not None \
                    and in_window(r["order_datetime"], node.window, self.D, self.T):
                orders.setdefault(r[column], set()).add(r["order_id"])
        if not orders:
            return False
        most = max(len(ids) for ids in orders.values())
        return any(len(orders.get(v.value, ())) == most for v in f.values)

    def first_purchased(self, node: ast.FirstPurchased, c: str) -> bool:
        """SPEC §3.1: the earliest matching order dated ≤ D (seen before T) has its date in the window."""
        dates = [r["order_datetime"] for r in self.matching(node.filters, c) if r["order_datetime"] is not None
                 and r["order_datetime"] < self.T]
        return bool(dates) and in_window(min(dates), node.window, self.D, self.T)

    def periods_held(self, node: ast.HasPurchased, c: str) -> int:
        """``in N of last M units``: how many of the periods k = 1…M (D − k units < d ≤ D − (k − 1) units,
        each from D) hold a matching order seen before T."""
        w = node.window
        back = {"days": lambda k: self.D - dt.timedelta(days=k), "weeks": lambda k: self.D - dt.timedelta(days=7 * k),
                "months": lambda k: months_back(self.D, k), "years": lambda k: months_back(self.D, 12 * k)}[w.unit]
        held = set()
        for r in self.matching(node.filters, c):
            t = r["order_datetime"]
            if t is None or not t < self.T:
                continue
            for k in range(1, w.periods + 1):
                if back(k) < t.date() <= back(k - 1):
                    held.add(k)
        return len(held)

    def score(self, name: str, c: str) -> Decimal:
        """SPEC §3.1: the sum of the points of the items whose condition holds, 0 when none does."""
        return sum((item.points for item in self.model.scores[name].items if self.holds(item.condition, c)),
                   Decimal(0))

    def score_compare(self, node: ast.ScoreCompare, c: str) -> bool:
        value = self.score(node.score, c)
        if node.op == "between":
            return node.value.value <= value <= node.high.value
        return OPS[node.op](value, node.value.value)

    def ranked(self, node: ast.Percentile, c: str):
        if node.score is not None:
            return self.score(node.score, c)
        value = self.value(node.attribute.name, c)
        if node.attribute.name == "average_order_value" and value is not None:
            return self.exact_average(c)  # ranked exactly: a Fraction, not a rounded Decimal quotient
        return value

    def exact_average(self, c: str) -> Fraction:
        orders = [o for o in self.data["unified_transactions"] if o["customer_id"] == c
                  and o["order_datetime"] is not None and o["order_datetime"] < self.T]
        revenue = sum((Fraction(o["order_revenue"]) for o in orders if o["order_revenue"] is not None), Fraction(0))
        return revenue / len(orders)

    def percentile(self, node: ast.Percentile, c: str) -> bool:
        """SPEC §3.1: among the customers whose value is present, fewer than P% have a strictly better one."""
        mine = self.ranked(node, c)
        if mine is None:
            return False
        values = [v for v in (self.ranked(node, other) for other in self.customers) if v is not None]
        better = sum(1 for v in values if (v > mine if node.side == "top" else v < mine))
        return Fraction(better) * 100 < Fraction(node.percent) * len(values)

    # ------------------------------------------------------------------ attributes
    def value(self, name: str, c: str):
        info = self.model.data_model.attributes[name]
        if info.derived:
            orders = [o for o in self.data["unified_transactions"] if o["customer_id"] == c
                      and o["order_datetime"] is not None and o["order_datetime"] < self.T]
            revenues = [o["order_revenue"] for o in orders if o["order_revenue"] is not None]
            if name == "lifetime_revenue":
                return sum(revenues, Decimal(0))
            if name == "lifetime_orders":
                return Decimal(len(orders))
            if not orders:
                return None
            last = max(o["order_datetime"] for o in orders).date()
            if name == "first_order_date":
                return min(o["order_datetime"] for o in orders).date()
            if name == "last_order_date":
                return last
            if name == "days_since_last_order":
                return Decimal((self.D - last).days)
            if name == "average_order_value":
                return (sum(revenues, Decimal(0)) / len(orders)) if revenues else None
        if info.table == "customer_360":
            return self.plain(self.customers[c][info.column])
        raise NotImplementedError(name)

    def literal(self, value):
        if isinstance(value, (ast.StringValue, ast.BooleanValue)):
            return value.value
        if isinstance(value, ast.NumberValue):
            return value.value
        return date_of(value, self.D)

    def attribute_test(self, node, c: str) -> bool:
        info = self.model.data_model.attributes[node.attribute.name]
        if not info.derived and info.table != "customer_360":  # a custom table keyed by customer_id
            column = self.model.data_model.tables[info.table].column(info.column)
            rows = [r for r in self.data[info.table] if r["customer_id"] == c]
            if isinstance(node, ast.IsSet):
                present = any(r[column] is not None for r in rows)
                return not present if node.negated else present
            return any(self.test_value(node, self.plain(r[column])) for r in rows)
        return self.test_value(node, self.value(node.attribute.name, c))

    @staticmethod
    def plain(v):
        if isinstance(v, dt.datetime):
            return v.date()
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return Decimal(str(v))
        return v

    def test_value(self, node, v) -> bool:
        if isinstance(node, ast.IsSet):
            return (v is None) if node.negated else (v is not None)
        if v is None:
            return False
        if isinstance(node, ast.BooleanAttribute):
            return v is True
        if isinstance(node, ast.StringMatch):
            s = node.value.value
            return {"starts with": v.startswith, "ends with": v.endswith, "contains": v.__contains__}[node.op](s)
        if isinstance(node, ast.Compare):
            return OPS[node.op](v, self.literal(node.value))
        if isinstance(node, ast.InValues):
            found = v in [self.literal(x) for x in node.values]
            return not found if node.negated else found
        if isinstance(node, ast.BetweenValues):
            return self.literal(node.low) <= v <= self.literal(node.high)
        raise TypeError(node)

    # ------------------------------------------------------------------ behaviour
    def matching(self, filters, c: str) -> list[dict]:
        """The customer's rows (itemized with an item filter, else orders) that pass every filter, any date."""
        item_fields, order_fields = ITEM_FIELDS, ORDER_FIELDS
        items = [f for f in filters if f.field in item_fields]
        orders = [f for f in filters if f.field in order_fields]
        table = "unified_itemized_transactions" if items else "unified_transactions"
        rows = []
        for r in self.data[table]:
            if r["customer_id"] != c:
                continue
            if any(r[item_fields[f.field]] not in {v.value for v in f.values} for f in items):
                continue
            if orders:
                order = r if not items else self.orders_by_id.get(r["order_id"])
                if order is None or any(order[order_fields[f.field]] not in {v.value for v in f.values}
                                        for f in orders):
                    continue
            rows.append(r)
        return rows

    def has_purchased(self, node: ast.HasPurchased, c: str) -> bool:
        if isinstance(node.window, ast.InPeriods):
            return self.periods_held(node, c) >= node.window.count
        items = [f for f in node.filters if f.field in ITEM_FIELDS]
        rows = [r for r in self.matching(node.filters, c)
                if in_window(r["order_datetime"], node.window, self.D, self.T)]
        if not rows:
            return False
        m = node.measure
        if m is None:
            return True
        if m.kind == "orders":
            value = Decimal(len({r["order_id"] for r in rows if r["order_id"] is not None}))
        else:
            key = ("item_quantity" if items else "order_quantity") if m.kind == "quantity" else \
                ("item_revenue" if items else "order_revenue")
            present = [Decimal(str(r[key])) for r in rows if r[key] is not None]
            if not present:
                return False
            value = sum(present, Decimal(0))
        if m.op == "between":
            return m.value.value <= value <= m.high.value
        return OPS[m.op](value, m.value.value)

    def near(self, node: ast.NearStore, c: str) -> bool:
        cust = self.customers[c]
        if cust["latitude"] is None or cust["longitude"] is None:
            return False
        km = float(node.distance.value) * (1.609344 if node.unit == "miles" else 1.0)
        for s in self.data["stores"]:
            if s["store_id"] != node.store or s["latitude"] is None or s["longitude"] is None:
                continue
            p1, p2 = math.radians(cust["latitude"]), math.radians(s["latitude"])
            dp, dl = p2 - p1, math.radians(s["longitude"] - cust["longitude"])
            a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
            if 2 * 6371.0088 * math.asin(math.sqrt(min(1.0, a))) <= km:
                return True
        return False


#: The reference's method for each form of SPEC §3.1.
PATTERNS = {ast.Anniversary: "anniversary", ast.MostPurchased: "most_purchased", ast.FirstPurchased: "first_purchased",
            ast.ScoreCompare: "score_compare", ast.Percentile: "percentile"}


def read_list(path: str) -> set[str]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return {(r.get("customer_id") or "").strip() for r in csv.DictReader(handle)} - {""}
