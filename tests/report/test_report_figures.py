"""The report's batched figures equal `audlang insights` for every example segment, on DuckDB, SQLite and
PostgreSQL (the ``warehouse`` fixture); campaign group sizes add up; the site is written with every page and no
absolute link."""

from __future__ import annotations

import re
import shutil
from decimal import Decimal

import pytest

from audlang import evaluate
from audlang.compile import AsOf
from audlang.datagen import generate
from audlang.project import load
from audlang.report import figures, site
from audlang.warehouse import connect
from evaluate.reference import Reference
from helpers import EXAMPLES

AS_OF = AsOf.parse("2024-11-30")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("retail")
    shutil.copytree(EXAMPLES / "retail", root, dirs_exist_ok=True)
    return root


@pytest.fixture(scope="module")
def warehouse_url(warehouse):
    """The generated warehouse on the engine under test."""
    generate(warehouse.url, customers=300, seed=3)
    return warehouse.url


def test_batched_figures_equal_insights(project, warehouse_url):
    url = warehouse_url
    model = load(None, str(project)).model
    connection = connect(url)
    with connection.begin() as conn:
        computed = figures.compute(conn, model, AS_OF)
    for name in model.segments:
        assert computed.insights[name] == evaluate.insights(connection, url, model, name, AS_OF), name
        bands = computed.bands[name]
        assert sum(n for _, n, _ in bands) == computed.insights[name]["members"], name
        if computed.insights[name]["members"]:
            assert sum(n for _, n, _ in computed.channels.get(name, [])) >= computed.insights[name]["active"]
    for name, groups in computed.campaigns.items():
        assert set(groups) >= {g.name for g in model.campaigns[name].treatments}
    audience = computed.insights["Holiday Shoppers - SMS"]["members"]
    assert sum(computed.campaigns["Holiday SMS 2024"].values()) == audience
    connection.dispose()


# The site's pages and links, not the engine (the test above runs every engine): one engine is enough.
@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_site_has_every_page_and_only_relative_links(project, warehouse_url, tmp_path):
    loaded = load(None, str(project))
    out = tmp_path / "docs"
    summary = site.build(loaded.model, loaded.config.root, "retail", warehouse_url, None, out, AS_OF)
    model = loaded.model
    # index, graph, the Data Explorer, and a page per segment, campaign, destination and score
    assert summary["pages"] == 3 + len(model.segments) + len(model.campaigns) + len(model.destinations) + \
        len(model.scores)
    assert (out / "scores" / "engagement.html").is_file()
    pages = list(out.rglob("*.html"))
    assert len(pages) == summary["pages"]
    for page in pages:
        html = page.read_text()
        for link in re.findall(r'(?:href|src)="([^"]*)"', html):
            assert not re.match(r"^(https?:|//|/)", link), f"{page.name} links outside the site: {link}"
            if link.startswith("data:") or link.startswith("#"):
                continue
            assert (page.parent / link.split("#")[0]).resolve().exists(), f"{page.name}: broken link {link}"
    assert (out / "assets" / "report.css").is_file() and (out / "assets" / "report.js").is_file()


# A score with many distinct totals (up to 2^7 = 128): its distribution is drawn in ranges.
WIDE = """
# Every combination of the items has its own total.
score "Wide" <
  1 point if email_opt_in
  2 points if sms_opt_in
  4 points if tagged "VIP"
  8 points if has_purchased within last 90 days
  16 points if lifetime_orders >= 3
  32 points if contactable_phone
  -0.5 points if in segment "Big Spenders"
>

segment "Wide Top" < score "Wide" in top 10% >
"""
TABLES = ("customer_360", "unified_transactions", "unified_itemized_transactions", "customer_tags", "checkouts",
          "stores")


