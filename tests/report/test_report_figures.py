"""The report's batched figures equal `audlang insights` for every example segment, on DuckDB, SQLite and
PostgreSQL; campaign group sizes add up; the site is written with every page and no absolute link."""

from __future__ import annotations

import re
import shutil

import pytest

from audlang import evaluate, warehouse
from audlang.compile import AsOf
from audlang.datagen import generate
from audlang.project import load
from audlang.report import figures, site
from helpers import EXAMPLES

AS_OF = AsOf.parse("2024-11-30")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("retail")
    shutil.copytree(EXAMPLES / "retail", root, dirs_exist_ok=True)
    return root


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory, postgresql_database):
    folder = tmp_path_factory.mktemp("warehouses")
    urls = {"duckdb": f"duckdb:///{folder / 'w.duckdb'}", "sqlite": f"sqlite:///{folder / 'w.sqlite'}",
            "postgresql": postgresql_database("report")}
    for url in urls.values():
        generate(url, customers=300, seed=3)
    return urls


@pytest.mark.parametrize("engine", ["duckdb", "sqlite", "postgresql"])
def test_batched_figures_equal_insights(project, warehouses, engine):
    url = warehouses[engine]
    model = load(None, str(project)).model
    connection = warehouse.connect(url)
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


def test_site_has_every_page_and_only_relative_links(project, warehouses, tmp_path):
    loaded = load(None, str(project))
    out = tmp_path / "docs"
    summary = site.build(loaded.model, loaded.config.root, "retail", warehouses["duckdb"], None, out, AS_OF)
    model = loaded.model
    assert summary["pages"] == 2 + len(model.segments) + len(model.campaigns) + len(model.destinations)
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
