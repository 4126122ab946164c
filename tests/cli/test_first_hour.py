"""A new user's first hour without surprises (issue #19), through the real ``audlang demo``.

``as_of`` in audlang.toml: every evaluating command uses it when no ``--as-of`` is given and says so
on stderr, and the demo pins its data's last day there, so that the README's examples give the demo's
figures and a plan right after the demo's apply proposes no membership change. And the rough edges:
counts with their noun in the singular for one ("1 request"), history lines that say what was synced,
and the demo's folder ignored by git in a clone.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from audlang.vocabulary import counted
from helpers import ROOT

DEMO_DAY = "2024-11-30"
PINNED = f"as of {DEMO_DAY} (audlang.toml)"


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("AUDLANG_WAREHOUSE", "AUDLANG_STATE", "ATTENTIVE_API_KEY")}
    env["NO_COLOR"] = "1"
    return env


def audlang(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """``audlang ARGS`` in a real process, run in ``folder`` (the project is found from there)."""
    return subprocess.run([sys.executable, "-m", "audlang", *args], cwd=folder, capture_output=True, text=True,
                          env=cli_env(), timeout=300)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The real ``audlang demo`` in a fresh folder: data, plan, apply."""
    folder = tmp_path_factory.mktemp("first-hour") / "audlang-demo"
    result = subprocess.run([sys.executable, "-m", "audlang", "demo", str(folder), "--customers", "1500"],
                            capture_output=True, text=True, env=cli_env(), timeout=600)
    assert result.returncode == 0, result.stderr
    return folder


def test_the_demo_pins_its_data_day_in_audlang_toml(demo):
    text = (demo / "audlang.toml").read_text()
    assert f'as_of = "{DEMO_DAY}"' in text
    assert text.count("as_of =") == 1


