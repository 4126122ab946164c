"""The shared facts (``compile.facts``, ``warehouse.scratch``) under hostile names and values: a segment
name, tag or product that tries to break out of SQL reaches the facts only as bound values, and the
scratch tables refuse any name but their own."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from audlang.compile import AsOf, SegmentCompiler
from audlang.compile.facts import SharedFacts
from audlang.project import analyze, load_config
from audlang.warehouse.scratch import CreateScratch, shared_facts

EVIL = "x'); DROP TABLE unified_transactions; --"
SOURCE = f'''
segment "{EVIL.replace("'", "")}\\" <" < tagged "{EVIL}" >
segment "Evil product" < has_purchased product "{EVIL}" within last 30 days >
segment "Plain" < has_purchased within last 30 days and not tagged "{EVIL}" >
'''


def _model(tmp_path):
    (tmp_path / "audlang.toml").write_text('name = "t"\n')
    path = str(tmp_path / "s.aud")
    model, diagnostics = analyze({path: SOURCE}, load_config(tmp_path))
    assert not [d for d in diagnostics if d.is_error], diagnostics
    return model


def _warehouse() -> sa.Engine:
    engine = sa.create_engine("duckdb:///:memory:", poolclass=sa.pool.StaticPool)
    with engine.begin() as conn:
        for sql in (
            "CREATE TABLE customer_360 (customer_id VARCHAR, email VARCHAR)",
            "CREATE TABLE unified_transactions (order_id VARCHAR, customer_id VARCHAR, order_datetime TIMESTAMP, "
            "order_revenue DECIMAL(12,2), order_quantity INTEGER, channel VARCHAR, store_id VARCHAR)",
            "CREATE TABLE unified_itemized_transactions (order_id VARCHAR, customer_id VARCHAR, "
            "order_datetime TIMESTAMP, product_name VARCHAR, product_category VARCHAR, product_collection VARCHAR, "
            "product_brand VARCHAR, item_quantity INTEGER, item_revenue DECIMAL(12,2))",
            "CREATE TABLE customer_tags (customer_id VARCHAR, tag VARCHAR)",
            "INSERT INTO customer_360 VALUES ('a', NULL), ('b', NULL), ('c', NULL)",
            "INSERT INTO unified_transactions VALUES ('o1', 'a', '2024-11-20', 10, 1, 'online', NULL), "
            "('o2', 'b', '2024-11-21', 10, 1, 'online', NULL)",
            "INSERT INTO unified_itemized_transactions VALUES ('o1', 'a', '2024-11-20', ?, 'Socks', NULL, NULL, 1, 10)",
            "INSERT INTO customer_tags VALUES ('b', ?)",
        ):
            conn.exec_driver_sql(sql, (EVIL,) if "?" in sql else ())
    return engine


def test_hostile_names_and_values_are_only_bound_values(tmp_path):
    model = _model(tmp_path)
    as_of = AsOf.parse("2024-11-30")
    facts = SharedFacts.collect(model, as_of, model.segments)
    engine = _warehouse()
    with engine.connect() as conn:
        with shared_facts(conn, facts):
            shared = SegmentCompiler(model, as_of, facts=facts)
            got = {name: {r[0] for r in conn.execute(shared.segment(name))} for name in model.segments}
        # nothing was dropped but the scratch tables, gone after the block
        assert conn.exec_driver_sql("SELECT count(*) FROM unified_transactions").scalar() == 2
        assert not conn.exec_driver_sql(
            "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'audlang_facts%'").fetchall()
    assert got == {next(iter(model.segments)): {"b"}, "Evil product": {"a"}, "Plain": {"a"}}


@pytest.mark.parametrize("name", ["customer_360", "audlang_facts_x; DROP TABLE y", "audlang_facts_a b", ""])
def test_scratch_tables_refuse_any_other_name(name):
    with pytest.raises(ValueError, match="not a scratch table name"):
        CreateScratch(name, sa.select(sa.literal(1)))
