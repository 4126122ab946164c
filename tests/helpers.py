"""Plain helpers of the tests: the repository's paths, golden files, where PostgreSQL's programs are.

Imported as ``from helpers import ...``: pytest puts tests/ on ``sys.path`` (the root conftest.py's folder,
the default "prepend" import mode), as it does for ``conftest`` itself. tests/conftest.py holds only fixtures
and hooks; what they share with the tests lives here.
"""

from __future__ import annotations

import os
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
