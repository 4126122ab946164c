"""Shared pieces of the sync tests: a small warehouse, a project, the expected membership of a group."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from audlang import datagen
from audlang.compile import AsOf
from audlang.destinations import make_member
from audlang.project import analyze
from audlang.sync import FAULT_ENV

AS_OF = AsOf.parse("2024-11-30")
CUSTOMERS = 300
_TEMPLATE: dict[str, Path] = {}

SEGMENTS = '''
segment "Reachable" < phone is set or email is set >
'''


def warehouse(folder: Path, tmp_path_factory) -> str:
    """A copy of one small synthetic DuckDB warehouse, generated once per session."""
    if "duckdb" not in _TEMPLATE:
        base = tmp_path_factory.mktemp("sync-template") / "w.duckdb"
        datagen.generate(f"duckdb:///{base}", customers=CUSTOMERS, seed=5)
        _TEMPLATE["duckdb"] = base
    target = folder / "warehouse.duckdb"
    shutil.copy(_TEMPLATE["duckdb"], target)
    return f"duckdb:///{target}"


def model_of(folder: Path, text: str):
    path = folder / "project.aud"
    path.write_text(SEGMENTS + text)
    model, diagnostics = analyze({str(path): path.read_text()})
    assert not [d for d in diagnostics if d.is_error], diagnostics
    return model


def expected(engine: sa.Engine, campaign: str, group: str, identifiers: tuple[str, ...],
             hashed=None) -> dict[str, str]:
    """customer_id -> key of the group's members that have a usable key (first by customer_id per key);
    with ``hashed`` (``Settings.hashed``), the keys as the ad platforms take them: SHA-256 hex."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT m.customer_id, c.email, c.phone FROM audlang_campaign_members m "
            "LEFT JOIN customer_360 c ON c.customer_id = m.customer_id "
            "WHERE m.campaign = :c AND m.group_name = :g ORDER BY m.customer_id"), {"c": campaign, "g": group}
        ).mappings().fetchall()
    out, seen = {}, set()
    for row in rows:
        member = make_member(row, identifiers, hashed=hashed)
        if member is not None and member.key not in seen:
            seen.add(member.key)
            out[member.customer_id] = member.key
    return out


@pytest.fixture
def servers():
    """``make(ServerClass, **settings)``: stand-in vendor servers on 127.0.0.1, closed after the test."""
    made = []

    def make(cls, **kw):
        server = cls(**kw)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


@pytest.fixture
def sync_project(tmp_path, tmp_path_factory):
    """``make(text)``: (model, warehouse engine, state engine) for a project of SEGMENTS + ``text``."""
    engines = []

    def make(text: str):
        url = warehouse(tmp_path, tmp_path_factory)
        model = model_of(tmp_path, text)
        wh = sa.create_engine(url)
        state = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
        engines.extend([wh, state])
        return model, wh, state

    yield make
    for engine in engines:
        engine.dispose()


KILLED_RUN = textwrap.dedent('''
    import sys
    import sqlalchemy as sa
    from audlang import sync
    from audlang.compile import AsOf
    from audlang.project import analyze

    folder, warehouse, state = sys.argv[1:4]
    path = folder + "/project.aud"
    model, _ = analyze({path: open(path).read()})
    results = sync.run(model, sa.create_engine(warehouse), sa.create_engine(state), AsOf.parse("2024-11-30"),
                       folder, env={"KEY": "secret-key", "TOKEN": "tok-123"}, http_options={"backoff": 0.01})
    print([r.status for r in results])
''')


def run_killable(tmp_path, wh, fault: str | None):
    """A sync of tmp_path's project in a process of its own, killed (SIGKILL) at ``fault`` (``point:seq``)."""
    env = {**os.environ}
    env.pop(FAULT_ENV, None)
    if fault:
        env[FAULT_ENV] = fault
    return subprocess.run([sys.executable, "-c", KILLED_RUN, str(tmp_path), str(wh.url.render_as_string(False)),
                           f"sqlite:///{tmp_path / 'state.db'}"], env=env, capture_output=True, text=True,
                          timeout=120)
