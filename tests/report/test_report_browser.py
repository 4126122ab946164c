"""The report of the example project after two applies, loaded in a real headless Chromium (Debian's
chromium and chromedriver, driven by Selenium): no console errors, search and filters narrow the lists,
a graph node opens its segment, the charts are drawn with data. Screenshots go to
target/test-artifacts/report/."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from audlang.cli import cli
from audlang.datagen import generate
from audlang.project import load
from helpers import EXAMPLES, ROOT

ARTIFACTS = ROOT / "target" / "test-artifacts" / "report"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
APPLIES = ("2024-11-23", "2024-11-30")


def run(project, *args, codes=(0,)):
    result = CliRunner().invoke(cli, ["--project", str(project), *args], catch_exceptions=False)
    assert result.exit_code in codes, result.output
    return result


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("retail")
    shutil.copytree(EXAMPLES / "retail", root, dirs_exist_ok=True)
    (root / "target").mkdir()
    generate(f"duckdb:///{root / 'target' / 'warehouse.duckdb'}", customers=1500, seed=42)
    for day in APPLIES:  # two applies: two points of membership history
        # The vendors' secrets are not set here (and nothing leaves this machine): their syncs fail, which
        # apply reports with exit code 1 once the segments are applied; the CSV and SQL destinations sync.
        result = run(root, "apply", "--auto-approve", "--as-of", day, codes=(0, 1))
        assert "Apply complete" in result.output, result.output
    run(root, "docs", "generate")
    return root


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not Path(binary).exists():
            pytest.fail(f"{binary} is missing: install Debian's chromium and chromium-driver (.ci/run does)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,1000",
                     f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def errors(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]


def visible_names(driver, table: str) -> list[str]:
    rows = driver.find_elements(By.CSS_SELECTOR, f"table#{table} tr.item")
    return [r.find_element(By.CSS_SELECTOR, "td a").text for r in rows if r.is_displayed()]


def docs(report) -> Path:
    return report / "target" / "docs"


def example_model():
    """The example project's checked model: what the report must list."""
    return load(None, str(EXAMPLES / "retail")).model


def test_index_loads_without_console_errors_and_search_narrows(report, browser):
    browser.get((docs(report) / "index.html").as_uri())
    assert errors(browser) == []
    everything = visible_names(browser, "segments")
    assert everything == list(example_model().segments)
    ads = {r.find_element(By.CSS_SELECTOR, "td a").text: r.find_element(
        By.CSS_SELECTOR, 'td[data-key="reachable_ad_platforms"]').text
        for r in browser.find_elements(By.CSS_SELECTOR, "table#segments tr.item")}
    figures = json.loads(run(report, "insights", "Big Spenders", "--as-of", APPLIES[-1], "--format", "json").stdout)
    assert ads["Big Spenders"] == f"{figures['reachable_ad_platforms']:,}" != "0"
    search = browser.find_element(By.ID, "search")
    search.send_keys("holiday")
    narrowed = visible_names(browser, "segments")
    assert narrowed == ["Holiday Shoppers - SMS", "Holiday Shoppers - Last Season"]
    assert visible_names(browser, "campaigns") == ["Holiday SMS 2024", "Holiday Retargeting"]
    assert visible_names(browser, "destinations") == ["Attentive - Holiday SMS", "Holiday Mailing File",
                                                      "Meta - Holiday Retargeting"]
    assert browser.find_element(By.ID, "shown").text.startswith("7 of ")
    browser.save_screenshot(str(ARTIFACTS / "index-search.png"))
    search.clear()
    search.send_keys("x")
    search.clear()  # clear() sends no input event in every driver: type and delete a character
    search.send_keys("\b")
    assert len(visible_names(browser, "segments")) == len(everything)
    Select(browser.find_element(By.ID, "filter-paused")).select_by_value("paused")
    assert visible_names(browser, "destinations") == ["Store Ops Webhook"]
    assert visible_names(browser, "segments") == []
    Select(browser.find_element(By.ID, "filter-paused")).select_by_value("")
    Select(browser.find_element(By.ID, "filter-file")).select_by_visible_text("segments/stores.aud")
    assert visible_names(browser, "segments") == ["In-store Customers - Portland", "In-store Customers - Seattle",
                                                  "In-store Customers", "Near Pearl Store"]
    Select(browser.find_element(By.ID, "filter-file")).select_by_value("")
    Select(browser.find_element(By.ID, "filter-destination")).select_by_visible_text("Klaviyo - Win Back")
    assert visible_names(browser, "segments") == ["Win Back - Email"]
    assert visible_names(browser, "campaigns") == ["Win Back"]
    assert errors(browser) == []


