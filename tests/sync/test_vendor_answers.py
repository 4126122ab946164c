"""Secrets are redacted from messages in every form, percent-encoded too (issue #15).

A webhook URL whose secret holds a space is sent percent-encoded (``/hook%20ab``): a message naming the
request, or a vendor's error quoting it, must not show it in that form either. Against a stand-in on
127.0.0.1; decisions in docs/sync.md.
"""

from __future__ import annotations

import json

import httpx
import pytest
from sync_helpers import AS_OF, servers, sync_project  # noqa: F401 - fixtures
from vendor_servers import WebhookServer

from audlang import sync
from audlang.destinations import Settings

KEY = "secret-key"
FAST = {"backoff": 0.01}

ONE_GROUP = '''
campaign "Holiday" <
  audience segment "Reachable"
  treatment "All" 100% to "Vendor", "File"
>

destination "File" csv <
  path = "exports/{{ campaign }}-{{ group }}.csv"
>
'''


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