def test_insights_in_the_demo_folder_give_the_demo_figures(demo):
    result = audlang(demo, "insights", "Holiday Shoppers - SMS", "--format", "json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)  # the stderr line never reaches the json
    assert figures["as_of"] == DEMO_DAY
    assert figures["members"] > 0 and figures["active"] > 0 and figures["revenue_last_365_days"] > 0
    assert result.stderr.strip().splitlines() == [PINNED]


def test_a_plan_after_the_demo_proposes_no_membership_change(demo):
    result = audlang(demo, "plan", "--format", "json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["as_of"] == DEMO_DAY
    assert (plan["summary"]["members_added"], plan["summary"]["members_removed"]) == (0, 0)
    assert plan["summary"]["refresh"] == 0
    assert not [a for a in plan["actions"] if a["kind"] == "segment"]
    assert PINNED in result.stderr
    text = audlang(demo, "plan")
    assert "membership +0 −0" in text.stdout


def test_the_flag_wins_over_audlang_toml(demo):
    pinned = json.loads(audlang(demo, "insights", "Holiday Shoppers - SMS", "--format", "json").stdout)
    result = audlang(demo, "insights", "Holiday Shoppers - SMS", "--format", "json", "--as-of", "2023-06-30")
    assert result.returncode == 0, result.stderr
    earlier = json.loads(result.stdout)
    assert earlier["as_of"] == "2023-06-30"
    assert earlier != pinned
    assert "audlang.toml" not in result.stderr
    # a fresh plan at another day: the relative segments' windows moved, so membership changes
    moved = json.loads(audlang(demo, "plan", "--format", "json", "--as-of", "2023-06-30").stdout)
    assert moved["as_of"] == "2023-06-30" and moved["summary"]["refresh"] > 0


@pytest.mark.parametrize("args", [
    ("members", "Big Spenders", "--limit", "2"),
    ("sql", "Holiday Shoppers - SMS"),
    ("explain", "Big Spenders", "C000001", "--format", "json"),
])
def test_every_evaluating_command_says_the_pinned_day(demo, args):
    result = audlang(demo, *args)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == PINNED
    assert "audlang.toml" not in result.stdout


def test_the_report_uses_the_pinned_day(demo, tmp_path):
    result = audlang(demo, "docs", "generate", "--out", str(tmp_path / "site"))
    assert result.returncode == 0, result.stderr
    assert PINNED in result.stderr
    assert f"(figures as of {DEMO_DAY})" in result.stderr


def small_project(folder: Path, setting: str) -> Path:
    folder.mkdir()
    (folder / "audlang.toml").write_text(f'name = "t"\n# pinned\n{setting}\n')
    (folder / "a.aud").write_text('segment "Recent" < has_purchased within last 30 days >\n')
    return folder


def test_today_is_the_default_and_says_nothing(tmp_path):
    folder = small_project(tmp_path / "p", 'as_of = "today"')
    result = audlang(folder, "sql", "Recent")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    today = dt.datetime.now(dt.timezone.utc).date()
    assert (today - dt.timedelta(days=29)).isoformat() in result.stdout


def test_a_bare_toml_date_is_taken(tmp_path):
    folder = small_project(tmp_path / "p", "as_of = 2024-11-30")
    result = audlang(folder, "sql", "Recent")
    assert result.returncode == 0, result.stderr
    assert "2024-11-01" in result.stdout  # 30 days back from 2024-11-30, the first day inside
    assert result.stderr.strip() == PINNED


@pytest.mark.parametrize(("setting", "message"), [
    ('as_of = "yesterday"', "`as_of` takes YYYY-MM-DD or an ISO timestamp"),
    ('as_of = "2024-02-30"', "not '2024-02-30'"),
    ("as_of = 20241130", "not a number"),
    ('as_of = "0900-01-01"', "`as_of` must lie between"),
])
def test_a_wrong_as_of_is_an_error_on_its_line(tmp_path, setting, message):
    folder = small_project(tmp_path / "p", setting)
    for command in (("sql", "Recent"), ("plan",)):
        result = audlang(folder, *command)
        assert result.returncode == 1
        assert result.stderr.startswith("audlang.toml:3:9: error[E302]: "), result.stderr
        assert message in result.stderr
        assert "Traceback" not in result.stderr


# -- the rough edges -------------------------------------------------------------------------------

def test_a_count_takes_its_noun_in_the_singular_for_one():
    assert [counted(n, "request") for n in (0, 1, 2, 1204)] == ["0 requests", "1 request", "2 requests",
                                                                "1,204 requests"]
    assert (counted(1, "batch", "batches"), counted(3, "batch", "batches")) == ("1 batch", "3 batches")


def test_every_count_in_the_code_goes_through_the_one_helper():
    """No message makes its own plural: ``{n} requests``, ``change(s)`` and ``'s' if n != 1`` are what said
    "1 requests". Read from the string literals of the source (f-strings included), so code is not matched."""
    import io
    import tokenize

    own_plural = re.compile(r"""'s' if|"s" if|'' if \w+ == 1|[a-z]\(s\)""")
    fixed_plural = re.compile(r"\{[^{}]*\}\)? (failed )?(requests|members|changes|files|pages|orders|attempts|batches|"
                              r"syncs|customers|rows)\b")
    found = []
    for path in sorted((ROOT / "src" / "audlang").rglob("*.py")):
        for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            if token.type != tokenize.STRING or token.string.lstrip("rbuf").startswith(('"""', "'''")):
                continue  # not a string, or a docstring (which may well say "(s)")
            constant = "MAX_" in token.line or "limit" in token.line or "> 1 else" in token.line  # never one
            if own_plural.search(token.string) or (fixed_plural.search(token.string) and not constant):
                found.append(f"{path.relative_to(ROOT)}:{token.start[0]}: {token.string}")
    assert not found, "\n".join(found)


def test_sync_status_says_1_request(demo):
    result = audlang(demo, "sync", "status")
    assert result.returncode == 0, result.stderr
    assert re.search(r"\b1 request \(", result.stdout), result.stdout
    assert not re.search(r"\b1 requests\b", result.stdout)


def test_history_says_what_each_sync_sent(demo):
    result = audlang(demo, "history")
    assert result.returncode == 0, result.stderr
    synced = [line for line in result.stdout.splitlines() if " synced" in line]
    assert synced
    for line in synced:
        assert re.search(r'synced "[^"]+" / "[^"]+" → "[^"]+": \w+, \+[\d,]+ −[\d,]+, ', line), line
    assert any('→ "Attentive - Holiday SMS": ok, +' in line for line in synced)
    assert f"apply started (as of {DEMO_DAY})" in result.stdout
    # the json form keeps the whole detail
    events = json.loads(audlang(demo, "history", "--format", "json").stdout)
    sent = [e["detail"] for e in events if e["event"] == "synced"]
    assert {"destination", "added", "removed", "requests"} <= set(sent[0])


def test_the_demo_folder_is_ignored_by_git_in_a_clone():
    for name in ("audlang-demo", "audlang-demo/audlang.toml", "sub/audlang-demo/target/warehouse.duckdb"):
        result = subprocess.run(["git", "check-ignore", "--no-index", "-q", name], cwd=ROOT)
        assert result.returncode == 0, f"{name} is not ignored by .gitignore"
    kept = subprocess.run(["git", "check-ignore", "--no-index", "-q", "examples/retail/audlang.toml"], cwd=ROOT)
    assert kept.returncode == 1


# -- the README's examples, as printed -------------------------------------------------------------

def readme_block(heading: str) -> list[str]:
    """The lines of the first ``sh`` block after ``heading`` in the README, comments dropped."""
    text = (ROOT / "README.md").read_text()
    block = text.split(heading, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def extras() -> dict[str, list[str]]:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def test_the_readme_examples_run_as_printed_in_the_demo_folder(demo):
    import shlex

    lines = readme_block("## Evaluating segments")
    assert any(line.startswith("audlang sql ") and "--dialect" not in line for line in lines)
    for line in lines:
        words = shlex.split(line)
        if words[:2] == ["pip", "install"]:  # an extra that exists (the test venv has its packages)
            (extra,) = re.fullmatch(r"audlang\[(\w+)\]", words[2]).groups()
            assert extra in extras(), line
            continue
        assert words[0] == "audlang", line
        result = audlang(demo, *words[1:])
        assert result.returncode == 0, (line, result.stderr)
        assert result.stdout.strip() and "Traceback" not in result.stderr, line
        if words[1] == "sql":
            assert result.stdout.lstrip().upper().startswith(("SELECT", "--")), line


def test_the_readme_names_every_warehouse_extra():
    readme = (ROOT / "README.md").read_text()
    for extra in ("snowflake", "bigquery", "trino", "spark"):
        assert extra in extras()
        assert f"pip install 'audlang[{extra}]'" in readme
    assert extras()["trino"] == ["trino[sqlalchemy]>=0.330"]


@pytest.mark.parametrize(("dialect", "package"), [("snowflake", "snowflake"), ("bigquery", "sqlalchemy_bigquery"),
                                                  ("trino", "trino")])
def test_a_dialect_not_installed_names_its_extra(tmp_path, dialect, package):
    """As on the default install: the dialect's package cannot be imported (here: blocked in sys.modules)."""
    folder = small_project(tmp_path / "p", 'as_of = "today"')
    blocked = (f"import sys; sys.modules[{package!r}] = None; from audlang.cli import main; "
               f"main(['sql', 'Recent', '--dialect', {dialect!r}])")
    result = subprocess.run([sys.executable, "-c", blocked], cwd=folder, capture_output=True, text=True,
                            env=cli_env(), timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"{dialect}: error[E204]: this SQL dialect is not installed: "
                                     f"pip install 'audlang[{dialect}]'")


def test_the_language_server_names_a_wrong_as_of_with_its_place(tmp_path, monkeypatch):
    """The editor shows a wrong ``as_of`` at the top of the open document, naming audlang.toml's line."""
    from audlang.lsp.analysis import analyze
    from audlang.lsp.queries import diagnostics_by_document

    folder = small_project(tmp_path / "p", 'as_of = "someday"')
    monkeypatch.chdir(folder)
    key = str((folder / "a.aud").resolve())
    analysis = analyze(folder.resolve(), {key: (folder / "a.aud").read_text()})
    (shown,) = diagnostics_by_document(analysis, {key})[key]
    assert shown.code == "E302"
    assert shown.message.startswith("audlang.toml:3:9: `as_of` takes YYYY-MM-DD"), shown.message
