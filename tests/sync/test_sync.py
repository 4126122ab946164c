"""Delta sync against real HTTP servers on 127.0.0.1, csv files and SQL tables, with faults."""

from __future__ import annotations

import csv
import json

import pytest
import sqlalchemy as sa
import state_layouts
from sync_helpers import (  # noqa: F401 - fixtures
    AS_OF, expected, model_of, run_killable, servers, sync_project, warehouse,
)
from vendor_servers import AttentiveServer, BrazeServer, KlaviyoServer, WebhookServer

from audlang import sync
from audlang.destinations import normalize_email, normalize_phone
from audlang.state import store

FAST = {"backoff": 0.01}

CAMPAIGN = '''
campaign "Holiday" <
  audience segment "Reachable"
  holdout 10%
  treatment "A" 45% to "{dest}"
  treatment "B" 45% to "{dest}"
>
'''


@pytest.fixture
def setup(sync_project):
    """(model, warehouse engine, state engine) for a project with the given destinations."""
    def make(destinations: str, campaign: str = CAMPAIGN, dest: str = "D"):
        return sync_project(destinations + campaign.format(dest=dest))

    return make


def run(model, wh, state, tmp_path, env=None, **options):
    return sync.run(model, wh, state, AS_OF, tmp_path, env=env or {"KEY": "secret-key"},
                    http_options=FAST, **options)


def attentive(server, batch_size=40, extra=""):
    return f'''
destination "D" attentive <
  api_key = env("KEY")
  segment = "seg-1"
  base_url = "{server.url}"
  identifiers = (phone, email)
  batch_size = {batch_size}
  {extra}
>
'''


def churn(wh, n_remove=6, n_phone=3):
    """Customers leave (no phone, no email any more) and others change phone numbers."""
    with wh.begin() as conn:
        ids = [r[0] for r in conn.execute(sa.text(
            "SELECT customer_id FROM customer_360 WHERE phone IS NOT NULL ORDER BY customer_id"))]
        for cid in ids[:n_remove]:
            conn.execute(sa.text("UPDATE customer_360 SET phone = NULL, email = NULL WHERE customer_id = :c"),
                         {"c": cid})
        for i, cid in enumerate(ids[n_remove:n_remove + n_phone]):
            conn.execute(sa.text("UPDATE customer_360 SET phone = :p WHERE customer_id = :c"),
                         {"p": f"+1503555{i:04d}", "c": cid})


def test_identifiers_are_normalized():
    assert normalize_email("  Ann@Example.COM ") == "ann@example.com"
    assert normalize_email("not-an-email") is None
    assert normalize_phone("(503) 555-0101") == "+15035550101"
    assert normalize_phone("1-503-555-0101") == "+15035550101"
    assert normalize_phone("+44 20 7946 0958") == "+442079460958"
    assert normalize_phone("0044 20 7946 0958") == "+442079460958"
    assert normalize_phone("555-0101") is None
    assert normalize_phone("call me") is None


