"""The wheel carries the grammar and works away from the checkout; the layers import one way."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from helpers import ROOT


def test_wheel_ships_the_grammar_and_runs_away_from_the_checkout(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)],
                   check=True, capture_output=True)
    (wheel,) = dist.glob("audlang-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "audlang/audlang.lark" in names
        assert "audlang/examples/retail/audlang.toml" in names  # what `audlang demo` writes
        assert {"audlang/report/templates/segment.html.j2", "audlang/report/assets/report.js",
                "audlang/report/assets/report.css"} <= set(names)  # what `audlang docs generate` writes
        assert zf.read("audlang/audlang.lark") == (ROOT / "grammar" / "audlang.lark").read_bytes()
        zf.extractall(tmp_path / "site")
    away = tmp_path / "elsewhere"
    away.mkdir()
    (away / "a.aud").write_text('segment "Big Spenders" < lifetime_revenue > 500 >\n')
    env = {"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"}
    probe = subprocess.run(
        [sys.executable, "-c", "from audlang.syntax.grammar import grammar_path; print(grammar_path())"],
        cwd=away, env=env, capture_output=True, text=True, check=True)
    assert probe.stdout.strip().startswith(str(tmp_path / "site"))
    result = subprocess.run([sys.executable, "-m", "audlang", "validate", "a.aud"], cwd=away, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "OK: 1 segment" in result.stdout


def test_layers_import_one_way():
    """import-linter's layers contract in pyproject.toml (STYLE §1)."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports), str(ROOT / "pyproject.toml")], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 1 kept, 0 broken" in result.stdout
