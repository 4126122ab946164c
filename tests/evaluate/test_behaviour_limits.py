"""The behaviour patterns of SPEC §3.1 at their limits, on every engine of the ``warehouse`` fixture and Spark:
the most periods ``in N of last M`` takes, a period boundary of 400 years, hostile filter values, an
empty warehouse; and through the CLI, refusals as diagnostics, never a traceback."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from audlang.check.limits import MAX_PERIODS
from audlang.cli import cli
from audlang.compile import AsOf, SegmentCompiler
from audlang.project import analyze
from evaluate.reference import Reference
from evaluate.test_oracle import TABLES, create_spark_tables, load
from helpers import WITH_SPARK

AS_OF = AsOf.parse("2024-03-31")
D = AS_OF.date
HOSTILE = ["O'Brien \"quoted\" \\ back", "Café ☕ ü", "", "%_"]


def _row(table: str, **values) -> dict:
    return {c: values.get(c) for c, _ in TABLES[table]}


def _customers(*ids: str) -> list[dict]:
    return [_row("customer_360", customer_id=c) for c in ids]


def _orders(customer: str, days: list[dt.date], prefix: str) -> list[dict]:
    return [_row("unified_transactions", order_id=f"{prefix}{i}", customer_id=customer,
                 order_datetime=dt.datetime.combine(day, dt.time(12)), channel=HOSTILE[i % len(HOSTILE)])
            for i, day in enumerate(days)]


def _data() -> dict:
    every_day = [D - dt.timedelta(days=k) for k in range(MAX_PERIODS)]
    orders = (_orders("C1", every_day, "A")  # an order on each of the last 400 days
              + _orders("C2", every_day[:-1], "B")  # all but the 400th day back
              + _orders("C3", [dt.date(1624, 4, 1), dt.date(1624, 3, 31)], "C"))  # 400 years back, and one day before
    items = [_row("unified_itemized_transactions", order_id=o["order_id"], customer_id=o["customer_id"],
                  order_datetime=o["order_datetime"], product_category=o["channel"]) for o in orders]
    empty = {t: [] for t in TABLES}
    return {**empty, "customer_360": _customers("C1", "C2", "C3", "C4"), "unified_transactions": orders,
            "unified_itemized_transactions": items}


SOURCE = '''
segment "Every day" < has_purchased in 400 of last 400 days >
segment "Four hundred years" < has_purchased in 1 of last 400 years >
segment "First hostile" < first_purchased channel "O'Brien \\"quoted\\" \\\\ back" within last 400 days >
segment "Favourite hostile" < most_purchased category in ("Café ☕ ü", "") >
segment "Favourite percent" < most_purchased channel "%_" within last 400 days >
'''


@pytest.fixture(scope="module")
def model():
    model, diagnostics = analyze({"limits.aud": SOURCE})
    assert not [d for d in diagnostics if d.is_error], diagnostics
    return model


@pytest.fixture(scope="module")
def engine(warehouse):
    if warehouse.name == "spark":
        from audlang.warehouse import connect

        engine = connect(warehouse.url)
        create_spark_tables(engine)
    else:
        engine = sa.create_engine(warehouse.url)
    yield engine
    engine.dispose()


def members(engine, model, name: str) -> set[str]:
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(SegmentCompiler(model, AS_OF).segment(name))}


@pytest.mark.parametrize("warehouse", WITH_SPARK, indirect=True)
def test_the_limits_answer_as_the_reference(engine, model):
    data = _data()
    load(engine, data)
    reference = Reference(data, model, AS_OF.date, AS_OF.instant)
    expected = {
        "Every day": {"C1"},  # C2 misses period 400 (day 399 back)
        "Four hundred years": {"C1", "C2", "C3"},  # 1624-04-01 is in period 400; 1624-03-31 is not
        "First hostile": {"C1", "C2"},
        # each of C1/C2/C3 has as many orders per value (a tie) or "" and the accented value lead
        "Favourite hostile": reference.members("Favourite hostile"),
        "Favourite percent": reference.members("Favourite percent"),
    }
    for name, want in expected.items():
        assert reference.members(name) == want, name
        assert members(engine, model, name) == want, name
    assert expected["Favourite hostile"] and expected["Favourite percent"]


@pytest.mark.parametrize("warehouse", WITH_SPARK, indirect=True)
def test_an_empty_warehouse_has_no_members(engine, model):
    load(engine, {**{t: [] for t in TABLES}, "customer_360": _customers("C1")})
    for name in model.segments:
        assert members(engine, model, name) == set(), name


@pytest.mark.parametrize("source, code", [
    ('segment "A" < has_purchased in 2 of last 401 days >', "E133"),
    ('segment "A" < has_purchased in 401 of last 400 days >', "E133"),
    ('segment "A" < has_purchased in 1.5 of last 4 weeks >', "E002"),
    ('segment "A" < most_purchased category "a" brand "b" >', "E134"),
    ('segment "A" < first_purchased category "☕" >', "E135"),
])
def test_refusals_are_diagnostics_through_the_cli(tmp_path, source, code):
    (tmp_path / "audlang.toml").write_text("")
    (tmp_path / "a.aud").write_text(source + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["--project", str(tmp_path), "validate"], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert f"[{code}]" in result.output and "Traceback" not in result.output


def test_sql_prints_every_form(tmp_path):
    (tmp_path / "audlang.toml").write_text("")
    (tmp_path / "a.aud").write_text(SOURCE, encoding="utf-8")
    for name in ("Every day", "First hostile", "Favourite hostile"):
        result = CliRunner().invoke(cli, ["--project", str(tmp_path), "sql", name, "--as-of", "2024-03-31"],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "SELECT" in result.output
