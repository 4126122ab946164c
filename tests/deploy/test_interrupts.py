"""SIGINT and SIGTERM sent to real audlang processes in each phase (plan, materialization, sync): a short
"interrupted", exit 130 or 143, the lock released, and the next apply carries on and converges. Also: the
apply summary's serial is the state's.

The signal lands mid-phase deterministically: ``AUDLANG_TEST_HOLD`` (``audlang.interrupts.hold``) makes the
process create a file when it reaches the phase and then run a query that takes minutes there, which the
signal interrupts; in the sync, a stand-in vendor server holds a request until the signal is sent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from deploy_fixtures import AS_OF, cli_run, engine_name, project, warehouse_url  # noqa: F401

SIGNALS = {"SIGINT": (signal.SIGINT, 130), "SIGTERM": (signal.SIGTERM, 143)}


def _state_json(cli_run, folder) -> dict:
    listed = cli_run(folder, "state", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def test_apply_summary_serial_is_the_state_serial_with_a_paused_object_in_the_plan(project, cli_run):
    text = (project / "segments.aud").read_text()
    (project / "segments.aud").write_text(text.replace('segment "Recent"', 'paused segment "Recent"'))
    assert cli_run(project, "apply", "--auto-approve", "--as-of", AS_OF).returncode == 0
    # Now "Recent" is deployed paused: every plan lists it, and it writes nothing.
    (project / "segments.aud").write_text(
        (project / "segments.aud").read_text().replace("> 500", "> 800").replace('tagged "VIP" or ', ""))
    applied = cli_run(project, "apply", "--auto-approve", "--as-of", AS_OF)
    assert applied.returncode == 0, applied.stderr
    assert '‖ paused segment "Recent"' in applied.stdout
    summary = [line for line in applied.stdout.splitlines() if line.startswith("Apply complete")]
    serial = _state_json(cli_run, project)["serial"]
    assert summary == [f"Apply complete: 3 change(s); state serial {serial}."], applied.stdout
    assert serial == 5  # 3 created, then 2 updated
