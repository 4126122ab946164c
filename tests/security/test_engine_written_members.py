"""`audlang members` on DuckDB runs a statement of its own around the compiled query
(``warehouse.engine_output``) and may start last time's query early from a cache file. Neither lets a
segment's name, a value in a segment, a table mapping or a planted cache file run a second statement
or write a file: the output is the general path's, and no file appears but the cache entry.

The statement names no path at all (the text comes back as query results); the compiled query's
literals are the dialect's; every statement is checked to be one SELECT; the connections read the file
read-only with ``enable_external_access = false``, which no statement can undo.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from audlang import evaluate, warehouse
from audlang.cli import cli
from audlang.compile import AsOf
from audlang.datagen import generate
from audlang.project import load
from audlang.warehouse import engine_output
from helpers import EXAMPLES

AS_OF = "2024-11-30"


def hostile(pwned: Path) -> list[str]:
    """Texts that try to end the quoting they are in and run a COPY to ``pwned``."""
    target = str(pwned)
    return [
        f"x'); COPY (SELECT 42) TO '{target}'; --",
        f"x') AS audlang_members(c0); COPY (SELECT 42) TO '{target}'; SELECT ('",
        f'x"); COPY (SELECT 42) TO \'{target}\'; --',
        f"x\\'; COPY (SELECT 42) TO '{target}'; --",
        f"x$$; COPY (SELECT 42) TO '{target}'; $$",
    ]


@pytest.fixture(scope="module")
def warehouse_url(warehouse):
    generate(warehouse.url, customers=200, seed=3)
    return warehouse.url


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    shutil.copytree(EXAMPLES / "retail", root)
    return root


@pytest.fixture
def cache(monkeypatch, tmp_path):
    folder = tmp_path / "cache"
    monkeypatch.setenv("AUDLANG_CACHE_DIR", str(folder))
    return folder / "members"


def run(project, *args, code=0):
    result = CliRunner().invoke(cli, ["--project", str(project), *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    return result


def general(url, project, name, fmt="csv") -> str:
    engine = warehouse.connect(url, role=warehouse.Role.READ)
    try:
        header, rows = evaluate.members(engine, url, load(None, str(project)).model, name, AsOf.parse(AS_OF))
    finally:
        engine.dispose()
    return "".join(evaluate.format_members(header, rows, fmt))


def files(*folders: Path) -> set[Path]:
    return {p for folder in folders for p in folder.rglob("*")}


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_hostile_names_and_values_write_no_file(project, warehouse_url, cache, tmp_path):
    pwned = tmp_path / "pwned.csv"
    texts = hostile(pwned)
    declarations = []
    for i, text in enumerate(texts):
        quoted = json.dumps(text)
        declarations.append(f"segment {quoted} < lifetime_revenue > {i} >")
        declarations.append(f'segment "Value {i}" < given_name = {quoted} or email contains {quoted} '
                            f"or lifetime_revenue > 400 >")
    (project / "segments" / "hostile.aud").write_text("\n".join(declarations) + "\n", encoding="utf-8")
    before = files(project, Path(warehouse_url.removeprefix("duckdb:///")).parent)
    names = [*texts, *(f"Value {i}" for i in range(len(texts)))]
    for name in names:
        for fmt in ("csv", "json"):
            for _twice in (1, 2):  # the second run's query starts early, from the cache
                out = run(project, "members", name, "--as-of", AS_OF, "--warehouse", warehouse_url, "--format",
                          fmt).stdout
                assert out == general(warehouse_url, project, name, fmt)
    assert not pwned.exists()
    assert files(project, Path(warehouse_url.removeprefix("duckdb:///")).parent) == before
    assert {p.parent for p in files(cache)} <= {cache}


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_a_hostile_table_mapping_is_refused_or_missing(project, warehouse_url, cache, tmp_path):
    pwned = tmp_path / "pwned.csv"
    for text in hostile(pwned):
        (project / "mappings.aud").write_text(
            f"table churn_scores from {json.dumps(text)} <\n  churn_score number = \"score\"\n"
            "  churn_model_version text = \"model_version\"\n>\n", encoding="utf-8")
        for _twice in (1, 2):
            result = run(project, "members", "Model - Likely Churners", "--as-of", AS_OF, "--warehouse",
                         warehouse_url, code=1)
            assert "error[E113]" in result.output or "error[E404]" in result.output  # refused, or no such table
    assert not pwned.exists()


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
@pytest.mark.parametrize("planted", ["second statement", "closed parenthesis", "not a select"])
def test_a_planted_cache_entry_runs_nothing(project, warehouse_url, cache, tmp_path, planted):
    pwned = tmp_path / "pwned.csv"
    args = ("members", "Big Spenders", "--as-of", AS_OF, "--warehouse", warehouse_url)
    expected = run(project, *args).stdout
    (entry_file,) = cache.glob("*.json")
    entry = json.loads(entry_file.read_text())
    entry["sql"] = {
        "second statement": f"SELECT 'a' AS customer_id; COPY (SELECT 42) TO '{pwned}'",
        "closed parenthesis": f"SELECT 'a' AS customer_id) AS audlang_members(c0)) x; COPY (SELECT 42) TO "
                              f"'{pwned}'; SELECT * FROM ((SELECT 'a' AS customer_id",
        "not a select": f"COPY (SELECT 42) TO '{pwned}'",
    }[planted]
    entry_file.write_text(json.dumps(entry))
    assert run(project, *args).stdout == expected
    assert not pwned.exists()


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
@pytest.mark.parametrize("how", ["others may write it", "a link"])
def test_a_cache_entry_anyone_else_could_have_written_is_not_read(project, warehouse_url, cache, tmp_path, how,
                                                                   monkeypatch):
    args = ("members", "Big Spenders", "--as-of", AS_OF, "--warehouse", warehouse_url)
    run(project, *args)
    (entry_file,) = cache.glob("*.json")
    if how == "a link":
        real = tmp_path / "elsewhere.json"
        shutil.move(entry_file, real)
        entry_file.symlink_to(real)
    else:
        entry_file.chmod(0o666)
    started = []
    original = engine_output.EarlyQuery.__init__

    def spy(self, key, inputs, entry):
        started.append(entry is not None)
        original(self, key, inputs, entry)

    monkeypatch.setattr(engine_output.EarlyQuery, "__init__", spy)
    run(project, *args)
    assert started == [False]


def test_the_statements_run_are_single_selects():
    check = engine_output._single_select
    assert check("SELECT 1")
    assert check("SELECT ';' AS x, '); COPY (SELECT 1) TO ''f''; --' AS y")
    for text in ["SELECT 1; SELECT 2", "COPY (SELECT 1) TO 'f'", "SELECT 1); COPY (SELECT 1) TO 'f'; (SELECT 1",
                 "ATTACH 'f' AS x", "SET enable_external_access = true", "not sql at all"]:
        assert not check(text), text


def test_header_names_are_literals_only():
    assert engine_output._literal("it's") == "'it''s'"
    assert engine_output._literal("a\\'b") == "'a\\''b'"
    with pytest.raises(engine_output.Unsupported):
        engine_output._literal("nul\x00")
    conn = duckdb.connect()
    for text in ["it's", "'; SELECT 1; --", "\\", "\n\"'"]:
        assert conn.execute(f"SELECT {engine_output._literal(text)}").fetchone()[0] == text


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_the_early_connection_cannot_write_a_file(warehouse_url, tmp_path):
    conn = engine_output.early_connection(warehouse_url.removeprefix("duckdb:///"))
    try:
        for statement in [f"COPY (SELECT 1) TO '{tmp_path / 'x.csv'}'", "SET enable_external_access = true",
                          "CREATE TABLE t (i INTEGER)"]:
            with pytest.raises(duckdb.Error):
                conn.execute(statement)
    finally:
        conn.close()
    assert not (tmp_path / "x.csv").exists()
    assert os.listdir(tmp_path) == []
