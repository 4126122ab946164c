"""The CI recipe in examples/ci: a valid workflow whose audlang steps are real commands, run here in order."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml
from helpers import ROOT
from deploy_fixtures import cli_run, project, warehouse_url  # noqa: F401

from audlang.cli import cli

WORKFLOW = ROOT / "examples" / "ci" / "audlang.yml"


def _audlang_steps(job: dict) -> list[list[str]]:
    commands = []
    for step in job["steps"]:
        for line in step.get("run", "").splitlines():
            line = line.split(">")[0].strip()
            if line.startswith("audlang "):
                commands.append(shlex.split(line)[1:])
    return commands


def test_workflow_is_valid_and_its_commands_exist():
    doc = yaml.safe_load(WORKFLOW.read_text())
    jobs = doc["jobs"]
    plan_steps = _audlang_steps(jobs["plan"])
    apply_steps = _audlang_steps(jobs["apply"])
    assert [s[0] for s in plan_steps] == ["fmt", "validate", "plan"]
    assert apply_steps == [["apply", "audlang-plan.json"]]
    assert "--out" in plan_steps[-1] and "audlang-plan.json" in plan_steps[-1]
    for args in plan_steps + apply_steps:
        assert args[0] in cli.commands
        context = cli.commands[args[0]].make_context(args[0], args[1:], resilient_parsing=True)
        assert context is not None
    uploaded = [s for s in jobs["plan"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert uploaded and uploaded[0]["with"]["path"] == "audlang-plan.json"
    assert re.search(r"gh run download .*--name audlang-plan", WORKFLOW.read_text())


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_the_pipeline_runs_end_to_end(project, cli_run):
    """What the two jobs do, in order, against a real warehouse (DuckDB is enough here: the recipe's commands
    are under test, not the engine)."""
    assert cli_run(project, "fmt", "--check").returncode == 0
    assert cli_run(project, "validate").returncode == 0
    planned = cli_run(project, "plan", "--out", "audlang-plan.json", "--format", "markdown")
    assert planned.returncode == 0 and "<details>" in planned.stdout and "**Plan: 3 to create" in planned.stdout
    applied = cli_run(project, "apply", "audlang-plan.json")
    assert applied.returncode == 0, applied.stderr
    assert cli_run(project, "apply", "audlang-plan.json").returncode == 1  # the same plan again: stale
