"""``.pre-commit-hooks.yaml``, run by pre-commit itself on a sample git repository.

The hooks are declared ``language: python``: pre-commit installs audlang into an environment of its
own, from the package index. Tests reach no host but 127.0.0.1, so here each hook of the manifest runs
as a ``repo: local`` hook with ``language: system`` (the ``audlang`` of this environment): its id,
entry, files, ``pass_filenames`` and ``require_serial`` are the manifest's, read from the file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import ROOT

MANIFEST = ROOT / ".pre-commit-hooks.yaml"
MESSY = 'segment   "Big Spenders"<lifetime_revenue>500>\n'
TIDY = 'segment "Big Spenders" < lifetime_revenue > 500 >\n'
TYPO = 'segment "Typo" < lifetime_revnue > 500 >\n'


def hooks() -> list[dict]:
    return yaml.safe_load(MANIFEST.read_text())


def test_the_manifest_declares_installable_hooks():
    by_id = {h["id"]: h for h in hooks()}
    assert set(by_id) == {"audlang-fmt", "audlang-fmt-check", "audlang-validate"}
    for hook in by_id.values():
        assert hook["language"] == "python" and hook["entry"].split()[0] == "audlang"
    assert by_id["audlang-validate"]["pass_filenames"] is False  # names are global: never a subset
    assert by_id["audlang-fmt-check"]["entry"] == "audlang fmt --check"


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.fail("git is not installed")
    repo = tmp_path / "audiences"
    repo.mkdir()
    local = [{**hook, "language": "system"} for hook in hooks()]
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump({"repos": [{"repo": "local", "hooks": local}]}))
    (repo / "audlang.toml").write_text('name = "audiences"\n')
    (repo / "segments").mkdir()
    (repo / "segments" / "a.aud").write_text(MESSY)
    git(repo, "init", "-q")
    return repo


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def pre_commit(repo: Path, tmp_path: Path, *hook: str) -> subprocess.CompletedProcess:
    git(repo, "add", "-A")
    bin_dir = str(Path(sys.executable).parent)  # the `audlang` and `pre-commit` of this environment
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
           "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "PRE_COMMIT_COLOR": "never"}
    return subprocess.run([sys.executable, "-m", "pre_commit", "run", "--all-files", *hook], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=300)


def test_pre_commit_formats_checks_and_validates_a_repository(repository: Path, tmp_path: Path):
    segments = repository / "segments" / "a.aud"

    check = pre_commit(repository, tmp_path, "audlang-fmt-check")
    assert check.returncode == 1 and "would reformat segments/a.aud" in check.stdout, check.stdout
    assert segments.read_text() == MESSY

    fmt = pre_commit(repository, tmp_path, "audlang-fmt")
    assert fmt.returncode == 1 and "files were modified by this hook" in fmt.stdout, fmt.stdout
    assert segments.read_text() == TIDY

    (repository / "segments" / "b.aud").write_text(TYPO)
    validate = pre_commit(repository, tmp_path, "audlang-validate")
    assert validate.returncode == 1, validate.stdout
    assert "segments/b.aud:1:18: error[E101]" in validate.stdout and "lifetime_revenue" in validate.stdout

    (repository / "segments" / "b.aud").write_text(TYPO.replace("revnue", "revenue"))
    clean = pre_commit(repository, tmp_path)
    assert clean.returncode == 0, clean.stdout
    assert clean.stdout.count("Passed") == 3
