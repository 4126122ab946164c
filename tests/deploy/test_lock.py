"""Locking across real processes, force-unlock, recovery after SIGKILL, and readers during an apply."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import pytest
import sqlalchemy as sa
from deploy_fixtures import (  # noqa: F401
    assert_nothing_left_behind, cli_run, project, start_cli, wait_for, warehouse_url,
)

from audlang.check.names import view_name

AS_OF = "2024-11-30"


def _start_apply(folder, delay: float = 5.0) -> subprocess.Popen:
    return start_cli(folder, "apply", "--auto-approve", "--as-of", AS_OF, env={"AUDLANG_APPLY_STEP_DELAY": str(delay)})


def test_second_apply_fails_at_once_naming_the_holder(project, cli_run):
    first = _start_apply(project)
    try:
        wait_for(first, "created segment")
        started = time.monotonic()
        second = cli_run(project, "apply", "--auto-approve", "--as-of", AS_OF)
        assert second.returncode == 1
        assert "the state is locked: apply by" in second.stderr
        assert f"pid {first.pid}" in second.stderr and "lock id" in second.stderr and "since 20" in second.stderr
        assert "Traceback" not in second.stderr
        assert time.monotonic() - started < 60
    finally:
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert "Apply complete: 3 changes" in out
    listed = json.loads(cli_run(project, "state", "list", "--format", "json").stdout)
    assert listed["serial"] == 3
    assert cli_run(project, "plan", "--as-of", AS_OF, "--detailed-exitcode").returncode == 0


def test_two_applies_started_together(project, cli_run):
    one, two = _start_apply(project, 4.0), _start_apply(project, 4.0)
    results = [p.communicate(timeout=180) for p in (one, two)]
    codes = sorted([one.returncode, two.returncode])
    assert codes == [0, 1], results
    loser = results[[one.returncode, two.returncode].index(1)][1]
    # The loser meets the lock, or the file held by the other, or (when it waited for the file until the
    # winner was done) its own plan made stale by the winner's apply: each a clear refusal.
    # Or, when both passed the lock check before either took it, the loser's plan waited for the warehouse file
    # the winner holds, and named it: "the warehouse is busy: … held by apply <id> … started at …".
    assert ("locked" in loser or "the warehouse is busy" in loser and "held by apply" in loser
            or "stale plan" in loser), loser
    assert "Traceback" not in loser
    assert cli_run(project, "plan", "--as-of", AS_OF, "--detailed-exitcode").returncode == 0


def test_sigkill_mid_apply_then_the_next_apply_recovers(project, warehouse_url, cli_run):
    victim = _start_apply(project, 3.0)
    wait_for(victim, "created segment")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    victim.stdout.close()
    victim.stderr.close()
    partial = json.loads(cli_run(project, "state", "list", "--format", "json").stdout)
    assert 1 <= len(partial["objects"]) < 3
    planned = cli_run(project, "plan", "--as-of", AS_OF, "--format", "json")
    assert [a["action"] for a in json.loads(planned.stdout)["actions"]] == ["create"] * (3 - len(partial["objects"]))
    again = cli_run(project, "apply", "--auto-approve", "--as-of", AS_OF)
    assert again.returncode == 0, again.stderr
    assert "took over the lock" in again.stdout
    assert cli_run(project, "plan", "--as-of", AS_OF, "--detailed-exitcode").returncode == 0
    # Nothing lost: the recorded counts are the rows in the warehouse.
    state = json.loads(cli_run(project, "state", "list", "--format", "json").stdout)
    engine = sa.create_engine(warehouse_url)
    with engine.connect() as conn:
        for o in state["objects"]:
            rows = conn.execute(sa.text(f"SELECT count(*) FROM {view_name(o['name'])}")).scalar()
            assert rows == o["members"]
    engine.dispose()
    # The killed transaction left nothing behind: no generation table but the one each view reads.
    assert_nothing_left_behind(warehouse_url)
    events = [e["event"] for e in json.loads(cli_run(project, "history", "--format", "json").stdout)]
    assert "lock taken over" in events


# One engine is enough: the lock row is engine-independent; PostgreSQL's advisory part is the next test.
@pytest.mark.parametrize("warehouse", ["sqlite"], indirect=True)
def test_force_unlock(project, cli_run):
    from audlang.state import StateStore

    url = (project / "audlang.toml").read_text().split('"')[1]
    holder = StateStore(url)
    info, _ = holder.acquire()
    # A holder on another machine cannot be checked: only force-unlock releases it.
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audlang_lock SET host = 'elsewhere'"))
    engine.dispose()
    blocked = cli_run(project, "apply", "--auto-approve", "--as-of", AS_OF)
    assert blocked.returncode == 1 and info.lock_id in blocked.stderr
    wrong = cli_run(project, "force-unlock", "not-the-id")
    assert wrong.returncode == 1 and "another id" in wrong.stderr
    released = cli_run(project, "force-unlock", info.lock_id)
    assert released.returncode == 0 and "Released the lock" in released.stdout
    assert cli_run(project, "apply", "--auto-approve", "--as-of", AS_OF).returncode == 0
    assert cli_run(project, "force-unlock", info.lock_id).returncode == 1  # not locked any more


def test_postgresql_lock_holds_across_sessions_and_dies_with_its_holder(postgresql_url):
    """The advisory lock: a live holder blocks from any session (any machine); a dead one does not."""
    import uuid

    from audlang.state import LockHeld, StateStore

    name = "lock_" + uuid.uuid4().hex[:8]
    admin = sa.create_engine(postgresql_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    url = postgresql_url.rsplit("/", 1)[0] + f"/{name}"
    code = ("import sys, time; from audlang.state import StateStore; s = StateStore(sys.argv[1]); "
            "info, _ = s.acquire(); print(info.lock_id, flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, text=True)
    try:
        lock_id = holder.stdout.readline().strip()
        try:
            StateStore(url).acquire()
            raise AssertionError("the lock was not held")
        except LockHeld as error:
            assert lock_id in str(error)
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.5)
    store = StateStore(url)
    info, taken_over = store.acquire()
    assert taken_over is not None and taken_over.lock_id == lock_id
    store.release()


def test_readers_see_the_old_or_the_new_membership(project, warehouse_url, cli_run):
    """While apply replaces a segment's membership, a reader sees the whole old set or the whole new one."""
    from audlang.deploy import apply_plan, plan_project
    from audlang.compile import AsOf
    from audlang.project import load

    assert cli_run(project, "apply", "--auto-approve", "--as-of", AS_OF).returncode == 0
    engine = sa.create_engine(warehouse_url)
    with engine.connect() as conn:
        old = conn.execute(sa.text("SELECT count(*) FROM audlang_members_big_spenders")).scalar()
    (project / "segments.aud").write_text((project / "segments.aud").read_text().replace("> 500", "> 50"))
    loaded = load(None, str(project))
    planned = plan_project(loaded, as_of=AsOf.parse(AS_OF))
    new = planned.actions[0].membership.after
    assert new != old
    seen: set[int] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                with engine.connect() as conn:
                    seen.add(conn.execute(sa.text(
                        "SELECT count(*) FROM audlang_members_big_spenders")).scalar())
            except sa.exc.OperationalError:
                pass  # SQLite: the writer holds the file for a moment

    reader = threading.Thread(target=read)
    reader.start()
    try:
        time.sleep(0.2)
        apply_plan(planned, loaded.config.warehouse, root=project, model=loaded.model)
        time.sleep(0.2)
    finally:
        stop.set()
        reader.join()
        engine.dispose()
    assert seen <= {old, new} and new in seen and old in seen
