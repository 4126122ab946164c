"""Credentials go only to the configured origin (issue #15, deliverable 3; docs/sync.md "Credentials and hosts").

Real HTTP servers on 127.0.0.1: a vendor stand-in whose ``links.next`` or
redirect points at another port, where a ``RecordingServer`` keeps every
request it receives with its headers. audlang refuses such a URL before
sending anything to it, so the recorder must receive no request at all, and
the sync fails with a message that names the other origin, never the key.
"""

from __future__ import annotations

import functools

import httpx
import pytest
from sync_helpers import AS_OF, expected, model_of, servers, sync_project, warehouse  # noqa: F401 - fixtures
from vendor_servers import (
    AttentiveServer, BrazeServer, GoogleAdsServer, KlaviyoServer, MetaServer, RecordingServer, WebhookServer,
)

from audlang import sync
from audlang.destinations import BatchRejected, DestinationUnavailable, Settings, SettingsError
from audlang.destinations.http import ForeignOrigin, Http, origin, show_origin

KEY = "secret-key"
FAST = {"backoff": 0.01}

ONE_GROUP = '''
campaign "Holiday" <
  audience segment "Reachable"
  treatment "All" 100% to "D"
>
'''

SERVERS = {"attentive": AttentiveServer, "braze": BrazeServer, "klaviyo": KlaviyoServer, "webhook": WebhookServer,
           "meta": MetaServer, "google_ads": functools.partial(GoogleAdsServer, developer_token=KEY)}


def destination(kind: str, server) -> str:
    if kind == "webhook":
        # A secret header besides Authorization: neither may leave the configured origin.
        return f'''
destination "D" webhook <
  url = "{server.url}/hook"
  header "Authorization" = "Bearer " + env("KEY")
  header "X-Api-Key" = env("KEY")
>
'''
    if kind in ("meta", "google_ads"):
        # Two credentials for Google Ads (the OAuth token and the developer token): both stay on the origin.
        settings = ('access_token = env("KEY")\n  audience_id = "1"' if kind == "meta" else
                    'access_token = env("KEY")\n  developer_token = env("KEY")\n  customer_id = "1234567890"\n'
                    '  user_list_id = "987654321"')
        return f'''
destination "D" {kind} <
  {settings}
  base_url = "{server.url}"
>
'''
    extra = {"attentive": 'segment = "seg-1"\n  identifiers = (phone, email)', "braze": "identifiers = (customer_id)",
             "klaviyo": 'list_id = "L1"\n  identifiers = (email)'}[kind]
    return f'''
destination "D" {kind} <
  api_key = env("KEY")
  base_url = "{server.url}"
  {extra}
>
'''


IDENTIFIERS = {"attentive": ("phone", "email"), "braze": ("customer_id",), "klaviyo": ("email",),
               "webhook": ("customer_id",)}


AUDIENCE = {"attentive": "seg-1", "braze": "audiences=All", "klaviyo": "L1", "webhook": "Holiday/All"}


@pytest.fixture
def setup(sync_project):
    def make(destinations: str):
        return sync_project(destinations + ONE_GROUP)

    return make


def run(model, wh, state, tmp_path, env=None):
    (result,) = sync.run(model, wh, state, AS_OF, tmp_path, env=env or {"KEY": KEY}, http_options=FAST)
    return result


def carried_key(received) -> list:
    return [(method, path) for method, path, headers in received if any(KEY in v for v in headers.values())]


def members_of(kind, server, wh):
    """(what the stand-in holds, what it should hold) for the one group."""
    return server.members(AUDIENCE[kind]), set(expected(wh, "Holiday", "All", IDENTIFIERS[kind]).values())


# ------------------------------------------------------------------ the origin


def http(base_url="https://a.klaviyo.com", headers=None, secrets=()):
    return Http(Settings("klaviyo", {}, (), secrets), base_url, headers or {"Authorization": f"Klaviyo-API-Key {KEY}"})


def test_an_origin_is_scheme_host_and_port_with_default_ports_normalized():
    assert origin("https://A.Klaviyo.COM/api") == origin("https://a.klaviyo.com:443") == ("https", "a.klaviyo.com", 443)
    assert origin("http://127.0.0.1/x") == origin("http://127.0.0.1:80") == ("http", "127.0.0.1", 80)
    assert show_origin(origin("https://a.klaviyo.com:443/x?k=1")) == "https://a.klaviyo.com"
    assert show_origin(origin("http://127.0.0.1:8080/x?k=1")) == "http://127.0.0.1:8080"
    client = http()
    try:
        for same in ("https://a.klaviyo.com/api/x?page[cursor]=2", "https://A.KLAVIYO.com:443/x", "/api/x"):
            client._allow(client._url(same), "a test link")
        for other in ("http://a.klaviyo.com/x", "https://a.klaviyo.com:8443/x", "https://a.klaviyo.com.evil.test/x",
                      "https://evil.test/a.klaviyo.com", "https://klaviyo.com/x"):
            with pytest.raises(ForeignOrigin) as refused:
                client._allow(client._url(other), "a test link")
            assert show_origin(origin(other)) in str(refused.value) and "a test link" in str(refused.value)
            assert KEY not in str(refused.value)
    finally:
        client.close()


