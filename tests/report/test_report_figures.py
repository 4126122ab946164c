"""The report's batched figures equal `audlang insights` for every example segment, on DuckDB, SQLite and
PostgreSQL (the ``warehouse`` fixture); campaign group sizes add up; the site is written with every page and no
absolute link."""

from __future__ import annotations

import re
import shutil

import pytest

from audlang import evaluate
from audlang.compile import AsOf
from audlang.datagen import generate
from audlang.project import load
from audlang.report import figures, site
from audlang.warehouse import connect
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
