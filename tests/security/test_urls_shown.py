"""A database URL in a message hides its password and its query's values: a pull request can make a
command fail on purpose (a mapping to a missing table), and the CI log is public."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from audlang.diagnostics import shown_url
from audlang.datagen import generate

SECRET = "QSECRET_tok_9931"


@pytest.mark.parametrize("url, shown", [
    (f"duckdb:////data/w.duckdb?motherduck_token={SECRET}", "duckdb:////data/w.duckdb?motherduck_token=***"),
    (f"postgresql://u@127.0.0.1:1/db?password={SECRET}&sslmode=require",
     "postgresql://u@127.0.0.1:1/db?password=***&sslmode=***"),
    (f"postgresql+psycopg://u:{SECRET}@h:5432/db", "postgresql+psycopg://u:***@h:5432/db"),
    ("sqlite:///w.db", "sqlite:///w.db"),
    ("not a url", "<invalid URL>"),
])
def test_shown_url_masks_passwords_and_query_values(url, shown):
    assert shown_url(url) == shown


def test_a_failing_plan_never_prints_the_warehouse_url_secrets(tmp_path):
    generate(f"duckdb:///{tmp_path / 'w.duckdb'}", customers=20, seed=1)
    (tmp_path / "audlang.toml").write_text("")
    (tmp_path / "m.aud").write_text('table churn_scores from "no_such_table" < churn_score number = "score" >\n'
                                    'segment "A" < churn_score > 1 >\n')
    env = {**os.environ, "AUDLANG_WAREHOUSE": f"duckdb:///{tmp_path / 'w.duckdb'}?custom_user_agent={SECRET}"}
    done = subprocess.run([sys.executable, "-m", "audlang", "plan"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "E404" in out and "no_such_table" in out
    assert SECRET not in out and "custom_user_agent=***" in out
    env["AUDLANG_WAREHOUSE"] = f"postgresql://u@127.0.0.1:1/db?password={SECRET}"
    done = subprocess.run([sys.executable, "-m", "audlang", "plan"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    out = done.stdout + done.stderr
    assert done.returncode == 1 and "cannot connect" in out and SECRET not in out
