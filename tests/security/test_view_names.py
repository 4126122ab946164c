"""One warehouse view per segment: names that would share one are an error; long and non-ASCII names
get a stable, unique, readable name that fits every engine's identifier limit."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from audlang.check.names import VIEW_PREFIX, view_name
from audlang.cli import cli


def cli_run(root, *args):
    return CliRunner().invoke(cli, ["--project", str(root), *args], catch_exceptions=False)


def test_names_that_share_a_view_are_an_error_naming_both(write_project):
    root = write_project({"a.aud": 'segment "Big Spenders" < lifetime_revenue > 500 >\n'
                                   'segment "big_spenders" < lifetime_revenue > 600 >\n',
                          "b.aud": 'segment "BIG-SPENDERS!" < lifetime_revenue > 700 >\n'})
    result = cli_run(root, "validate")
    assert result.exit_code == 1
    out = result.output
    assert out.count("error[E117]") == 2
    assert ('a.aud:2:9: error[E117]: segments "Big Spenders" and "big_spenders" would share the warehouse view '
            "audlang_members_big_spenders") in out
    assert 'segments "Big Spenders" and "BIG-SPENDERS!"' in out


def test_ordinary_names_keep_the_view_they_always_had():
    assert view_name("Big Spenders") == "audlang_members_big_spenders"
    assert view_name("Holiday Shoppers - SMS") == "audlang_members_holiday_shoppers_sms"
    assert view_name("x" * 47) == VIEW_PREFIX + "x" * 47


@pytest.mark.parametrize("name", ["Клиенты", "顧客", "Café Lovers", "x" * 48, "A" * 200, "!!!", "🎄"])
def test_long_and_non_ascii_names_get_a_hash_suffix(name):
    view = view_name(name)
    assert re.fullmatch(r"audlang_members_([a-z0-9_]+_)?[0-9a-f]{8}", view), view
    assert len(view) <= 63
    assert view == view_name(name)  # stable


def test_names_that_once_collided_now_differ():
    assert view_name("Клиенты") != view_name("顧客") != view_name("!!!")
    assert view_name("a" * 60 + "1") != view_name("a" * 60 + "2")
    assert view_name("Café Lovers").startswith("audlang_members_cafe_lovers_")


@given(st.text(min_size=1, max_size=120))
def test_every_name_maps_to_a_plain_identifier_of_at_most_63_bytes(name):
    view = view_name(name)
    assert re.fullmatch(r"[a-z0-9_]+", view) and len(view.encode()) <= 63


def test_state_show_names_the_view(write_project):
    root = write_project({"a.aud": 'segment "Клиенты" < lifetime_revenue > 500 >\n'},
                         config='warehouse = "duckdb:///w.duckdb"\n')
    from audlang.datagen import generate

    generate(f"duckdb:///{root / 'w.duckdb'}", customers=50, seed=3)
    assert cli_run(root, "apply", "--auto-approve", "--as-of", "2024-11-30").exit_code == 0
    shown = cli_run(root, "state", "show", "Клиенты")
    assert shown.exit_code == 0, shown.output
    assert f"view        {view_name('Клиенты')}" in shown.output
