"""Source files found in the project stay in it: a symlinked ``.aud`` file must not show another
file's lines in a diagnostic, nor let ``fmt`` write through it; ``paths`` stays in the project."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from audlang.cli import cli

SECRET_LINE = "root:$6$secret-hash-do-not-show:19000:0:99999:7:::"


def cli_run(root, *args):
    return CliRunner().invoke(cli, ["--project", str(root), *args], catch_exceptions=False)


def test_a_symlinked_source_outside_the_project_is_refused_unread(write_project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "shadow"
    outside.write_text(SECRET_LINE + "\n")
    root = write_project({"a.aud": 'segment "A" < sms_opt_in >\n'})
    (root / "b.aud").symlink_to(outside)
    for command in (["validate"], ["fmt"], ["fmt", "--check"]):
        result = cli_run(root, *command)
        assert result.exit_code == 1, result.output
        assert "E304" in result.output and "outside the project folder" in result.output
        assert "secret-hash" not in result.output
    assert outside.read_text() == SECRET_LINE + "\n"  # fmt wrote nothing through the link


def test_a_symlinked_source_inside_the_project_is_read(write_project):
    root = write_project({"real/a.aud": 'segment "A" < sms_opt_in >\n'})
    (root / "b.aud").symlink_to(root / "real" / "a.aud")
    result = cli_run(root, "validate", )
    # the same file seen twice declares "A" twice: it was read
    assert "declared twice" in result.output


def test_paths_outside_the_project_are_refused(write_project):
    for paths in ('["/etc"]', '["../"]', '[".", "../../.."]'):
        root = write_project({"a.aud": 'segment "A" < sms_opt_in >\n'}, config=f"paths = {paths}\n")
        result = cli_run(root, "validate")
        assert result.exit_code == 1, result.output
        assert "E302" in result.output and "outside the project folder" in result.output


def test_a_fifo_named_like_a_source_does_not_block(write_project):
    import os

    root = write_project({"a.aud": 'segment "A" < sms_opt_in >\n'})
    os.mkfifo(root / "b.aud")
    result = cli_run(root, "validate")
    assert result.exit_code == 1 and "not a regular file" in result.output


def test_audlang_toml_is_read_like_a_source(write_project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "other.toml"
    outside.write_text('registry = "secret-registry-token"\n')
    root = write_project({"a.aud": 'segment "A" < sms_opt_in >\n'}, config=None)
    (root / "audlang.toml").symlink_to(outside)
    result = cli_run(root, "validate")
    assert result.exit_code == 1 and "E302" in result.output and "outside the project folder" in result.output
    assert "registry" not in result.output


@pytest.mark.parametrize("exports_root", ["/", "..", "."])
def test_exports_root_may_not_hold_the_project_or_be_the_root(write_project, exports_root):
    root = write_project({"a.aud": 'segment "A" < sms_opt_in >\n'}, config=f'exports_root = "{exports_root}"\n')
    result = cli_run(root, "validate")
    assert result.exit_code == 1 and "`exports_root` may not be" in result.output


def test_a_giant_line_is_refused_before_it_is_parsed(write_project):
    root = write_project({"a.aud": 'segment "' + "x" * 200_000 + '" < sms_opt_in >\n'})
    result = cli_run(root, "validate")
    assert result.exit_code == 1 and "E304" in result.output
    assert "has a line of 200,025 characters (at most 65,536)" in result.output
