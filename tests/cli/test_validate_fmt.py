"""``audlang validate`` and ``audlang fmt`` through the CLI, on projects written inline."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from audlang.cli import cli
from helpers import EXAMPLES

GOOD = 'segment "Big Spenders" < lifetime_revenue > 500 >\n'
BAD = 'segment "Typo" < lifetime_revnue > 500 >\nsegment "Broken" < sms_opt_in and >\n'


def run(*args, cwd=None):
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(cli, list(args), catch_exceptions=False)
    with runner.isolated_filesystem(temp_dir=cwd):
        return runner.invoke(cli, list(args), catch_exceptions=False)


def test_validate_clean_project_exits_0(write_project, monkeypatch):
    root = write_project({"a.aud": GOOD})
    monkeypatch.chdir(root)
    result = run("validate")
    assert result.exit_code == 0, result.output
    assert "OK: 1 segment, 0 scores, 0 campaigns, 0 destinations in 1 file" in result.output


SCORED = {
    "scores.aud": 'score "Engagement" <\n  3 points if tagged "VIP"\n  1 point if sms_opt_in\n>\n\n'
                  'score "Value" <\n  1 point if lifetime_revenue > 500\n>\n',
    "segments.aud": 'segment "Engaged" < score "Engagement" >= 3 >\n',
}


def test_validate_summary_counts_the_scores(write_project, tmp_path_factory, monkeypatch):
    root = write_project(SCORED)
    monkeypatch.chdir(root)
    result = run("validate")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "OK: 1 segment, 2 scores, 0 campaigns, 0 destinations in 2 files"
    # one score: the singular; with an error the summary goes to stderr after the count of errors
    other = tmp_path_factory.mktemp("one")
    (other / "a.aud").write_text('score "Only" <\n  1 point if sms_opt_in\n>\n'
                                 'segment "Typo" < score "Onyl" >= 1 >\n')
    monkeypatch.chdir(other)
    result = run("validate")
    assert result.exit_code == 1
    assert "1 error, 0 warnings (1 segment, 1 score, 0 campaigns, 0 destinations in 1 file)" in result.stderr


def test_validate_reports_every_error_with_position_and_exits_1(write_project, monkeypatch):
    root = write_project({"a.aud": BAD, "b.aud": 'segment "Other" < in segment "Big Spender" >\n'})
    monkeypatch.chdir(root)
    result = run("validate")
    assert result.exit_code == 1
    out = result.output
    assert "a.aud:1:18: error[E101]: unknown attribute `lifetime_revnue`" in out
    assert "help: did you mean `lifetime_revenue`?" in out
    assert "a.aud:2:35: error[E001]: expected a condition" in out
    assert 'b.aud:1:19: error[E102]: unknown segment "Big Spender"' in out
    assert "Traceback" not in out


def test_validate_json_for_editors_and_ci(write_project, monkeypatch):
    root = write_project({"a.aud": BAD})
    monkeypatch.chdir(root)
    result = run("validate", "--format", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["format_version"] == 1 and doc["errors"] == 2
    assert {d["code"] for d in doc["diagnostics"]} == {"E101", "E001"}


def test_validate_names_are_global_across_files(write_project, monkeypatch):
    root = write_project({"a.aud": GOOD, "sub/b.aud": 'segment "VIP" < in segment "Big Spenders" >\n'})
    monkeypatch.chdir(root)
    assert run("validate").exit_code == 0
    assert run("validate", "sub/b.aud").exit_code == 1  # alone, the other file is not seen


def test_validate_examples_is_clean():
    result = run("validate", str(EXAMPLES))
    assert result.exit_code == 0, result.output


def test_fmt_check_diff_and_write(write_project, monkeypatch):
    messy = 'segment   "Big Spenders"<lifetime_revenue>500>\n'
    root = write_project({"a.aud": messy})
    monkeypatch.chdir(root)
    result = run("fmt", "--check")
    assert result.exit_code == 1 and "would reformat a.aud" in result.output
    assert (root / "a.aud").read_text() == messy
    result = run("fmt", "--diff")
    assert result.exit_code == 0
    assert "-segment   \"Big Spenders\"<lifetime_revenue>500>" in result.stdout
    assert "+" + GOOD.strip() in result.stdout
    assert (root / "a.aud").read_text() == messy
    result = run("fmt")
    assert result.exit_code == 0 and (root / "a.aud").read_text() == GOOD
    assert run("fmt", "--check").exit_code == 0


def test_fmt_never_touches_a_file_with_syntax_errors(write_project, monkeypatch):
    root = write_project({"a.aud": BAD})
    monkeypatch.chdir(root)
    result = run("fmt")
    assert result.exit_code == 1
    assert "a.aud:2:35: error[E001]" in result.output
    assert (root / "a.aud").read_text() == BAD


def test_fmt_writes_each_text_to_its_own_file_when_two_paths_name_one(write_project, monkeypatch):
    other = 'segment "Other" < sms_opt_in >\n'
    root = write_project({"a.aud": GOOD, "b.aud": 'segment   "Other"<sms_opt_in>\n', "sub/c.aud": other})
    monkeypatch.chdir(root)
    result = run("fmt", "a.aud", "sub/../a.aud", "b.aud")
    assert result.exit_code == 0, result.output
    assert (root / "a.aud").read_text() == GOOD and (root / "b.aud").read_text() == other
    assert "1 file reformatted, 1 unchanged" in result.output


def test_examples_pass_fmt_check():
    assert run("fmt", "--check", str(EXAMPLES)).exit_code == 0


@pytest.mark.parametrize("args,message", [
    (["validate", "no/such/path"], "no/such/path: error[E303]: no such file or folder"),
    (["--project", "no/such/folder", "validate"], "error[E301]: project folder not found"),
])
def test_user_errors_are_one_line_and_exit_1(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(*args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_config_is_reported(write_project, monkeypatch):
    root = write_project({"a.aud": GOOD}, config="warehouse = [1\n")
    monkeypatch.chdir(root)
    result = run("validate")
    assert result.exit_code == 1 and "error[E302]: cannot read audlang.toml" in result.output
    root = write_project({"a.aud": GOOD}, config='wearhouse = "duckdb://"\n')
    result = run("validate")
    assert result.exit_code == 1 and "unknown setting(s) wearhouse" in result.output


def test_project_found_upward_and_paths_setting(write_project, monkeypatch):
    root = write_project({"audiences/a.aud": GOOD, "scratch/bad.aud": BAD}, config='paths = ["audiences"]\n')
    (root / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(root / "deep" / "er")
    assert run("validate").exit_code == 0


def test_installed_entry_point_runs_without_traceback(tmp_path):
    (tmp_path / "bad.aud").write_bytes(b'segment "x" < \xff\xfe >')
    proc = subprocess.run([sys.executable, "-m", "audlang", "validate", str(tmp_path / "bad.aud")],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "not a UTF-8 text file" in proc.stderr and "Traceback" not in proc.stderr


def test_init_writes_a_valid_formatted_starter_project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("init", "starter")
    assert result.exit_code == 0
    assert (tmp_path / "starter" / "audlang.toml").is_file()
    assert run("validate", "starter").exit_code == 0
    assert run("fmt", "--check", "starter").exit_code == 0
    (tmp_path / "starter" / "segments.aud").write_text('segment "Mine" < sms_opt_in >\n')
    assert "kept" in run("init", "starter").output
    assert (tmp_path / "starter" / "segments.aud").read_text() == 'segment "Mine" < sms_opt_in >\n'


NESTED = ('segment "Lapsed" < sms_opt_in and (has_purchased category "Accessories" within last 90 days'
          ' or has_purchased category "Pets" within last 90 days) >\n')


def test_fmt_wraps_at_the_width_of_audlang_toml(write_project, monkeypatch):
    """`[fmt] width` moves where a group wraps; the default is 100 columns."""
    root = write_project({"a.aud": NESTED})
    monkeypatch.chdir(root)
    assert run("fmt").exit_code == 0
    default = (root / "a.aud").read_text()
    assert default.splitlines()[2:6] == [
        "  and (",
        '    has_purchased category "Accessories" within last 90 days',
        '    or has_purchased category "Pets" within last 90 days',
        "  )",
    ]
    write_project({"a.aud": NESTED}, config="[fmt]\nwidth = 120\n")
    assert run("fmt").exit_code == 0
    wide = (root / "a.aud").read_text()
    assert wide.splitlines()[2].startswith('  and (has_purchased category "Accessories"')
    assert max(len(line) for line in wide.splitlines()) <= 120 < len(NESTED)
    assert run("fmt", "--check").exit_code == 0


@pytest.mark.parametrize("config,message", [
    ("[fmt]\nwidth = 20\n", "`fmt.width` is a whole number of columns from 40 to 400"),
    ("[fmt]\nwidth = true\n", "`fmt.width` is a whole number of columns from 40 to 400"),
    ("[fmt]\nwidht = 80\n", "unknown setting(s) fmt.widht; known: fmt.width"),
    ("fmt = 80\n", "`fmt` is a table"),
])
def test_a_bad_fmt_width_is_a_config_error(config, message, write_project, monkeypatch):
    root = write_project({"a.aud": NESTED}, config=config)
    monkeypatch.chdir(root)
    result = run("fmt")
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
    assert (root / "a.aud").read_text() == NESTED
