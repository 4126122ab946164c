"""Campaigns on a real Spark SQL server (marker ``spark``): the same groups as DuckDB, paused campaigns
keep their rows, and plan → apply → plan with csv destinations through the CLI.

On Spark ``audlang_campaign_members`` is a view over a generation table written in one
CREATE TABLE … AS SELECT per apply (``campaigns.assign._materialize_spark``). Spark queries take
0.5–2 s each: the warehouses are built once per module and the tests run in file order (the paused
test reads what the first materialization wrote; the CLI test uses a database of its own).
"""

from __future__ import annotations

import csv

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from audlang import campaigns, warehouse
from audlang.cli import cli
from audlang.compile import AsOf, dialects
from audlang.datagen import generate
from audlang.project import analyze

pytestmark = pytest.mark.spark

AS_OF = "2024-11-30"
CUSTOMERS = 300
SEED = 13

SOURCE = '''
segment "Everyone" < customer_id is set >

campaign "Split" <
  audience segment "Everyone"
  salt "s-1"
  holdout 10%
  treatment "A" 45%
  treatment "B" 45%
>

campaign "Cities" <
  audience < customer_id is set >
  subaudience "Oregon" < state = "OR" >
  subaudience "Recent Buyers" < has_purchased within last 90 days and not state = "WA" >
  subaudience "Rest" otherwise
>
'''

ROWS = "SELECT campaign, group_name, customer_id FROM audlang_campaign_members"


def model_of(text: str):
    model, diagnostics = analyze({"c.aud": text})
    assert not [d for d in diagnostics if d.is_error], diagnostics
    return model


def rows(engine: sa.Engine) -> set[tuple[str, str, str]]:
    with engine.connect() as conn:
        return {tuple(r) for r in conn.exec_driver_sql(ROWS)}


def counts_of(found: set[tuple[str, str, str]], model) -> dict[str, dict[str, int]]:
    out = {name: {g.name: 0 for g in campaigns.groups(c)} for name, c in model.campaigns.items() if not c.paused}
    for campaign, group, _ in found:
        if campaign in out:
            out[campaign][group] += 1
    return out


@pytest.fixture(scope="module")
def engines(spark_database, tmp_path_factory):
    folder = tmp_path_factory.mktemp("spark-campaigns")
    spark_url = spark_database("campaigns")
    generate(spark_url, customers=CUSTOMERS, seed=SEED, parquet_folder=folder / "parquet")
    duck_url = f"duckdb:///{folder / 'w.duckdb'}"
    generate(duck_url, customers=CUSTOMERS, seed=SEED)
    spark, duck = warehouse.connect(spark_url), warehouse.connect(duck_url)
    yield {"spark": spark, "duckdb": duck}
    spark.dispose()
    duck.dispose()


@pytest.fixture(scope="module")
def first(engines):
    """The whole model materialized on both engines: (rows on Spark, counts on Spark, rows on DuckDB)."""
    model = model_of(SOURCE)
    # What the delete + insert of earlier versions left on Spark before failing: a table under the
    # view's name. The first swap replaces it with the view.
    with engines["spark"].connect() as conn:
        warehouse.create_table(conn, campaigns.campaign_members_table)
    spark_counts = campaigns.materialize_campaigns(engines["spark"], model, AsOf.parse(AS_OF))
    duck_counts = campaigns.materialize_campaigns(engines["duckdb"], model, AsOf.parse(AS_OF))
    assert spark_counts == duck_counts
    return rows(engines["spark"]), spark_counts, rows(engines["duckdb"])


def test_spark_assigns_exactly_the_groups_duckdb_does(engines, first):
    spark_rows, spark_counts, duck_rows = first
    assert spark_rows == duck_rows
    model = model_of(SOURCE)
    assert spark_counts == counts_of(spark_rows, model)
    split = {cid: group for campaign, group, cid in spark_rows if campaign == "Split"}
    assert len(split) == CUSTOMERS and set(split.values()) == {"holdout", "A", "B"}
    for cid, group in split.items():
        b = dialects.bucket_of("s-1:" + cid)
        assert group == ("holdout" if b < 1000 else "A" if b < 5500 else "B")
    cities = [group for campaign, group, _ in spark_rows if campaign == "Cities"]
    assert len(cities) == CUSTOMERS and {"Oregon", "Recent Buyers", "Rest"} <= set(cities)

    # The bucket itself, on texts the generated ids do not have (one query for all of them).
    texts = ["é-ünïcode", "", "O'Brien \\ x", "x" * 200, "s-1:C000001"]
    query = sa.select(*(dialects.bucket(sa.literal("salt:", sa.String) + sa.literal(t, sa.String)) for t in texts))
    with engines["spark"].connect() as conn:
        got = conn.execute(query).one()
    assert [int(b) for b in got] == [dialects.bucket_of("salt:" + t) for t in texts]


