"""``in list`` files are untrusted paths: they stay in the project, are regular, bounded, never block.

Each test is an attack a pull request could make on a CI run that holds secrets in its environment.
The CLI runs as a real process (``python -m audlang``) with a timeout, so a hang fails the test.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from audlang import warehouse
from audlang.check.model import ListFile
from audlang.diagnostics import AudlangError

SECRET = "sk_live_do_not_print_me_4242"


def validate(root, *args, timeout=20):
    env = {**os.environ, "AUDLANG_TEST_SECRET": SECRET, "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, "-m", "audlang", "validate", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in done.stderr
    return Output(done.returncode, done.stdout + done.stderr)


class Output:
    """What validate printed, both streams (diagnostics go to stderr)."""

    def __init__(self, returncode: int, stdout: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, ""


def one_list(write_project, path, config=""):
    return write_project({"a.aud": f'segment "L" < in list "{path}" >\n'}, config=config)


@pytest.mark.parametrize("path", ["/proc/self/environ", "/etc/passwd", "../../../../../../etc/passwd",
                                  "/dev/zero", "/dev/stdin"])
def test_a_path_outside_the_project_is_refused_with_its_position(write_project, path):
    root = one_list(write_project, path)
    result = validate(root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "a.aud:1:15: error[E115]" in result.stdout
    assert "outside the project folder" in result.stdout
    assert SECRET not in result.stdout + result.stderr
    assert "root:" not in result.stdout  # nothing of /etc/passwd
    assert "Traceback" not in result.stderr


def test_a_symlink_that_leaves_the_project_is_refused(write_project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "ids.csv"
    outside.write_text(f"customer_id,{SECRET}\n1,2\n")
    root = one_list(write_project, "lists/ids.csv")
    (root / "lists").mkdir()
    (root / "lists" / "ids.csv").symlink_to(outside)
    result = validate(root)
    assert result.returncode == 1
    assert "error[E115]" in result.stdout and "through a symbolic link" in result.stdout
    assert SECRET not in result.stdout
    # a linked folder that leaves is refused the same way
    (root / "lists" / "ids.csv").unlink()
    (root / "lists").rmdir()
    (root / "lists").symlink_to(outside.parent)
    result = validate(root)
    assert result.returncode == 1 and "error[E115]" in result.stdout


def test_a_symlink_within_the_project_is_followed(write_project):
    root = one_list(write_project, "lists/current.csv")
    (root / "lists").mkdir()
    (root / "lists" / "2024-12.csv").write_text("customer_id\nC1\n")
    (root / "lists" / "current.csv").symlink_to("2024-12.csv")
    result = validate(root)
    assert result.returncode == 0, result.stdout


def test_a_fifo_or_a_folder_is_refused_without_blocking(write_project):
    root = one_list(write_project, "lists/fifo.csv")
    (root / "lists").mkdir()
    os.mkfifo(root / "lists" / "fifo.csv")  # nobody ever writes: a blocking open would hang forever
    result = validate(root, timeout=20)
    assert result.returncode == 1
    assert "error[E115]" in result.stdout and "not a regular file" in result.stdout
    root = one_list(write_project, "lists")
    result = validate(root)
    assert result.returncode == 1 and "not a regular file" in result.stdout


def test_the_size_limit_is_configurable_and_named(write_project):
    root = one_list(write_project, "big.csv", config="max_list_bytes = 1000\n")
    (root / "big.csv").write_text("customer_id\n" + "".join(f"C{i:06d}\n" for i in range(200)))
    result = validate(root)
    assert result.returncode == 1
    assert "error[E115]" in result.stdout and "larger than the limit of 1,000 bytes" in result.stdout
    (root / "audlang.toml").write_text("max_list_bytes = 100000\n")
    assert validate(root).returncode == 0
    (root / "audlang.toml").write_text('max_list_bytes = "lots"\n')
    result = validate(root)
    assert result.returncode == 1 and "max_list_bytes" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_a_diagnostic_shows_a_few_cut_columns_of_the_header_line_only(write_project):
    root = one_list(write_project, "wide.csv")
    header = ",".join(f"column_{i}_{'x' * 60}" for i in range(40))
    (root / "wide.csv").write_text(header + f"\n{SECRET},2\n")
    result = validate(root)
    assert result.returncode == 1
    line = next(x for x in result.stdout.splitlines() if "error[E112]" in x)
    assert "column_0_" in line and "and 35 more" in line
    assert len(line) < 400
    assert "x" * 30 not in line
    assert SECRET not in result.stdout
    # a file that is one endless line shows no more than a few cut names either
    (root / "wide.csv").write_text(SECRET * 100_000)
    result = validate(root)
    assert result.returncode == 1 and SECRET not in result.stdout


def test_a_list_swapped_after_the_check_is_never_loaded(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("customer_id\nC1\n")
    checked = path.read_bytes()
    listed = ListFile("ids.csv", str(path), hashlib.sha256(checked).hexdigest(), len(checked))
    path.write_text("customer_id\nC2\n")  # same size, other content
    engine = sa.create_engine("duckdb:///:memory:")
    with engine.begin() as conn, pytest.raises(AudlangError) as caught:
        warehouse.load_list(conn, listed)
    assert "changed since it was checked" in str(caught.value.diagnostics[0].message)
    path.unlink()
    path.symlink_to("/etc/passwd")
    with engine.begin() as conn, pytest.raises(AudlangError) as caught:
        warehouse.load_list(conn, listed)
    assert "cannot be loaded" in caught.value.diagnostics[0].message
    path.unlink()
    path.write_bytes(checked)
    with engine.begin() as conn:
        warehouse.load_list(conn, listed)
        loaded = conn.execute(sa.text(f"SELECT customer_id FROM audlang_list_{listed.sha256[:16]}")).all()
    assert loaded == [("C1",)]
