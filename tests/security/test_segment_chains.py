"""Segments built on segments: the compiler and explain inline every ``in segment``, so depth adds up
across segments. Beyond the combined limit it is E004 at validate; at the limit every stage works."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from audlang.check.limits import MAX_COMBINED_DEPTH
from audlang.cli import cli
from audlang.datagen import generate


def chain(length: int) -> str:
    lines = ['segment "s0" < sms_opt_in >']
    lines += [f'segment "s{i}" < not (in segment "s{i - 1}" or sms_opt_in) >' for i in range(1, length)]
    return "\n".join(lines) + "\n"


def cli_run(root, *args):
    return CliRunner().invoke(cli, ["--project", str(root), *args], catch_exceptions=False)


def test_a_chain_deeper_than_the_limit_is_E004_at_validate(write_project):
    root = write_project({"chain.aud": chain(200)})
    result = cli_run(root, "validate")
    assert result.exit_code == 1
    first = next(line for line in result.output.splitlines() if "error[E004]" in line)
    # each link adds 3 levels (not, or, the reference): s32 (97 levels) is the last within the limit
    assert first.split("/")[-1].startswith('chain.aud:34:9: error[E004]: segment "s33" nests 100 levels deep')
    assert f"(at most {MAX_COMBINED_DEPTH})" in first
    assert cli_run(root, "sql", "s199").exit_code == 1  # refused as a project with errors, not a crash


def test_a_campaign_over_a_deep_chain_is_E004_too(write_project):
    text = chain(33) + ('campaign "C" <\n  audience < not (in segment "s32" or email_opt_in) >\n'
                        '  treatment "A" 100%\n>\n')
    result = cli_run(write_project({"chain.aud": text}), "validate")
    assert result.exit_code == 1 and 'error[E004]: campaign "C" nests 100 levels deep' in result.output


@pytest.fixture(scope="module")
def at_the_limit(tmp_path_factory):
    root = tmp_path_factory.mktemp("chain")
    (root / "audlang.toml").write_text('warehouse = "duckdb:///w.duckdb"\n')
    (root / "chain.aud").write_text(chain(33))
    generate(f"duckdb:///{root / 'w.duckdb'}", customers=60, seed=4)
    generate(f"sqlite:///{root / 'w.sqlite'}", customers=60, seed=4)
    return root


@pytest.mark.parametrize("dialect", ["duckdb", "sqlite", "postgresql", "spark", "snowflake", "bigquery", "trino"])
def test_at_the_limit_every_dialect_compiles(at_the_limit, dialect):
    result = cli_run(at_the_limit, "sql", "s32", "--dialect", dialect)
    assert result.exit_code == 0, result.output
    assert result.output.count("sms_opt_in") >= 33


def test_at_the_limit_members_and_explain_run(at_the_limit):
    members = cli_run(at_the_limit, "members", "s32", "--as-of", "2024-11-30")
    assert members.exit_code == 0, members.output
    assert members.output.splitlines()[0] == "customer_id"
    for customer in ("C000001", "C000002"):
        explained = cli_run(at_the_limit, "explain", "s32", customer, "--as-of", "2024-11-30")
        assert explained.exit_code in (0, 1), explained.output  # 1: not a member, explained why
        assert "sms_opt_in" in explained.output


def test_sqlite_refuses_the_depth_clearly(at_the_limit):
    """SQLite's own parser holds about 100 states: this depth is past it. A clear refusal, not a crash."""
    result = cli_run(at_the_limit, "members", "s32", "--warehouse", f"sqlite:///{at_the_limit / 'w.sqlite'}")
    assert result.exit_code == 1
    assert "error[E406]" in result.output and "parser stack overflow" in result.output


def test_a_segment_used_twice_per_layer_cannot_explode(write_project):
    lines = ['segment "S0" < sms_opt_in >']
    lines += [f'segment "S{i}" < in segment "S{i - 1}" or in segment "S{i - 1}" and lifetime_revenue > {i} >'
              for i in range(1, 20)]
    result = cli_run(write_project({"fan.aud": "\n".join(lines) + "\n"}), "validate")
    assert result.exit_code == 1
    assert "expands to" in result.output and "(at most 50,000)" in result.output
    first = next(line for line in result.output.splitlines() if "error[E004]" in line)
    assert 'segment "S14"' in first  # 2^14 × 3 nodes: the first past the limit


def test_as_of_out_of_range_names_the_range_not_the_format(write_project):
    root = write_project({"a.aud": 'segment "X" < has_purchased >\n'})
    result = cli_run(root, "members", "X", "--as-of", "9999-12-31", "--warehouse", "duckdb:///:memory:")
    assert result.exit_code == 1 and "must lie between 1001-01-01 and 8998-12-31" in result.output
