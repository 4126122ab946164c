"""``audlang explain`` agrees with ``audlang members`` for every example segment, on a sample of
customers, on DuckDB, SQLite and PostgreSQL (the ``warehouse`` fixture); its tree is coherent; its errors are
one line. Tests of the output rather than of an engine run on DuckDB alone."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest
from click.testing import CliRunner

from audlang import explain
from audlang.cli import cli
from audlang.compile import AsOf
from audlang.datagen import generate
from audlang.project import load
from audlang.warehouse import connect
from helpers import EXAMPLES

AS_OF = "2024-11-30"
CUSTOMERS = 300


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("retail")
    shutil.copytree(EXAMPLES / "retail", root, dirs_exist_ok=True)
    return root


@pytest.fixture(scope="module")
def warehouse_url(warehouse):
    """The generated warehouse on the engine under test."""
    generate(warehouse.url, customers=CUSTOMERS, seed=7)
    return warehouse.url


def run(project, *args, expect=0):
    result = CliRunner().invoke(cli, ["--project", str(project), *args], catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result


def member_ids(project, url, name) -> list[str]:
    out = run(project, "members", name, "--as-of", AS_OF, "--warehouse", url).stdout
    return [r[0] for r in list(csv.reader(io.StringIO(out)))[1:]]


def coherent(clause: explain.Clause) -> None:
    """Each compound verdict follows from its children's: the tree explains, it does not contradict."""
    values = [c.value for c in clause.children]
    if clause.kind == "and":
        assert clause.value == all(values), clause.text
    elif clause.kind == "or":
        assert clause.value == any(values), clause.text
    elif clause.kind in ("not",):
        assert clause.value == (not values[0]), clause.text
    elif clause.kind == "in_segment":
        assert clause.value == values[0], clause.text
    for child in clause.children:
        coherent(child)