def reference_data(tmp_path) -> dict[str, list[dict]]:
    """The same generated warehouse (seed 3, 300 customers) in a DuckDB file of the test's own, read whole
    into Python for the reference evaluator: the oracle reads rows, the report only aggregates."""
    import duckdb

    path = tmp_path / "reference.duckdb"
    generate(f"duckdb:///{path}", customers=300, seed=3)
    with duckdb.connect(str(path), read_only=True) as db:
        data = {}
        for table in TABLES:
            cursor = db.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cursor.description]
            data[table] = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return data


def expected_score(reference, score) -> dict:
    """The figures SPEC §3.1 and docs/report.md give a score, computed customer by customer."""
    customers = sorted(reference.customers)
    totals = [reference.score(score.name, c) for c in customers]
    held = [sum(1 for c in customers if reference.holds(item.condition, c)) for item in score.items]
    low, high = min(totals), max(totals)
    if len(set(totals)) <= figures.DISTINCT_TOTALS:
        distribution = [(t, t, totals.count(t)) for t in sorted(set(totals))]
        return {"customers": len(customers), "items": held, "bucketed": False, "distribution": distribution}
    ranges = figures.BUCKETS_OF_TOTALS
    step = (high - low) / ranges
    bounds = [low] + [(low + step * k).quantize(Decimal("1e-12")) for k in range(1, ranges)] + [high]
    counts = [0] * ranges
    for t in totals:
        counts[max(k for k in range(ranges) if k == 0 or t >= bounds[k])] += 1
    return {"customers": len(customers), "items": held, "bucketed": True,
            "distribution": [(bounds[k], bounds[k + 1], counts[k]) for k in range(ranges)]}


def test_score_figures_equal_the_reference(project, warehouse_url, tmp_path):
    """Each score's customers per item and its distribution of totals (per total for the example's
    "Engagement", in ranges for "Wide") equal the plain-Python reference evaluator's, on every engine."""
    root = tmp_path / "retail"
    shutil.copytree(project, root)
    (root / "wide.aud").write_text(WIDE)
    loaded = load(None, str(root))
    assert not loaded.errors, loaded.errors
    model = loaded.model
    connection = connect(warehouse_url)
    with connection.begin() as conn:
        computed = figures.compute(conn, model, AS_OF)
    connection.dispose()
    reference = Reference(reference_data(tmp_path), model, AS_OF.date, AS_OF.instant)
    assert set(computed.scores) == {"Engagement", "Wide"}
    for name, score in model.scores.items():
        got = computed.scores[name]
        expected = expected_score(reference, score)
        assert (got.customers, got.items, got.bucketed) == \
            (expected["customers"], expected["items"], expected["bucketed"]), name
        assert got.distribution == expected["distribution"], name
        assert sum(n for _, _, n in got.distribution) == got.customers == 300
        assert all(0 < n < got.customers for n in got.items), (name, got.items)  # no item trivially 0 or all
    assert not computed.scores["Engagement"].bucketed and computed.scores["Wide"].bucketed


@pytest.mark.parametrize("warehouse", [pytest.param("spark", marks=pytest.mark.spark)], indirect=True)
def test_score_figures_equal_the_reference_on_spark(project, warehouse, tmp_path):
    """The same on Spark SQL, each score's queries on their own: ``in segment`` compiled inline rather
    than read from the report's temporary membership table."""
    from audlang.compile import SegmentCompiler

    root = tmp_path / "retail"
    shutil.copytree(project, root)
    (root / "wide.aud").write_text(WIDE)
    model = load(None, str(root)).model
    reference = Reference(reference_data(tmp_path), model, AS_OF.date, AS_OF.instant)
    generate(warehouse.url, customers=300, seed=3, parquet_folder=tmp_path / "parquet")
    connection = connect(warehouse.url)
    with connection.connect() as conn:
        compiler = SegmentCompiler(model, AS_OF)
        for name, score in model.scores.items():
            got = figures.score_figures(conn, model, compiler, name)
            expected = expected_score(reference, score)
            assert (got.customers, got.items, got.bucketed, got.distribution) == \
                (expected["customers"], expected["items"], expected["bucketed"], expected["distribution"]), name
    connection.dispose()
