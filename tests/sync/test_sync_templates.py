"""At apply, a payload that cannot be rendered or a path that would leave the project fails its own sync only.

The failure is recorded (``sync status`` shows it with its cause), the other syncs of the same apply run,
and so does the next apply; the exit code says "a sync failed" (1), never "a bug" (70). Templates read
from the environment, and bodies that break only on real data, are what validate cannot see.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa
from sync_helpers import AS_OF, SEGMENTS, expected, model_of, warehouse
from vendor_servers import WebhookServer

from audlang import sync

AS_OF_TEXT = "2024-11-30"  # sync_helpers.AS_OF, as the command line takes it
SANDBOX_ESCAPE = "{{ ''|attr('__class__') }}"
GOOD_BODY = "{{ {'campaign': campaign, 'group': group, 'operation': operation, 'members': members} | tojson }}"

PROJECT = '''
segment "Reachable" < phone is set or email is set >

destination "Bad Hook" webhook <
  url = "{url}/bad"
  header "Authorization" = "Bearer " + env("HOOK_TOKEN")
  body = env("AUDLANG_TEST_BODY")
>

destination "Good Hook" webhook <
  url = "{url}/good"
  header "Authorization" = "Bearer " + env("HOOK_TOKEN")
>

destination "File" csv <
  path = "exports/{{{{ campaign }}}}-{{{{ group }}}}.csv"
>

campaign "Holiday" <
  audience segment "Reachable"
  treatment "All" 100% to "Bad Hook", "Good Hook", "File"
>
'''


@pytest.fixture
def server():
    s = WebhookServer(api_key="tok-1")
    yield s
    s.close()


def cli(folder, *args, body: str = SANDBOX_ESCAPE, **variables: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("AUDLANG_WAREHOUSE", "AUDLANG_STATE")}
    env.update(NO_COLOR="1", HOOK_TOKEN="tok-1", AUDLANG_TEST_BODY=body, **variables)
    done = subprocess.run([sys.executable, "-m", "audlang", "--project", str(folder), *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stderr and "internal error" not in done.stdout + done.stderr, done.stderr
    return done


def sent(server: WebhookServer, path: str) -> int:
    return sum(1 for _method, p in server.requests if p == path)


def csv_ids(path) -> list[str]:
    with open(path, newline="") as handle:
        return [r["customer_id"] for r in csv.DictReader(handle)]


def test_a_body_refused_at_render_fails_its_sync_only_and_every_apply_still_runs(tmp_path, tmp_path_factory,
                                                                                 server):
    url = warehouse(tmp_path, tmp_path_factory)
    (tmp_path / "audlang.toml").write_text(f'warehouse = "{url}"\nstate = "sqlite:///state.db"\n')
    (tmp_path / "project.aud").write_text(PROJECT.format(url=server.url))
    assert cli(tmp_path, "validate").returncode == 0  # read from the environment: validate cannot see it

    first = cli(tmp_path, "apply", "--auto-approve", "--as-of", AS_OF_TEXT)
    out = first.stdout + first.stderr
    assert first.returncode == 1, out
    assert '"Holiday" / "All" → "Bad Hook"' in out and "refused by the sandbox" in out, out
    assert "1 sync failed; the others were sent" in out
    assert sent(server, "/bad") == 0
    assert sent(server, "/good") > 0  # queued after the failing sync, and sent
    engine = sa.create_engine(url)
    want = expected(engine, "Holiday", "All", ("customer_id",))
    assert server.members("Holiday/All") == set(want)
    assert csv_ids(tmp_path / "exports" / "Holiday-All.csv") == sorted(want)

    status = cli(tmp_path, "sync", "status", "--format", "json")
    runs = json.loads(status.stdout)["runs"]
    bad = [r for r in runs if r["destination"] == "Bad Hook"]
    assert [r["status"] for r in bad] == ["failed"]
    assert "nothing sent: batch 1 (add" in bad[0]["message"] and "refused by the sandbox" in bad[0]["message"]
    text = cli(tmp_path, "sync", "status").stdout
    assert "failed" in text and "refused by the sandbox" in text

    # The next apply runs too: the good destinations get this apply's changes, the bad one fails again.
    with engine.begin() as conn:
        leaving = [r[0] for r in conn.execute(sa.text(
            "SELECT customer_id FROM customer_360 WHERE phone IS NOT NULL ORDER BY customer_id LIMIT 4"))]
        conn.execute(sa.text("UPDATE customer_360 SET phone = NULL, email = NULL WHERE customer_id IN "
                             f"({', '.join(repr(c) for c in leaving)})"))
    engine.dispose()
    good_before = sent(server, "/good")
    second = cli(tmp_path, "apply", "--auto-approve", "--as-of", AS_OF_TEXT)
    assert second.returncode == 1, second.stdout + second.stderr
    assert sent(server, "/good") > good_before and sent(server, "/bad") == 0
    engine = sa.create_engine(url)
    want = expected(engine, "Holiday", "All", ("customer_id",))
    assert server.members("Holiday/All") == set(want) and not set(leaving) & set(want)
    assert csv_ids(tmp_path / "exports" / "Holiday-All.csv") == sorted(want)
    engine.dispose()

    # Fixed: the batch planned before the failure goes out under its key, then the rest of the delta.
    fixed = cli(tmp_path, "apply", "--auto-approve", "--as-of", AS_OF_TEXT, body=GOOD_BODY)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert sent(server, "/bad") > 0
    runs = json.loads(cli(tmp_path, "sync", "status", "--format", "json").stdout)["runs"]
    assert [r["status"] for r in runs if r["destination"] == "Bad Hook"] == ["failed", "failed", "ok"]


def test_a_body_that_breaks_on_real_data_fails_that_sync_with_its_cause(tmp_path, tmp_path_factory, server):
    """A value with a quote, written into JSON without tojson: validate's samples render JSON, the real
    member does not. The sync fails before anything is sent; the member's value is not in the message."""
    url = warehouse(tmp_path, tmp_path_factory)
    body = ('{\\"campaign\\": \\"{{ campaign }}\\", \\"group\\": \\"{{ group }}\\", \\"operation\\": '
            '\\"{{ operation }}\\", \\"members\\": [{% for m in members %}{\\"customer_id\\": '
            '\\"{{ m.customer_id }}\\", \\"city\\": \\"{{ m.city }}\\"}{% if not loop.last %},{% endif %}'
            '{% endfor %}]}')
    model = model_of(tmp_path, f'''
destination "Cities" webhook <
  url = "{server.url}/cities"
  header "Authorization" = "Bearer " + env("HOOK_TOKEN")
  body = "{body}"
  fields = (city)
>
destination "File" csv <
  path = "exports/{{{{ group }}}}.csv"
>
campaign "Holiday" <
  audience segment "Reachable"
  treatment "All" 100% to "Cities", "File"
>
''')
    wh = sa.create_engine(url)
    state = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    env = {"HOOK_TOKEN": "tok-1"}
    sync.materialize_campaigns(wh, model, AS_OF)
    first = sorted(expected(wh, "Holiday", "All", ("customer_id",)))[0]
    with wh.begin() as conn:
        conn.execute(sa.text("UPDATE customer_360 SET city = :c WHERE customer_id = :i"),
                     {"c": 'Coeur d"Alene', "i": first})
    results = {r.target.destination: r for r in sync.run(model, wh, state, AS_OF, tmp_path, env=env)}
    assert results["Cities"].status == "failed"
    assert "does not render JSON" in results["Cities"].message and "tojson" in results["Cities"].message
    assert "Alene" not in results["Cities"].message
    assert results["File"].status == "ok" and server.requests == []
    again = {r.target.destination: r.status for r in sync.run(model, wh, state, AS_OF, tmp_path, env=env)}
    assert again == {"Cities": "failed", "File": "unchanged"}
    recorded = [r for r in sync.runs(state) if r["destination"] == "Cities"]
    assert [r["status"] for r in recorded] == ["failed", "failed"]
    assert "does not render JSON" in recorded[-1]["message"]
    wh.dispose()
    state.dispose()


