"""Plain helpers of the tests: the repository's paths, golden files, where PostgreSQL's programs are, and
the engines the ``warehouse`` fixture runs a test on.

Imported as ``from helpers import ...``: pytest puts tests/ on ``sys.path`` (the root conftest.py's folder,
the default "prepend" import mode), as it does for ``conftest`` itself. tests/conftest.py holds only fixtures
and hooks; what they share with the tests lives here.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import uuid
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
UPDATE_GOLDEN = os.environ.get("AUDLANG_UPDATE_GOLDEN") == "1"

#: The Spark master of the ``spark_url`` fixture's server: a driver and two executor processes.
SPARK_MASTER = os.environ.get("AUDLANG_SPARK_MASTER", "local-cluster[2,1,1024]")


def check_golden(path: Path, actual: str) -> None:
    """Compare with a golden file; AUDLANG_UPDATE_GOLDEN=1 rewrites it after an intended change."""
    if UPDATE_GOLDEN or not path.exists():
        if not UPDATE_GOLDEN:
            pytest.fail(f"golden file {path.name} is missing; run with AUDLANG_UPDATE_GOLDEN=1 to create it")
        path.write_text(actual)
        return
    assert actual == path.read_text(), f"{path.name} differs (AUDLANG_UPDATE_GOLDEN=1 rewrites it)"


def postgresql_bindir() -> Path:
    """The PostgreSQL server binaries: ``pg_config --bindir``, else the newest Debian install."""
    import glob
    import shutil
    import subprocess

    candidates = []
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        if found:
            candidates.append(Path(found))
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                    if Path(p).parent.name.isdigit() else 0)
    candidates.extend(Path(p) for p in reversed(debian))
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    pytest.fail("PostgreSQL server binaries not found (initdb, pg_ctl): install Debian's `postgresql` "
                "package, as .ci/run does")


# -- the engines under test (the ``warehouse`` fixture of tests/conftest.py) -----------------------

#: The engines a test taking the ``warehouse`` fixture runs on, each a real database (PostgreSQL: the
#: session's server). The only list of them: a test that runs on fewer says so with
#: ``@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)`` and a comment saying why.
ENGINES = ("duckdb", "sqlite", "postgresql")
#: ENGINES and Spark SQL on the session's real Thrift server (marker ``spark``), for a test that runs there
#: too: ``@pytest.mark.parametrize("warehouse", WITH_SPARK, indirect=True)``.
WITH_SPARK = (*ENGINES, pytest.param("spark", marks=pytest.mark.spark))


class Warehouse:
    """One engine under test: its ``name``, a fresh empty database of its own (``url``, made when first
    read) and ``new_url()`` for more, each new: empty, or a copy of another database on the engine."""

    def __init__(self, name: str, make: Callable[[str, str | None], str]):
        self.name = name
        self._make = make

    @cached_property
    def url(self) -> str:
        return self.new_url(self.name)

    def new_url(self, label: str = "w", copy_of: str | None = None) -> str:
        """The SQLAlchemy URL of a new database on this engine: empty, or a copy of ``copy_of``'s."""
        return self._make(label, copy_of)

    def __repr__(self) -> str:
        return f"Warehouse({self.name!r})"


def file_databases(name: str, folder: Path) -> Callable[[str, str | None], str]:
    """``make(label, copy_of)`` for DuckDB or SQLite: a new file in ``folder``, a copy, or empty: not made yet
    (the engine makes it on the first connection, as for a new warehouse file)."""
    import sqlalchemy as sa

    numbers = itertools.count(1)

    def make(label: str, copy_of: str | None) -> str:
        path = folder / f"{label}-{next(numbers)}.{'duckdb' if name == 'duckdb' else 'db'}"
        if copy_of is not None:
            shutil.copy(sa.engine.make_url(copy_of).database, path)
        return f"{name}:///{path}"

    return make


def server_databases(name: str, create: Callable[[str], str],
                     server_url: str | None) -> Callable[[str, str | None], str]:
    """``make(label, copy_of)`` on a server: ``create(database name)`` makes an empty one and returns its URL;
    a copy is PostgreSQL's ``CREATE DATABASE ... TEMPLATE`` on the server at ``server_url`` (none elsewhere)."""
    import sqlalchemy as sa

    def make(label: str, copy_of: str | None) -> str:
        database = re.sub(r"[^a-z0-9_]", "_", label.lower()) + "_" + uuid.uuid4().hex[:10]
        if copy_of is None:
            return create(database)
        if server_url is None:
            pytest.fail(f"{name}: the warehouse fixture copies no database here")
        template = sa.engine.make_url(copy_of).database
        admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{database}" TEMPLATE "{template}"'))
        finally:
            admin.dispose()
        return server_url.rsplit("/", 1)[0] + f"/{database}"

    return make
