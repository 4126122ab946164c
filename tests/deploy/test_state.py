"""The state store: in-place upgrade of an older state, refusals, and CLI errors without tracebacks."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from deploy_fixtures import cli_run, project, warehouse_url  # noqa: F401

from audlang.diagnostics import AudlangError
from audlang.state import StateStore, refuse_unsupported
from audlang.warehouse import default_state

AS_OF = "2024-11-30"


def _v0(url: str) -> None:
    """A hand-made state of schema version 0 (the prototype layout, before locks and history)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE audlang_state (serial INTEGER)"))
        conn.execute(sa.text("INSERT INTO audlang_state VALUES (7)"))
        conn.execute(sa.text("CREATE TABLE audlang_segments (name TEXT PRIMARY KEY, definition TEXT, "
                             "members INTEGER, as_of TEXT)"))
        conn.execute(sa.text("INSERT INTO audlang_segments VALUES ('Recent', "
                             "'segment \"Recent\" < has_purchased within last 90 days >\n', 0, '2024-11-30')"))
    engine.dispose()


def test_an_older_state_is_upgraded_in_place(project, warehouse_url, cli_run):
    _v0(warehouse_url)
    listed = cli_run(project, "state", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    doc = json.loads(listed.stdout)
    assert doc["serial"] == 8 and doc["lineage"]
    assert [(o["name"], o["members"]) for o in doc["objects"]] == [("Recent", 0)]
    # A DuckDB warehouse's state moved beside it (a SQLite file) on the way; elsewhere it stays in the warehouse.
    engine = sa.create_engine(default_state(warehouse_url))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT schema_version FROM audlang_state")).scalar() >= 1
        assert not sa.inspect(conn).has_table("audlang_segments")
    engine.dispose()
    engine = sa.create_engine(warehouse_url)
    with engine.connect() as conn:
        assert sa.inspect(conn).has_table("audlang_state") == (default_state(warehouse_url) == warehouse_url)
    engine.dispose()
    planned = json.loads(cli_run(project, "plan", "--as-of", AS_OF, "--format", "json").stdout)
    actions = {a["name"]: a["action"] for a in planned["actions"]}
    assert actions == {"Big Spenders": "create", "VIP": "create", "Recent": "refresh"}
    assert cli_run(project, "apply", "--auto-approve", "--as-of", AS_OF).returncode == 0
    assert cli_run(project, "plan", "--as-of", AS_OF, "--detailed-exitcode").returncode == 0
    events = [e["event"] for e in json.loads(cli_run(project, "history", "--format", "json").stdout)]
    assert events[0] == "state upgraded"


def test_a_newer_state_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    store = StateStore(url)
    store.prepare(create=True)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audlang_state SET schema_version = 99"))
    engine.dispose()
    with pytest.raises(AudlangError, match="written by a newer audlang"):
        StateStore(url).snapshot()


@pytest.mark.parametrize("url", ["hive://localhost:10000/default", "databricks://token@host/x"])
def test_spark_cannot_hold_the_state(url):
    with pytest.raises(AudlangError, match="cannot hold the audlang state"):
        refuse_unsupported(url)


# The CLI's messages, not the engine's: one engine is enough.
@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_cli_errors_are_messages_not_tracebacks(project, cli_run):
    spark = cli_run(project, "plan", "--as-of", AS_OF, "--state", "hive://localhost:10000/default")
    assert spark.returncode == 1 and "Spark SQL (hive://) cannot hold the audlang state" in spark.stderr
    missing = cli_run(project, "apply", "nowhere.json")
    assert missing.returncode == 1 and "cannot read the plan" in missing.stderr
    (project / "junk.json").write_text("{not json")
    junk = cli_run(project, "apply", "junk.json")
    assert junk.returncode == 1 and "not an audlang plan file" in junk.stderr
    no_terminal = cli_run(project, "apply", "--as-of", AS_OF, input="")
    assert no_terminal.returncode == 1 and "--auto-approve" in no_terminal.stderr
    assert cli_run(project, "plan", "--as-of", AS_OF, "--out", "p.json").returncode == 0
    both = cli_run(project, "apply", "p.json", "--as-of", AS_OF)
    assert both.returncode == 1 and "carries its own as-of" in both.stderr
    unknown = cli_run(project, "state", "show", "Nope")
    assert unknown.returncode == 1 and "nothing deployed under this name" in unknown.stderr
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bad = cli_run(project, "plan", "--detailed-exitcode", "--warehouse",
                  f"postgresql+psycopg://u:secret@127.0.0.1:{port}/x")
    assert bad.returncode == 1 and "secret" not in bad.stderr + bad.stdout
    for result in (spark, missing, junk, no_terminal, both, unknown, bad):
        assert "Traceback" not in result.stderr


# What the plan, the state and the history record, not how an engine stores it: one engine is enough.
@pytest.mark.parametrize("warehouse", ["sqlite"], indirect=True)
def test_secrets_stay_out_of_plan_state_and_history(project, cli_run, warehouse_url):
    (project / "send.aud").write_text(
        'destination "SMS" attentive <\n  api_key = env("ATTENTIVE_KEY")\n  segment = "x"\n>\n')
    env = {"ATTENTIVE_KEY": "sk-very-secret-value"}
    planned = cli_run(project, "plan", "--as-of", AS_OF, "--format", "json", env=env)
    assert planned.returncode == 0, planned.stderr
    assert "sk-very-secret" not in planned.stdout
    assert cli_run(project, "apply", "--auto-approve", "--as-of", AS_OF, env=env).returncode == 0
    engine = sa.create_engine(warehouse_url)
    with engine.connect() as conn:
        dump = " ".join(str(row) for table in ("audlang_state", "audlang_objects", "audlang_history")
                        for row in conn.execute(sa.text(f"SELECT * FROM {table}")))
    engine.dispose()
    assert "ATTENTIVE_KEY" in dump and "sk-very-secret" not in dump