def test_a_graph_node_opens_its_segment(report, browser):
    browser.get((docs(report) / "graph.html").as_uri())
    assert errors(browser) == []
    nodes = browser.find_elements(By.CSS_SELECTOR, "svg#graph a.node-link")
    model = example_model()
    assert len(nodes) == len(model.segments) + len(model.campaigns) + len(model.destinations) + len(model.scores)
    score = browser.find_element(By.CSS_SELECTOR, 'svg#graph a.node-link[data-key="score:Engagement"]')
    assert score.get_dom_attribute("href").endswith("scores/engagement.html")
    assert browser.find_elements(By.CSS_SELECTOR, 'svg#graph path.edge[data-from="score:Engagement"]'
                                                  '[data-to="segment:Engaged"]')
    assert browser.find_elements(By.CSS_SELECTOR, 'svg#graph path.edge[data-from="segment:Big Spenders"]'
                                                  '[data-to="score:Engagement"]')
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg#graph path.edge")) >= 17
    browser.save_screenshot(str(ARTIFACTS / "graph.png"))
    node = browser.find_element(By.CSS_SELECTOR, 'svg#graph a.node-link[data-name="Big Spenders"]')
    browser.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'center'})", node)
    node.find_element(By.CSS_SELECTOR, "rect").click()
    assert browser.current_url.endswith("/segments/big-spenders.html")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Big Spenders"
    assert errors(browser) == []


def test_segment_page_charts_render_with_data(report, browser):
    browser.get((docs(report) / "segments" / "big-spenders.html").as_uri())
    assert errors(browser) == []
    bars = browser.find_elements(By.CSS_SELECTOR, "svg.bar-chart rect.bar")
    assert len(bars) >= 6 and any(float(b.get_attribute("data-value")) > 0 for b in bars)
    assert all(b.size["width"] >= 0 for b in bars) and max(b.size["width"] for b in bars) > 50
    points = browser.find_elements(By.CSS_SELECTOR, "svg.line-chart circle.point")
    assert [p.get_attribute("data-date")[:10] for p in points] == list(APPLIES)
    assert browser.find_elements(By.CSS_SELECTOR, "svg.line-chart polyline.line")
    shown = {e.get_attribute("data-key"): e.text for e in browser.find_elements(By.CSS_SELECTOR, ".figure")}
    figures = json.loads(run(report, "insights", "Big Spenders", "--as-of", APPLIES[-1], "--format", "json").stdout)
    assert shown["members"] == f"{figures['members']:,}"
    assert shown["sms_opt_in"] == f"{figures['sms_opt_in']:,}"
    assert shown["reachable_ad_platforms"] == f"{figures['reachable_ad_platforms']:,}" != "0"
    caption = browser.find_element(By.XPATH, "//div[@data-key='reachable_ad_platforms']/following-sibling::div")
    assert caption.text.startswith("reachable on ad platforms")
    assert shown["predicted_revenue"] == f"{figures['predicted_revenue']:,.2f}" != "0.00"
    assert browser.find_element(By.CSS_SELECTOR, ".definition .highlight").text.startswith('segment "Big Spenders"')
    downstream = [a.text for a in browser.find_elements(By.CSS_SELECTOR, ".neighbours a")]
    assert "Lapsed VIP" in downstream
    browser.save_screenshot(str(ARTIFACTS / "segment.png"))
    browser.get((docs(report) / "segments" / "lapsed-vip.html").as_uri())
    upstream = browser.find_element(By.CSS_SELECTOR, ".neighbours section a")
    assert upstream.text == "Big Spenders"
    upstream.click()
    assert browser.current_url.endswith("/segments/big-spenders.html")
    assert errors(browser) == []


def test_campaign_and_destination_pages(report, browser):
    browser.get((docs(report) / "campaigns" / "holiday-sms-2024.html").as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "table#groups tbody tr")
    assert [r.find_element(By.TAG_NAME, "td").text for r in rows] == ["holdout", "20% Off", "Free Shipping"]
    sizes = [int(r.find_elements(By.TAG_NAME, "td")[3].text.replace(",", "")) for r in rows]
    assert all(n > 0 for n in sizes)
    browser.save_screenshot(str(ARTIFACTS / "campaign.png"))
    browser.find_element(By.LINK_TEXT, "Attentive - Holiday SMS").click()
    assert browser.current_url.endswith("/destinations/attentive-holiday-sms.html")
    assert "env(\"ATTENTIVE_API_KEY\")" in browser.find_element(By.CSS_SELECTOR, "table.settings").text
    browser.save_screenshot(str(ARTIFACTS / "destination.png"))
    assert errors(browser) == []


