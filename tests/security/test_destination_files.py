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
import threading
import time
import tracemalloc
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


# ------------------------------------------------------------------ templates bounded in time and size

NESTED_LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


def test_a_template_that_would_loop_for_hours_is_refused_within_a_second(write_project):
    """The red team's path ran for more than 20 s; a deadline inside the render stops it (E120)."""
    root = csv_project(write_project, f"target/{NESTED_LOOPS}x.csv")
    started = time.monotonic()
    returncode, out = validate(root)
    assert returncode == 1, out
    assert "send.aud:2:10: error[E120]: the path template takes too long to render" in out, out
    assert time.monotonic() - started < 10  # the process, imports and all; the render itself below
    template = templates.compile_template(f"target/{NESTED_LOOPS}x.csv", "the path template")
    started = time.monotonic()
    with pytest.raises(templates.TemplateProblem, match="takes too long to render") as refused:
        templates.render_path(template, "C", "G", "D")
    assert refused.value.code == "E120"
    assert time.monotonic() - started < templates.RENDER_SECONDS + 0.5


@pytest.mark.parametrize("body", [
    '{"n": 1}' + NESTED_LOOPS,
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}{}",
    "{% for m in members %}{% for i in range(100000) %}{{ range(100000)|sum }}{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{% for j in ('x' * 1000000) %}{% endfor %}{% endfor %}",
    "{{ (range(100000)|map('string')|join(','))|wordcount }}" * 30,
])
def test_every_kind_of_slow_body_stops_at_its_deadline(body):
    names = templates.body_names("C", "G", "D", "add", 1, "k", [{"customer_id": "C1"}], ("customer_id",))
    template = templates.compile_template(body, "the body template")
    started = time.monotonic()
    with pytest.raises(templates.TemplateProblem, match="takes too long to render"):
        templates.render_body(template, names, deadline=time.monotonic() + 0.3)
    assert time.monotonic() - started < 1.5


def test_validate_gives_all_templates_together_two_seconds(write_project):
    """Twenty slow templates: each is refused, and the check as a whole stays within CHECK_SECONDS."""
    from audlang import lsp

    text = "".join(f'destination "F{i}" csv <\n  path = "target/{NESTED_LOOPS}{i}.csv"\n>\n' for i in range(20))
    root = write_project({"send.aud": text})
    started = time.monotonic()
    diagnostics = lsp.analyze(root, {}).diagnostics
    assert time.monotonic() - started < templates.CHECK_SECONDS + 1
    assert [d.code for d in diagnostics] == ["E120"] * 20, diagnostics