def test_a_path_read_from_the_environment_is_refused_at_apply(tmp_path, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    url = warehouse(tmp_path, tmp_path_factory)
    model = model_of(tmp_path, '''
destination "Escape" csv <
  path = env("EXPORT_PATH")
>
destination "File" csv <
  path = "exports/{{ group }}.csv"
>
campaign "Holiday" <
  audience segment "Reachable"
  treatment "All" 100% to "Escape", "File"
>
''')
    wh = sa.create_engine(url)
    state = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    for path, says in ((f"{outside}/all.csv", "(an absolute path)"), ("../all.csv", "leads outside"),
                       ("exports/{{ ''.__class__ }}.csv", "refused by the sandbox")):
        results = {r.target.destination: r for r in sync.run(model, wh, state, AS_OF, tmp_path,
                                                             env={"EXPORT_PATH": path})}
        assert results["Escape"].status == "failed" and says in results["Escape"].message
        assert "refused, nothing written" in results["Escape"].message
        assert results["File"].status in ("ok", "unchanged")
    assert list(outside.iterdir()) == [] and not (tmp_path.parent / "all.csv").exists()
    # With the folder named as exports_root, the same path is written.
    results = {r.target.destination: r for r in sync.run(model, wh, state, AS_OF, tmp_path,
                                                         env={"EXPORT_PATH": f"{outside}/all.csv"},
                                                         exports_root=outside)}
    assert results["Escape"].status == "ok"
    assert csv_ids(outside / "all.csv") == sorted(expected(wh, "Holiday", "All", ("customer_id",)))
    wh.dispose()
    state.dispose()


def test_apply_writes_under_exports_root_from_audlang_toml(tmp_path, tmp_path_factory, server):
    outside = tmp_path_factory.mktemp("shared-exports")
    url = warehouse(tmp_path, tmp_path_factory)
    (tmp_path / "audlang.toml").write_text(
        f'warehouse = "{url}"\nstate = "sqlite:///state.db"\nexports_root = "{os.path.relpath(outside, tmp_path)}"\n')
    (tmp_path / "project.aud").write_text(f'''
segment "Reachable" < phone is set or email is set >
destination "Shared" csv <
  path = "{outside}/{{{{ campaign }}}}-{{{{ group }}}}.csv"
>
campaign "Holiday" <
  audience segment "Reachable"
  treatment "All" 100% to "Shared"
>
''')
    done = cli(tmp_path, "apply", "--auto-approve", "--as-of", AS_OF_TEXT)
    assert done.returncode == 0, done.stdout + done.stderr
    engine = sa.create_engine(url)
    assert csv_ids(outside / "Holiday-All.csv") == sorted(expected(engine, "Holiday", "All", ("customer_id",)))
    engine.dispose()


SHARED = '''
segment "Reachable" < phone is set or email is set >
destination "One" csv <
  path = env("P1")
>
destination "Two" csv <
  path = env("P2")
>
campaign "Holiday" <
  audience segment "Reachable"
  treatment "A" 40% to "One"
  treatment "B" 30% to "Two"
  treatment "C" 30% to "One"
>
'''


def test_paths_from_the_environment_that_name_one_file_never_overwrite_it(tmp_path, tmp_path_factory):
    """P1 = P2 = target/same.csv: three groups, one file. Validate cannot see it; apply writes the first
    target's group only and fails the other two, naming who writes the file, on every apply; once the
    paths differ, every group gets its own file."""
    url = warehouse(tmp_path, tmp_path_factory)
    (tmp_path / "audlang.toml").write_text(f'warehouse = "{url}"\nstate = "sqlite:///state.db"\n')
    (tmp_path / "project.aud").write_text(SHARED)
    assert cli(tmp_path, "validate").returncode == 0
    same = {"P1": "target/same.csv", "P2": "target/same.csv"}

    def members(group: str) -> list[str]:
        engine = sa.create_engine(url)  # disposed at once: DuckDB lets one process open the file
        try:
            return sorted(expected(engine, "Holiday", group, ("customer_id",)))
        finally:
            engine.dispose()

    for _apply in range(2):
        done = cli(tmp_path, "apply", "--auto-approve", "--as-of", AS_OF_TEXT, **same)
        out = done.stdout + done.stderr
        assert done.returncode == 1, out
        assert "2 syncs failed" in out, out
        assert csv_ids(tmp_path / "target" / "same.csv") == members("A")
    runs = json.loads(cli(tmp_path, "sync", "status", "--format", "json", **same).stdout)["runs"]
    status = {(r["group"], r["destination"]): [] for r in runs}
    for r in runs:
        status[(r["group"], r["destination"])].append(r)
    assert [r["status"] for r in status[("A", "One")]] == ["ok", "unchanged"]
    for key in (("B", "Two"), ("C", "One")):
        assert [r["status"] for r in status[key]] == ["failed", "failed"], status[key]
        message = status[key][-1]["message"]
        assert 'refused, nothing written: the path "***" names the file "Holiday" / "A" → "One" writes' in message
        assert "same.csv" not in message  # read from the environment: never shown
    # Told apart, each group writes its own file, and the first keeps its rows.
    apart = {"P1": "target/{{ group }}.csv", "P2": "target/two.csv"}
    done = cli(tmp_path, "apply", "--auto-approve", "--as-of", AS_OF_TEXT, **apart)
    assert done.returncode == 0, done.stdout + done.stderr
    for file, group in (("A.csv", "A"), ("C.csv", "C"), ("two.csv", "B")):
        assert csv_ids(tmp_path / "target" / file) == members(group)


def test_the_first_target_keeps_a_file_that_only_differs_in_case_or_spelling(tmp_path):
    from audlang.destinations import Target
    from audlang.destinations.files import shared_files

    model = model_of(tmp_path, SHARED.replace(SEGMENTS.strip(), ""))
    targets = [(Target(c.name, g, d.name), d) for c, g, d in sync.targets(model)]
    shared = shared_files(targets, {"P1": "target/Same.csv", "P2": "./target/../target/same.CSV"}, tmp_path)
    assert set(shared) == {Target("Holiday", "B", "Two"), Target("Holiday", "C", "One")}
    # Only the groups that meet: A and C have their own files, B meets A's.
    shared = shared_files(targets, {"P1": "target/{{ group }}.csv", "P2": "target/A.csv"}, tmp_path)
    assert list(shared) == [Target("Holiday", "B", "Two")]
    assert '"***" names the file "Holiday" / "A" → "One" writes' in shared[Target("Holiday", "B", "Two")]
    # A target that cannot be opened (no variable, a path refused) claims no file.
    assert shared_files(targets, {"P2": "target/same.csv"}, tmp_path) == {}
    assert shared_files(targets, {"P1": "../same.csv", "P2": "../same.csv"}, tmp_path) == {}


def test_messages_about_a_path_from_the_environment_never_show_it(tmp_path, tmp_path_factory, server):
    """The red team's path said "the path renders to \"target/plainSECRET\"", in the apply's output and in
    ``sync status``: a path or body read from ``env("…")`` is shown as "***", and what its template said
    is left out (a name it uses, the tag it misspells)."""
    url = warehouse(tmp_path, tmp_path_factory)
    model = model_of(tmp_path, f'''
destination "Secret" csv <
  path = env("EXPORT_PATH")
>
destination "Hook" webhook <
  url = "{server.url}/hook"
  header "Authorization" = "Bearer " + env("HOOK_TOKEN")
  body = env("HOOK_BODY")
>
campaign "Holiday" <
  audience segment "Reachable"
  treatment "All" 100% to "Secret", "Hook"
>
''')
    wh = sa.create_engine(url)
    state = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    for path, body, says in (
            ("target/plainSECRET", "{{ secretWORD", "writes only files named *.csv"),
            ("exports/.hiddenSECRET/x.csv", "{% secretTAG %}", "leads into a hidden folder"),
            ("exports/{{ secretNAME }}.csv", "{{ secretNAME }}", "uses something that is not defined"),
            ("exports/{% secretTAG %}.csv", '{"a": {{ secretWORD.__class__ }}}', "does not parse"),
            ("../leakSECRET.csv", "{{ members|map(attribute='secretATTR')|join }}", "leads outside")):
        env = {"EXPORT_PATH": path, "HOOK_TOKEN": "tok-1", "HOOK_BODY": body}
        results = {r.target.destination: r for r in sync.run(model, wh, state, AS_OF, tmp_path, env=env)}
        assert results["Secret"].status == "failed" and says in results["Secret"].message, results["Secret"].message
        assert results["Hook"].status == "failed", results["Hook"].message
        for result in results.values():
            assert "SECRET" not in result.message and "secret" not in result.message, result.message
    for recorded in sync.runs(state):
        assert "SECRET" not in recorded["message"] and "secret" not in recorded["message"], recorded
    assert server.requests == []
    wh.dispose()
    state.dispose()


def test_a_body_that_fails_on_a_member_never_quotes_the_member(tmp_path, tmp_path_factory, server):
    """``{{ {}[members[0].email] }}`` failed with "… has no attribute 'lthompson@comcast.net'": at apply a
    render failure names its kind and the template's line, never a value."""
    url = warehouse(tmp_path, tmp_path_factory)
    wh = sa.create_engine(url)
    state = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    sample = "{% if members[0].email.endswith('@example.com') %}{}{% else %}"  # validate's samples pass
    for body, says in ((sample + "{{ {}[members[0].email] }}{% endif %}",
                        "uses something that is not defined (line 1 of the template)"),
                       (sample + "{\\n\\n{{ ('%(' ~ members[0].email ~ ')s') % {} }}}{% endif %}",
                        "cannot be rendered: KeyError (line 3 of the template)")):
        model = model_of(tmp_path, f'''
destination "Emails" webhook <
  url = "{server.url}/emails"
  header "Authorization" = "Bearer " + env("HOOK_TOKEN")
  body = "{body}"
  identifiers = (email, customer_id)
>
campaign "Holiday" <
  audience segment "Reachable"
  treatment "All" 100% to "Emails"
>
''')
        results = sync.run(model, wh, state, AS_OF, tmp_path, env={"HOOK_TOKEN": "tok-1"})
        assert [r.status for r in results] == ["failed"]
        message = results[0].message
        assert says in message, message
        assert "@" not in message, message
        assert not any("@" in r["message"] for r in sync.runs(state) if r["message"])
    assert server.requests == []
    wh.dispose()
    state.dispose()
