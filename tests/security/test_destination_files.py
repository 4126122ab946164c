"""Destination paths and templates are untrusted: validate renders them, and refuses what would leave the
project, abuse the sandbox, name nothing, not be JSON, or write one file twice.

Each test is an attack (or an accident) a pull request could bring to a CI run; ``validate`` and ``plan`` run
as real processes (``python -m audlang``) with a timeout. The apply side (a refused sync, a body that fails
at render time) is in ``tests/sync/test_sync_templates.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from audlang.check import templates
from audlang.destinations import SettingsError, Target
from audlang.destinations.base import Settings
from audlang.destinations.files import CsvFile, resolve_database_url

CAMPAIGN = '''
segment "All" < customer_id is set >
campaign "Holiday" <
  audience segment "All"
  treatment "A" 50% to "{dest}"
  treatment "B" 50% to "{dest}"
>
'''


def run(root: Path, *args: str, timeout: int = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("AUDLANG_WAREHOUSE", "AUDLANG_STATE")}
    env["NO_COLOR"] = "1"
    done = subprocess.run([sys.executable, "-m", "audlang", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    return done


def csv_project(write_project, path: str, config: str = "", extra: str = "") -> Path:
    text = f'destination "File" csv <\n  path = "{path}"\n>\n' + CAMPAIGN.format(dest="File") + extra
    return write_project({"send.aud": text}, config=config)


def validate(root: Path) -> tuple[int, str]:
    done = run(root, "validate")
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("path, code, says", [
    ("/tmp/audlang-abuse/{{ group }}.csv", "E124", "leads outside the project folder (an absolute path)"),
    ("../{{ group }}.csv", "E124", "leads outside the project folder"),
    ("exports/../../{{ group }}.csv", "E124", "leads outside the project folder"),
    ("target/{{ ''|attr('__class__') }}.csv", "E121", "refused by the sandbox"),
    ("target/{{ ''.__class__.__mro__ }}.csv", "E121", "refused by the sandbox"),
    ("target/{{ nope }}-{{ group }}.csv", "E122", "'nope' is undefined"),
    ("target/{{ '' }}.csv", "E123", "a file name that starts with a dot"),
    ("target/{{ group }}", "E123", "writes only files named *.csv"),
    ("target/{{ group }}/", "E123", "names no file"),
    ("target/{{ group }}/..", "E123", "names no file"),
    (".git/hooks/{{ group }}.csv", "E123", "hidden folder .git"),
    ("target/{{ group }}{{ '\\\\x00' }}.csv", "E123", "control character"),
    ("target/{{ group|replace('A', '\\\\\\\\') }}.csv", "E123", "backslash"),
    ("target/{{ 'x' * 100000000 }}.csv", "E121", "repetition longer than"),
    ("target/{% for %}.csv", "E120", "does not parse"),
])
def test_a_csv_path_that_validate_refuses_at_its_position(write_project, path, code, says):
    root = csv_project(write_project, path)
    returncode, out = validate(root)
    assert returncode == 1, out
    assert f"send.aud:2:10: error[{code}]" in out, out
    assert says in out, out
    assert not (root / "target").exists()  # validate writes nothing


def test_a_symlinked_folder_that_leaves_the_project(write_project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    root = csv_project(write_project, "exports/{{ campaign }}-{{ group }}.csv")
    (root / "exports").symlink_to(outside, target_is_directory=True)
    returncode, out = validate(root)
    assert returncode == 1
    assert "send.aud:2:10: error[E124]" in out and "through a symbolic link" in out
    assert str(outside) not in out  # the machine's layout is none of the log's business
    # A link that stays inside the project is followed.
    (root / "exports").unlink()
    (root / "real").mkdir()
    (root / "exports").symlink_to(root / "real", target_is_directory=True)
    assert validate(root)[0] == 0


def test_an_existing_link_or_folder_at_the_file_is_refused(write_project):
    root = csv_project(write_project, "out/{{ group }}.csv")
    (root / "out").mkdir()
    (root / "elsewhere.csv").write_text("keep me\n")
    (root / "out" / "A.csv").symlink_to(root / "elsewhere.csv")
    returncode, out = validate(root)
    assert returncode == 1 and "error[E123]" in out and "names a symbolic link" in out
    (root / "out" / "A.csv").unlink()
    (root / "out" / "A.csv").mkdir()
    returncode, out = validate(root)
    assert returncode == 1 and "error[E123]" in out and "not a regular file" in out


def test_two_groups_that_would_write_one_file_are_named(write_project):
    root = csv_project(write_project, "exports/{{ campaign }}.csv")
    returncode, out = validate(root)
    assert returncode == 1
    assert 'send.aud:2:10: error[E126]: csv destination "File" would write one file for two groups, ' \
           '"Holiday" / "A" and "Holiday" / "B": both render to "exports/Holiday.csv"' in out
    # Two destinations, or two campaigns whose names make the same file name, alike.
    text = ('destination "One" csv <\n  path = "exports/{{ campaign }}-{{ group }}.csv"\n>\n'
            'destination "Two" csv <\n  path = "exports/../exports/Holiday-A.csv"\n>\n'
            + CAMPAIGN.format(dest="One").replace('"B" 50% to "One"', '"B" 50% to "Two"')
            + 'campaign "Holiday!" <\n  audience segment "All"\n  treatment "A" 100% to "One"\n>\n'
            + 'campaign "Holiday?" <\n  audience segment "All"\n  treatment "A" 100% to "One"\n>\n')
    (root / "send.aud").write_text(text)
    returncode, out = validate(root)
    assert returncode == 1
    assert out.count("error[E126]") == 2, out
    assert 'send.aud:5:10: error[E126]: csv destinations "One" ("Holiday" / "A") and "Two" ("Holiday" / "B") ' \
           'would write one file: "exports/Holiday-A.csv" and "exports/../exports/Holiday-A.csv"' in out
    assert '"Holiday!" / "A" and "Holiday?" / "A": both render to "exports/Holiday_-A.csv"' in out
    # One group in a campaign, another group of the same name elsewhere: their own files, fine.
    fine = ('destination "One" csv <\n  path = "exports/{{ campaign }}-{{ group }}.csv"\n>\n'
            + CAMPAIGN.format(dest="One"))
    (root / "send.aud").write_text(fine)
    assert validate(root)[0] == 0


def test_two_destinations_that_would_write_one_file(write_project):
    text = ('destination "One" csv <\n  path = "exports/{{ group }}.csv"\n>\n'
            'destination "Two" csv <\n  path = "./exports/{{ group }}.csv"\n>\n'
            'segment "All" < customer_id is set >\n'
            'campaign "C" <\n  audience segment "All"\n  treatment "A" 100% to "One", "Two"\n>\n')
    root = write_project({"send.aud": text})
    returncode, out = validate(root)
    assert returncode == 1
    assert 'send.aud:5:10: error[E126]: csv destinations "One" ("C" / "A") and "Two" ("C" / "A") would ' \
           'write one file: "exports/A.csv" and "./exports/A.csv" (the first at send.aud:2:10)' in out


def test_exports_root_allows_one_folder_outside(write_project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("shared-exports")
    absolute = f"{outside}/{{{{ campaign }}}}-{{{{ group }}}}.csv"
    root = csv_project(write_project, absolute)
    returncode, out = validate(root)
    assert returncode == 1 and "error[E124]" in out
    (root / "audlang.toml").write_text(f'exports_root = "{outside}"\n')
    returncode, out = validate(root)
    assert returncode == 0, out
    # Relative to the project folder works as well; a sibling of exports_root does not.
    relative = os.path.relpath(outside, root)
    (root / "send.aud").write_text((root / "send.aud").read_text().replace(str(outside), relative))
    assert validate(root)[0] == 0
    (root / "send.aud").write_text((root / "send.aud").read_text().replace(relative, relative + "-sibling"))
    returncode, out = validate(root)
    assert returncode == 1 and "leads outside both the project folder and exports_root" in out


def test_a_sql_destination_file_database_stays_in_the_project(write_project):
    text = ('destination "Copy" sql <\n  url = "sqlite:///../copy.db"\n  table = "members"\n>\n'
            'destination "Fine" sql <\n  url = "duckdb:///target/copy.duckdb"\n  table = "members"\n>\n'
            'destination "Server" sql <\n  url = "postgresql://db.example.com/crm"\n  table = "members"\n>\n'
            'destination "Memory" sql <\n  url = "sqlite://"\n  table = "members"\n>\n')
    root = write_project({"send.aud": text})
    returncode, out = validate(root)
    assert returncode == 1
    assert 'send.aud:2:9: error[E124]: the database file "../copy.db" leads outside the project folder' in out
    assert out.count("error[") == 1, out


BODIES = [
    ("{{ ''|attr('__class__') }}", "E121", "refused by the sandbox"),
    ("{{ members.__class__.__mro__ }}", "E121", "refused by the sandbox"),
    ("{{ nope | tojson }}", "E122", "'nope' is undefined"),
    ('{"members": [{% for m in members %}{{ m.customer_id }}{% endfor %}]}', "E125", "does not render JSON"),
    # the member without an email renders None: found at validate, not at the first apply
    ('{"emails": [{% for m in members %}"{{ m.email }}"{% if not loop.last %},{% endif %}{% endfor %}]}',
     None, None),
    ('{"emails": [{% for m in members %}{{ m.email }}{% if not loop.last %},{% endif %}{% endfor %}]}',
     "E125", "does not render JSON"),
    ("{{ members | tojson", "E120", "does not parse"),
    ('{"n": {{ 1 / 0 }}}', "E120", "ZeroDivisionError"),
]


@pytest.mark.parametrize("body, code, says", BODIES)
def test_a_webhook_body_is_rendered_at_validate(write_project, body, code, says):
    quoted = body.replace("\\", "\\\\").replace('"', '\\"')
    text = (f'destination "Hook" webhook <\n  url = "https://hooks.example.com/in"\n  body = "{quoted}"\n'
            f'  identifiers = (customer_id, email)\n>\n' + CAMPAIGN.format(dest="Hook"))
    root = write_project({"send.aud": text})
    returncode, out = validate(root)
    if code is None:
        assert returncode == 0, out
        return
    assert returncode == 1, out
    assert f"send.aud:3:10: error[{code}]" in out and says in out, out


def test_a_body_that_renders_json_passes_and_fields_are_sampled_by_type(write_project):
    body = ('{"campaign": {{ campaign | tojson }}, "n": {{ members | length }}, "clv": '
            '[{% for m in members %}{{ m.predicted_clv if m.predicted_clv is not none else 0 }}'
            '{% if not loop.last %},{% endif %}{% endfor %}]}')
    quoted = body.replace('"', '\\"')
    text = (f'destination "Hook" webhook <\n  url = "https://hooks.example.com/in"\n  body = "{quoted}"\n'
            f'  fields = (predicted_clv)\n>\n' + CAMPAIGN.format(dest="Hook"))
    root = write_project({"send.aud": text})
    returncode, out = validate(root)
    assert returncode == 0, out


def test_a_template_read_from_the_environment_is_left_to_apply(write_project):
    text = ('destination "Hook" webhook <\n  url = "https://hooks.example.com/in"\n  body = env("HOOK_BODY")\n>\n'
            'destination "File" csv <\n  path = env("EXPORT_DIR") + "/{{ group }}.csv"\n>\n')
    root = write_project({"send.aud": text})
    assert validate(root)[0] == 0


def test_plan_refuses_what_validate_refuses(write_project, tmp_path):
    root = csv_project(write_project, "../escape-{{ group }}.csv",
                       config='warehouse = "duckdb:///target/w.duckdb"\n')
    done = run(root, "plan")
    assert done.returncode == 1
    assert "send.aud:2:10: error[E124]" in done.stderr
    assert not (tmp_path.parent / "escape-A.csv").exists()


# ------------------------------------------------------------------ the destinations refuse the same


def target(group: str = "A") -> Target:
    return Target("Holiday", group, "File")


def test_the_csv_destination_refuses_at_open_and_again_before_writing(tmp_path, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    for path in ("../x.csv", f"{outside}/x.csv", "target/{{ ''|attr('__class__') }}.csv", "{{ nope }}.csv"):
        with pytest.raises(SettingsError, match="refused, nothing written"):
            CsvFile(Settings("csv", {"path": path}), target(), tmp_path)
    assert CsvFile(Settings("csv", {"path": f"{outside}/x.csv"}), target(), tmp_path, outside).path \
        == outside.resolve() / "x.csv"
    # Opened while the folder was the project's; swapped for a link that leaves before the write.
    destination = CsvFile(Settings("csv", {"path": "out/{{ group }}.csv"}), target(), tmp_path)
    (tmp_path / "out").symlink_to(outside, target_is_directory=True)
    with pytest.raises(SettingsError, match="through a symbolic link"):
        destination.finish([])
    assert list(outside.iterdir()) == []
    # A link at the file itself, even one pointing inside, is never written through.
    (tmp_path / "out").unlink()
    (tmp_path / "out").mkdir()
    (tmp_path / "keep.csv").write_text("keep\n")
    (tmp_path / "out" / "A.csv").symlink_to(tmp_path / "keep.csv")
    with pytest.raises(SettingsError, match="symbolic link"):
        destination.finish([])
    assert (tmp_path / "keep.csv").read_text() == "keep\n"
    (tmp_path / "out" / "A.csv").unlink()
    os.mkfifo(tmp_path / "out" / "A.csv")
    with pytest.raises(SettingsError, match="not a regular file"):
        destination.finish([])


def test_the_sql_destination_refuses_a_database_file_outside(tmp_path, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    for url in (f"sqlite:///{outside}/x.db", "duckdb:///../x.duckdb", "sqlite:///:memory:/../../x.db"):
        with pytest.raises(SettingsError, match="leads outside the project folder"):
            resolve_database_url(url, tmp_path)
    # SQLite decodes URI filenames itself (%2E%2E is ..), after any check: never accepted
    for url in (f"sqlite:///file:{outside}/x.db?uri=true", "sqlite:///file:exports/%252E%252E/%252E%252E/x.db?uri=true",
                "sqlite:///exports/x.db?uri=true"):
        with pytest.raises(SettingsError, match="URI filename"):
            resolve_database_url(url, tmp_path)
    assert resolve_database_url("sqlite:///copy.db", tmp_path) == f"sqlite:///{tmp_path.resolve()}/copy.db"
    assert resolve_database_url(f"sqlite:///{outside}/x.db", tmp_path, outside) == f"sqlite:///{outside.resolve()}/x.db"
    assert resolve_database_url("sqlite://", tmp_path) == "sqlite://"
    assert list(outside.iterdir()) == []


def test_template_variables_never_add_a_folder_or_a_dot_name():
    for name in ("..", ".", "a/b", "a\\b", "\x00", "", "  ", ".hidden", "../../etc/passwd"):
        part = templates.file_name_part(name)
        assert "/" not in part and "\\" not in part and "\x00" not in part
        assert part and not part.startswith(".")
    rendered = templates.render_path("out/{{ campaign }}/{{ group }}.csv", "..", "../../x", "D")
    assert rendered == "out/_../_.._.._x.csv"