def test_a_score_page_from_the_index_and_from_its_segment(report, browser):
    """The index lists the score and links its page; the page shows the description, every item with the
    customers it holds for, the distribution drawn with data adding up to every customer, and links the
    segment that reads it, whose page links back."""
    model = example_model()
    score = model.scores["Engagement"]
    browser.get((docs(report) / "index.html").as_uri())
    assert visible_names(browser, "scores") == ["Engagement"]
    browser.find_element(By.CSS_SELECTOR, "table#scores a").click()
    assert browser.current_url.endswith("/scores/engagement.html")
    assert errors(browser) == []
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("Engagement")
    assert browser.find_element(By.CSS_SELECTOR, ".description").text == score.description
    rows = browser.find_elements(By.CSS_SELECTOR, "table#items tbody tr")
    from audlang.syntax.formatter import score_item_text

    assert [r.find_element(By.TAG_NAME, "code").text for r in rows] == [score_item_text(i) for i in score.items]
    held = [int(r.get_attribute("data-held")) for r in rows]
    customers = int(browser.find_element(By.CSS_SELECTOR, "h2 small").text.split("over ")[1].split()[0]
                    .replace(",", ""))
    assert customers == 1500 and all(0 < n < customers for n in held)
    # the VIP item's count is the number of customers tagged VIP, asked of the warehouse in plain SQL
    import duckdb

    with duckdb.connect(str(report / "target" / "warehouse.duckdb"), read_only=True) as db:
        vip = db.execute("SELECT count(DISTINCT customer_id) FROM customer_tags WHERE tag = 'VIP'").fetchone()[0]
    assert held[0] == vip
    bars = browser.find_elements(By.CSS_SELECTOR, "figure.distribution svg.bar-chart rect.bar")
    assert len(bars) >= 3 and sum(int(float(b.get_attribute("data-value"))) for b in bars) == customers
    assert max(b.size["width"] for b in bars) > 50
    assert "one bar for each total" in browser.find_element(By.ID, "distribution-note").text
    browser.save_screenshot(str(ARTIFACTS / "score.png"))
    browser.find_element(By.LINK_TEXT, "Engaged").click()
    assert browser.current_url.endswith("/segments/engaged.html")
    back = browser.find_element(By.CSS_SELECTOR, ".neighbours a.score-link")
    assert back.text == "Engagement"
    back.click()
    assert browser.current_url.endswith("/scores/engagement.html")
    assert errors(browser) == []


def test_docs_serve_on_loopback(report, browser):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "audlang", "--project", str(report), "docs", "serve",
                               "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        browser.get(url)
        assert browser.find_element(By.TAG_NAME, "h1").text == "retail"
        browser.find_element(By.LINK_TEXT, "Graph").click()
        assert browser.current_url == url + "graph.html"
        assert errors(browser) == []
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_data_explorer_lists_the_model_is_searchable_and_linked_from_definitions(report, browser):
    """Every table and attribute of the example's data model, with figures from the warehouse; the search
    narrows it; an attribute in a segment's definition opens its row."""
    model = example_model()
    browser.get((docs(report) / "segments" / "big-spenders.html").as_uri())
    link = browser.find_element(By.CSS_SELECTOR, ".definition a.attribute")
    assert link.text == "lifetime_revenue"
    link.click()
    assert browser.current_url.endswith("/explorer.html#attr-lifetime_revenue")
    row = browser.find_element(By.ID, "attr-lifetime_revenue")
    assert "target" in row.get_attribute("class").split() and row.is_displayed()
    assert "Big Spenders" in row.find_element(By.CSS_SELECTOR, "td.used").text
    assert errors(browser) == []

    tables = browser.find_elements(By.CSS_SELECTOR, "section.explorer-table")
    assert [t.get_attribute("id") for t in tables] == [f"table-{n}" for n in model.data_model.tables] + [
        "table-derived"]
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.column")
    assert len(rows) == sum(len(t.types) for t in model.data_model.tables.values()) + 6
    churn = browser.find_element(By.ID, "table-churn_scores")
    assert "custom table" in churn.find_element(By.TAG_NAME, "h2").text
    tier = browser.find_element(By.ID, "attr-loyalty_tier")
    shown = [li.text for li in tier.find_elements(By.CSS_SELECTOR, "td.values li")]
    with warehouse_connection(report) as conn:
        expected = conn.execute(
            "SELECT loyalty_tier, count(*) FROM customer_360 WHERE loyalty_tier IS NOT NULL GROUP BY 1 "
            "HAVING count(*) >= 5 ORDER BY 2 DESC, 1 LIMIT 5").fetchall()
    assert shown == [f"{value} {count:,}" for value, count in expected] and shown
    assert "identifies a person" in browser.find_element(By.ID, "attr-email").text
    browser.save_screenshot(str(ARTIFACTS / "explorer.png"))

    search = browser.find_element(By.ID, "explorer-search")
    search.send_keys("churn")
    visible = [r.get_attribute("id") for r in rows if r.is_displayed()]
    assert visible == ["column-churn_scores-customer_id", "attr-churn_score", "attr-churn_model_version"]
    assert browser.find_element(By.ID, "explorer-shown").text == f"3 of {len(rows)} columns shown"
    search.send_keys(" nothing-like-this")
    assert browser.find_element(By.ID, "explorer-none").is_displayed()
    assert errors(browser) == []


@contextlib.contextmanager
def warehouse_connection(report):
    import duckdb

    conn = duckdb.connect(str(report / "target" / "warehouse.duckdb"), read_only=True)
    try:
        yield conn
    finally:
        conn.close()
