"""Golden files: each ``golden/diagnostics/*.aud`` → the text ``validate`` prints for it.

Paths are relative to the golden folder so the expected files read the same
on every machine. AUDLANG_UPDATE_GOLDEN=1 rewrites them after an intended change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from audlang.diagnostics import render_json, render_text
from audlang.project import analyze
from helpers import check_golden

FOLDER = Path(__file__).parent / "golden" / "diagnostics"
CASES = sorted(FOLDER.glob("*.aud"))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_diagnostics_golden(case: Path, monkeypatch):
    monkeypatch.chdir(FOLDER)
    sources = {case.name: case.read_text()}
    _model, diagnostics = analyze(sources)
    assert diagnostics, "every golden case shows at least one diagnostic"
    check_golden(case.with_suffix(".expected"), render_text(diagnostics, sources) + "\n")


def test_json_rendering_is_versioned_and_complete(monkeypatch):
    monkeypatch.chdir(FOLDER)
    sources = {"unknown_names.aud": (FOLDER / "unknown_names.aud").read_text()}
    _model, diagnostics = analyze(sources)
    doc = json.loads(render_json(diagnostics))
    assert doc["format_version"] == 1
    assert doc["errors"] == len(doc["diagnostics"]) == 4
    first = doc["diagnostics"][0]
    assert first == {
        "severity": "error", "code": "E101", "message": "unknown attribute `lifetime_revnue`",
        "span": {"file": "unknown_names.aud", "line": 3, "column": 28, "end_line": 3, "end_column": 43},
        "suggestion": "did you mean `lifetime_revenue`?", "subject": None,
    }


def test_golden_cases_cover_every_error_code():
    text = "".join(p.read_text() for p in FOLDER.glob("*.expected"))
    codes = {f"E{n}" for n in ("001", "002", "003", "004", "101", "102", "103", "104", "105", "106", "107",
                               "108", "109", "110", "111", "112", "113", "114", "115", "117", "118", "120",
                               "121", "122", "123", "124", "125", "126", "130", "131", "132", "133", "134", "135",
                               "137")}
    missing = sorted(c for c in codes if f"[{c}]" not in text)
    assert not missing, f"no golden case shows {missing}"
    assert os.sep not in "".join(line.split(":")[0] for line in text.splitlines() if "error[" in line)
