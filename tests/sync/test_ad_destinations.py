"""Meta Custom Audiences and Google Ads Customer Match, synced to stand-in servers on 127.0.0.1.

The servers (``vendor_servers.MetaServer``, ``GoogleAdsServer``) check each request as the vendors
document it (VENDORS.md): the paths, the auth headers, hashed identifiers only, the per-request limits;
they keep the membership, keyed by the member's first hash. Every test runs on both kinds.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from sync_helpers import (  # noqa: F401 - fixtures
    AS_OF, expected, model_of, run_killable, servers, sync_project, warehouse,
)
from vendor_servers import GoogleAdsServer, MetaServer

from audlang import ast, sync
from audlang.check.destinations import HASHED_IDENTIFIERS
from audlang.destinations import open_destination, resolve_settings
from audlang.destinations.base import Target, normalize_email, normalize_phone

FAST = {"backoff": 0.01}
IDENTIFIERS = ("email", "phone")

CAMPAIGN = '''
campaign "Holiday" <
  audience segment "Reachable"
  holdout 10%
  treatment "A" 45% to "D"
  treatment "B" 45% to "D"
>
'''


def meta(server, batch_size=None, identifiers="(email, phone)", extra=""):
    size = f"batch_size = {batch_size}" if batch_size else ""
    return f'''
destination "D" meta <
  access_token = env("KEY")
  audience_id = "23851234567890123"
  base_url = "{server.url}"
  identifiers = {identifiers}
  {size}
  {extra}
>
'''


def google(server, batch_size=None, identifiers="(email, phone)", extra=""):
    size = f"batch_size = {batch_size}" if batch_size else ""
    return f'''
destination "D" google_ads <
  access_token = env("KEY")
  developer_token = env("TOKEN")
  customer_id = "1234567890"
  user_list_id = "987654321"
  base_url = "{server.url}"
  identifiers = {identifiers}
  {size}
  {extra}
>
'''


#: kind -> (its stand-in server and the server's settings, the destination's text, the audience it keeps)
KINDS = {
    "meta": (MetaServer, {"api_key": "secret-key"}, meta, "23851234567890123"),
    "google_ads": (GoogleAdsServer, {"api_key": "secret-key", "developer_token": "tok-123"}, google, "987654321"),
}


@pytest.fixture(params=sorted(KINDS))
def ad(request, servers, sync_project):
    """(kind, server, destination text maker, audience the server keys by, project maker)."""
    kind = request.param
    cls, options, text, audience = KINDS[kind]
    server = servers(cls, **options)

    def project(destination: str, campaign: str = CAMPAIGN):
        return sync_project(destination + campaign)

    return kind, server, text, audience, project


def run(model, wh, state, tmp_path, **options):
    return sync.run(model, wh, state, AS_OF, tmp_path, env={"KEY": "secret-key", "TOKEN": "tok-123"},
                    http_options=FAST, **options)


def want(wh, kind: str, group: str, identifiers=IDENTIFIERS) -> dict[str, str]:
    return expected(wh, "Holiday", group, identifiers, hashed=HASHED_IDENTIFIERS[kind])


def rows_sent(kind: str, server) -> list[int]:
    """How many members each member request carried."""
    sizes = []
    for body in server.bodies:
        payload = json.loads(body) if body else {}
        if kind == "meta" and "payload" in payload:
            sizes.append(len(payload["payload"]["data"]))
        elif kind == "google_ads" and "operations" in payload:
            sizes.append(len(payload["operations"]))
    return sizes


def churn(wh, n_remove=6, n_phone=3):
    """Customers leave (no phone, no email any more) and others change e-mail addresses."""
    with wh.begin() as conn:
        ids = [r[0] for r in conn.execute(sa.text(
            "SELECT customer_id FROM customer_360 WHERE email IS NOT NULL ORDER BY customer_id"))]
        for cid in ids[:n_remove]:
            conn.execute(sa.text("UPDATE customer_360 SET phone = NULL, email = NULL WHERE customer_id = :c"),
                         {"c": cid})
        for i, cid in enumerate(ids[n_remove:n_remove + n_phone]):
            conn.execute(sa.text("UPDATE customer_360 SET email = :e WHERE customer_id = :c"),
                         {"e": f"  Moved.{i}@Example.COM ", "c": cid})


def test_the_group_goes_hashed_then_only_the_delta(ad, tmp_path):
    kind, server, text, audience, project = ad
    model, wh, state = project(text(server, batch_size=40))
    results = run(model, wh, state, tmp_path)
    assert {r.status for r in results} == {"ok"}, [r.message for r in results]
    a, b = want(wh, kind, "A"), want(wh, kind, "B")
    assert a and b and all(re.fullmatch(r"[0-9a-f]{64}", key) for key in [*a.values(), *b.values()])
    assert server.members(audience) == set(a.values()) | set(b.values())
    assert sum(r.added for r in results) == len(a) + len(b)
    assert rows_sent(kind, server) and max(rows_sent(kind, server)) <= 40
    assert all(r.batches == -(-r.added // 40) for r in results)
    requests = len(server.requests)

    again = run(model, wh, state, tmp_path)
    assert {r.status for r in again} == {"unchanged"} and len(server.requests) == requests

    churn(wh)
    third = run(model, wh, state, tmp_path)
    assert {r.status for r in third} == {"ok"}, [r.message for r in third]
    a2, b2 = want(wh, kind, "A"), want(wh, kind, "B")
    assert server.members(audience) == set(a2.values()) | set(b2.values())
    changed = sum(len(set(x.items()) ^ set(y.items())) for x, y in ((a, a2), (b, b2)))
    assert 0 < sum(r.added + r.removed for r in third) <= changed
    assert server.duplicates() == []


def test_meta_hashes_the_phone_without_plus_and_google_with_it(ad, tmp_path):
    kind, server, text, audience, project = ad
    model, wh, state = project(text(server, identifiers="(phone)"))
    run(model, wh, state, tmp_path)
    with wh.connect() as conn:
        phones = [r[0] for r in conn.execute(sa.text("SELECT phone FROM customer_360 WHERE phone IS NOT NULL"))]
    forms = {"meta": lambda p: p[1:], "google_ads": lambda p: p}[kind]
    hashes = {hashlib.sha256(forms(normalize_phone(p)).encode()).hexdigest() for p in phones if normalize_phone(p)}
    held = server.members(audience)
    assert held and held <= hashes


def _plain_identifiers(wh) -> set[str]:
    """Every email and phone of the warehouse, as stored and normalized (E.164 with and without the +)."""
    with wh.connect() as conn:
        rows = conn.execute(sa.text("SELECT email, phone FROM customer_360")).fetchall()
    out = set()
    for email, phone in rows:
        for value in (email, normalize_email(email)):
            if value and len(value.strip()) > 5:
                out.add(value.strip())
        for value in (phone, normalize_phone(phone)):
            if value and len(str(value).strip()) > 6:
                out.add(str(value).strip())
                out.add(str(value).strip().lstrip("+"))
    return out


def _texts_of(engine: sa.Engine) -> str:
    """Every table of a database, every value as text."""
    parts = []
    with engine.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.text(f'SELECT * FROM "{name}"')):
                parts.extend(str(v) for v in row)
    return "\n".join(parts)


def test_no_plain_email_or_phone_leaves_the_warehouse(ad, tmp_path):
    kind, server, text, audience, project = ad
    model, wh, state = project(text(server, batch_size=50))
    server.poison = set()
    run(model, wh, state, tmp_path)
    churn(wh)
    results = run(model, wh, state, tmp_path)
    assert {r.status for r in results} == {"ok"}
    plain = _plain_identifiers(wh)
    assert len(plain) > 100
    sent = "\n".join(b.decode() for b in server.bodies) + "\n".join(
        f"{method} {path} {headers}" for method, path, headers in server.received)
    with wh.connect() as conn:
        log = "\n".join(str(v) for row in conn.execute(sa.text("SELECT * FROM audlang_sync_log")) for v in row)
    recorded = _texts_of(state) + json.dumps(sync.runs(state)) + json.dumps([r.to_json() for r in results])
    assert len(sent) > 10_000 and len(log) > 10_000
    for where, haystack in (("the requests", sent), ("the sync log", log), ("the state", recorded)):
        leaked = sorted(p for p in plain if p in haystack)
        assert not leaked, f"{where} hold plain identifiers: {leaked[:5]}"
    assert "secret-key" not in recorded + log and "tok-123" not in recorded + log


def test_credentials_go_in_headers_only_never_in_the_url(ad, tmp_path):
    kind, server, text, audience, project = ad
    model, wh, state = project(text(server))
    run(model, wh, state, tmp_path)
    assert server.received
    for _method, path, headers in server.received:
        assert "secret-key" not in path and "tok-123" not in path and "access_token" not in path
        assert headers["Authorization"] == "Bearer secret-key"
        if kind == "google_ads":
            assert headers["developer-token"] == "tok-123"
    assert server.refused == []


def test_a_rejected_member_is_recorded_and_retried(ad, tmp_path):
    kind, server, text, audience, project = ad
    model, wh, state = project(text(server, batch_size=50))
    sync.materialize_campaigns(wh, model, AS_OF)
    a = want(wh, kind, "A")
    bad_id, bad_key = sorted(a.items())[3]
    server.poison = {bad_key}
    results = run(model, wh, state, tmp_path)
    group_a = next(r for r in results if r.target.group == "A")
    assert group_a.status == "partial" and group_a.rejected == 1, group_a.message
    assert bad_key not in server.members(audience)
    assert set(a.values()) - {bad_key} <= server.members(audience)
    (error,) = sync.errors(state, "D")
    assert (error.customer_id, error.key, error.operation) == (bad_id, bad_key, "add")
    assert error.status == {"meta": "invalid-entry", "google_ads": "partial-failure"}[kind]
    server.poison = set()
    run(model, wh, state, tmp_path)
    assert bad_key in server.members(audience) and sync.errors(state) == []
    assert server.duplicates() == []


def test_refused_credentials_fail_the_sync_without_splitting_the_batch(ad, tmp_path):
    kind, server, text, audience, project = ad
    server.api_key = "another-key"
    model, wh, state = project(text(server))
    results = run(model, wh, state, tmp_path)
    assert {r.status for r in results} == {"failed"}
    assert all(r.requests == 1 for r in results), [r.requests for r in results]  # one refusal, not a split
    assert all("secret-key" not in (r.message or "") for r in results)
    assert server.members(audience) == set() and sync.errors(state) == []
    server.api_key = "secret-key"
    again = run(model, wh, state, tmp_path)
    assert {r.status for r in again} == {"ok"}
    assert server.members(audience) == set(want(wh, kind, "A").values()) | set(want(wh, kind, "B").values())


def test_a_flagged_meta_audience_and_a_failed_google_job_acknowledge_nothing(ad, tmp_path):
    kind, server, text, audience, project = ad
    if kind == "meta":
        server.flagged = {audience}
    else:
        server.fail_jobs = True
    model, wh, state = project(text(server))
    results = run(model, wh, state, tmp_path)
    assert {r.status for r in results} == {"failed"}
    assert {"meta": "1713230", "google_ads": "ended FAILED"}[kind] in results[0].message
    assert sync.errors(state) == []
    server.flagged, server.fail_jobs = set(), False
    again = run(model, wh, state, tmp_path)
    assert {r.status for r in again} == {"ok"} and again[0].resumed_batches >= 1
    assert server.members(audience) == set(want(wh, kind, "A").values()) | set(want(wh, kind, "B").values())
    assert server.duplicates() == []


def test_the_removal_guard_holds_back_a_large_removal(ad, tmp_path):
    kind, server, text, audience, project = ad
    model, wh, state = project(text(server))
    run(model, wh, state, tmp_path)
    before = server.members(audience)
    with wh.begin() as conn:
        conn.execute(sa.text("UPDATE customer_360 SET phone = NULL, email = NULL WHERE customer_id < 'C000150'"))
    requests = len(server.requests)
    held = run(model, wh, state, tmp_path)
    assert {r.status for r in held} == {"held"} and "max_removal = 20%" in held[0].message
    assert len(server.requests) == requests and server.members(audience) == before
    allowed = run(model, wh, state, tmp_path, allow_removals=True)
    assert {r.status for r in allowed} == {"ok"}
    assert server.members(audience) == set(want(wh, kind, "A").values()) | set(want(wh, kind, "B").values())


@pytest.mark.parametrize("point", ["before_send", "after_ack"])
def test_killed_mid_sync_then_run_again_sends_each_member_once(ad, tmp_path, point):
    kind, server, text, audience, project = ad
    campaign = '''
campaign "Holiday" <
  audience segment "Reachable"
  treatment "All" 100% to "D"
>
'''
    model, wh, state = project(text(server, batch_size=60), campaign)
    sync.materialize_campaigns(wh, model, AS_OF)
    everyone = set(expected(wh, "Holiday", "All", IDENTIFIERS, hashed=HASHED_IDENTIFIERS[kind]).values())
    batches = -(-len(everyone) // 60)
    assert batches >= 3
    wh.dispose()
    for seq in (1, 2, batches):
        killed = run_killable(tmp_path, wh, f"{point}:{seq}")
        assert killed.returncode == -9, killed.stderr
    final = run_killable(tmp_path, wh, None)
    assert final.returncode == 0, final.stderr
    assert server.members(audience) == everyone
    # A batch in flight at a kill after its acknowledgement is not sent again; before sending, never sent.
    assert server.duplicates() == []
    with state.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM audlang_sync_batches")).scalar() == 0


@pytest.mark.parametrize(("kind", "identifiers", "size"), [
    ("meta", ("email", "phone"), 10_000), ("meta", ("email",), 10_000),
    ("google_ads", ("email", "phone"), 50_000), ("google_ads", ("phone",), 100_000),
])
def test_batches_are_the_largest_each_vendor_takes(kind, identifiers, size):
    settings = {"meta": {"access_token": "t", "audience_id": "1"},
                "google_ads": {"access_token": "t", "developer_token": "d", "customer_id": "1", "user_list_id": "2"}}
    decl = ast.Destination("D", kind, tuple(
        ast.Setting(k, ast.TextValue((ast.StringValue(v),))) for k, v in settings[kind].items()) + (
        ast.Setting("identifiers", ast.ListValue(tuple(ast.Word(i) for i in identifiers))),))
    resolved = resolve_settings(decl, {})
    assert resolved.batch_size == size and resolved.hashed == HASHED_IDENTIFIERS[kind]
    destination = open_destination(decl, Target("C", "G", "D"), env={})
    try:
        assert destination.batch_size == size
    finally:
        destination.close()


# ------------------------------------------------------------------ the example project, end to end

EXAMPLE_SECRETS = {"META_ACCESS_TOKEN": "meta-token", "GOOGLE_ADS_ACCESS_TOKEN": "google-token",
                   "GOOGLE_ADS_DEVELOPER_TOKEN": "google-dev-token"}


def _example(tmp_path, meta_server, google_server) -> Path:
    """The example project with its two ad destinations pointed at the stand-in servers."""
    from helpers import EXAMPLES

    from audlang.datagen import generate

    root = tmp_path / "retail"
    shutil.copytree(EXAMPLES / "retail", root)
    (root / "target").mkdir(exist_ok=True)
    generate(f"duckdb:///{root / 'target' / 'warehouse.duckdb'}", customers=1500, seed=42)
    path = root / "destinations.aud"
    text = path.read_text()
    for anchor, server in (('audience_id = "23851234567890123"', meta_server),
                           ('user_list_id = "987654321"', google_server)):
        assert anchor in text
        text = text.replace(anchor, f'{anchor}\n  base_url = "{server.url}"', 1)
    path.write_text(text)
    return root


def _cli(root, *args, codes=(0,)):
    from click.testing import CliRunner

    from audlang.cli import cli

    result = CliRunner().invoke(cli, ["--project", str(root), *args], catch_exceptions=False)
    assert result.exit_code in codes, result.output
    return result


def test_the_example_campaign_syncs_to_both_ad_platforms_end_to_end(servers, tmp_path, monkeypatch):
    meta_server = servers(MetaServer, api_key="meta-token")
    google_server = servers(GoogleAdsServer, api_key="google-token", developer_token="google-dev-token")
    root = _example(tmp_path, meta_server, google_server)
    for name, value in EXAMPLE_SECRETS.items():
        monkeypatch.setenv(name, value)
    for name in ("ATTENTIVE_API_KEY", "KLAVIYO_API_KEY", "BRAZE_API_KEY", "AUDLANG_WAREHOUSE", "AUDLANG_STATE"):
        monkeypatch.delenv(name, raising=False)

    plan = _cli(root, "plan", "--as-of", "2024-11-30").output
    for destination, kind in (("Meta - Holiday Retargeting", "meta"), ("Google - Customer Match", "google_ads")):
        assert re.search(rf'"Holiday Retargeting" / "Retarget" → "{destination}" \({kind}\)\s+\+[\d,]+', plan), plan
    assert meta_server.requests == [] and google_server.requests == []  # a plan sends nothing

    # The other vendors' secrets are not set: their syncs fail (exit 1); the ad platforms' go through.
    _cli(root, "apply", "--auto-approve", "--as-of", "2024-11-30", codes=(0, 1))
    wh = sa.create_engine(f"duckdb:///{root / 'target' / 'warehouse.duckdb'}")
    try:
        members = {kind: set(expected(wh, "Holiday Retargeting", "Retarget", IDENTIFIERS,
                                      hashed=HASHED_IDENTIFIERS[kind]).values()) for kind in HASHED_IDENTIFIERS}
        assert len(members["meta"]) > 20
        assert meta_server.members("23851234567890123") == members["meta"]
        assert google_server.members("987654321") == members["google_ads"]
        first = {"meta": len(meta_server.bodies), "google_ads": len(google_server.bodies)}

        with wh.begin() as conn:  # members of the group leave, or change their e-mail address
            ids = [r[0] for r in conn.execute(sa.text(
                "SELECT m.customer_id FROM audlang_campaign_members m JOIN customer_360 c USING (customer_id) "
                "WHERE m.campaign = 'Holiday Retargeting' AND m.group_name = 'Retarget' AND c.email IS NOT NULL "
                "ORDER BY m.customer_id LIMIT 5"))]
            for cid in ids[:3]:
                conn.execute(sa.text("UPDATE customer_360 SET email = NULL, phone = NULL WHERE customer_id = :c"),
                             {"c": cid})
            for i, cid in enumerate(ids[3:]):
                conn.execute(sa.text("UPDATE customer_360 SET email = :e WHERE customer_id = :c"),
                             {"e": f" Moved.{i}@Example.COM", "c": cid})
        _cli(root, "apply", "--auto-approve", "--as-of", "2024-11-30", codes=(0, 1))
        after = {kind: set(expected(wh, "Holiday Retargeting", "Retarget", IDENTIFIERS,
                                    hashed=HASHED_IDENTIFIERS[kind]).values()) for kind in HASHED_IDENTIFIERS}
    finally:
        wh.dispose()
    assert meta_server.members("23851234567890123") == after["meta"]
    assert google_server.members("987654321") == after["google_ads"]
    for kind, server in (("meta", meta_server), ("google_ads", google_server)):
        changed = len(members[kind] ^ after[kind])
        later = [json.loads(b) for b in server.bodies[first[kind]:] if b]
        sent = sum(len(p["payload"]["data"]) if kind == "meta" else len(p.get("operations", []))
                   for p in later if "payload" in p or "operations" in p)
        assert 0 < sent <= changed, (kind, sent, changed)  # only the delta
        assert server.duplicates() == []


MESSY = [  # (email, phone) written over the first customers: spaces, case, formats, duplicates, garbage, unicode
    ("  Ann@Example.COM ", "(503) 555-0101"), ("ann@example.com", "503.555.0102"), ("bob@x", "+44 20 7946 0958"),
    ("BOB@EXAMPLE.ORG", "0044 20 7946 0958"), (None, "555-0103"), ("carl@example.net", "1-503-555-0104"),
    ("\tdana@example.net\n", "+1 503 555 0105"), ("eve@example.net", "503555O106"), ("", ""),
    ("josé@exämple.com", "+1 (503) 555-0107"), ("fay@example.net", "+1 (503) 555-0101"),
]


def test_the_hashed_delta_equals_the_python_reference_on_each_warehouse(ad, warehouse, tmp_path):
    """Messy identifiers on DuckDB, SQLite and PostgreSQL (the ``warehouse`` fixture): what each ad platform
    holds is the reference's hashes (``make_member`` with ``hashed``), before and after they change."""
    from audlang import datagen

    kind, server, text, audience, _project = ad
    url = warehouse.new_url("ads_delta")
    datagen.generate(url, customers=120, seed=11)
    campaign = '''
campaign "Holiday" <
  audience < customer_id is set >
  treatment "All" 100% to "D"
>
'''
    model = model_of(tmp_path, text(server, batch_size=25) + campaign)
    wh = sa.create_engine(url)
    state = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")

    def rewrite(values):
        with wh.begin() as conn:
            ids = [r[0] for r in conn.execute(sa.text("SELECT customer_id FROM customer_360 ORDER BY customer_id"))]
            for cid, (email, phone) in zip(ids, values, strict=False):  # the first customers only
                conn.execute(sa.text("UPDATE customer_360 SET email = :e, phone = :p WHERE customer_id = :c"),
                             {"e": email, "p": phone, "c": cid})

    try:
        rewrite(MESSY)
        results = run(model, wh, state, tmp_path)
        assert {r.status for r in results} == {"ok"}, [r.message for r in results]
        assert server.members(audience) == set(want(wh, kind, "All").values())
        rewrite(list(reversed(MESSY)))  # keys move between customers, some become unusable
        results = run(model, wh, state, tmp_path, allow_removals=True)
        assert {r.status for r in results} <= {"ok", "unchanged"}, [r.message for r in results]
        assert server.members(audience) == set(want(wh, kind, "All").values())
        # A key that moved to another customer is added again for that customer (the old one's removal is
        # retired, not sent): a repeated add, which changes nothing at the vendor. Nothing else repeats.
        assert all(operation == "add" for _audience, operation, _key in server.duplicates())
    finally:
        wh.dispose()
        state.dispose()


