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
from deploy_fixtures import (  # noqa: F401
    AS_OF, assert_nothing_left_behind, cli_run, materialized_views, project, warehouse_url,
)

from audlang.check.names import view_name

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
    assert summary == [f"Apply complete: 3 changes; state serial {serial}."], applied.stdout
    assert serial == 5  # 3 created, then 2 updated


# ------------------------------------------------------------------ real processes, real signals


def _start(folder: Path, *args: str, hold: str | None = None, env: dict | None = None) -> subprocess.Popen:
    """``audlang --project FOLDER ARGS`` in a process of its own; with ``hold``, held in that phase."""
    from audlang import interrupts

    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    for name in ("AUDLANG_WAREHOUSE", "AUDLANG_STATE", interrupts.HOLD_ENV, interrupts.HOLD_FILE_ENV):
        full_env.pop(name, None)
    reached = folder / "reached"
    reached.unlink(missing_ok=True)
    if hold:
        full_env[interrupts.HOLD_ENV] = hold
        full_env[interrupts.HOLD_FILE_ENV] = str(reached)
    return subprocess.Popen([sys.executable, "-m", "audlang", "--project", str(folder), *args], cwd=folder,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=full_env)


def _wait_until_held(process: subprocess.Popen, folder: Path, timeout: float = 180) -> None:
    """Until the process has reached the held phase (its file is there), and a moment into the hold's query."""
    deadline = time.monotonic() + timeout
    while not (folder / "reached").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            out, err = process.communicate()
            raise AssertionError(f"the process never reached the phase (exit {process.returncode}):\n{out}\n{err}")
        time.sleep(0.05)
    time.sleep(0.5)


def _stopped(process: subprocess.Popen, signum: int, timeout: float = 60) -> tuple[int, str, str]:
    """Send ``signum`` (0: none, it was sent) and wait for the process to end."""
    started = time.monotonic()
    if signum:
        process.send_signal(signum)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"still running {timeout} s after the signal:\n{out}\n{err}") from None
    assert time.monotonic() - started < 30, "the stop took too long"
    return process.returncode, out, err


def _assert_interrupted(code: int, err: str, expected: int) -> None:
    assert code == expected, err
    assert "interrupted" in err.splitlines(), err
    for sign in ("Traceback", "internal error", "this is a bug", "E406", "Query interrupted", "Aborted"):
        assert sign not in err, err


def _no_lock(url: str) -> None:
    from audlang.state import StateStore

    store = StateStore(url)
    try:
        assert store.current_lock() is None
    finally:
        store.engine.dispose()


def _membership(url: str) -> dict[str, int]:
    """{view: members} of each segment materialized."""
    return materialized_views(url)


def _converged(cli_run, folder: Path, url: str) -> None:
    """The next apply carries on without a lock to take over; then nothing is left to do and the state's
    counts are the warehouse's rows."""
    again = cli_run(folder, "apply", "--auto-approve", "--as-of", AS_OF)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "took over the lock" not in again.stdout
    final = cli_run(folder, "plan", "--as-of", AS_OF, "--detailed-exitcode")
    assert final.returncode == 0, final.stdout + final.stderr
    state = _state_json(cli_run, folder)
    rows = _membership(url)
    assert {view_name(o["name"]): o["members"] for o in state["objects"] if o["kind"] == "segment"} == rows
    assert_nothing_left_behind(url)  # no generation table of a stopped transaction
    _no_lock(url)


@pytest.mark.parametrize("name", SIGNALS)
def test_interrupted_while_planning(project, warehouse_url, cli_run, name):
    signum, code = SIGNALS[name]
    plan = _start(project, "plan", "--as-of", AS_OF, hold="plan")
    _wait_until_held(plan, project)
    status, _out, err = _stopped(plan, signum)
    _assert_interrupted(status, err, code)
    # The plan inside an apply: stopped before the lock is taken; nothing deployed.
    apply = _start(project, "apply", "--auto-approve", "--as-of", AS_OF, hold="plan")
    _wait_until_held(apply, project)
    status, out, err = _stopped(apply, signum)
    _assert_interrupted(status, err, code)
    assert "Applying" not in out
    assert _state_json(cli_run, project)["objects"] == []
    _no_lock(warehouse_url)
    _converged(cli_run, project, warehouse_url)


