"""What each destination kind accepts: settings, their types, which are required, which are secret.

The engines behind the kinds live in ``audlang.destinations``; this table is the
language's view of them, so that ``validate`` catches a bad setting before any
apply.
"""

from __future__ import annotations

import re

import attrs


@attrs.frozen
class SettingSpec:
    kind: str  # text, number, boolean, word, list
    required: bool = False
    secret: bool = False
    choices: tuple[str, ...] = ()
    maximum: int | None = None
    doc: str = ""
    #: an id the vendor writes as digits only (Meta's audience id, Google's customer and list ids)
    digits: bool = False


COMMON = {
    "mode": SettingSpec("word", choices=("mirror", "add"),
                        doc="mirror: add new members and remove departed ones (default); add: only add"),
    "identifiers": SettingSpec("list", choices=("customer_id", "email", "phone"),
                               doc="which identifiers to send"),
    "batch_size": SettingSpec("number", doc="members per request (at most the vendor's limit)"),
    "max_removal": SettingSpec("number", doc="largest share of the audience (percent) one sync may remove; default 20"),
    "allow_empty": SettingSpec("boolean", doc="allow a sync that empties the audience"),
    "fields": SettingSpec("list", doc="extra attributes to send with each member"),
}

KINDS: dict[str, dict[str, SettingSpec]] = {
    "csv": {
        "path": SettingSpec("text", required=True, doc="output path, a jinja2 template"),
    },
    "webhook": {
        "url": SettingSpec("text", required=True, doc="where batches are POSTed"),
        "body": SettingSpec("text", doc="jinja2 template of the request body"),
    },
    "sql": {
        "url": SettingSpec("text", required=True, doc="SQLAlchemy URL of the target database"),
        "table": SettingSpec("text", required=True, doc="target table"),
    },
    "attentive": {
        "api_key": SettingSpec("text", required=True, secret=True),
        "segment": SettingSpec("text", required=True, doc="the Attentive segment's externalId"),
        "base_url": SettingSpec("text", doc="default https://api.attentivemobile.com"),
    },
    "braze": {
        "api_key": SettingSpec("text", required=True, secret=True),
        "base_url": SettingSpec("text", required=True, doc="the account's REST endpoint"),
        "attribute": SettingSpec("text", doc="custom array attribute; default audiences"),
        "value": SettingSpec("text", doc="value added to the attribute; default the group's name"),
    },
    "klaviyo": {
        "api_key": SettingSpec("text", required=True, secret=True),
        "list_id": SettingSpec("text", required=True),
        "revision": SettingSpec("text", doc="API revision; default pinned by audlang"),
        "base_url": SettingSpec("text", doc="default https://a.klaviyo.com"),
    },
    "meta": {
        "access_token": SettingSpec("text", required=True, secret=True),
        "audience_id": SettingSpec("text", required=True, digits=True,
                                   doc="the customer-file Custom Audience's id"),
        "identifiers": SettingSpec("list", choices=("email", "phone"),
                                   doc="which identifiers to send, hashed; default (email, phone)"),
        "api_version": SettingSpec("text", doc="Graph API version; default pinned by audlang"),
        "base_url": SettingSpec("text", doc="default https://graph.facebook.com"),
    },
    "google_ads": {
        "access_token": SettingSpec("text", required=True, secret=True, doc="an OAuth access token"),
        "developer_token": SettingSpec("text", required=True, secret=True),
        "customer_id": SettingSpec("text", required=True, digits=True,
                                   doc="the Google Ads account, digits without dashes"),
        "user_list_id": SettingSpec("text", required=True, digits=True, doc="the Customer Match user list"),
        "login_customer_id": SettingSpec("text", digits=True, doc="the manager account, when one manages it"),
        "identifiers": SettingSpec("list", choices=("email", "phone"),
                                   doc="which identifiers to send, hashed; default (email, phone)"),
        "api_version": SettingSpec("text", doc="Google Ads API version; default pinned by audlang"),
        "base_url": SettingSpec("text", doc="default https://googleads.googleapis.com"),
    },
}

#: Members one request takes at most, as each vendor documents it (../shared/VENDORS.md).
BATCH_LIMITS = {"attentive": 10_000, "braze": 75, "klaviyo": 1_000, "meta": 10_000, "google_ads": 100_000}
#: Kinds whose limit counts identifiers rather than members: Google Ads takes at most 100,000 user
#: identifiers a request, across all its operations (one operation, one member, holds one per identifier).
PER_IDENTIFIER_LIMITS = frozenset({"google_ads"})

#: Ad platforms take identifiers hashed: identifier -> the normalized form whose SHA-256 hex is sent
#: (``compile.identifiers.HASH_FORMS``). Meta writes a phone as E.164 without the ``+``, Google with it.
HASHED_IDENTIFIERS: dict[str, dict[str, str]] = {
    "meta": {"email": "email", "phone": "phone_digits"},
    "google_ads": {"email": "email", "phone": "phone"},
}


def batch_limit(kind: str, identifiers: tuple[str, ...] | None = None) -> int | None:
    """The most members one request of the kind takes (None: no vendor limit), for these identifiers."""
    limit = BATCH_LIMITS.get(kind)
    if limit is not None and kind in PER_IDENTIFIER_LIMITS:
        limit //= max(1, len(identifiers or HASHED_IDENTIFIERS.get(kind, {}) or (None,)))
    return limit


def is_local_host(host: str) -> bool:
    """127.0.0.1, ::1 or localhost: where a stand-in server (a test, the demo) may speak plain http."""
    return host.lower().strip("[]") in ("127.0.0.1", "::1", "localhost")

_SECRET_KEY = re.compile(r"(^|_)(api_key|key|token|secret|password|passwd)$")
_SECRET_HEADER = re.compile(r"(authorization|token|secret|api[-_]?key|password|cookie)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"://[^/@:]+:[^/@]+@")


def is_secret_setting(key: str, spec: SettingSpec | None) -> bool:
    return (spec is not None and spec.secret) or bool(_SECRET_KEY.search(key))


def is_secret_header(name: str) -> bool:
    return bool(_SECRET_HEADER.search(name))


def has_literal_password(url: str) -> bool:
    return bool(_URL_PASSWORD.search(url))


def settings_for(kind: str) -> dict[str, SettingSpec]:
    return {**COMMON, **KINDS.get(kind, {})}