def test_the_stand_ins_refuse_what_the_vendors_refuse(servers):
    """The servers' checks are real: a plain email, a token in the URL, too many rows, a bad developer token."""
    import httpx

    meta_server = servers(MetaServer, api_key="secret-key")
    google_server = servers(GoogleAdsServer, api_key="secret-key", developer_token="tok-123")
    auth = {"Authorization": "Bearer secret-key"}
    good = hashlib.sha256(b"ann@example.com").hexdigest()
    path = f"{meta_server.url}/v25.0/23851234567890123/users"
    with httpx.Client() as client:
        def meta_post(rows, url=path, headers=auth):
            return client.post(url, headers=headers, json={"payload": {"schema": ["EMAIL_SHA256"], "data": rows}})

        assert meta_post([[good]]).json()["num_received"] == 1
        plain = meta_post([["ann@example.com"]])
        assert plain.status_code == 400 and plain.json()["error"]["code"] == 100
        assert meta_post([[good]] * 10_001).status_code == 400
        assert meta_post([[good]], url=path + "?access_token=secret-key").status_code == 400
        assert meta_post([[good]], headers={"Authorization": "Bearer nope"}).json()["error"]["code"] == 190
        google = f"{google_server.url}/v26/customers/1234567890/offlineUserDataJobs:create"
        job = {"job": {"type": "CUSTOMER_MATCH_USER_LIST",
                       "customerMatchUserListMetadata": {"userList": "customers/1234567890/userLists/987654321"}}}
        assert client.post(google, json=job, headers={**auth, "developer-token": "nope"}).status_code == 401
        created = client.post(google, json=job, headers={**auth, "developer-token": "tok-123"}).json()
        operations = [{"create": {"userIdentifiers": [{"hashedEmail": good}]}},
                      {"create": {"userIdentifiers": [{"hashedEmail": "ann@example.com"}]}}]
        added = client.post(f"{google_server.url}/v26/{created['resourceName']}:addOperations",
                            headers={**auth, "developer-token": "tok-123"},
                            json={"enablePartialFailure": True, "operations": operations}).json()
        (error,) = added["partialFailureError"]["details"][0]["errors"]
        assert error["location"]["fieldPathElements"][0] == {"fieldName": "operations", "index": 1}
    assert meta_server.members("23851234567890123") == {good}
