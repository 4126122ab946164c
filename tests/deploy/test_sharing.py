"""The embedded default shared by a team: readers beside an apply, a second apply, another tool's read-only
connection, and the state moved out of an older warehouse file. Real processes throughout.

The design (docs/architecture.md, "The embedded default"): the state and the lock live in a SQLite file beside
the DuckDB file; an apply holds the DuckDB file for its whole run; read commands open it read-only, so they
share it with any other reader, and wait a bounded time (AUDLANG_BUSY_TIMEOUT) for an apply, then name it.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from deploy_fixtures import cli_run, project, run_cli, start_cli, wait_for, warehouse_url  # noqa: F401

AS_OF = "2024-11-30"
# The storage of one engine is under test: the DuckDB file's single writer is what these tests are about.
pytestmark = pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)


def _start(folder, *args: str, **env: str) -> subprocess.Popen:
    return start_cli(folder, *args, env=env)


def _run(folder, *args: str, **env: str) -> subprocess.CompletedProcess:
    return run_cli(folder, *args, env=env)


@contextlib.contextmanager
def _applying(folder, delay: str) -> Iterator[subprocess.Popen]:
    """An apply of eight more segments (a step each, ``delay`` seconds apart), under way: one segment created."""
    _more_segments(folder)
    apply = _start(folder, "apply", "--auto-approve", "--as-of", AS_OF, AUDLANG_APPLY_STEP_DELAY=delay)
    try:
        wait_for(apply, "created segment")
        yield apply
    finally:
        if apply.poll() is None:
            apply.kill()
            apply.wait()


def _more_segments(folder) -> None:
    """Enough steps that the apply (with a delay after each) is surely in flight while the others run."""
    (folder / "more.aud").write_text("".join(
        f'segment "Spent Over {n}" < lifetime_revenue > {n} >\n' for n in range(100, 900, 100)))


def test_readers_during_an_apply_never_harm_it(project):
    with _applying(project, "1.5") as apply:
        started = time.monotonic()
        busy = _run(project, "members", "Big Spenders", "--as-of", AS_OF, AUDLANG_BUSY_TIMEOUT="1")
        waited = time.monotonic() - started
        # The state is beside the file: it answers at once, lock and all.
        state = _run(project, "state", "list")
        plan_json = _run(project, "plan", "--as-of", AS_OF, AUDLANG_BUSY_TIMEOUT="1")
        out, err = apply.communicate(timeout=300)
    assert apply.returncode == 0, err
    assert "Apply complete" in out
    assert busy.returncode == 1, busy.stdout + busy.stderr
    assert "error[E408]: the warehouse is busy: the DuckDB file is held by apply " in busy.stderr
    assert re.search(r"held by apply [0-9a-f-]{36} by \S+ \(pid \d+\) started at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
                     busy.stderr), busy.stderr
    assert "Traceback" not in busy.stderr and waited < 20
    assert state.returncode == 0, state.stderr
    assert plan_json.returncode == 1 and "the warehouse is busy" in plan_json.stderr
    # What the apply did is whole: nothing left to do, and the reader's attempt changed nothing.
    assert _run(project, "plan", "--as-of", AS_OF, "--detailed-exitcode").returncode == 0


def test_a_reader_waits_for_an_apply_then_answers(project):
    with _applying(project, "1") as apply:
        reader = _start(project, "members", "Big Spenders", "--as-of", AS_OF, AUDLANG_BUSY_TIMEOUT="120")
        out, err = apply.communicate(timeout=300)
        apply_done = time.monotonic()
        members, reader_err = reader.communicate(timeout=180)
        reader_done = time.monotonic()
    assert apply.returncode == 0, err
    assert reader.returncode == 0, reader_err
    assert members.splitlines()[0] == "customer_id" and len(members.splitlines()) > 1
    assert reader_done >= apply_done - 0.5  # it answered once the apply let go of the file


def test_a_second_apply_gets_the_lock_error_at_once(project):
    with _applying(project, "1.5") as first:
        started = time.monotonic()
        second = _run(project, "apply", "--auto-approve", "--as-of", AS_OF)
        took = time.monotonic() - started
        out, err = first.communicate(timeout=300)
    assert second.returncode == 1
    assert "error[E510]: the state is locked: apply by" in second.stderr, second.stderr
    assert took < 10, f"the second apply took {took:.1f} s to refuse"
    assert first.returncode == 0, err


HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
con.execute("SELECT count(*) FROM customer_360").fetchall()
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_another_tools_read_only_connection_does_not_break_reads(project, warehouse_url):
    assert _run(project, "apply", "--auto-approve", "--as-of", AS_OF).returncode == 0
    database = sa.engine.make_url(warehouse_url).database
    tool = subprocess.Popen([sys.executable, "-c", HOLDER, database, "120"], stdout=subprocess.PIPE, text=True)
    try:
        assert tool.stdout.readline().strip() == "holding"
        for args in (("members", "VIP"), ("insights", "VIP"), ("plan", "--detailed-exitcode"), ("state", "list")):
            done = _run(project, *args, "--as-of", AS_OF) if args[0] != "state" else _run(project, *args)
            assert done.returncode == 0, (args, done.stderr)
        # Writing needs the file to itself: a clear refusal naming the other program, the lock let go.
        (project / "segments.aud").write_text((project / "segments.aud").read_text().replace("> 500", "> 400"))
        refused = _run(project, "apply", "--auto-approve", "--as-of", AS_OF, AUDLANG_BUSY_TIMEOUT="1")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert f"held by another program (pid {tool.pid})" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    finally:
        tool.kill()
        tool.wait()
    assert _run(project, "apply", "--auto-approve", "--as-of", AS_OF).returncode == 0
    assert _run(project, "plan", "--as-of", AS_OF, "--detailed-exitcode").returncode == 0


def test_the_state_in_an_older_warehouse_file_moves_beside_it(project, warehouse_url):
    """A project whose state an earlier audlang kept inside the DuckDB file: the first command moves it to the
    SQLite file beside it (the same lineage, serial, objects and history) and drops it from the DuckDB file."""
    from audlang.warehouse import default_state

    inside = _run(project, "apply", "--auto-approve", "--as-of", AS_OF, "--state", warehouse_url)
    assert inside.returncode == 0, inside.stderr
    before = _run(project, "state", "list", "--format", "json", "--state", warehouse_url).stdout
    history = _run(project, "history", "--format", "json", "--state", warehouse_url).stdout
    beside = default_state(warehouse_url)
    assert not os.path.exists(sa.engine.make_url(beside).database)
    assert _run(project, "state", "list", "--format", "json").stdout == before
    assert _run(project, "history", "--format", "json").stdout.startswith(history.rstrip().rstrip("]"))
    engine = sa.create_engine(warehouse_url)
    with engine.connect() as conn:
        assert not sa.inspect(conn).has_table("audlang_state")
        assert sa.inspect(conn).has_table("audlang_members_big_spenders")  # the warehouse's own views stay
    engine.dispose()
    folder = os.path.dirname(sa.engine.make_url(beside).database)
    assert not [name for name in os.listdir(folder) if ".moving" in name]
    assert _run(project, "plan", "--as-of", AS_OF, "--detailed-exitcode").returncode == 0
