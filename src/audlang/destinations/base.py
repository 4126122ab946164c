"""The protocol every destination speaks, the values it exchanges, settings and identifiers.

A destination is opened for one *target* (a campaign group sent to one
destination) and takes batches of members: ``add(batch)`` and
``remove(batch)`` return a ``BatchResult`` saying, member by member, what the
destination acknowledged and what it rejected (with its status and message).
A destination that cannot be reached after its retries raises
``DestinationUnavailable``: nothing of that batch is acknowledged. ``finish``
is called at the end of every sync of the target with the whole acknowledged
membership (the csv destination writes its file there).
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import quote, quote_plus, urlsplit

import attrs

from audlang import ast
from audlang.check.destinations import BATCH_LIMITS, HASHED_IDENTIFIERS, batch_limit, settings_for
from audlang.compile.identifiers import (  # noqa: F401 - re-exported: destinations and sync import them from here
    NORMALIZERS, hash_identifier, normalize_customer_id, normalize_email, normalize_phone,
)
from audlang.vocabulary import MemberOperation

#: Identifier name -> how each vendor calls it.
IDENTIFIERS = ("customer_id", "email", "phone")
DEFAULT_IDENTIFIERS = {"csv": ("customer_id",), "webhook": ("customer_id",), "sql": ("customer_id",),
                       "attentive": ("phone",), "braze": ("customer_id",), "klaviyo": ("email",),
                       "meta": ("email", "phone"), "google_ads": ("email", "phone")}
DEFAULT_BATCH = {"csv": 10_000, "webhook": 1_000, "sql": 10_000, **BATCH_LIMITS}


@attrs.frozen
class Target:
    """Where one sync goes: a campaign group and a destination."""

    campaign: str
    group: str
    destination: str

    @property
    def key(self) -> str:
        return f"{self.campaign}\x1f{self.group}\x1f{self.destination}"

    def __str__(self) -> str:
        return f'"{self.campaign}" / "{self.group}" → "{self.destination}"'


@attrs.frozen
class Member:
    """One member as sent: the key is its first identifier, normalized; ``data`` holds every identifier
    and field sent (and what the destination returned, such as a Klaviyo profile id)."""

    customer_id: str
    key: str
    data: Mapping[str, Any] = attrs.field(factory=dict, eq=False, hash=False)


@attrs.frozen
class Batch:
    target: Target
    operation: MemberOperation = attrs.field(converter=MemberOperation)  # add, remove (a retirement is never sent)
    seq: int
    idempotency_key: str
    members: tuple[Member, ...]


@attrs.frozen
class Rejection:
    member: Member
    status: str  # the destination's HTTP status or error code
    message: str
    attempts: int = 1


@attrs.frozen
class BatchResult:
    accepted: tuple[Member, ...] = ()
    rejected: tuple[Rejection, ...] = ()
    requests: int = 0
    retries: int = 0

    def __add__(self, other: BatchResult) -> BatchResult:
        return BatchResult(self.accepted + other.accepted, self.rejected + other.rejected,
                           self.requests + other.requests, self.retries + other.retries)


class DestinationUnavailable(Exception):
    """The destination could not be reached or kept failing after the retries; nothing was acknowledged."""

    def __init__(self, message: str, requests: int = 0, retries: int = 0):
        super().__init__(message)
        self.requests = requests
        self.retries = retries


class BatchRejected(Exception):
    """The destination refused a whole request (a 4xx other than 429): split it to find the bad rows."""

    def __init__(self, status: str, message: str, attempts: int = 1):
        super().__init__(message)
        self.status = status
        self.message = message
        self.attempts = attempts


class Destination(Protocol):
    kind: str
    batch_size: int
    identifiers: tuple[str, ...]

    def add(self, batch: Batch) -> BatchResult: ...

    def remove(self, batch: Batch) -> BatchResult: ...

    def finish(self, members: Iterable[Member]) -> None: ...

    def close(self) -> None: ...


class SettingsError(Exception):
    """A destination that cannot be used as written (a missing environment variable, a bad value)."""


# ------------------------------------------------------------------ settings


def env_variables(decl: ast.Destination) -> list[tuple[str, str]]:
    """(setting, variable) for every ``env("…")`` the destination reads."""
    out = []
    for setting in decl.settings:
        if isinstance(setting.value, ast.TextValue):
            for part in setting.value.parts:
                if isinstance(part, ast.EnvRef):
                    out.append((("header " if setting.header else "") + setting.key, part.variable))
    return out


def missing_env(decl: ast.Destination, env: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    env = os.environ if env is None else env
    return [(key, var) for key, var in env_variables(decl) if not env.get(var)]


def _value(value, env: Mapping[str, str]):
    if isinstance(value, ast.TextValue):
        parts = []
        for part in value.parts:
            if isinstance(part, ast.EnvRef):
                if not env.get(part.variable):
                    raise SettingsError(f"environment variable {part.variable} is not set")
                parts.append(env[part.variable])
            else:
                parts.append(part.value)
        return "".join(parts)
    if isinstance(value, ast.NumberValue):
        return int(value.value) if value.value == value.value.to_integral_value() else float(value.value)
    if isinstance(value, ast.BooleanValue):
        return value.value
    if isinstance(value, ast.Word):
        return value.value
    if isinstance(value, ast.ListValue):
        return tuple(item.value for item in value.items)
    raise TypeError(value)


@attrs.frozen
class Settings:
    kind: str
    values: Mapping[str, Any]
    headers: tuple[tuple[str, str], ...] = ()
    #: the secret values read from the environment: redacted from every message
    secrets: tuple[str, ...] = ()

    def get(self, key: str, default=None):
        return self.values.get(key, default)

    @property
    def mode(self) -> str:
        return self.values.get("mode", "mirror")

    @property
    def identifiers(self) -> tuple[str, ...]:
        return tuple(self.values.get("identifiers") or DEFAULT_IDENTIFIERS.get(self.kind, ("customer_id",)))

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.values.get("fields") or ())

    @property
    def batch_size(self) -> int:
        default = DEFAULT_BATCH.get(self.kind, 1000)
        limit = batch_limit(self.kind, self.identifiers)
        size = int(self.values.get("batch_size") or min(default, limit or default))
        return max(1, min(size, limit or size))

    @property
    def hashed(self) -> Mapping[str, str] | None:
        """For the ad platforms: identifier -> the normalized form sent as its SHA-256 hex (hashed in the
        warehouse: plain identifiers never leave it); None for the kinds that send identifiers as they are."""
        return HASHED_IDENTIFIERS.get(self.kind)

    @property
    def max_removal(self) -> float:
        return float(self.values.get("max_removal", 20))

    @property
    def allow_empty(self) -> bool:
        return bool(self.values.get("allow_empty", False))

    def redact(self, text: str) -> str:
        """``text`` without any secret read from the environment, in any of its ``secret_forms``."""
        forms: set[str] = set()
        for secret in self.secrets:
            forms |= secret_forms(secret)
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, "***")
        return re.sub(r"://[^@/\s:]+:[^@/\s]+@", "://***@", text)


#: Characters left as they are when a URL is percent-encoded, as httpx (path, query) and common servers do.
_URL_SAFE = ("", "/", "!$&'()*+,;=:/[]@", "!$&'()*+,;=:/?[]@", "-._~", "/:")
_PERCENT = re.compile(r"%[0-9A-F]{2}")


@functools.lru_cache(maxsize=1024)
def secret_forms(value: str) -> frozenset[str]:
    """The ways a secret can appear in a message: as is, stripped, escaped as a str or bytes repr or in JSON,
    percent-encoded (upper or lower case hex, with the safe characters of a path, a query or none) and
    form-encoded (``+`` for a space), as a URL built from it or a server echoing it would write it. A
    secret that is a whole URL also stands for its path and query, which messages show without the origin."""
    forms = {value, value.strip(), repr(value)[1:-1], json.dumps(value)[1:-1],
             json.dumps(value, ensure_ascii=False)[1:-1]}
    try:
        forms.add(repr(value.encode("utf-8"))[2:-1])
    except UnicodeEncodeError:
        pass
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        parts = None
    if parts is not None and parts.scheme in ("http", "https") and parts.netloc:
        tail = parts.path + (f"?{parts.query}" if parts.query else "")
        if len(tail) > 1:
            forms |= {tail, parts.path} if len(parts.path) > 1 else {tail}
    for plain in list(forms):
        for safe in _URL_SAFE:
            try:
                encoded = {quote(plain, safe=safe), quote_plus(plain, safe=safe)}
            except (UnicodeEncodeError, TypeError):
                continue
            forms |= encoded | {_PERCENT.sub(lambda m: m.group(0).lower(), e) for e in encoded}
    return frozenset(f for f in forms if f)


def resolve_settings(decl: ast.Destination, env: Mapping[str, str] | None = None) -> Settings:
    """The destination's settings with ``env("…")`` read now; raises ``SettingsError`` for a missing variable."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    headers: list[tuple[str, str]] = []
    secrets: list[str] = []
    for setting in decl.settings:
        value = _value(setting.value, env)
        if isinstance(setting.value, ast.TextValue):
            secrets.extend(env[p.variable] for p in setting.value.parts if isinstance(p, ast.EnvRef))
        if setting.header:
            headers.append((setting.key, value))
        else:
            values[setting.key] = value
    known = settings_for(decl.kind)
    for key in values:
        if key not in known:
            raise SettingsError(f"{decl.kind} destinations have no setting `{key}`")
    return Settings(decl.kind, values, tuple(headers), tuple(secrets))


# ------------------------------------------------------------------ identifiers
# The normalizations live in the compile layer beside their SQL twins (``compile/identifiers.py``);
# they are re-exported here, where destinations and sync have always found them.


def make_member(row: Mapping[str, Any], identifiers: tuple[str, ...], fields: tuple[str, ...] = (),
                hashed: Mapping[str, str] | None = None) -> Member | None:
    """A member from a customer row, identifiers normalized (and with ``hashed``, ``Settings.hashed``,
    SHA-256-hashed as the ad platforms take them); None when the key (the first identifier) is unusable.
    The Python reference of what the sync computes in the warehouse."""
    data: dict[str, Any] = {}
    for name in identifiers:
        value = hash_identifier(hashed[name], row.get(name)) if hashed else NORMALIZERS[name](row.get(name))
        if value is not None:
            data[name] = value
    key = data.get(identifiers[0])
    if key is None:
        return None
    for name in fields:
        value = row.get(name)
        data[name] = None if value is None else (value if isinstance(value, (str, int, float, bool)) else str(value))
    return Member(str(row["customer_id"]), key, data)
