"""Findings of the review of #15: names that would forge log lines, paths and files that made the
CLI exit 70 (a bug) instead of 1 (the user's input)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from audlang.datagen import generate


def run(root, *args, env=None):
    done = subprocess.run([sys.executable, "-m", "audlang", *args], cwd=root, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "NO_COLOR": "1", **(env or {})})
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("declaration", [
    'segment "x\\n::error file=README.md,line=1::FORGED" < lifetime_revenue > 1 >',
    'segment "x\\tTAB" < lifetime_revenue > 1 >',
    'destination "D\\n## Plan: 0 to create" csv < path = "target/x.csv" >',
    'segment "A" < sms_opt_in >\ncampaign "C" < audience segment "A" treatment "T\\nforged" 100% >',
])
def test_control_characters_in_names_are_E119(write_project, declaration):
    root = write_project({"a.aud": declaration + "\n"})
    code, out = run(root, "validate")
    assert code == 1 and "error[E119]" in out
    assert "\n::error" not in out


def test_an_env_name_must_be_a_variable_name(write_project):
    root = write_project({"a.aud": 'destination "W" webhook < url = "http://127.0.0.1:9/" '
                                   'header "Authorization" = env("K\\n::error::FORGED") >\n'})
    code, out = run(root, "validate")
    assert code == 1 and "is not an environment variable name" in out and "\n::error" not in out


def test_a_project_name_with_a_line_break_is_refused(write_project):
    root = write_project({"a.aud": 'segment "A" < sms_opt_in >\n'}, config='name = "t\\n::error::FORGED"\n')
    code, out = run(root, "validate")
    assert code == 1 and "E302" in out and "control characters" in out


def test_fmt_names_a_hostile_file_name_escaped(write_project):
    root = write_project({"a\n::error::FORGED.aud": 'segment "A"   <   sms_opt_in >\n'})
    code, out = run(root, "fmt", "--check")
    assert code == 1 and "would reformat" in out and "\n::error" not in out


@pytest.mark.parametrize("config", ['paths = ["a\\u0000b"]', 'exports_root = "x\\u0000"', 'state = "sqlite:///\\u0000"',
                                    f'paths = ["{"a" * 5000}"]'])
def test_nul_bytes_and_long_names_in_audlang_toml_are_errors(write_project, config):
    root = write_project({"a.aud": 'segment "A" < sms_opt_in >\n'}, config=config + "\n")
    code, out = run(root, "plan", "--warehouse", "duckdb:///:memory:")
    assert code == 1, out
    assert "a" * 300 not in out  # a long path is cut, never printed whole


def test_a_nul_byte_in_a_list_path_is_an_error(write_project):
    root = write_project({"a.aud": 'segment "L" < in list "lists/a\\u0000b.csv" >\n'})
    code, out = run(root, "validate")
    assert code == 1, out


def test_list_files_with_any_line_ending_and_padded_headers_load(write_project, tmp_path):
    root = write_project({"a.aud": 'segment "CR" < in list "cr.csv" >\nsegment "Padded" < in list "padded.csv" >\n'
                                   'segment "Huge" < in list "huge.csv" >\n'},
                         config='warehouse = "duckdb:///w.duckdb"\n')
    generate(f"duckdb:///{root / 'w.duckdb'}", customers=20, seed=1)
    (root / "cr.csv").write_bytes(b"name,customer_id\rx,C000001\ry,C000002\r")
    (root / "padded.csv").write_text(" customer_id , name\nC000003,z\n")
    (root / "huge.csv").write_text("customer_id\n" + "C" * 200_000 + "\n")
    assert run(root, "validate")[0] == 0
    code, out = run(root, "members", "CR")
    assert code == 0 and out.split() == ["customer_id", "C000001", "C000002"], out
    code, out = run(root, "members", "Padded")
    assert code == 0 and out.split() == ["customer_id", "C000003"], out
    code, out = run(root, "members", "Huge")
    assert code == 1 and "E407" in out and "cannot be read as CSV" in out


def test_a_name_that_looks_like_rich_markup_syncs(write_project):
    root = write_project({"a.aud": 'segment "Lapsed" < lifetime_orders >= 1 >\n'
                                   'destination "Mail File" csv < path = "target/{{ campaign }}-{{ group }}.csv" >\n'
                                   'campaign "Win-back [/old]" < audience segment "Lapsed" '
                                   'treatment "Mail [bold]" 100% to "Mail File" >\n'},
                         config='warehouse = "duckdb:///w.duckdb"\n')
    generate(f"duckdb:///{root / 'w.duckdb'}", customers=30, seed=1)
    code, out = run(root, "apply", "--auto-approve", "--as-of", "2024-11-30")
    assert code == 0, out
    written = list((root / "target").glob("*.csv"))
    assert len(written) == 1 and len(written[0].read_text().splitlines()) > 1