def test_a_base_url_that_is_not_absolute_http_is_a_settings_error():
    for bad in ("", "a.klaviyo.com", "/api", "ftp://a.klaviyo.com", "file:///etc/passwd"):
        with pytest.raises(SettingsError, match="absolute http:// or https:// URL"):
            http(bad)
    with pytest.raises(SettingsError, match="ASCII") as error:
        http(headers={"Authorization": "Bearer k\u00e9y-secret"})
    assert "secret" not in str(error.value)


def test_a_foreign_url_is_refused_before_anything_is_sent_and_only_its_origin_is_named(servers):
    vendor, other = servers(AttentiveServer), servers(RecordingServer)
    client = http(vendor.url, {"Authorization": f"Bearer {KEY}"})
    try:
        with pytest.raises(ForeignOrigin) as refused:
            client.request("GET", f"{other.url}/steal?api_key={KEY}&list=L1", what="a link the vendor named")
        message = str(refused.value)
        assert show_origin(origin(other.url)) in message and show_origin(origin(vendor.url)) in message
        assert KEY not in message and "steal" not in message and "L1" not in message
        assert other.received == [] and vendor.received == []
    finally:
        client.close()


# ------------------------------------------------------------------ Klaviyo's links.next


def test_klaviyo_links_next_to_another_port_is_refused_and_the_next_run_completes(setup, servers, tmp_path):
    klaviyo, other = servers(KlaviyoServer), servers(RecordingServer)
    klaviyo.page = 5
    klaviyo.next_base = other.url
    model, wh, state = setup(destination("klaviyo", klaviyo))
    result = run(model, wh, state, tmp_path)
    assert result.status == "failed", result
    assert f"refused to send a request to {show_origin(origin(other.url))}" in result.message
    assert "links.next" in result.message and show_origin(origin(klaviyo.url)) in result.message
    assert KEY not in result.message
    assert other.received == []  # not even without the key: nothing at all went there
    assert sync.errors(state) == []  # a refusal is the destination's failure, not the members'
    # The import was not acknowledged: the next run sends the batch again and completes.
    klaviyo.next_base = None
    again = run(model, wh, state, tmp_path)
    assert again.status == "ok", again
    got, want = members_of("klaviyo", klaviyo, wh)
    assert got == want and want
    assert other.received == []


def test_klaviyo_links_next_on_the_same_origin_is_followed(setup, servers, tmp_path):
    klaviyo = servers(KlaviyoServer)
    klaviyo.page = 7
    model, wh, state = setup(destination("klaviyo", klaviyo))
    result = run(model, wh, state, tmp_path)
    assert result.status == "ok", result
    got, want = members_of("klaviyo", klaviyo, wh)
    assert got == want and len(want) > 2 * klaviyo.page
    pages = [path for method, path in klaviyo.requests if method == "GET" and "/profiles?" in path]
    assert len(pages) > 2 and any("cursor" in path for path in pages)
    assert all(headers.get("Authorization") == f"Klaviyo-API-Key {KEY}" for _m, _p, headers in klaviyo.received)


# ------------------------------------------------------------------ redirects


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_a_redirect_to_another_port_is_refused(setup, servers, tmp_path, kind, status):
    vendor, other = servers(SERVERS[kind]), servers(RecordingServer)
    vendor.faults = [("redirect", status, other.url)]
    model, wh, state = setup(destination(kind, vendor))
    result = run(model, wh, state, tmp_path)
    assert result.status == "failed", result
    assert f"refused to send a request to {show_origin(origin(other.url))}" in result.message
    assert f"the {status} redirect" in result.message
    assert KEY not in result.message
    assert other.received == []
    assert carried_key(vendor.received) == [vendor.received[0][:2]]  # the key went to the configured host alone
    assert sync.errors(state) == []


def test_the_next_run_after_a_refused_redirect_completes(setup, servers, tmp_path):
    vendor, other = servers(WebhookServer, api_key=KEY), servers(RecordingServer)
    vendor.faults = [("redirect", 307, other.url)]
    model, wh, state = setup(destination("webhook", vendor))
    assert run(model, wh, state, tmp_path).status == "failed"
    again = run(model, wh, state, tmp_path)
    assert again.status == "ok" and again.resumed_batches >= 1, again
    got, want = members_of("webhook", vendor, wh)
    assert got == want and want
    assert other.received == [] and vendor.duplicates() == []


