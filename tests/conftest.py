"""Shared fixtures: the repository's paths and an inline-project writer (dbt's functional-test style)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
UPDATE_GOLDEN = os.environ.get("AUDLANG_UPDATE_GOLDEN") == "1"


@pytest.fixture
def write_project(tmp_path):
    """Write ``{relative path: text}`` into a fresh folder and return it."""

    def write(files: dict[str, str], config: str | None = "") -> Path:
        if config is not None:
            (tmp_path / "audlang.toml").write_text(config)
        for name, text in files.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return tmp_path

    return write


def check_golden(path: Path, actual: str) -> None:
    """Compare with a golden file; AUDLANG_UPDATE_GOLDEN=1 rewrites it after an intended change."""
    if UPDATE_GOLDEN or not path.exists():
        if not UPDATE_GOLDEN:
            pytest.fail(f"golden file {path.name} is missing; run with AUDLANG_UPDATE_GOLDEN=1 to create it")
        path.write_text(actual)
        return
    assert actual == path.read_text(), f"{path.name} differs (AUDLANG_UPDATE_GOLDEN=1 rewrites it)"