@pytest.mark.parametrize("name", SIGNALS)
def test_interrupted_while_materializing_a_new_segment(project, warehouse_url, cli_run, name):
    signum, code = SIGNALS[name]
    apply = _start(project, "apply", "--auto-approve", "--as-of", AS_OF, hold="materialize:2")
    _wait_until_held(apply, project)
    status, out, err = _stopped(apply, signum)
    _assert_interrupted(status, err, code)
    # The first segment is deployed; the second's transaction rolled back: no view of it, nor table.
    deployed = _state_json(cli_run, project)
    assert len(deployed["objects"]) == 1 and deployed["serial"] == 1
    assert set(_membership(warehouse_url)) == {view_name(deployed["objects"][0]["name"])}
    assert_nothing_left_behind(warehouse_url)
    assert out.count("created segment") == 1 and "Apply complete" not in out
    _no_lock(warehouse_url)
    history = json.loads(cli_run(project, "history", "--format", "json").stdout)
    stop = [e for e in history if e["event"] == "apply interrupted"]
    assert len(stop) == 1 and stop[0]["detail"] == {"signal": name, "done": 1}
    _converged(cli_run, project, warehouse_url)


def test_interrupted_while_replacing_a_membership_keeps_the_old_one(project, warehouse_url, cli_run):
    assert cli_run(project, "apply", "--auto-approve", "--as-of", AS_OF).returncode == 0
    before, serial = _membership(warehouse_url), _state_json(cli_run, project)["serial"]
    (project / "segments.aud").write_text((project / "segments.aud").read_text().replace("> 500", "> 800"))
    apply = _start(project, "apply", "--auto-approve", "--as-of", AS_OF, hold="materialize")
    _wait_until_held(apply, project)
    status, _out, err = _stopped(apply, signal.SIGTERM)
    _assert_interrupted(status, err, 143)
    assert _membership(warehouse_url) == before  # the new rows were written in the transaction, never seen
    assert _state_json(cli_run, project)["serial"] == serial
    _converged(cli_run, project, warehouse_url)
    assert _membership(warehouse_url)["audlang_members_big_spenders"] < before["audlang_members_big_spenders"]


# ------------------------------------------------------------------ the sync: a vendor that holds a request

SYNCED = '''
segment "Reachable" < phone is set or email is set >

destination "Vendor" {kind} <
{settings}
  batch_size = 25
>

campaign "Holiday" <
  audience segment "Reachable"
  treatment "All" 100% to "Vendor"
>
'''
ATTENTIVE = '''  api_key = env("AUDLANG_TEST_KEY")
  segment = "holiday"
  base_url = "{url}"
  identifiers = (customer_id)'''
WEBHOOK = '''  url = "{url}/hook"
  header "Authorization" = "Bearer " + env("AUDLANG_TEST_KEY")'''


def _held(base):
    """``base`` (a stand-in vendor server of tests/sync) holding its Nth request until ``release`` is set."""

    class Held(base):
        def __init__(self, hold_at: int):
            super().__init__(api_key="k-123")
            self.hold_at, self.seen = hold_at, 0
            self.arrived, self.release = threading.Event(), threading.Event()

        def handle(self, method, path, payload, headers):
            with self.lock:
                self.seen += 1
                mine = self.seen == self.hold_at
            if mine:
                self.arrived.set()
                self.release.wait(90)
            return super().handle(method, path, payload, headers)

    return Held