@pytest.mark.parametrize("status", [307, 308])
def test_a_same_origin_307_or_308_is_followed_with_its_method_and_body(setup, servers, tmp_path, status):
    vendor = servers(AttentiveServer)
    vendor.faults = [("redirect", status, vendor.url)]  # to the same path: the stand-in then applies it
    model, wh, state = setup(destination("attentive", vendor))
    result = run(model, wh, state, tmp_path)
    assert result.status == "ok", result
    got, want = members_of("attentive", vendor, wh)
    assert got == want and want
    first, second = vendor.requests[:2]
    assert first == second == ("POST", "/v2/bulk/segments/members")
    assert vendor.duplicates() == []


def test_a_same_origin_302_is_followed_for_a_get(setup, servers, tmp_path):
    klaviyo = servers(KlaviyoServer)
    klaviyo.faults = [("pass",), ("redirect", 302, klaviyo.url)]  # the import's POST, then the job's GET
    model, wh, state = setup(destination("klaviyo", klaviyo))
    result = run(model, wh, state, tmp_path)
    assert result.status == "ok", result
    assert klaviyo.requests[1] == klaviyo.requests[2] and klaviyo.requests[1][0] == "GET"
    got, want = members_of("klaviyo", klaviyo, wh)
    assert got == want and want


def test_a_same_origin_302_to_a_post_is_refused_never_turned_into_a_get(setup, servers, tmp_path):
    attentive = servers(AttentiveServer)
    attentive.faults = [("redirect", 302, attentive.url)]
    model, wh, state = setup(destination("attentive", attentive))
    refused = run(model, wh, state, tmp_path)
    assert refused.status == "failed" and "only a 307 or 308 keeps the method and body" in refused.message
    assert attentive.requests == [("POST", "/v2/bulk/segments/members")]  # never turned into a GET
    assert attentive.members("seg-1") == set() and sync.errors(state) == []


def test_redirects_on_the_same_origin_are_bounded(servers):
    vendor = servers(AttentiveServer)
    vendor.faults = [("redirect", 307, vendor.url)] * 10
    client = http(vendor.url, {"Authorization": f"Bearer {KEY}"})
    try:
        with pytest.raises(DestinationUnavailable, match="more than 5 redirects"):
            client.request("POST", "/v2/bulk/segments/members", json={"externalId": "s", "members": []})
        assert len(vendor.requests) == 6
    finally:
        client.close()


# ------------------------------------------------------------------ secrets in messages


def test_a_response_quoting_the_credentials_is_redacted_even_for_literal_header_values(servers):
    vendor = servers(AttentiveServer)
    literal = "literal-token-123"
    vendor.faults = [("echo",), ("echo",)]
    client = Http(Settings("webhook", {}, (), ()), vendor.url,
                  {"Authorization": f"Bearer {literal}", "X-Api-Key": "x-key-456", "Content-Type": "application/json"})
    try:
        with pytest.raises(BatchRejected) as refused:
            client.check(client.request("POST", "/v2/bulk/segments/members", json={}))
        assert "refused" in refused.value.message and "application/json" in refused.value.message
        assert literal not in refused.value.message and "x-key-456" not in refused.value.message
    finally:
        client.close()
    # A 5xx quoting them, retried until the client gives up: the final message is redacted too.
    vendor.faults = [("500",)]
    client = Http(Settings("webhook", {}, (), (KEY,)), vendor.url, {"Authorization": f"Bearer {KEY}"},
                  max_attempts=1)
    try:
        with pytest.raises(DestinationUnavailable) as gave_up:
            client.request("POST", f"/v2/bulk/segments/members?token={KEY}", json={})
        assert "gave up after 1 failed attempt and" in str(gave_up.value) and KEY not in str(gave_up.value)
    finally:
        client.close()


def test_a_key_with_a_line_break_is_never_quoted_nor_retried(setup, servers, tmp_path):
    vendor = servers(AttentiveServer)
    model, wh, state = setup(destination("attentive", vendor))
    result = run(model, wh, state, tmp_path, env={"KEY": KEY + "\n"})
    assert result.status == "failed" and "not valid HTTP" in result.message, result
    assert KEY not in result.message and result.retries == 0
    assert vendor.received == []


def test_webhook_http_client_uses_the_url_as_its_origin():
    from audlang.destinations.base import Target
    from audlang.destinations.webhook import Webhook

    hook = Webhook(Settings("webhook", {"url": "https://hooks.example.test:8443/in?x=1"},
                            (("X-Api-Key", KEY),), (KEY,)), Target("C", "G", "D"))
    try:
        assert hook.http.origin == ("https", "hooks.example.test", 8443)
        with pytest.raises(ForeignOrigin):
            hook.http._allow(httpx.URL("https://hooks.example.test/in"), "a test")
    finally:
        hook.close()
