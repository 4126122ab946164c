"""The state's one upgrade chain over every earlier layout: the core tables of version 0 or 1, the sync's
control tables of their own version 1 or 2 (in ``audlang_sync_meta``), with or without the columns version 2
added, alone in a database or beside the core. Each is built from the DDL of its time (tests/state_layouts.py)
on each engine and opened with today's code: upgraded in place, in one transaction, rows kept."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
import state_layouts
from deploy_fixtures import cli_run, project, warehouse_url  # noqa: F401

from audlang import sync
from audlang.diagnostics import AudlangError
from audlang.state import StateStore, store, sync_tables

TARGET = "Holiday\x1fA\x1fSMS"

# (core version, the sync's own version, options of state_layouts.make)
LAYOUTS = [
    pytest.param(None, 2, {}, id="sync-2-alone"),
    pytest.param(None, 1, {}, id="sync-1-alone"),
    pytest.param(1, 2, {}, id="core-1-sync-2"),
    pytest.param(1, 1, {}, id="core-1-sync-1"),
    pytest.param(1, 1, {"added": ("target_id", "status")}, id="core-1-sync-1-partly-altered"),
    pytest.param(1, 1, {"added": ("target_id", "ticks", "status", "tick", "accepted")},
                 id="core-1-sync-1-altered-not-stamped"),
    pytest.param(1, 1, {"targets": False}, id="core-1-sync-1-before-the-targets-table"),
    pytest.param(1, 1, {"meta_row": False}, id="core-1-sync-meta-without-its-row"),
    pytest.param(0, 1, {}, id="core-0-sync-1"),
    pytest.param(1, None, {}, id="core-1-never-synced"),
    pytest.param(0, None, {}, id="core-0-never-synced"),
]


def _fill(engine: sa.Engine, metadata: sa.MetaData) -> None:
    """One row in each sync table the layout has, with the columns it has."""
    t = metadata.tables
    with engine.begin() as conn:
        if "audlang_sync_targets" in t:
            row = {"target": TARGET, "audience": "aud-1"}
            if "target_id" in t["audlang_sync_targets"].c:
                row["target_id"] = "id-1"
            conn.execute(t["audlang_sync_targets"].insert().values(**row))
        if "audlang_sync_batches" in t:
            conn.execute(t["audlang_sync_batches"].insert().values(
                target=TARGET, seq=1, operation="add", idempotency_key="key-1",
                members=json.dumps([["C1", "+15035550000", {"phone": "+15035550000"}]]),
                planned_at="2024-11-30T00:00:00Z"))
        if "audlang_sync_errors" in t:
            conn.execute(t["audlang_sync_errors"].insert().values(
                target=TARGET, customer_id="C2", operation="add", campaign="Holiday", group_name="A",
                destination="SMS", member_key="+15035550001", status="400", message="invalid phone", attempts=1,
                first_at="2024-11-30T00:00:00Z", last_at="2024-11-30T00:00:00Z"))
        if "audlang_sync_runs" in t:
            conn.execute(t["audlang_sync_runs"].insert().values(
                run_id="run-1", target=TARGET, campaign="Holiday", group_name="A", destination="SMS",
                started_at="2024-11-30T00:00:00Z", finished_at="2024-11-30T00:00:01Z", status="partial",
                detail=json.dumps({"campaign": "Holiday", "group": "A", "destination": "SMS", "added": 1})))
        if "audlang_sync_members" in t:
            conn.execute(t["audlang_sync_members"].insert().values(
                target=TARGET, customer_id="C3", member_key="+15035550002", fingerprint="f",
                data='{"phone": "+15035550002"}'))


def _events(conn: sa.Connection) -> list[tuple[str, dict | None]]:
    return [(r.event, json.loads(r.detail) if r.detail else None)
            for r in conn.execute(sa.text("SELECT event, detail FROM audlang_history ORDER BY seq"))]


@pytest.mark.parametrize(("core", "own", "options"), LAYOUTS)
def test_every_earlier_layout_is_upgraded_in_place(warehouse, core, own, options):
    url = warehouse.new_url("state")
    engine = sa.create_engine(url)
    try:
        metadata = state_layouts.make(engine, core, own, **options)
        _fill(engine, metadata)
        assert StateStore(url, engine).prepare(create=False) == store.SCHEMA_VERSION == 2
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            assert not inspector.has_table("audlang_sync_meta")
            for table in sync_tables.metadata.sorted_tables:
                assert state_layouts.columns(conn, table.name) == set(table.c.keys()), table.name
            state = conn.execute(sa.text("SELECT schema_version, lineage, serial FROM audlang_state")).one()
            assert state.schema_version == 2
            if core == 1:
                assert (state.lineage, state.serial) == (state_layouts.LINEAGE, 3)  # the same history goes on
            upgraded = [d for e, d in _events(conn) if e == "state upgraded"]
            assert upgraded == ([] if core is None else [{"from": core, "to": 2}])
            # Version 1's acknowledged membership waits for the sync, which moves it into the warehouse.
            assert inspector.has_table("audlang_sync_members") == (own == 1)
            targets = conn.execute(sa.text("SELECT target, audience, target_id, ticks FROM audlang_sync_targets"))
            expected_targets = [] if not options.get("targets", True) or own is None else [
                (TARGET, "aud-1", "id-1" if own == 2 or "target_id" in options.get("added", ()) else None, None)]
            assert [tuple(r) for r in targets] == expected_targets
            batches = conn.execute(sa.text("SELECT seq, idempotency_key, status, tick, accepted "
                                           "FROM audlang_sync_batches")).fetchall()
            assert [tuple(r) for r in batches] == ([] if own is None else [(1, "key-1", None, None, None)])
        if own is not None:  # read back through today's code
            assert [(e.customer_id, e.message) for e in sync.errors(engine)] == [("C2", "invalid phone")]
            assert [(r["run_id"], r["status"], r["added"]) for r in sync.runs(engine)] == [("run-1", "partial", 1)]
        # Opened again: nothing left to do, nothing recorded twice.
        with engine.connect() as conn:
            before = _events(conn)
        assert StateStore(url, engine).prepare(create=False) == 2
        with engine.connect() as conn:
            assert _events(conn) == before
    finally:
        engine.dispose()


def test_a_new_state_has_the_sync_tables_and_no_version_of_their_own(warehouse):
    url = warehouse.new_url("state")
    engine = sa.create_engine(url)
    try:
        assert StateStore(url, engine).prepare(create=False) is None  # nothing there: nothing made
        assert StateStore(url, engine).prepare(create=True) == 2
        with engine.connect() as conn:
            assert sync_tables.present(conn) and not sa.inspect(conn).has_table("audlang_sync_meta")
            assert _events(conn) == []
    finally:
        engine.dispose()


def test_an_upgrade_stopped_halfway_leaves_the_state_as_it_was(warehouse, monkeypatch):
    """One transaction: the core version, the sync's own version and the columns added so far roll back."""
    url = warehouse.new_url("state")
    engine = sa.create_engine(url)
    try:
        state_layouts.make(engine, 1, 1)
        real, calls = sync_tables.add_column, []

        def stopped(conn, table, column):
            calls.append(column.name)
            if len(calls) == 3:
                raise KeyboardInterrupt
            real(conn, table, column)

        monkeypatch.setattr(sync_tables, "add_column", stopped)
        with pytest.raises(KeyboardInterrupt):
            StateStore(url, engine).prepare(create=False)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT schema_version FROM audlang_state")).scalar() == 1
            assert conn.execute(sa.text("SELECT schema_version FROM audlang_sync_meta")).scalar() == 1
            assert state_layouts.columns(conn, "audlang_sync_targets") == {"target", "audience"}
            assert _events(conn) == [("apply finished", None)]
        monkeypatch.setattr(sync_tables, "add_column", real)
        assert StateStore(url, engine).prepare(create=False) == 2  # the next open does it all
    finally:
        engine.dispose()


