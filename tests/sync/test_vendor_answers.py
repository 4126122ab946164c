"""Nothing a vendor answers crashes, hangs or exhausts apply, or stops the other syncs (issue #15).

Real HTTP servers on 127.0.0.1 (``vendor_servers``) answer what the red-team review found: a Braze
201 ``[]``, a body that is not the gzip its ``Content-Encoding`` says, a Klaviyo 202 that is not JSON
or whose ``data`` is null, a gzip bomb, a ``links.next`` that never ends, an answer dripped one byte at
a time, and a webhook URL whose secret a message would show percent-encoded. Each fails its own sync
with a clear cause (``sync status``), the other syncs of the apply complete, apply exits 1 (never 70),
and the next apply against a healthy server completes without any member operation arriving twice.
Decisions in docs/sync.md, "Vendors' answers".
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from collections import Counter

import httpx
import pytest
import sqlalchemy as sa
from sync_helpers import AS_OF, SEGMENTS, expected, servers, sync_project, warehouse  # noqa: F401 - fixtures
from vendor_servers import AttentiveServer, BrazeServer, KlaviyoServer, WebhookServer

from audlang import sync
from audlang.destinations import DestinationUnavailable, Settings
from audlang.destinations.http import MAX_RESPONSE_BYTES, Http
from audlang.destinations.vendors import Klaviyo

KEY = "secret-key"
AS_OF_TEXT = "2024-11-30"  # sync_helpers.AS_OF, as the command line takes it
FAST = {"backoff": 0.01}
SERVERS = {"attentive": AttentiveServer, "braze": BrazeServer, "klaviyo": KlaviyoServer}
AUDIENCE = {"attentive": "seg-1", "braze": "audiences=All", "klaviyo": "L1"}
IDENTIFIERS = {"attentive": ("phone",), "braze": ("customer_id",), "klaviyo": ("email",)}
EXTRA = {"attentive": 'segment = "seg-1"', "braze": "", "klaviyo": 'list_id = "L1"'}


def vendor(kind: str, url: str, name: str = "Vendor") -> str:
    return f'''
destination "{name}" {kind} <
  api_key = env("VENDOR_KEY")
  base_url = "{url}"
  {EXTRA[kind]}
>
'''


def gzip_bomb(decoded_mib: int) -> bytes:
    """A gzip body of about decoded_mib KB that decodes to decoded_mib MiB of zeros (the same deflate
    block, cut at a full flush, repeated)."""
    zeros = b"\0" * (1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(decoded_mib):
        crc = zlib.crc32(zeros, crc)
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + block * decoded_mib + deflate.flush()
            + struct.pack("<II", crc, (decoded_mib << 20) & 0xFFFFFFFF))


# ------------------------------------------------------------------ malformed answers, through the CLI


def cli(folder, *args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("AUDLANG_WAREHOUSE", "AUDLANG_STATE")}
    env.update(NO_COLOR="1", VENDOR_KEY=KEY)
    done = subprocess.run([sys.executable, "-m", "audlang", "--project", str(folder), *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 70, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stdout + done.stderr, done.stderr
    return done


MALFORMED = {
    "braze 201 []": ("braze", [("raw", 201, b"[]")],
                     ("POST /users/track answered 201 with a body that is not what the API documents: "
                      "the body is an array where an object was expected")),
    # Not gzip although it says so: a failed attempt like a dropped connection, retried, then the sync fails.
    "gzip that is not": ("attentive", [("raw", 202, b'{"message": "accepted"}', {"Content-Encoding": "gzip"})] * 5,
                         ("gave up after 5 failed attempts and 0 rate-limited ones; last: the body is not the gzip "
                          "data its Content-Encoding says")),
    "klaviyo 202 not JSON": ("klaviyo", [("raw", 202, b"<html>accepted</html>", {"Content-Type": "text/html"})],
                             ("POST /api/profile-bulk-import-jobs answered 202 with a body that is not what the "
                              "API documents: the body is not JSON")),
    "klaviyo data null": ("klaviyo", [("raw", 202, b'{"data": null}')],
                          ("POST /api/profile-bulk-import-jobs answered 202 with a body that is not what the API "
                           "documents: it has no data.id")),
}
#: one case of each vendor, all in one apply through the command line
THROUGH_THE_CLI = {"Braze": "braze 201 []", "Attentive": "gzip that is not", "Klaviyo": "klaviyo 202 not JSON"}


def test_malformed_answers_fail_their_syncs_only_and_the_next_apply_completes(tmp_path, tmp_path_factory, servers):
    url = warehouse(tmp_path, tmp_path_factory)
    (tmp_path / "audlang.toml").write_text(f'warehouse = "{url}"\nstate = "sqlite:///state.db"\n')
    made = {}
    text = SEGMENTS
    for name, case in THROUGH_THE_CLI.items():
        kind, faults, _cause = MALFORMED[case]
        made[name] = servers(SERVERS[kind], api_key=KEY)
        made[name].faults = list(faults)
        text += vendor(kind, made[name].url, name)
    # The vendors come first: a crash in one used to keep every sync after it from running at all.
    (tmp_path / "project.aud").write_text(text + '''
destination "File" csv <
  path = "exports/{{ campaign }}-{{ group }}.csv"
>

campaign "Holiday" <
  audience segment "Reachable"
  treatment "All" 100% to "Braze", "Attentive", "Klaviyo", "File"
>
''')

    first = cli(tmp_path, "apply", "--auto-approve", "--as-of", AS_OF_TEXT)
    out = first.stdout + first.stderr
    assert first.returncode == 1, out
    assert "3 syncs failed; the others were sent" in out, out
    for server in made.values():
        assert server.operations == [] and server.faults == []  # nothing applied; every fault was met
    engine = sa.create_engine(url)
    want = {kind: expected(engine, "Holiday", "All", ids) for kind, ids in IDENTIFIERS.items()}
    engine.dispose()  # the warehouse is a DuckDB file: one process at a time
    with open(tmp_path / "exports" / "Holiday-All.csv", newline="") as handle:
        assert [r["customer_id"] for r in csv.DictReader(handle)] == sorted(want["braze"])  # synced after them

    runs = json.loads(cli(tmp_path, "sync", "status", "--format", "json").stdout)["runs"]
    by = {r["destination"]: r for r in runs}
    assert by["File"]["status"] == "ok", runs
    text = cli(tmp_path, "sync", "status").stdout
    for name, case in THROUGH_THE_CLI.items():
        cause = MALFORMED[case][2]
        assert by[name]["status"] == "failed" and cause in by[name]["message"], by[name]
        assert f'failed    "Holiday" / "All" → "{name}"' in text and cause in text, text
    assert KEY not in json.dumps(runs) + text

    # The vendors answer sensibly again: the batch planned before the failure goes out once, then the rest.
    again = cli(tmp_path, "apply", "--auto-approve", "--as-of", AS_OF_TEXT)
    assert again.returncode == 0, again.stdout + again.stderr
    for name, case in THROUGH_THE_CLI.items():
        kind = MALFORMED[case][0]
        assert made[name].members(AUDIENCE[kind]) == set(want[kind].values()) and want[kind]
        assert made[name].duplicates() == []
    runs = json.loads(cli(tmp_path, "sync", "status", "--format", "json").stdout)["runs"]
    assert {r["destination"]: r["status"] for r in runs[-4:]} == {
        "Braze": "ok", "Attentive": "ok", "Klaviyo": "ok", "File": "unchanged"}


# ------------------------------------------------------------------ in process: one target each

ONE_GROUP = '''
campaign "Holiday" <
  audience segment "Reachable"
  treatment "All" 100% to "Vendor", "File"
>

destination "File" csv <
  path = "exports/{{ campaign }}-{{ group }}.csv"
>
'''


def run(model, wh, state, tmp_path, **http_options):
    results = sync.run(model, wh, state, AS_OF, tmp_path, env={"VENDOR_KEY": KEY},
                       http_options={**FAST, **http_options})
    by = {r.target.destination: r for r in results}
    assert by["File"].status in ("ok", "unchanged"), by["File"]
    return by["Vendor"]


def healthy_again(kind, server, model, wh, state, tmp_path, resent=()):
    """The next run against the server answering sensibly: the whole group, no operation twice but those
    of ``resent`` (a batch the vendor applied before its answer failed), each once more."""
    server.faults, server.endless = [], None
    again = run(model, wh, state, tmp_path)
    assert again.status == "ok", again
    assert server.members(AUDIENCE[kind]) == set(expected(wh, "Holiday", "All", IDENTIFIERS[kind]).values())
    counts = Counter(server.operations)
    assert {op for op, n in counts.items() if n > 1} == set(resent) and max(counts.values()) <= 2
    assert sync.errors(state) == []


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_answer_fails_that_sync_with_its_cause(sync_project, servers, tmp_path, case):
    kind, faults, cause = MALFORMED[case]
    server = servers(SERVERS[kind], api_key=KEY)
    model, wh, state = sync_project(vendor(kind, server.url) + ONE_GROUP)
    server.faults = list(faults)
    failed = run(model, wh, state, tmp_path)
    assert failed.status == "failed" and cause in failed.message, failed
    assert server.operations == [] and server.faults == []
    assert sync.errors(state) == []  # the vendor's fault, not the members'
    healthy_again(kind, server, model, wh, state, tmp_path)


def test_a_bug_in_a_destinations_code_fails_that_sync_only_with_its_cause(sync_project, servers, tmp_path,
                                                                          monkeypatch):
    server = servers(BrazeServer, api_key=KEY)
    model, wh, state = sync_project(vendor("braze", server.url) + ONE_GROUP)

    def broken(self, operation, batch):
        return {}["no such key"]  # a KeyError as an unforeseen answer would raise it

    monkeypatch.setattr("audlang.destinations.vendors.Braze._send", broken)
    failed = run(model, wh, state, tmp_path)
    assert failed.status == "failed", failed
    assert "the braze destination failed on batch 1 (add) with KeyError at test_vendor_answers.py:" in failed.message
    assert "(broken), a bug in audlang (please report it); the next apply sends the batch again" in failed.message
    assert "no such key" not in failed.message  # the exception's text may quote an answer or a member: never shown
    assert [r["status"] for r in sync.runs(state)] == ["failed", "ok"]
    monkeypatch.undo()
    healthy_again("braze", server, model, wh, state, tmp_path)


def test_a_gzip_bomb_is_read_to_the_limit_only(sync_project, servers, tmp_path):
    server = servers(AttentiveServer, api_key=KEY)
    bomb = gzip_bomb(500)  # 500 KB that decode to 500 MiB
    assert len(bomb) < 600_000
    model, wh, state = sync_project(vendor("attentive", server.url) + ONE_GROUP)
    server.faults = [("raw", 400, bomb, {"Content-Encoding": "gzip"})]
    started = time.monotonic()
    failed = run(model, wh, state, tmp_path)
    assert failed.status == "failed", failed
    assert ("POST /v2/bulk/segments/members: the answer (400) is longer than 4 MiB once decoded; audlang reads at "
            "most that much of an answer") in failed.message
    assert failed.requests == 1 and failed.retries == 0  # not retried, not split: the same answer would come again
    assert time.monotonic() - started < 30
    assert sync.errors(state) == []  # the vendor's fault, not the members'
    healthy_again("attentive", server, model, wh, state, tmp_path)


def test_the_memory_of_reading_a_bomb_is_bounded(servers):
    server = servers(AttentiveServer, api_key=KEY)
    server.faults = [("raw", 202, gzip_bomb(200), {"Content-Encoding": "gzip"})]
    client = Http(Settings("attentive", {}, (), ()), server.url, {"Authorization": f"Bearer {KEY}"})
    tracemalloc.start()
    try:
        with pytest.raises(DestinationUnavailable, match="longer than 4 MiB once decoded"):
            client.request("POST", "/v2/bulk/segments/members", json={"externalId": "s", "members": []})
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        client.close()
    assert peak < 4 * MAX_RESPONSE_BYTES, peak  # the limit and a chunk, not 200 MiB


def test_an_answer_over_a_configured_limit_and_one_declared_over_it(servers):
    server = servers(AttentiveServer, api_key=KEY)
    client = Http(Settings("attentive", {}, (), ()), server.url, {"Authorization": f"Bearer {KEY}"},
                  max_response_bytes=1000, backoff=0.01)
    try:
        server.faults = [("raw", 202, b'{"message": "' + b"x" * 2000 + b'"}')]
        with pytest.raises(DestinationUnavailable, match=r"longer than 1,000 bytes once decoded"):
            client.request("POST", "/v2/bulk/segments/members", json={})
        server.faults = [("raw", 202, zlib.compress(b" " * 5000), {"Content-Encoding": "deflate"})]
        with pytest.raises(DestinationUnavailable, match=r"longer than 1,000 bytes once decoded"):
            client.request("POST", "/v2/bulk/segments/members", json={})
        # Within the limit, gzip and deflate (zlib-wrapped or raw) are read as they should be.
        raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        for encoding, body in (("gzip", gzip.compress(b'{"a": 1}')), ("deflate", zlib.compress(b'{"a": 1}')),
                               ("deflate", raw.compress(b'{"a": 1}') + raw.flush())):
            server.faults = [("raw", 200, body, {"Content-Encoding": encoding})]
            assert client.answer(client.request("GET", "/v2/x")).get("a", int) == 1
        server.faults = [("raw", 200, gzip.compress(b'{"a": 1}')[:-8], {"Content-Encoding": "gzip"})] * 5
        with pytest.raises(DestinationUnavailable, match="failed attempts .* the body ends before its gzip data does"):
            client.request("GET", "/v2/x")  # a failed attempt like a dropped connection: retried, then given up
        server.faults = [("raw", 200, b"{}", {"Content-Encoding": "br"})]
        with pytest.raises(DestinationUnavailable, match="Content-Encoding 'br', which audlang does not read"):
            client.request("GET", "/v2/x")
        assert all(h.get("Accept-Encoding") == "gzip, deflate" for _m, _p, h in server.received)
    finally:
        client.close()


@pytest.mark.parametrize("endless", ["new", "same"])
def test_klaviyo_pages_that_never_end_are_cut(sync_project, servers, tmp_path, endless):
    klaviyo = servers(KlaviyoServer, api_key=KEY)
    klaviyo.page = 5
    klaviyo.endless = endless
    model, wh, state = sync_project(vendor("klaviyo", klaviyo.url) + ONE_GROUP)
    failed = run(model, wh, state, tmp_path)
    assert failed.status == "failed", failed
    pages = [p for m, p in klaviyo.requests if m == "GET" and "/profiles" in p]
    if endless == "new":
        assert f"more than {Klaviyo.MAX_PAGES} pages (links.next still names another)" in failed.message
        assert len(pages) == Klaviyo.MAX_PAGES
    else:
        assert "links.next names a page already read; the listing would never end" in failed.message
        assert len(pages) == 2
    # The import job had put the batch on the list; its ids unread, it was not acknowledged: the next run
    # imports it once more (an upsert, no change at Klaviyo), as after a crash in flight, and nothing else.
    applied = list(klaviyo.operations)
    assert len(applied) == len(set(applied)) > 0
    healthy_again("klaviyo", klaviyo, model, wh, state, tmp_path, resent=applied)


@pytest.mark.parametrize("what", ["body", "headers"])
def test_an_answer_dripped_a_byte_at_a_time_ends_at_the_deadline(sync_project, servers, tmp_path, what):
    server = servers(AttentiveServer, api_key=KEY)
    # 0.2 s a byte: the answer would take 10 s or more; every single read is well within the 2 s timeout.
    server.faults = [("drip", 0.2, what)] * 2
    model, wh, state = sync_project(vendor("attentive", server.url) + ONE_GROUP)
    failed = run(model, wh, state, tmp_path, deadline=1.0, timeout=2.0, max_attempts=2)
    assert failed.status == "failed", failed
    assert "gave up after 2 failed attempts and 0 rate-limited ones; last: no complete answer within 1 s " \
           "(the deadline of one request)" in failed.message
    assert failed.seconds < 4, failed.seconds  # two attempts of about 1 s each, not 2 × 10 s
    healthy_again("attentive", server, model, wh, state, tmp_path)


def test_the_deadline_spares_a_connection_kept_alive_between_exchanges(servers):
    server = servers(AttentiveServer, api_key=KEY)
    client = Http(Settings("attentive", {}, (), ()), server.url, {"Authorization": f"Bearer {KEY}"}, deadline=0.5)
    body = {"externalId": "s", "members": [{"phone": "+15005550006"}]}
    try:
        for _ in range(3):
            client.check(client.request("POST", "/v2/bulk/segments/members", json=body))
            time.sleep(0.6)  # past the deadline of the exchange before: its timer must not end the next one
        assert client.requests == 3 and client.retries == 0
    finally:
        client.close()


# ------------------------------------------------------------------ the checked reading of an answer


def answer_of(client, status: int, body: bytes, path: str = "/users/track"):
    response = httpx.Response(status, content=body, request=httpx.Request("POST", f"http://127.0.0.1{path}"))
    return client.answer(response)


@pytest.mark.parametrize("body, problem", [
    (b"", "the body is empty"),
    (b"[]", "the body is an array where an object was expected"),
    (b"{\"data\": ", "the body is not JSON"),
    (b"\xff\xfe{", "the body is not JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "the body is not JSON"),  # deeper than the parser goes: RecursionError
    (b'{"n": ' + b"1" * 5000 + b"}", "the body is not JSON"),  # more digits than Python converts
])
def test_a_body_that_is_not_a_json_object_is_named_as_such(body, problem):
    client = Http(Settings("braze", {}, (), ()), "http://127.0.0.1", {})
    try:
        with pytest.raises(DestinationUnavailable) as error:
            answer_of(client, 201, body)
        assert str(error.value) == ("POST /users/track answered 201 with a body that is not what the API documents: "
                                    + problem)
    finally:
        client.close()


def test_paths_of_an_answer_are_checked_for_their_type():
    client = Http(Settings("klaviyo", {}, (), ()), "http://127.0.0.1", {})
    try:
        a = answer_of(client, 200, json.dumps({"data": {"id": "j1", "n": True, "items": [{"id": 1}, "x"]},
                                               "links": {"next": None}}).encode())
        assert a.get("data.id", str) == "j1"
        assert a.get("links.next", (str, type(None))) is None
        assert a.get("links.prev", str, "none") == "none" and a.get("meta.count", int, 0) == 0
        for path, expect, problem in [
            ("data.missing", str, "it has no data.missing"),
            ("data.n", int, "data.n is true or false where an integer was expected"),  # a bool is no integer
            ("data.id", (int, float), "data.id is a text where an integer or a number was expected"),
            ("data.id.deeper", str, "data.id is a text where an object was expected"),
        ]:
            with pytest.raises(DestinationUnavailable, match=problem.replace(".", r"\.")):
                a.get(path, expect)
        items = a.each("data.items")
        assert next(items).get("id", int) == 1
        with pytest.raises(DestinationUnavailable, match=r"data\.items\[1\] is a text where an object was expected"):
            next(items)
    finally:
        client.close()


def test_braze_errors_that_name_no_attribute_sent_acknowledge_nothing(sync_project, servers, tmp_path):
    server = servers(BrazeServer, api_key=KEY)
    model, wh, state = sync_project(vendor("braze", server.url) + ONE_GROUP)
    for errors, problem in [
        ([{"type": "bad", "input_array": "attributes", "index": 10_000}],
         "errors[0].index is 10000, not one of the 75 attributes sent"),
        ([{"type": "bad", "input_array": "attributes"}], "it has no errors[0].index"),
        (["bad"], "errors[0] is a text where an object was expected"),
        ({"0": "bad"}, "errors is an object where an array was expected"),
    ]:
        server.faults = [("raw", 201, json.dumps({"message": "success", "errors": errors}).encode())]
        failed = run(model, wh, state, tmp_path)
        assert failed.status == "failed" and problem in failed.message, (problem, failed)
    healthy_again("braze", server, model, wh, state, tmp_path)


# ------------------------------------------------------------------ secrets, percent-encoded


HOOK = '''
destination "Vendor" webhook <
  url = "{url}/" + env("HOOK_SECRET")
  header "Authorization" = "Bearer " + env("VENDOR_KEY")
>
'''


@pytest.mark.parametrize("secret", ["hook ab", "hook ab/ü?d=e f"])
def test_a_url_secret_is_redacted_percent_encoded_too(sync_project, servers, tmp_path, secret):
    server = servers(WebhookServer, api_key=KEY)
    model, wh, state = sync_project(HOOK.format(url=server.url) + ONE_GROUP)
    env = {"VENDOR_KEY": KEY, "HOOK_SECRET": secret}
    encoded = httpx.URL(f"{server.url}/{secret}").raw_path.decode()
    assert encoded.strip("/") != secret  # the URL carries it encoded: the plain value alone would miss it

    def vendor_run() -> sync.SyncResult:
        results = sync.run(model, wh, state, AS_OF, tmp_path, env=env, http_options={**FAST, "max_attempts": 1})
        return {r.target.destination: r for r in results}["Vendor"]

    # A 5xx until the client gives up: the run's message names the request's path.
    server.faults = [("500",)]
    failed = vendor_run()
    assert failed.status == "failed" and "gave up after 1 failed attempt and" in failed.message, failed
    # A 400 quoting the path as it arrived: the batch is split, each member rejected with that text.
    server.faults = [("echo_path",)] * 1000
    partial = vendor_run()
    assert partial.status == "partial", partial
    stored = json.dumps(sync.runs(state)) + json.dumps([e.to_json() for e in sync.errors(state)])
    assert "no hook at /***" in stored and "POST /***: gave up" in stored, stored[:2000]
    for form in {secret, encoded.strip("/"), secret.replace(" ", "+"), encoded.strip("/").lower()}:
        assert form not in stored, form


def test_every_form_of_a_secret_is_redacted():
    settings = Settings("webhook", {}, (), ("s3cr3t value/ü", "https://hooks.example.test/services/T0/B1?k=v"))
    for text in ["s3cr3t value/ü", "s3cr3t%20value%2F%C3%BC", "s3cr3t%20value/%C3%BC", "s3cr3t+value%2F%C3%BC",
                 "s3cr3t%20value%2f%c3%bc", "s3cr3t value/\\u00fc", "s3cr3t value/\\xc3\\xbc",
                 "POST /services/T0/B1?k=v", "/services/T0/B1%3Fk%3Dv",
                 "https%3A%2F%2Fhooks.example.test%2Fservices%2FT0%2FB1%3Fk%3Dv"]:
        assert "s3cr3t" not in settings.redact(text) and "T0/B1" not in settings.redact(text) \
            and "T0%2FB1" not in settings.redact(text), text