def test_a_paused_campaign_keeps_its_rows(engines, first):
    spark_rows, _, _ = first
    # Split's salt changes (its groups reshuffle); Cities is paused and keeps what it had.
    changed = model_of(SOURCE.replace('salt "s-1"', 'salt "s-2"').replace('campaign "Cities"',
                                                                          'paused campaign "Cities"'))
    counts = campaigns.materialize_campaigns(engines["spark"], changed, AsOf.parse(AS_OF))
    assert set(counts) == {"Split"}
    after = rows(engines["spark"])
    assert {r for r in after if r[0] == "Cities"} == {r for r in spark_rows if r[0] == "Cities"}
    new_split = {r for r in after if r[0] == "Split"}
    assert new_split != {r for r in spark_rows if r[0] == "Split"}
    assert counts == counts_of(new_split, changed)
    campaigns.materialize_campaigns(engines["duckdb"], changed, AsOf.parse(AS_OF))
    assert new_split == {r for r in rows(engines["duckdb"]) if r[0] == "Split"}
    # One generation for readers still scanning the previous one; older ones are dropped.
    with engines["spark"].connect() as conn:
        tables = sorted(r[1] for r in conn.exec_driver_sql("SHOW TABLES LIKE 'audlang_gen_audlang_campaign_members_*'"))
    assert tables == ["audlang_gen_audlang_campaign_members_1", "audlang_gen_audlang_campaign_members_2"]


# The list sits in a segment: the plan's sync preview runs the campaigns' assignment before anything
# loads a list that only a campaign reads (on every engine), while segments' lists load at plan time.
CLI_PROJECT = '''
segment "Reachable" < phone is set or email is set >

segment "Picked" < in list "lists/picked.csv" >

destination "File" csv <
  path = "exports/{{ campaign }}-{{ group }}.csv"
  identifiers = (customer_id, email)
>

campaign "Holiday" <
  audience segment "Reachable"
  holdout 10%
  treatment "A" 45% to "File"
  treatment "B" 45%
>

campaign "Stores" <
  audience segment "Reachable"
  subaudience "Listed" < in segment "Picked" > to "File"
  subaudience "Oregon" < state = "OR" >
  subaudience "Elsewhere" otherwise to "File"
>
'''


def run(project, *args, expect=0):
    result = CliRunner().invoke(cli, ["--project", str(project), *args], catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result


def test_plan_apply_plan_with_campaigns_synced_to_csv(spark_database, engines, tmp_path):
    url = spark_database("campaigns_cli")
    generate(url, customers=CUSTOMERS, seed=SEED, parquet_folder=tmp_path / "parquet")
    project = tmp_path / "p"
    (project / "lists").mkdir(parents=True)
    with engines["duckdb"].connect() as conn:
        picked = [r[0] for r in conn.exec_driver_sql("SELECT customer_id FROM customer_360 WHERE phone IS NOT NULL "
                                                     "ORDER BY customer_id LIMIT 7")]
    (project / "lists" / "picked.csv").write_text("customer_id\n" + "\n".join(picked) + "\n")
    (project / "audlang.toml").write_text(f'name = "spark-campaigns"\nwarehouse = "{url}"\n'
                                          f'state = "sqlite:///{tmp_path / "state.db"}"\n')
    (project / "project.aud").write_text(CLI_PROJECT)

    first = run(project, "plan", "--as-of", AS_OF, "--detailed-exitcode", "--out", str(tmp_path / "plan.json"),
                expect=2)
    assert '"Holiday" / "A" → "File" (csv)' in first.output, first.output
    applied = run(project, "apply", str(tmp_path / "plan.json"))
    assert 'synced "Stores" / "Listed" → "File": ok' in applied.output, applied.output
    again = run(project, "plan", "--as-of", AS_OF, "--detailed-exitcode")
    assert "No changes." in again.output, again.output

    engine = warehouse.connect(url)
    try:
        members = rows(engine)
    finally:
        engine.dispose()
    synced = {("Holiday", "A"), ("Stores", "Listed"), ("Stores", "Elsewhere")}  # three targets: Spark is slow
    assert {(c, g) for c, g, _ in members} == synced | {("Holiday", "holdout"), ("Holiday", "B"), ("Stores", "Oregon")}
    assert {cid for c, g, cid in members if (c, g) == ("Stores", "Listed")} == set(picked)
    for campaign, group in synced:
        with open(project / "exports" / f"{campaign}-{group}.csv", newline="") as handle:
            written = [r["customer_id"] for r in csv.DictReader(handle)]
        assert written == sorted(cid for c, g, cid in members if (c, g) == (campaign, group)), (campaign, group)