@pytest.fixture
def vendor(monkeypatch):
    """``make(kind, hold_at)``: a held stand-in vendor server on 127.0.0.1, closed after the test."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "sync"))
    made = []

    def make(kind: str, hold_at: int):
        import vendor_servers

        base = {"attentive": vendor_servers.AttentiveServer, "webhook": vendor_servers.WebhookServer}[kind]
        server = _held(base)(hold_at)
        made.append(server)
        return server

    yield make
    for server in made:
        server.release.set()
        server.close()


def _sync_project(folder: Path, kind: str, server) -> dict:
    settings = (ATTENTIVE if kind == "attentive" else WEBHOOK).format(url=server.url)
    (folder / "sync.aud").write_text(SYNCED.format(kind=kind, settings=settings))
    return {"AUDLANG_TEST_KEY": "k-123"}


def _reachable(cli_run, folder: Path) -> set[str]:
    members = cli_run(folder, "members", "Reachable", "--as-of", AS_OF)
    assert members.returncode == 0, members.stderr
    return set(members.stdout.split()[1:])


# The sync's handling of a signal, not the engine: two engines (each with both signals) keep this slow test
# short; the membership tests above run on every engine.
@pytest.mark.parametrize("warehouse", ["duckdb", "sqlite"], indirect=True)
@pytest.mark.parametrize("name", SIGNALS)
def test_interrupted_while_syncing_finishes_the_batch_then_resumes(project, warehouse_url, cli_run, vendor,
                                                                   name):
    signum, code = SIGNALS[name]
    server = vendor("attentive", hold_at=3)
    env = _sync_project(project, "attentive", server)
    want = _reachable(cli_run, project)
    assert len(want) > 4 * 25
    apply = _start(project, "apply", "--auto-approve", "--as-of", AS_OF, env=env)
    assert server.arrived.wait(180), apply.communicate()
    apply.send_signal(signum)
    time.sleep(1.0)
    assert apply.poll() is None  # the batch in flight is awaited: it is not sent twice
    server.release.set()
    status, _out, err = _stopped(apply, signum=0)
    _assert_interrupted(status, err, code)
    assert "interrupt received: finishing the step under way" in err
    sent = server.members("holiday")
    assert len(sent) == 3 * 25 and sent < want  # the three batches sent, acknowledged; no more
    _no_lock(warehouse_url)
    plan = cli_run(project, "plan", "--as-of", AS_OF, env=env)
    assert "batches of an interrupted apply first" in plan.stdout, plan.stdout
    again = cli_run(project, "apply", "--auto-approve", "--as-of", AS_OF, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert server.members("holiday") == want
    assert server.duplicates() == []
    assert cli_run(project, "plan", "--as-of", AS_OF, "--detailed-exitcode", env=env).returncode == 0


# The second signal's handling, not the engine: one engine is enough.
@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_a_second_signal_stops_the_sync_at_once_and_the_batch_goes_again_under_its_key(
        project, warehouse_url, cli_run, vendor):
    server = vendor("webhook", hold_at=2)
    env = _sync_project(project, "webhook", server)
    want = _reachable(cli_run, project)
    apply = _start(project, "apply", "--auto-approve", "--as-of", AS_OF, env=env)
    assert server.arrived.wait(180), apply.communicate()
    apply.send_signal(signal.SIGINT)
    time.sleep(1.0)
    status, _out, err = _stopped(apply, signal.SIGINT)  # the second: no waiting for the vendor
    _assert_interrupted(status, err, 130)
    server.release.set()  # the vendor applies the request its client gave up on
    _no_lock(warehouse_url)
    again = cli_run(project, "apply", "--auto-approve", "--as-of", AS_OF, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert server.members("Holiday/All") == want
    assert len(server.redelivered) == 1  # that batch, sent again under its key, dropped by the receiver
    operations = [op for ops in server.keys.values() for op in ops]
    assert len(operations) == len(set(operations)) == len(want)
