"""A plan saved by an audlang that wrote ``format_version`` 1 still loads, renders and applies.

The fixture in ``fixtures/plan-format-1/`` was made by that audlang (before format version 2): the
project in ``before/`` applied at 2024-11-30 to the deploy tests' warehouse on DuckDB, its state's
lineage set to ``v1-fixture-lineage``, then the project recorded in the plan's ``configuration.sources``
planned with ``audlang plan --out plan.json``. ``plan.txt`` and ``plan.md`` are how that audlang rendered
it; ``applied.json`` holds what its ``audlang apply plan.json`` printed and recorded. The files are input,
not golden files: AUDLANG_UPDATE_GOLDEN leaves them alone.
"""

from __future__ import annotations

import json
import shutil

import pytest
import sqlalchemy as sa
from helpers import ROOT
from deploy_fixtures import cli_run, warehouse_url  # noqa: F401

from audlang.warehouse import default_state

FIXTURE = ROOT / "tests" / "deploy" / "fixtures" / "plan-format-1"
AS_OF = "2024-11-30"


def _saved() -> dict:
    return json.loads((FIXTURE / "plan.json").read_text(encoding="utf-8"))


def test_the_fixture_is_a_version_1_plan():
    doc = _saved()
    assert doc["format_version"] == 1
    assert doc["prior_state"] == {"lineage": "v1-fixture-lineage", "serial": 11}
    assert all("reason_code" not in a and "reason_codes" not in a for a in doc["actions"])


def test_a_version_1_plan_renders_as_it_did():
    from audlang.plan import plan_from_json, plan_to_json, render_markdown, render_text

    doc = plan_to_json(plan_from_json(_saved(), "plan.json"))
    assert render_text(doc) + "\n" == (FIXTURE / "plan.txt").read_text(encoding="utf-8")
    assert render_markdown(doc) == (FIXTURE / "plan.md").read_text(encoding="utf-8")


# The fixture was made on DuckDB (see above); the plan format is under test, not the engine.
@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_a_version_1_plan_applies(warehouse_url, write_project, cli_run):
    folder = write_project({}, config=f'warehouse = "{warehouse_url}"\n')
    for path in (FIXTURE / "before").iterdir():
        shutil.copy(path, folder / path.name)
    first = cli_run(folder, "apply", "--auto-approve", "--as-of", AS_OF)
    assert first.returncode == 0, first.stderr
    assert "state serial 11." in first.stdout
    # The state the plan was made against: this history, under the fixture's lineage.
    engine = sa.create_engine(default_state(warehouse_url))  # the state beside the DuckDB file
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audlang_state SET lineage = 'v1-fixture-lineage'"))
    engine.dispose()
    shutil.copy(FIXTURE / "plan.json", folder / "plan.json")

    applied = cli_run(folder, "apply", "plan.json")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    expected = json.loads((FIXTURE / "applied.json").read_text(encoding="utf-8"))
    lines = [line[2:] for line in applied.stdout.splitlines() if line.startswith("  ") and line[2] != " "]
    assert lines[:len(expected["applied"])] == expected["applied"]
    assert "Apply complete: 11 changes" in applied.stdout

    history = json.loads(cli_run(folder, "history", "--format", "json").stdout)
    recorded = [{"event": e["event"], "kind": e["kind"], "name": e["name"], "reasons": e["detail"]["reasons"]}
                for e in history if e["serial"] > 11 and e["kind"] and "reasons" in e["detail"]]
    assert recorded == expected["history"]

    # The project as planned, now on disk: nothing is left to do.
    for path, text in _saved()["configuration"]["sources"].items():
        (folder / path).write_text(text, encoding="utf-8")
    again = cli_run(folder, "plan", "--as-of", AS_OF, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
