"""Fixtures of the deploy tests (imported by each test module: a second conftest.py would shadow the root one):
a small synthetic warehouse on the engine under test (conftest's ``warehouse``), a project writer, the CLI in a
real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

AS_OF = "2024-11-30"
CUSTOMERS = 200

SEGMENTS = '''# Customers who spent over 500 in all.
segment "Big Spenders" < lifetime_revenue > 500 >

segment "VIP" < tagged "VIP" or in segment "Big Spenders" >

segment "Recent" < has_purchased within last 90 days >
'''


#: One generated warehouse per engine for the session (its URL); each test gets a copy.
_TEMPLATES: dict[str, str] = {}


@pytest.fixture
def warehouse_url(warehouse):
    """A fresh copy of the small synthetic warehouse on the engine under test (conftest's ``warehouse``)."""
    from audlang import datagen

    if warehouse.name not in _TEMPLATES:
        template = warehouse.new_url("deploy_template")
        datagen.generate(template, customers=CUSTOMERS, seed=7)
        _TEMPLATES[warehouse.name] = template
    return warehouse.new_url("deploy", copy_of=_TEMPLATES[warehouse.name])


@pytest.fixture
def project(write_project, warehouse_url):
    """A project folder using the warehouse under test (the state in the warehouse)."""
    folder = write_project({"segments.aud": SEGMENTS}, config=f'warehouse = "{warehouse_url}"\n')
    return folder


def cli_env(env: dict | None = None) -> dict:
    """The environment of a CLI process under test: no colour, no warehouse or state from outside."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    full_env.pop("AUDLANG_WAREHOUSE", None)
    full_env.pop("AUDLANG_STATE", None)
    return full_env


def start_cli(folder: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    """``audlang --project FOLDER ARGS`` started in a real process, its output piped (``wait_for`` reads it)."""
    return subprocess.Popen([sys.executable, "-m", "audlang", "--project", str(folder), *args], cwd=folder,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(env))


def wait_for(process: subprocess.Popen, text: str, timeout: float = 90) -> str:
    """Read the process's output until a line shows ``text`` (e.g. an apply under way); what it read."""
    import time

    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen += line
        if text in line:
            return seen
    raise AssertionError(f"{text!r} never showed; output so far:\n{seen}\n{process.stderr.read()}")


def run_cli(folder: Path, *args: str, input: str | None = None, env: dict | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    """``audlang --project FOLDER ARGS`` in a real process (no terminal)."""
    return subprocess.run([sys.executable, "-m", "audlang", "--project", str(folder), *args], cwd=folder,
                          input=input, capture_output=True, text=True, env=cli_env(env), timeout=timeout)


@pytest.fixture
def cli_run():
    return run_cli


# -- what apply materialized: a view per segment, each over its generation table (warehouse.generations) ---

def segment_members(url: str, segment: str) -> set[str]:
    """The customer ids the segment's view shows (none when it has no view)."""
    import sqlalchemy as sa

    from audlang.check.names import view_name

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if view_name(segment) not in sa.inspect(conn).get_view_names():
                return set()
            return {r[0] for r in conn.execute(sa.text(f"SELECT customer_id FROM {view_name(segment)}"))}
    finally:
        engine.dispose()


def materialized_views(url: str) -> dict[str, int]:
    """{view: rows} of every segment view in the warehouse."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            views = [v for v in sa.inspect(conn).get_view_names() if v.startswith("audlang_members_")]
            return {v: conn.execute(sa.text(f"SELECT count(*) FROM {v}")).scalar() for v in views}
    finally:
        engine.dispose()


def generation_tables(url: str) -> list[str]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(t for t in sa.inspect(conn).get_table_names() if t.startswith("audlang_gen_"))
    finally:
        engine.dispose()


def assert_nothing_left_behind(url: str) -> None:
    """One generation table per segment view (a transaction that stopped left none of its own), and no
    table of an older layout."""
    import sqlalchemy as sa

    tables = generation_tables(url)
    views = materialized_views(url)
    assert len([t for t in tables if "campaign_members" not in t]) == len(views), (tables, views)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert not sa.inspect(conn).has_table("audlang_membership")
    finally:
        engine.dispose()
