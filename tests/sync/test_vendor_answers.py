"""Nothing a vendor answers exhausts or hangs apply: answers are bounded, decoded here, within a deadline (#15).

Real HTTP servers on 127.0.0.1 (``vendor_servers``) answer what the red-team review found: a gzip bomb,
a body that is not the gzip its ``Content-Encoding`` says, an answer dripped one byte at a time; and a
webhook URL whose secret a message would show percent-encoded. Each fails its own sync with a clear
cause, and the next run against a healthy server completes without any member operation arriving twice.
Decisions in docs/sync.md, "Vendors' answers".
"""

from __future__ import annotations

import gzip
import json
import struct
import time
import tracemalloc
import zlib
from collections import Counter

import httpx
import pytest
from sync_helpers import AS_OF, SEGMENTS, expected, servers, sync_project, warehouse  # noqa: F401 - fixtures
from vendor_servers import AttentiveServer, BrazeServer, KlaviyoServer, WebhookServer

from audlang import sync
from audlang.destinations import DestinationUnavailable, Settings
from audlang.destinations.http import MAX_RESPONSE_BYTES, Http

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


def test_a_body_that_is_not_its_gzip_is_a_failed_attempt(sync_project, servers, tmp_path):
    server = servers(AttentiveServer, api_key=KEY)
    model, wh, state = sync_project(vendor("attentive", server.url) + ONE_GROUP)
    server.faults = [("raw", 202, b'{"message": "accepted"}', {"Content-Encoding": "gzip"})] * 5
    failed = run(model, wh, state, tmp_path)
    assert failed.status == "failed", failed
    assert ("gave up after 5 failed attempts and 0 rate-limited ones; last: the body is not the gzip data its "
            "Content-Encoding says") in failed.message
    assert server.operations == [] and server.faults == [] and sync.errors(state) == []
    healthy_again("attentive", server, model, wh, state, tmp_path)


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
            assert client.request("GET", "/v2/x").json() == {"a": 1}
        server.faults = [("raw", 200, gzip.compress(b'{"a": 1}')[:-8], {"Content-Encoding": "gzip"})] * 5
        with pytest.raises(DestinationUnavailable, match="failed attempts .* the body ends before its gzip data does"):
            client.request("GET", "/v2/x")  # a failed attempt like a dropped connection: retried, then given up
        server.faults = [("raw", 200, b"{}", {"Content-Encoding": "br"})]
        with pytest.raises(DestinationUnavailable, match="Content-Encoding 'br', which audlang does not read"):
            client.request("GET", "/v2/x")
        assert all(h.get("Accept-Encoding") == "gzip, deflate" for _m, _p, h in server.received)
    finally:
        client.close()


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
    assert failed.status == "failed" and "gave up after 1 failed attempts" in failed.message, failed
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