def test_attentive_mirror_sends_only_changes(setup, servers, tmp_path):
    server = servers(AttentiveServer)
    model, wh, state = setup(attentive(server))
    results = run(model, wh, state, tmp_path)
    assert {r.status for r in results} == {"ok"}
    a, b = expected(wh, "Holiday", "A", ("phone", "email")), expected(wh, "Holiday", "B", ("phone", "email"))
    # Both groups go to one Attentive segment here: it holds their union.
    assert server.members("seg-1") == set(a.values()) | set(b.values())
    assert sum(r.added for r in results) == len(a) + len(b)
    assert all(r.batches == -(-r.added // 40) for r in results)
    with wh.connect() as conn:
        holdout = conn.execute(sa.text("SELECT count(*) FROM audlang_campaign_members WHERE group_name = 'holdout'")
                               ).scalar()
    assert holdout > 0  # recorded, never sent
    requests = len(server.requests)

    again = run(model, wh, state, tmp_path)
    assert {r.status for r in again} == {"unchanged"} and len(server.requests) == requests

    churn(wh)
    third = run(model, wh, state, tmp_path)
    a2, b2 = expected(wh, "Holiday", "A", ("phone", "email")), expected(wh, "Holiday", "B", ("phone", "email"))
    assert server.members("seg-1") == set(a2.values()) | set(b2.values())
    changed = sum(len(set(x.items()) ^ set(y.items())) for x, y in ((a, a2), (b, b2)))
    assert sum(r.added + r.removed for r in third) <= changed
    assert not server.duplicates() or all(op[1] == "add" for op in server.duplicates())


def test_retries_429_500_and_dropped_connections(setup, servers, tmp_path):
    server = servers(AttentiveServer)
    server.faults = [("429", "1"), ("500",), ("drop",), ("500",), ("429", None)]
    model, wh, state = setup(attentive(server, batch_size=100))
    results = run(model, wh, state, tmp_path)
    assert {r.status for r in results} == {"ok"}, [r.message for r in results]
    assert sum(r.retries for r in results) == 5
    a, b = expected(wh, "Holiday", "A", ("phone", "email")), expected(wh, "Holiday", "B", ("phone", "email"))
    assert server.members("seg-1") == set(a.values()) | set(b.values())
    assert server.duplicates() == []


def test_a_destination_that_keeps_failing_is_reported_and_resumed(setup, servers, tmp_path):
    server = servers(AttentiveServer)
    server.faults = [("500",)] * 5
    model, wh, state = setup(attentive(server, batch_size=100))
    first = run(model, wh, state, tmp_path)
    assert first[0].status == "failed" and "gave up after 5 failed attempts" in first[0].message
    assert "secret-key" not in first[0].message
    assert first[1].status == "ok"  # one failing target does not stop the others
    second = run(model, wh, state, tmp_path)
    assert [r.status for r in second] == ["ok", "unchanged"]
    assert second[0].resumed_batches >= 1
    a, b = expected(wh, "Holiday", "A", ("phone", "email")), expected(wh, "Holiday", "B", ("phone", "email"))
    assert server.members("seg-1") == set(a.values()) | set(b.values())
    assert server.duplicates() == []


def test_a_rejected_member_is_isolated_recorded_and_retried(setup, servers, tmp_path):
    server = servers(AttentiveServer)
    model, wh, state = setup(attentive(server, batch_size=50))
    with wh.begin() as conn:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS audlang_campaign_members "
                             "(campaign VARCHAR, group_name VARCHAR, customer_id VARCHAR)"))
    sync.materialize_campaigns(wh, model, AS_OF)
    a = expected(wh, "Holiday", "A", ("phone", "email"))
    bad_id, bad_key = sorted(a.items())[3]
    server.poison = {bad_key}
    results = run(model, wh, state, tmp_path)
    group_a = next(r for r in results if r.target.group == "A")
    assert group_a.status == "partial" and group_a.rejected == 1
    assert bad_key not in server.members("seg-1")
    assert set(a.values()) - {bad_key} <= server.members("seg-1")
    (error,) = sync.errors(state, "D")
    assert (error.customer_id, error.key, error.operation, error.status, error.attempts) == \
        (bad_id, bad_key, "add", "400", 1)
    assert "invalid member" in error.message
    assert server.duplicates() == []
    server.poison = set()
    run(model, wh, state, tmp_path)
    assert bad_key in server.members("seg-1") and sync.errors(state) == []
    assert server.duplicates() == []