def sample(members: list[str], everyone: list[str]) -> list[str]:
    """Up to 5 members and 5 others, spread over the id range, deterministic."""
    inside = members[:: max(1, len(members) // 5)][:5]
    chosen = set(members)
    outside = [c for c in everyone[:: max(1, len(everyone) // 12)] if c not in chosen][:5]
    return inside + outside


def test_explain_agrees_with_members_for_every_example_segment(project, warehouse, warehouse_url):
    url, engine = warehouse_url, warehouse.name
    model = load(None, str(project)).model
    connection = connect(url)
    as_of = AsOf.parse(AS_OF)
    everyone = [f"C{i:06d}" for i in range(1, CUSTOMERS + 1)]
    checked = members_seen = 0
    for name in model.segments:
        members = member_ids(project, url, name)
        for customer in sample(members, everyone):
            result = explain.explain(connection, url, model, name, customer, as_of)
            assert result.member == (customer in members), f"{name} / {customer} on {engine}"
            assert result.condition.value == result.member, f"{name} / {customer} on {engine}"
            coherent(result.condition)
            checked += 1
            members_seen += result.member
    connection.dispose()
    assert checked > 200 and members_seen > 60


# The explanation's output, not the engine (the test above runs every engine): one engine is enough.
@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_json_through_the_cli(project, warehouse_url):
    url = warehouse_url
    member = member_ids(project, url, "Lapsed VIP")[0]
    doc = json.loads(run(project, "explain", "Lapsed VIP", member, "--as-of", AS_OF, "--warehouse", url,
                         "--format", "json").stdout)
    assert doc["member"] is True and doc["segment"] == "Lapsed VIP" and doc["customer_id"] == member
    assert doc["format_version"] == 1 and doc["as_of"] == AS_OF
    tagged, in_segment, negated = doc["condition"]["children"]
    assert tagged["kind"] == "tagged" and tagged["facts"] == {"tags": {"VIP": True}}
    assert in_segment["segment"] == "Big Spenders" and in_segment["value"] is True
    (expanded,) = in_segment["children"]
    assert expanded["text"] == "lifetime_revenue > 500" and expanded["facts"]["value"] > 500
    assert negated["kind"] == "not" and negated["value"] is True
    assert negated["children"][0]["facts"]["matching_orders"] == 0


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_purchase_facts_count_the_matching_orders_and_the_measure(project, warehouse_url):
    url = warehouse_url
    member = member_ids(project, url, "Spent Over 1000 This Year")[0]
    doc = json.loads(run(project, "explain", "Spent Over 1000 This Year", member, "--as-of", AS_OF,
                         "--warehouse", url, "--format", "json").stdout)
    purchased = doc["condition"]["children"][0]
    facts = purchased["facts"]
    assert purchased["value"] is True and facts["measure"] == "spend" and facts["measure_value"] > 1000
    assert facts["matching_orders"] >= 1 and facts["last_order"] <= "2024-11-30 23:59:59"


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_text_reads_like_the_source(project, warehouse_url):
    url = warehouse_url
    outsider = next(c for c in (f"C{i:06d}" for i in range(1, CUSTOMERS))
                    if c not in set(member_ids(project, url, "Big Spenders")))
    out = run(project, "explain", "Lapsed VIP", outsider, "--as-of", AS_OF, "--warehouse", url).stdout
    lines = out.splitlines()
    assert lines[0] == f'{outsider} is not a member of "Lapsed VIP" as of {AS_OF}.'
    assert lines[2].startswith('segment "Lapsed VIP" <') and lines[2].split()[-1] == "false"
    assert lines[3].startswith('  tagged "VIP"')
    assert lines[4].startswith('  and in segment "Big Spenders"') and " false" in lines[4]
    assert lines[5].strip().startswith("lifetime_revenue > 500") and "lifetime_revenue = " in lines[5]
    assert lines[6].startswith("  and not has_purchased within last 90 days")
    assert lines[-1] == ">"


@pytest.mark.parametrize("args,message", [
    (["explain", "Big Spender", "C000001"], 'error[E201]: no such segment; did you mean "Big Spenders"?'),
    (["explain", "Big Spenders", "NOBODY"], "NOBODY: error[E210]: no such customer in customer_360"),
    (["explain", "Big Spenders", "C000001", "--as-of", "2024-13-01"], "error[E203]"),
])
@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_errors_are_one_line(project, warehouse_url, args, message):
    result = run(project, *args, "--warehouse", warehouse_url, expect=1)
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_a_score_is_explained_point_by_point(project, warehouse_url):
    url = warehouse_url
    members = member_ids(project, url, "Engaged")
    doc = json.loads(run(project, "explain", "Engaged", members[0], "--as-of", AS_OF, "--warehouse", url,
                         "--format", "json").stdout)
    scored = doc["condition"]["children"][0]
    facts = scored["facts"]
    assert scored["kind"] == "score" and scored["value"] is True and facts["score"] == "Engagement"
    assert [i["points"] for i in facts["items"]] == [3, 2, 1, 0.5, -2]
    assert facts["items"][0]["condition"] == 'tagged "VIP"'
    assert facts["total"] == sum(i["points"] for i in facts["items"] if i["held"]) and facts["total"] >= 3
    text = run(project, "explain", "Engaged", members[0], "--as-of", AS_OF, "--warehouse", url).stdout
    assert f'score "Engagement" = {facts["total"]:,}' in text


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_a_percentile_shows_the_value_rank_and_edge(project, warehouse_url):
    url = warehouse_url
    members = member_ids(project, url, "Top Decile Revenue")
    assert 0 < len(members) <= CUSTOMERS // 10 + 5
    outsider = next(c for c in (f"C{i:06d}" for i in range(1, CUSTOMERS)) if c not in set(members))
    inside = json.loads(run(project, "explain", "Top Decile Revenue", members[0], "--as-of", AS_OF,
                            "--warehouse", url, "--format", "json").stdout)["condition"]
    outside = json.loads(run(project, "explain", "Top Decile Revenue", outsider, "--as-of", AS_OF,
                             "--warehouse", url, "--format", "json").stdout)["condition"]
    assert inside["kind"] == outside["kind"] == "percentile"
    for clause in (inside, outside):
        facts = clause["facts"]
        assert facts["population"] == CUSTOMERS and facts["side"] == "top" and facts["percent"] == 10
        assert (facts["rank"] <= facts["edge_rank"]) == clause["value"]
        assert (facts["value"] >= facts["edge_value"]) == clause["value"]
        assert (facts["rank"] - 1) * 100 < 10 * CUSTOMERS or not clause["value"]


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_a_percentile_of_a_derived_value_shows_its_value_rank_and_edge(warehouse_url, tmp_path):
    """The average order value and the days since the last order, ranked exactly (docs/language.md,
    "Percentiles"): explain's verdict, rank and edge agree with the members, a customer without orders
    is not ranked."""
    root = tmp_path / "retail"
    shutil.copytree(EXAMPLES / "retail", root)
    (root / "derived.aud").write_text('segment "Top Average" < average_order_value in top 20% >\n\n'
                                      'segment "Lapsed Half" < days_since_last_order in top 50% >\n')
    url = warehouse_url
    for name, side, percent in (("Top Average", "top", 20), ("Lapsed Half", "top", 50)):
        members = set(member_ids(root, url, name))
        assert members
        seen = {True: 0, False: 0}
        for customer in (f"C{i:06d}" for i in range(1, 60)):
            clause = json.loads(run(root, "explain", name, customer, "--as-of", AS_OF, "--warehouse", url,
                                    "--format", "json").stdout)["condition"]
            facts = clause["facts"]
            assert clause["value"] == (customer in members), (name, customer)
            assert facts["side"] == side and facts["percent"] == percent
            if facts["value"] is None:
                assert not clause["value"] and facts["rank"] is None
                continue
            seen[clause["value"]] += 1
            assert (facts["rank"] - 1) * 100 < percent * facts["population"] or not clause["value"]
            assert (facts["rank"] <= facts["edge_rank"]) == clause["value"]
            assert (facts["value"] >= facts["edge_value"]) == clause["value"]
        assert seen[True] and seen[False], (name, seen)
