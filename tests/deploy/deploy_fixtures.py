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