def test_braze_and_klaviyo(setup, servers, tmp_path):
    braze, klaviyo = servers(BrazeServer), servers(KlaviyoServer)
    destinations = f'''
destination "Braze" braze <
  api_key = env("KEY")
  base_url = "{braze.url}"
  identifiers = (customer_id)
>
destination "Klaviyo" klaviyo <
  api_key = env("KEY")
  list_id = "L1"
  base_url = "{klaviyo.url}"
  identifiers = (email)
  batch_size = 60
>
'''
    campaign = '''
campaign "Holiday" <
  audience segment "Reachable"
  holdout 10%
  treatment "A" 45% to "Braze", "Klaviyo"
  treatment "B" 45% to "Braze"
>
'''
    model, wh, state = setup(destinations, campaign)
    sync.materialize_campaigns(wh, model, AS_OF)
    a_ids = expected(wh, "Holiday", "A", ("customer_id",))
    a_emails = expected(wh, "Holiday", "A", ("email",))
    braze.poison = {sorted(a_ids)[0]}
    klaviyo.poison = {sorted(a_emails.values())[1]}
    results = run(model, wh, state, tmp_path)
    assert {r.target.destination: r.rejected for r in results if r.target.group == "A"} == {"Braze": 1, "Klaviyo": 1}
    assert braze.members("audiences=A") == set(a_ids.values()) - braze.poison
    assert braze.members("audiences=B") == set(expected(wh, "Holiday", "B", ("customer_id",)).values())
    assert klaviyo.members("L1") == set(a_emails.values()) - klaviyo.poison
    assert all(len(r) for r in braze.requests)
    # Leave: removal by the profile ids the import returned.
    churn(wh, n_remove=8, n_phone=0)
    sync.materialize_campaigns(wh, model, AS_OF)
    braze.poison = klaviyo.poison = set()
    run(model, wh, state, tmp_path)
    assert klaviyo.members("L1") == set(expected(wh, "Holiday", "A", ("email",)).values())
    assert braze.members("audiences=A") == set(expected(wh, "Holiday", "A", ("customer_id",)).values())
    assert braze.duplicates() == [] and klaviyo.duplicates() == []
    assert sync.errors(state) == []


def test_webhook_with_template_headers_and_idempotency_keys(setup, servers, tmp_path):
    server = servers(WebhookServer, api_key="tok-123")
    destinations = f'''
destination "D" webhook <
  url = "{server.url}/hook"
  header "Authorization" = "Bearer " + env("TOKEN")
  body = "{{{{ {{'campaign': campaign, 'group': group, 'operation': operation, 'members': members}} | tojson }}}}"
  batch_size = 25
>
'''
    model, wh, state = setup(destinations)
    missing = run(model, wh, state, tmp_path, env={})
    assert {r.status for r in missing} == {"failed"} and "TOKEN" in missing[0].message
    assert server.requests == []
    assert sync.missing_secrets(model, {}) == ['destination "D": environment variable TOKEN (header Authorization) '
                                              'is not set']
    server.faults = [("drop",)]
    results = run(model, wh, state, tmp_path, env={"TOKEN": "tok-123"})
    assert {r.status for r in results} == {"ok"}, [r.message for r in results]
    a = expected(wh, "Holiday", "A", ("customer_id",))
    assert server.members("Holiday/A") == set(a)
    assert server.duplicates() == []