def test_sync_tables_of_a_newer_audlang_are_refused_and_left_alone(warehouse):
    url = warehouse.new_url("state")
    engine = sa.create_engine(url)
    try:
        state_layouts.make(engine, 1, 2)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE audlang_sync_meta SET schema_version = 3"))
        with pytest.raises(AudlangError) as caught:
            StateStore(url, engine).snapshot()
        (diagnostic,) = caught.value.diagnostics
        assert diagnostic.code == "E507" and "written by a newer audlang" in diagnostic.message
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT schema_version FROM audlang_state")).scalar() == 1
            assert conn.execute(sa.text("SELECT schema_version FROM audlang_sync_meta")).scalar() == 3
    finally:
        engine.dispose()


def test_a_state_newer_than_this_audlang_is_refused_by_the_sync_too(warehouse):
    url = warehouse.new_url("state")
    engine = sa.create_engine(url)
    try:
        StateStore(url, engine).prepare(create=True)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE audlang_state SET schema_version = 99"))
        for read in (sync.errors, sync.runs):
            with pytest.raises(AudlangError) as caught:
                read(engine)
            assert [d.code for d in caught.value.diagnostics] == ["E506"]
    finally:
        engine.dispose()


# The CLI's message, not the engine's: one engine is enough.
@pytest.mark.parametrize("warehouse", ["sqlite"], indirect=True)
def test_the_cli_says_why_it_cannot_open_the_sync_tables(project, cli_run, tmp_path):
    """What reached users as an internal error (a RuntimeError of the sync's own upgrade) is a diagnostic."""
    url = f"sqlite:///{tmp_path / 'old-state.db'}"
    engine = sa.create_engine(url)
    state_layouts.make(engine, 1, 2)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audlang_sync_meta SET schema_version = 3"))
    engine.dispose()
    for args in (("sync", "status"), ("sync", "errors"), ("plan", "--as-of", "2024-11-30"), ("state", "list")):
        result = cli_run(project, *args, "--state", url)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert "error[E507]" in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
