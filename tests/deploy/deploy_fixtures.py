"""Fixtures of the deploy tests (imported by each test module: a second conftest.py would shadow the root one):
a small synthetic warehouse on each engine, a project writer, the CLI in a real process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

AS_OF = "2024-11-30"
CUSTOMERS = 200
ENGINES = ["duckdb", "sqlite", "postgresql"]

SEGMENTS = '''# Customers who spent over 500 in all.
segment "Big Spenders" < lifetime_revenue > 500 >

segment "VIP" < tagged "VIP" or in segment "Big Spenders" >

segment "Recent" < has_purchased within last 90 days >
'''


#: One generated warehouse per engine for the session; each test gets a copy.
_TEMPLATES: dict[str, str] = {}


def _template(engine: str, templates: dict, tmp_path_factory, postgresql_url) -> str:
    from audlang import datagen

    if engine in templates:
        return templates[engine]
    if engine == "postgresql":
        import sqlalchemy as sa

        name = "audlang_deploy_template"
        admin = sa.create_engine(postgresql_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        admin.dispose()
        url = postgresql_url.rsplit("/", 1)[0] + f"/{name}"
        engine_ = sa.create_engine(url)
        datagen.generate(engine_, customers=CUSTOMERS, seed=7)
        engine_.dispose()
        templates[engine] = name
        return name
    folder = tmp_path_factory.mktemp(f"template-{engine}")
    path = folder / ("w.duckdb" if engine == "duckdb" else "w.db")
    datagen.generate(f"{engine}:///{path}", customers=CUSTOMERS, seed=7)
    templates[engine] = str(path)
    return str(path)


@pytest.fixture(params=ENGINES)
def engine_name(request):
    return request.param


@pytest.fixture
def warehouse_url(engine_name, tmp_path_factory, tmp_path, request):
    """A fresh copy of the small synthetic warehouse on the engine under test."""
    if engine_name == "postgresql":
        import sqlalchemy as sa

        postgresql_url = request.getfixturevalue("postgresql_url")
        template = _template(engine_name, _TEMPLATES, tmp_path_factory, postgresql_url)
        name = "t_" + uuid.uuid4().hex[:12]
        admin = sa.create_engine(postgresql_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name} TEMPLATE {template}"))
        admin.dispose()
        yield postgresql_url.rsplit("/", 1)[0] + f"/{name}"
        return
    template = _template(engine_name, _TEMPLATES, tmp_path_factory, None)
    target = tmp_path / Path(template).name
    shutil.copy(template, target)
    yield f"{engine_name}:///{target}"


@pytest.fixture
def project(write_project, warehouse_url):
    """A project folder using the warehouse under test (the state in the warehouse)."""
    folder = write_project({"segments.aud": SEGMENTS}, config=f'warehouse = "{warehouse_url}"\n')
    return folder


def run_cli(folder: Path, *args: str, input: str | None = None, env: dict | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    """``audlang --project FOLDER ARGS`` in a real process (no terminal)."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    full_env.pop("AUDLANG_WAREHOUSE", None)
    full_env.pop("AUDLANG_STATE", None)
    return subprocess.run([sys.executable, "-m", "audlang", "--project", str(folder), *args], cwd=folder,
                          input=input, capture_output=True, text=True, env=full_env, timeout=timeout)


@pytest.fixture
def cli_run():
    return run_cli