def test_the_language_server_answers_in_its_own_thread(write_project):
    """The tracer is per thread: a check in a worker thread (as the language server runs it) stops too,
    and a thread rendering a good template meanwhile is not slowed down or refused."""
    from audlang import lsp

    root = csv_project(write_project, f"target/{NESTED_LOOPS}x.csv")
    results: dict[str, object] = {}

    def slow():
        started = time.monotonic()
        results["slow"] = lsp.analyze(root, {})
        results["seconds"] = time.monotonic() - started

    def good():
        results["good"] = [templates.render_path("out/{{ group }}.csv", "C", f"G{i}", "D") for i in range(2000)]

    threads = [threading.Thread(target=slow), threading.Thread(target=good)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [d.code for d in results["slow"].diagnostics] == ["E120"], results["slow"].diagnostics
    assert results["seconds"] < 3
    assert len(results["good"]) == 2000 and sys.gettrace() is None


def test_a_template_too_long_to_compile_is_refused(write_project):
    long = "{{ group }}-" * 2000 + ".csv"  # 24,000 characters of tags
    with pytest.raises(templates.TemplateProblem, match="is longer than 16,384 characters"):
        templates.compile_template(long, "the path template")


MB = 1024 * 1024
#: each builds gigabytes unbounded; every one is refused before it passes the render's budget
GROWING = [
    ("{% set a = ''|center(400000000) %}{% set b = ''|center(400000000) %}{{ (a ~ b)|length }}", "center"),
    ("{{ ''.center(400000000)|length }}", "str.center"),
    ("{{ ''.ljust(400000000)|length }}", "str.ljust"),
    ("{{ ''.rjust(400000000)|length }}", "str.rjust"),
    ("{{ ''.zfill(400000000)|length }}", "str.zfill"),
    ("{{ ('\\n' * 1000000)|indent(1000)|length }}", "indent"),
    ("{{ ('\\n' * 1000000)|indent('x' * 1000)|length }}", "indent with a text"),
    ("{{ ('x ' * 500000)|wordwrap(1, wrapstring='y' * 1000)|length }}", "wordwrap"),
    ("{{ ('x' * 1000000)|replace('x', 'y' * 1000)|length }}", "replace"),
    ("{{ ('x' * 1000000).replace('x', 'y' * 1000)|length }}", "str.replace"),
    ("{{ ('x' * 1000000).replace('', 'y' * 1000)|length }}", "str.replace of nothing"),
    ("{{ '%999999999d'|format(1) }}", "format"),
    ("{{ '%999999999d' % 1 }}", "%"),
    ("{{ ('%(a)s' * 300000) % {'a': 'x' * 1000} }}", "% with a mapping"),
    ("{{ '{:>999999999}'.format(1) }}", "str.format"),
    ("{{ ('{0}' * 300000).format('x' * 1000)|length }}", "str.format of one value many times"),
    ("{{ range(100000)|join('x' * 100000)|length }}", "join"),
    ("{{ ('x' * 100000).join(range(100000)|map('string'))|length }}", "str.join"),
    ("{{ ([('x' * 100000)] * 1000)|join|length }}", "join of one long text"),
    ("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
     "{{ ns.s|length }}", "~ doubling in a namespace"),
    ("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}"
     "{{ ns.s|length }}", "+ doubling"),
    ("{{ ('x' * 1000000 * 1)|length }}{{ ('y' * 1000000) * 9 }}", "string *"),
    ("{{ ([1] * 1000000 + [2] * 1000000)|length }}", "list * and +"),
    ("{{ ([[1] * 1000000] * 1000)|tojson|length }}", "list * of a list, written out"),
    ("{% set ns = namespace(l=[]) %}{% for i in range(64) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}"
     "{{ ns.l|length }}", "a list literal doubling"),
    ("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + range(100000)|list %}"
     "{% endfor %}", "range"),
    ("{{ range(100000)|map(attribute='nope', default='x' * 100000)|list|length }}", "map with a default"),
    ("{{ [1]|batch(1000000000, 'x')|list|length }}", "batch with a filler"),
    ("{{ [1]|slice(1000000000)|list|length }}", "slice"),
    ("{{ [[1] * 100000] * 100|sum(start=[]) }}", "sum of lists"),
    ("{% macro d(n) %}{% if n %}{% set s = d(n - 1) %}{{ s }}{{ s }}{% else %}x{% endif %}{% endmacro %}"
     "{{ d(64)|length }}", "a macro doubling its own text"),
    ("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "output"),
    ("{{ ('x' * 1000000)|upper|upper|upper|upper|upper|upper|upper|upper|upper }}", "upper, again and again"),
    ("{{ (('<' * 1000000)|e)|e|e|e }}", "escape"),
    ("{{ 2 ** 256 ** 256 }}", "**"),
    ("{% set ns = namespace(n=2) %}{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}{% endfor %}", "int *"),
]


@pytest.mark.parametrize("template, what", GROWING, ids=[what for _t, what in GROWING])
def test_no_render_allocates_more_than_a_few_megabytes(template, what):
    names = templates.body_names("C", "G", "D", "add", 1, "k", [{"customer_id": "C1"}], ("customer_id",))
    tracemalloc.start()  # which slows every allocation down: the deadline is not what is tested here
    try:
        with pytest.raises(templates.TemplateProblem) as refused:
            templates.render_body(template, names, deadline=time.monotonic() + 60)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert refused.value.code == "E121", (what, refused.value.message)
    assert "refused by the sandbox" in refused.value.message
    assert peak < templates.sandbox.BASE_BYTES + 4 * MB, (what, peak // MB)


def test_a_path_template_of_gigabytes_is_refused_at_its_position(write_project):
    root = csv_project(write_project, "target/{% set a = ''|center(400000000) %}{{ a|length }}.csv")
    returncode, out = validate(root)
    assert returncode == 1, out
    assert "send.aud:2:10: error[E121]: the path template is refused by the sandbox: it would build more " \
           "than 8 MiB" in out, out


@pytest.mark.parametrize("template, rendered", [
    ("{{ group|center(7) }}|{{ group.ljust(3, '-') }}|{{ group.zfill(4) }}", "   A   |A--|000A"),
    ("{{ 'a\nb'|indent(2, first=true) }}|{{ 'aaa bbb'|wordwrap(3) }}", "  a\n  b|aaa\nbbb"),
    ("{{ campaign|replace('o', '0') }}|{{ campaign.replace('l', 'L', 1) }}", "H0liday|HoLiday"),
    ("{{ '%s-%03d'|format(group, 7) }}|{{ '%(g)s' % {'g': group} }}|{{ '{}/{g}'.format(campaign, g=group) }}",
     "A-007|A|Holiday/A"),
    ("{{ [campaign, group]|join('-') }}|{{ '-'.join([group, group]) }}|{{ campaign ~ '/' ~ group }}",
     "Holiday-A|A-A|Holiday/A"),
    ("{{ ('ab' * 3)|length }}|{{ ([1] * 3 + [2])|sum }}|{{ range(3)|list|length }}|{{ 2 ** 10 }}", "6|5|3|1024"),
    ("{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}", "3"),
    ("{{ [1, 2, 3]|batch(2, 0)|list }}|{{ [1, 2, 3]|slice(2)|list }}|{{ {'a': [1]}|tojson }}",
     '[[1, 2], [3, 0]]|[[1, 2], [3]]|{"a": [1]}'),
    ("{% macro m(x) %}<{{ x }}>{% endmacro %}{{ m(group) }}{% set s %}[{{ campaign }}]{% endset %}{{ s }}",
     "<A>[Holiday]"),
    ("{{ group.lower() }}{{ campaign.upper() }}{{ campaign.startswith('Ho') }}{{ {'k': 1}.get('k') }}",
     "aHOLIDAYTrue1"),
])
def test_what_templates_build_in_the_small_still_renders(template, rendered):
    """The bounds refuse only what is large: the same operations on a path's names render as before."""
    assert templates.render(templates.compile_template(template, "t"), {"campaign": "Holiday", "group": "A"},
                            "t", 10_000, ()) == rendered


@pytest.mark.parametrize("template, code, says", [
    ("{{ joiner() }}", "E122", "'joiner' is undefined"),
    ("{{ cycler(1, 2) }}", "E122", "'cycler' is undefined"),
    ("{{ lipsum() }}", "E122", "'lipsum' is undefined"),
    ("{{ dict(a=1) }}", "E122", "'dict' is undefined"),
    ("{{ range }}", "E121", "writes out a function or method"),
    ("{{ group.upper }}", "E121", "writes out a function or method"),
    ("{{ members|map(attribute='customer_id') }}", "E121", "writes out a generator (add |list)"),
    ("{{ namespace(a=1) }}", "E121", "writes out a namespace"),
    ("{% for m in members %}{{ loop }}{% endfor %}", "E121", "writes out the loop object"),
    ("{{ 'x' ~ range }}", "E121", "writes out a function or method"),
    ("{{ [range]|string }}", "E121", "writes out a function or method"),
    ("{{ '%s' % namespace }}", "E121", "writes out a function or method"),
    ("{{ group|map(attribute='__class__')|list }}", "E121", "'__class__' of 'str' object is unsafe"),
    ("{{ members|sort(attribute='__class__') }}", "E121", "'__class__' of 'dict' object is unsafe"),
    ("{{ members|map(attribute='nope')|list }}", "E122", "has no attribute 'nope'"),
    ("{{ members|map(attribute='nope')|join }}", "E122", "has no attribute 'nope'"),
    ("{{ group.translate({65: 'x' * 100}) }}", "E121", "'translate' of 'str' object is unsafe"),
    ("{{ group.expandtabs(100000) }}", "E121", "'expandtabs' of 'str' object is unsafe"),
    ("{{ (1).to_bytes(1000000000, 'big') }}", "E121", "'to_bytes' of 'int' object is unsafe"),
    ("{{ group.encode() }}", "E121", "'encode' of 'str' object is unsafe"),
    ("{{ members|tojson(indent=100000) }}", "E121", "compact JSON only"),
    ("{{ 'http://x.example'|urlize }}", "E120", "No filter named 'urlize'"),
])
def test_objects_and_unsafe_attributes_never_render(template, code, says):
    """Never a ``<function … at 0x…>`` or "Undefined" in a path or a body: refused, as the sandbox refuses."""
    names = templates.body_names("C", "A", "D", "add", 1, "k", [{"customer_id": "C1"}], ("customer_id",))
    with pytest.raises(templates.TemplateProblem) as refused:
        templates.render(templates.compile_template(template, "the body template"), names, "the body template",
                         10_000, templates.BODY_NAMES)
    assert refused.value.code == code and says in refused.value.message, refused.value.message
    assert "0x" not in refused.value.message and "Undefined" not in refused.value.message


KEY_ERROR = "{\n\n{{ ('%(' ~ members[0].email ~ ')s') % {} }}}"


def test_at_apply_a_render_failure_names_its_kind_and_line_only():
    """``{{ {}[members[0].email] }}`` said "… has no attribute 'lthompson@comcast.net'": at apply
    (``detail=False``) a message never holds what an expression said, only the kind and the line."""
    members = [{"customer_id": "C1", "email": "lthompson@comcast.net"}]
    names = templates.body_names("C", "A", "D", "add", 1, "k", members, ("customer_id", "email"))
    for body, kind in (("{{ {}[members[0].email] }}", "uses something that is not defined"),
                       (KEY_ERROR, "cannot be rendered: KeyError"),
                       ("{{ members[0].email.__class__ }}", "is refused by the sandbox"),
                       ("{{ (members[0].email * 1000000) }}", "is refused by the sandbox"),
                       (NESTED_LOOPS, "takes too long to render")):
        with pytest.raises(templates.TemplateProblem) as refused:
            templates.render_body(body, names, detail=False, deadline=time.monotonic() + 0.2)
        message = refused.value.explained()
        assert kind in message and "lthompson" not in message and "comcast" not in message, message
        assert "of the template)" in message, message
    with pytest.raises(templates.TemplateProblem, match=r"^the body template cannot be rendered: KeyError "
                                                        r"\(line 3 of the template\)$"):
        templates.render_body(KEY_ERROR, names, detail=False)
    with pytest.raises(templates.TemplateProblem, match="KeyError: 'lthompson@comcast.net'"):
        templates.render_body(KEY_ERROR, names)  # at validate the members are samples: the detail helps
    with pytest.raises(templates.TemplateProblem, match=r"^the path template does not parse \(line 1"):
        templates.compile_template("exports/{% SECRET %}.csv", "the path template", detail=False)