def test_csv_and_sql_read_back(setup, tmp_path):
    destinations = '''
destination "File" csv <
  path = "exports/{{ campaign }}-{{ group }}.csv"
  identifiers = (customer_id, email, phone)
>
destination "Table" sql <
  url = "sqlite:///exports/copy.db"
  table = "campaign_members"
  identifiers = (customer_id, email)
  batch_size = 70
>
'''
    campaign = '''
campaign "Holiday" <
  audience segment "Reachable"
  holdout 10%
  treatment "A" 45% to "File", "Table"
  treatment "B" 45% to "File"
>
'''
    model, wh, state = setup(destinations, campaign)
    run(model, wh, state, tmp_path)
    for group in ("A", "B"):
        want = expected(wh, "Holiday", group, ("customer_id",))
        with open(tmp_path / "exports" / f"Holiday-{group}.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert list(rows[0]) == ["customer_id", "email", "phone"]
        assert [r["customer_id"] for r in rows] == sorted(want)
    table = sa.create_engine(f"sqlite:///{tmp_path / 'exports' / 'copy.db'}")
    with table.connect() as conn:
        got = {r[0] for r in conn.execute(sa.text("SELECT customer_id FROM campaign_members WHERE group_name='A'"))}
    assert got == set(expected(wh, "Holiday", "A", ("customer_id",)))
    churn(wh, n_remove=5)
    run(model, wh, state, tmp_path)
    with table.connect() as conn:
        got = {r[0] for r in conn.execute(sa.text("SELECT customer_id FROM campaign_members WHERE group_name='A'"))}
    assert got == set(expected(wh, "Holiday", "A", ("customer_id",)))
    with open(tmp_path / "exports" / "Holiday-A.csv", newline="") as handle:
        assert [r["customer_id"] for r in csv.DictReader(handle)] == sorted(expected(wh, "Holiday", "A",
                                                                                    ("customer_id",)))
    table.dispose()
    assert not [p for p in (tmp_path / "exports").iterdir() if p.name.endswith(".tmp")]


def test_guards_hold_back_large_removals_and_emptying(setup, servers, tmp_path):
    server = servers(AttentiveServer)
    model, wh, state = setup(attentive(server, batch_size=500))
    run(model, wh, state, tmp_path)
    before = server.members("seg-1")
    with wh.begin() as conn:  # half the customers lose every identifier
        conn.execute(sa.text("UPDATE customer_360 SET phone = NULL, email = NULL WHERE customer_id < 'C000150'"))
    requests = len(server.requests)
    held = run(model, wh, state, tmp_path)
    assert {r.status for r in held} == {"held"} and "max_removal = 20%" in held[0].message
    assert len(server.requests) == requests and server.members("seg-1") == before
    allowed = run(model, wh, state, tmp_path, allow_removals=True)
    assert {r.status for r in allowed} == {"ok"}
    with wh.begin() as conn:
        conn.execute(sa.text("UPDATE customer_360 SET phone = NULL, email = NULL"))
    emptied = run(model, wh, state, tmp_path)
    assert {r.status for r in emptied} == {"held"} and "empty the audience" in emptied[0].message


def test_paused_campaigns_and_destinations_send_nothing_and_keep_their_state(setup, servers, tmp_path):
    server = servers(AttentiveServer)
    model, wh, state = setup(attentive(server))
    run(model, wh, state, tmp_path)
    churn(wh)
    paused = model_of(tmp_path, attentive(server).replace('destination "D"', 'paused destination "D"')
                      + CAMPAIGN.format(dest="D"))
    requests = len(server.requests)
    results = run(paused, wh, state, tmp_path)
    assert {r.status for r in results} == {"paused"} and len(server.requests) == requests
    resumed = run(model, wh, state, tmp_path)
    assert {r.status for r in resumed} == {"ok"}
    a, b = expected(wh, "Holiday", "A", ("phone", "email")), expected(wh, "Holiday", "B", ("phone", "email"))
    assert server.members("seg-1") == set(a.values()) | set(b.values())


# ------------------------------------------------------------------ SIGKILL at every batch boundary

@pytest.mark.parametrize("point", ["before_send", "after_send", "after_ack", "after_append"])
def test_killed_at_every_batch_boundary_then_run_again(setup, servers, tmp_path, point):
    server = servers(WebhookServer, api_key="tok-123") if point == "after_send" else servers(AttentiveServer)
    if point == "after_send":
        destinations = f'''
destination "D" webhook <
  url = "{server.url}/hook"
  header "Authorization" = "Bearer " + env("TOKEN")
  batch_size = 30
>
'''
    else:
        destinations = attentive(server, batch_size=30)
    campaign = '''
campaign "Holiday" <
  audience segment "Reachable"
  treatment "All" 100% to "D"
>
'''
    model, wh, state = setup(destinations, campaign)
    sync.materialize_campaigns(wh, model, AS_OF)
    identifiers = ("customer_id",) if point == "after_send" else ("phone", "email")
    want = set(expected(wh, "Holiday", "All", identifiers).values())
    batches = -(-len(want) // 30)
    assert batches >= 5
    wh.dispose()
    for seq in range(1, batches + 1):
        killed = run_killable(tmp_path, wh, f"{point}:{seq}")
        assert killed.returncode == -9, killed.stderr
    final = run_killable(tmp_path, wh, None)
    assert final.returncode == 0, final.stderr
    audience = "Holiday/All" if point == "after_send" else "seg-1"
    assert server.members(audience) == want
    assert server.duplicates() == []
    if point == "after_send":
        # Every batch in flight at a kill was sent again under the same key, and only those.
        assert len(server.redelivered) == batches
        operations = [op for ops in server.keys.values() for op in ops]
        assert len(operations) == len(set(operations)) == len(want)
    with state.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM audlang_sync_batches")).scalar() == 0
    assert json.loads(json.dumps(sync.runs(state)))[-1]["status"] in ("ok", "unchanged")


def test_429s_do_not_count_as_failed_attempts(setup, servers, tmp_path):
    server = servers(AttentiveServer)
    server.faults = [("429", "0")] * 7 + [("500",)] * 4  # more 429s than failed attempts allowed, then 4 failures
    model, wh, state = setup(attentive(server, batch_size=1000))
    results = run(model, wh, state, tmp_path)
    assert {r.status for r in results} == {"ok"}, [r.message for r in results]
    assert results[0].retries == 11
    assert server.duplicates() == []


# The state database on the engine under test; SQLite holds it in every other test of this file.
@pytest.mark.parametrize("warehouse", ["duckdb", "postgresql"], indirect=True)
def test_the_sync_state_on_other_engines(setup, servers, tmp_path, warehouse):
    server = servers(AttentiveServer)
    model, wh, _sqlite_state = setup(attentive(server, batch_size=60))
    state = sa.create_engine(warehouse.new_url("sync_state"))
    try:
        run(model, wh, state, tmp_path)
        churn(wh)
        results = run(model, wh, state, tmp_path)
        assert {r.status for r in results} == {"ok"}, [r.message for r in results]
        a, b = expected(wh, "Holiday", "A", ("phone", "email")), expected(wh, "Holiday", "B", ("phone", "email"))
        assert server.members("seg-1") == set(a.values()) | set(b.values())
        # The control data is in the state database; what the destination acknowledged is in the warehouse.
        with state.connect() as conn:
            ids = [r[0] for r in conn.execute(sa.text("SELECT target_id FROM audlang_sync_targets"))]
            assert not conn.execute(sa.text("SELECT count(*) FROM audlang_sync_batches")).scalar()
        with wh.connect() as conn:
            acked = {i: {m.customer_id: m.key for m in sync.delta.acknowledged(conn, i)} for i in ids}
        assert sorted(acked.values(), key=len) == sorted([a, b], key=len)
    finally:
        state.dispose()


def test_a_renamed_campaign_and_destination_keep_their_sync_state(setup, servers, tmp_path):
    server = servers(AttentiveServer)
    model, wh, state = setup(attentive(server))
    run(model, wh, state, tmp_path)
    requests = len(server.requests)
    renamed = model_of(tmp_path, attentive(server).replace('destination "D"', 'destination "SMS"')
                       + CAMPAIGN.format(dest="SMS").replace('campaign "Holiday"', 'campaign "Holiday 2024"')
                       + 'moved campaign "Holiday" to "Holiday 2024"\nmoved destination "D" to "SMS"\n')
    planned = sync.preview(renamed, wh, state, AS_OF, env={"KEY": "secret-key"})
    assert {(p.status, p.adds, p.removes) for p in planned} == {("unchanged", 0, 0)}
    results = run(renamed, wh, state, tmp_path)
    assert {r.status for r in results} == {"unchanged"} and len(server.requests) == requests
    churn(wh)
    again = run(renamed, wh, state, tmp_path)
    assert {r.status for r in again} == {"ok"}
    a = expected(wh, "Holiday 2024", "A", ("phone", "email"))
    b = expected(wh, "Holiday 2024", "B", ("phone", "email"))
    assert server.members("seg-1") == set(a.values()) | set(b.values())
    assert server.duplicates() == [] or all(op[1] == "add" for op in server.duplicates())


def test_a_destination_pointed_at_another_audience_gets_the_whole_group(setup, servers, tmp_path):
    server = servers(AttentiveServer)
    model, wh, state = setup(attentive(server))
    run(model, wh, state, tmp_path)
    first = server.members("seg-1")
    moved = model_of(tmp_path, attentive(server).replace('"seg-1"', '"seg-2"') + CAMPAIGN.format(dest="D"))
    planned = sync.preview(moved, wh, state, AS_OF, env={"KEY": "secret-key"})
    assert sum(p.adds for p in planned) == len(first) and all(p.removes == 0 for p in planned)
    results = run(moved, wh, state, tmp_path)
    assert {r.status for r in results} == {"ok"}
    assert server.members("seg-2") == first
    assert {r.status for r in run(moved, wh, state, tmp_path)} == {"unchanged"}


def test_only_the_changes_leave_the_database(setup, servers, tmp_path, monkeypatch):
    """The delta is computed in the warehouse: the second sync fetches the changed members and nothing else."""
    from audlang import warehouse as warehouse_module

    server = servers(AttentiveServer)
    model, wh, state = setup(attentive(server, batch_size=40))
    run(model, wh, state, tmp_path)
    group_size = sum(len(expected(wh, "Holiday", g, ("phone", "email"))) for g in ("A", "B"))
    churn(wh, n_remove=4, n_phone=3)
    fetched = []
    real = warehouse_module.raw_rows

    def counting(result):
        rows = real(result)
        fetched.append(len(rows))
        return rows

    monkeypatch.setattr(warehouse_module, "raw_rows", counting)
    operations = len(server.operations)
    results = run(model, wh, state, tmp_path)
    assert {r.status for r in results} == {"ok"}, [r.message for r in results]
    changes = sum(r.added + r.removed for r in results)
    assert 0 < changes <= 4 + 2 * 3
    assert len(server.operations) - operations == changes
    assert sum(fetched) == changes, (fetched, changes, group_size)
    a, b = expected(wh, "Holiday", "A", ("phone", "email")), expected(wh, "Holiday", "B", ("phone", "email"))
    assert server.members("seg-1") == set(a.values()) | set(b.values())


MESSY = [  # (email, phone) written over the first customers: spaces, case, formats, duplicates, garbage
    ("  Ann@Example.COM ", "(503) 555-0101"), ("ann@example.com", "503.555.0102"), ("bob@x", "+44 20 7946 0958"),
    ("BOB@EXAMPLE.ORG", "0044 20 7946 0958"), (None, "555-0103"), ("carl@example.net", "1-503-555-0104"),
    ("\tdana@example.net\n", "+1 503 555 0105"), ("eve@example.net", "503555O106"), ("", ""),
    ("fay@example.net", "+1 (503) 555-0101"),
]


def test_the_delta_in_sql_matches_the_python_reference_on_each_warehouse(warehouse, tmp_path):
    """csv syncs of messy identifiers from DuckDB, SQLite and PostgreSQL warehouses (the ``warehouse`` fixture)
    equal the reference (Python normalizers, first by customer id per key), before and after the identifiers
    change."""
    from audlang import datagen

    url = warehouse.new_url("sync_delta")
    datagen.generate(url, customers=120, seed=11)
    destinations = '''
destination "Phones" csv <
  path = "out/phones-{{ group }}.csv"
  identifiers = (phone, email)
>
destination "Emails" csv <
  path = "out/emails-{{ group }}.csv"
  identifiers = (email, customer_id)
  fields = (city)
>
'''
    campaign = '''
campaign "Holiday" <
  audience < customer_id is set >
  treatment "A" 50% to "Phones", "Emails"
  treatment "B" 50% to "Phones"
>
'''
    model = model_of(tmp_path, destinations + campaign)
    wh = sa.create_engine(url)
    state = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")

    def rewrite(values):
        with wh.begin() as conn:
            ids = [r[0] for r in conn.execute(sa.text("SELECT customer_id FROM customer_360 ORDER BY customer_id"))]
            for cid, (email, phone) in zip(ids, values, strict=False):  # the first customers only
                conn.execute(sa.text("UPDATE customer_360 SET email = :e, phone = :p WHERE customer_id = :c"),
                             {"e": email, "p": phone, "c": cid})

    def check():
        for destination, identifiers, groups in (("phones", ("phone", "email"), "AB"), ("emails", ("email",), "A")):
            for group in groups:
                want = expected(wh, "Holiday", group, identifiers)
                with open(tmp_path / "out" / f"{destination}-{group}.csv", newline="") as handle:
                    got = {r["customer_id"]: r[identifiers[0]] for r in csv.DictReader(handle)}
                assert got == want, (destination, group)

    try:
        rewrite(MESSY)
        results = run(model, wh, state, tmp_path)
        assert {r.status for r in results} == {"ok"}, [r.message for r in results]
        assert sum(r.skipped for r in results) > 0
        check()
        rewrite(list(reversed(MESSY)))  # keys move between customers, some become unusable
        results = run(model, wh, state, tmp_path, allow_removals=True)
        assert {r.status for r in results} <= {"ok", "unchanged"}, [r.message for r in results]
        check()
    finally:
        wh.dispose()
        state.dispose()


def test_version_1_sync_state_is_migrated_and_nothing_is_sent_again(setup, servers, tmp_path):
    """Version 1 kept the acknowledged membership in the state database (audlang_sync_members); the next
    sync moves it into the warehouse log and sends nothing that was acknowledged."""
    server = servers(AttentiveServer)
    model, wh, state = setup(attentive(server, batch_size=40))
    run(model, wh, state, tmp_path)
    # Turn the state back into version 1's shape, the log into its members table.
    with state.connect() as conn:
        ids = dict(conn.execute(sa.text("SELECT target_id, target FROM audlang_sync_targets")).fetchall())
    with wh.connect() as conn:
        rows = [{"target": ids[i], "customer_id": m.customer_id, "member_key": m.key,
                 "fingerprint": m.fingerprint, "data": m.data}
                for i in ids for m in sync.delta.acknowledged(conn, i)]
    assert rows
    with state.begin() as conn:
        state_layouts.downgrade_sync_to_v1(conn)
        conn.execute(sa.text("INSERT INTO audlang_sync_members VALUES (:target, :customer_id, :member_key, "
                             ":fingerprint, :data)"), rows)
    with wh.begin() as conn:
        conn.execute(sa.text("DROP TABLE audlang_sync_log"))
    sent = len(server.operations)
    results = run(model, wh, state, tmp_path)
    assert {r.status for r in results} == {"unchanged"}, [(r.status, r.message) for r in results]
    assert len(server.operations) == sent
    with state.connect() as conn:
        assert not sa.inspect(conn).has_table("audlang_sync_members")
        assert not sa.inspect(conn).has_table("audlang_sync_meta")  # one schema version, the state's
        assert conn.execute(sa.text("SELECT schema_version FROM audlang_state")).scalar() == store.SCHEMA_VERSION
    churn(wh)
    results = run(model, wh, state, tmp_path)
    a, b = expected(wh, "Holiday", "A", ("phone", "email")), expected(wh, "Holiday", "B", ("phone", "email"))
    assert server.members("seg-1") == set(a.values()) | set(b.values())
    assert server.duplicates() == []
