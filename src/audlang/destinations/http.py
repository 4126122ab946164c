"""HTTP for the vendor and webhook destinations: httpx with tenacity retries, and batch splitting.

Retried: 429 (waiting what ``Retry-After`` says when the server sends it; a
429 is not a failed attempt, it only counts against a separate, larger
budget), 5xx, timeouts and dropped connections, with bounded exponential
backoff and jitter. Anything else that is not 2xx is the destination
refusing the request: ``BatchRejected``, which ``split`` answers by halving
the batch until the bad members stand alone. Secrets never reach a message.

Credentials go only to the configured origin (docs/sync.md, "Credentials and
hosts"): every request, whether its URL is a path, a link a response named
(Klaviyo's ``links.next``) or a redirect's ``Location``, is checked against the
scheme, host and port of the base URL (default ports normalized) before it is
sent. A URL elsewhere is refused with ``ForeignOrigin``, which names that
origin and nothing more of the URL; the request is never sent, with or
without credentials. Redirects are followed by hand, within the origin only:
307 and 308 with their method and body, 301, 302 and 303 for a GET; any other
3xx is refused (a POST turned into a GET would be a batch acknowledged but
never applied).

Nothing a server answers can crash, hang or exhaust a sync (docs/sync.md,
"Vendors' answers"): every answer is streamed and read to at most
``MAX_RESPONSE_BYTES`` once decoded (gzip and deflate are decoded here, by
bounded steps, so a gzip bomb stops at the limit); each exchange (connect,
send, receive) ends at ``DEADLINE`` seconds whatever the server drips
(``_Watchdog``); a body that does not decode as its ``Content-Encoding`` says
is a failed attempt like a dropped connection. A 2xx answer's JSON is read
only through ``Http.answer`` (``Answer.get``, ``Answer.each``): anything but
the documented shape is ``DestinationUnavailable`` naming the request and what
was wrong. Any other exception a destination's code raises is caught at its
boundary (``HttpDestination``) as ``DestinationFault``: that sync fails with
its cause recorded, the others go on.
"""

from __future__ import annotations

import email.utils
import json as jsonlib
import random
import socket
import threading
import time
import traceback
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import PurePath
from typing import Any

import httpx
import tenacity

from audlang.destinations.base import (
    Batch, BatchRejected, BatchResult, DestinationUnavailable, Member, Rejection, Settings, SettingsError, Target,
    secret_forms,
)
from audlang.vocabulary import MemberOperation, counted

#: Backoff of failed attempts: base × 2^(n−1) seconds with jitter, at most MAX_BACKOFF.
BACKOFF = 0.5
MAX_BACKOFF = 30.0
MAX_ATTEMPTS = 5  # failed attempts (5xx, timeouts, dropped connections) per request
MAX_RATE_LIMITED = 30  # 429s per request
MAX_RETRY_AFTER = 120.0
MAX_REDIRECTS = 5  # same-origin redirects followed per request
#: Bytes of one answer read at most, counted once decoded (and before decoding): beyond, the request fails.
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
#: Seconds one exchange (connect, send, receive the whole answer) may take; ``timeout`` bounds each step.
DEADLINE = 60.0
#: Raw bytes read from the connection at a time (decoded by bounded steps of what room is left).
CHUNK = 64 * 1024
#: What the client asks for and decodes itself; any other ``Content-Encoding`` is refused.
ACCEPT_ENCODING = "gzip, deflate"

DEFAULT_PORTS = {"http": 80, "https": 443}
#: Client headers that carry no credential; every other header value is redacted from messages.
PLAIN_HEADERS = frozenset({"content-type", "accept", "revision", "user-agent", "login-customer-id"})
#: Refusals about the request as a whole (its credentials), never about one member: splitting the batch
#: would only send it again member by member. The sync of the target fails, nothing is acknowledged.
CREDENTIALS_REFUSED = frozenset({401, 403})


def audience_url(url) -> str:
    """A base URL as an audience names it (``audlang.sync.audience``): as written, no trailing slash."""
    return str(url or "").rstrip("/")


def bearer(token) -> dict[str, str]:
    """The headers of a JSON API authorized by a bearer token (Attentive, Braze, Meta, Google Ads)."""
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


class ForeignOrigin(DestinationUnavailable):
    """A request that would carry the destination's credentials to another origin than its base URL."""


def origin(url: str | httpx.URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) of an absolute URL, lower-cased, the scheme's default port filled in."""
    url = httpx.URL(url)
    scheme = url.scheme.lower()
    return scheme, url.host.lower(), url.port or DEFAULT_PORTS.get(scheme)


def show_origin(o: tuple[str, str, int | None]) -> str:
    """An origin as a user reads it: ``https://a.klaviyo.com``, ``http://127.0.0.1:8080`` (no path, no query)."""
    scheme, host, port = o
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" if port is None or port == DEFAULT_PORTS.get(scheme) else f"{scheme}://{host}:{port}"


class DestinationFault(DestinationUnavailable):
    """A destination's own code failed (a bug in audlang, often met on an answer it did not foresee): the
    sync of that target fails with the cause recorded, nothing of the batch is acknowledged."""


class _Oversized(Exception):
    """An answer longer than ``max_response_bytes``: not retried (the same request gets the same answer)."""


class _Unreadable(Exception):
    """An answer in a ``Content-Encoding`` audlang did not ask for: not retried."""


class _Undecodable(Exception):
    """A body that is not the gzip or deflate its ``Content-Encoding`` says: retried like a dropped connection."""


class _Late(Exception):
    """The exchange's deadline passed: retried like a timeout."""


#: trace events (``connection.connect_tcp.complete``…) whose return value is the connection's network stream
_CONNECTED = (".connect_tcp.complete", ".connect_unix_socket.complete", ".start_tls.complete")


class _Watchdog:
    """Ends an exchange at its deadline, in whatever step it is blocked.

    httpx's timeouts bound each connect, write and read, not their sum: a server sending one byte every
    half second never trips a 2 s read timeout and can hold a request for as long as it likes. The
    client keeps a single connection (``max_connections=1``), whose network stream httpx's ``trace``
    extension reports when it is opened; ``arm`` starts a timer that, at the deadline, shuts that socket
    down, so the read or write blocked on it returns at once and httpx raises a transport error (a
    connection opened after the deadline is shut down as it opens). ``expired`` then tells the caller
    that the error, or a body cut short, is the deadline's."""

    def __init__(self):
        self._lock = threading.Lock()
        self._stream = None
        self._armed: object | None = None
        self._timer: threading.Timer | None = None
        self.expired = False

    def trace(self, event: str, info: dict) -> None:
        if event.endswith(_CONNECTED) and info.get("return_value") is not None:
            with self._lock:
                self._stream = info["return_value"]
                if self.expired:
                    self._shutdown()

    def arm(self, seconds: float) -> None:
        token = object()
        with self._lock:
            self.expired, self._armed = False, token
        self._timer = threading.Timer(seconds, self._fire, (token,))
        self._timer.daemon = True
        self._timer.start()

    def disarm(self) -> None:
        with self._lock:
            self._armed = None
        if self._timer is not None:
            self._timer.cancel()

    def _fire(self, token: object) -> None:
        with self._lock:
            if self._armed is token:
                self.expired = True
                self._shutdown()

    def _shutdown(self) -> None:
        get = getattr(self._stream, "get_extra_info", None)
        sock = get("socket") if get is not None else None
        if sock is not None:
            try:
                # The plain socket's shutdown, on a TLS socket too: it only wakes what is blocked on it.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass  # already closed


class _Decoder:
    """A body decoded as its ``Content-Encoding`` says (identity, gzip or deflate), by bounded steps."""

    def __init__(self, encoding: str):
        encoding = encoding.strip().lower()
        self.encoding = encoding
        if encoding in ("", "identity"):
            self._z = None
        elif encoding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            self._z = zlib.decompressobj(zlib.MAX_WBITS)  # zlib-wrapped; raw deflate tried on the first chunk
        else:
            raise _Unreadable(f"answered with Content-Encoding {encoding!r}, which audlang does not read "
                              f"(it asks for {ACCEPT_ENCODING})")
        self._first = True

    def feed(self, data: bytes, room: int) -> bytes:
        """``data`` decoded, at most ``room`` bytes (``room`` ≥ 1; reaching it means the answer is too long)."""
        if self._z is None:
            return data[:room]
        try:
            out = self._z.decompress(data, room)
        except zlib.error:
            if not (self._first and self.encoding == "deflate"):
                raise _Undecodable(f"the body is not the {self.encoding} data its Content-Encoding says") from None
            self._z = zlib.decompressobj(-zlib.MAX_WBITS)  # deflate without the zlib wrapper, as some send it
            return self.feed(data, room)
        finally:
            self._first = False
        try:
            while self._z.unconsumed_tail and len(out) < room:
                out += self._z.decompress(self._z.unconsumed_tail, room - len(out))
        except zlib.error:
            raise _Undecodable(f"the body is not the {self.encoding} data its Content-Encoding says") from None
        return out

    def finish(self) -> None:
        if self._z is not None and not self._z.eof:
            raise _Undecodable(f"the body ends before its {self.encoding} data does")


class _Retry(Exception):
    def __init__(self, reason: str, retry_after: float | None = None, rate_limited: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.rate_limited = rate_limited


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - time.time())


class Http:
    """One client per destination target, with its base URL, auth headers and retry policy."""

    def __init__(self, settings: Settings, base_url: str, headers: dict[str, str], timeout: float = 30.0,
                 backoff: float | None = None, max_attempts: int | None = None, deadline: float | None = None,
                 max_response_bytes: int | None = None):
        self.settings = settings
        secrets: set[str] = set()
        for name, value in headers.items():
            if name.lower() in PLAIN_HEADERS or not value:
                continue
            secrets |= secret_forms(value)
            if name.lower() in ("authorization", "proxy-authorization") and len(value.split(None, 1)) == 2:
                secrets |= secret_forms(value.split(None, 1)[1])  # the credential after its scheme
        for secret in settings.secrets:
            secrets |= secret_forms(secret)
        self._secrets = tuple(sorted(secrets, key=len, reverse=True))
        try:
            url = httpx.URL(base_url or "")
        except httpx.InvalidURL:
            raise SettingsError("the destination's URL is not a valid URL") from None
        if url.scheme not in DEFAULT_PORTS or not url.host:
            raise SettingsError(self.redact(f"the destination's URL must be an absolute http:// or https:// URL, "
                                            f"not {base_url!r}"))
        #: the one origin this client's credentials may go to
        self.origin = origin(url)
        try:
            # Redirects are followed by hand (``request``), within the origin only.
            # One connection at a time (the requests of a target are sequential), so the watchdog knows the
            # socket of every exchange; gzip and deflate only, which ``_Decoder`` reads by bounded steps.
            self.client = httpx.Client(base_url=base_url.rstrip("/"),
                                       headers={"Accept-Encoding": ACCEPT_ENCODING, **headers}, timeout=timeout,
                                       follow_redirects=False,
                                       limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))
        except (UnicodeError, ValueError, TypeError):
            raise SettingsError("a header value is not plain ASCII text, which HTTP headers must be") from None
        self.backoff = BACKOFF if backoff is None else backoff
        self.max_attempts = max_attempts or MAX_ATTEMPTS
        self.deadline = DEADLINE if deadline is None else deadline
        self.max_response_bytes = max_response_bytes or MAX_RESPONSE_BYTES
        self._watchdog = _Watchdog()
        self.requests = 0
        self.retries = 0

    def close(self) -> None:
        self.client.close()

    def redact(self, text: str) -> str:
        """``text`` without any secret of the settings or credential of the headers (as is or escaped)."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return self.settings.redact(text)

    def _url(self, url: str | httpx.URL, params=None) -> httpx.URL:
        return self.client.build_request("GET", url, params=params).url

    def _allow(self, url: httpx.URL, what: str) -> None:
        """Refuse ``url`` unless it is on the configured origin: the request is never sent."""
        there = origin(url)
        if there != self.origin:
            raise ForeignOrigin(self.redact(
                f"refused to send a request to {show_origin(there)}: {what} points away from the configured "
                f"base URL {show_origin(self.origin)}, and the destination's credentials go only there"),
                self.requests, self.retries)

    def request(self, method: str, path: str, *, json=None, content: str | bytes | None = None,
                headers: dict[str, str] | None = None, params=None, what: str | None = None) -> httpx.Response:
        """Send until a final answer: a 2xx or a refusal (returned), or the retries exhausted (raised).

        ``path`` is relative to the base URL or an absolute URL on its origin (``what`` says where it came
        from, for the message when it is not). Same-origin redirects are followed; ``ForeignOrigin`` is
        raised for a URL or a redirect to any other origin, before anything is sent there."""
        try:
            url = self._url(path, params)
        except httpx.InvalidURL:
            raise DestinationUnavailable(f"{what or 'the URL of a ' + method + ' request'} is not a valid URL",
                                         self.requests, self.retries) from None
        self._allow(url, what or f"the URL of a {method} request")
        shown = path if not path.startswith(("http://", "https://")) else url.raw_path.decode("ascii", "replace")
        for _hop in range(MAX_REDIRECTS + 1):
            response = self._send(method, url, shown, json=json, content=content, headers=headers)
            if not 300 <= response.status_code < 400:
                return response
            status = response.status_code
            location = response.headers.get("Location")
            if status not in (301, 302, 303, 307, 308) or not location:
                raise DestinationUnavailable(self.redact(
                    f"{method} {shown}: answered {status} {response.reason_phrase}, which is not a redirect "
                    f"audlang can follow"), self.requests, self.retries)
            try:
                target = url.join(location)
            except httpx.InvalidURL:
                raise DestinationUnavailable(self.redact(
                    f"{method} {shown}: answered {status} with a Location that is not a URL"),
                    self.requests, self.retries) from None
            self._allow(target, f"the {status} redirect that {method} {shown} answered")
            if status not in (307, 308) and method != "GET":
                raise DestinationUnavailable(self.redact(
                    f"{method} {shown}: answered {status} {response.reason_phrase} to "
                    f"{target.raw_path.decode('ascii', 'replace')}; only a 307 or 308 keeps the method and body "
                    f"of a {method}: point the base URL at the final address"), self.requests, self.retries)
            url, shown = target, target.raw_path.decode("ascii", "replace")
        raise DestinationUnavailable(self.redact(f"{method} {shown}: more than {MAX_REDIRECTS} redirects"),
                                     self.requests, self.retries)

    def _send(self, method: str, url: httpx.URL, shown: str, *, json=None, content: str | bytes | None = None,
              headers: dict[str, str] | None = None) -> httpx.Response:
        """One request on the origin, retried until a final answer (returned) or the retries exhausted."""
        failures = 0
        limited = 0

        def attempt() -> httpx.Response:
            nonlocal failures, limited
            self.requests += 1
            try:
                response = self._exchange(method, url, json=json, content=content, headers=headers)
            except httpx.LocalProtocolError:
                # h11's text quotes the offending header value: never shown, never retried.
                raise DestinationUnavailable(self.redact(
                    f"{method} {shown}: the request is not valid HTTP (a header value with a line break, a control "
                    f"character or a leading or trailing space; check the environment variables it reads)"),
                    self.requests, self.retries) from None
            except (_Oversized, _Unreadable) as error:
                # The same request would get the same answer: not retried; the next apply sends it again.
                raise DestinationUnavailable(self.redact(f"{method} {shown}: {error}"), self.requests,
                                             self.retries) from None
            except _Late:
                failures += 1
                raise _Retry(f"no complete answer within {self.deadline:g} s (the deadline of one request)") from None
            except _Undecodable as error:
                failures += 1
                raise _Retry(str(error)) from None
            except (httpx.TimeoutException, httpx.TransportError, httpx.DecodingError) as error:
                # A DecodingError is a body that does not decode: like a connection dropped mid-answer.
                failures += 1
                raise _Retry(f"{type(error).__name__}: {error}") from None
            if response.status_code == 429:
                limited += 1
                raise _Retry("429 Too Many Requests", _retry_after(response), rate_limited=True)
            if response.status_code >= 500:
                failures += 1
                raise _Retry(f"{response.status_code} {_text(response)}")
            return response

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            self.retries += 1
            if isinstance(error, _Retry) and error.rate_limited:
                if error.retry_after is not None:
                    return min(error.retry_after, MAX_RETRY_AFTER)
                n = limited
            else:
                n = failures
            delay = min(MAX_BACKOFF, self.backoff * (2 ** max(0, n - 1)))
            return delay * (0.5 + random.random() / 2)

        def stop(_state: tenacity.RetryCallState) -> bool:
            return failures >= self.max_attempts or limited >= MAX_RATE_LIMITED

        try:
            return tenacity.Retrying(retry=tenacity.retry_if_exception_type(_Retry), wait=wait, stop=stop,
                                     reraise=True)(attempt)
        except _Retry as error:
            raise DestinationUnavailable(self.redact(
                f"{method} {shown}: gave up after {counted(failures, 'failed attempt')} and "
                f"{counted(limited, 'rate-limited one')}; "
                f"last: {error.reason}"), self.requests, self.retries) from None

    def _exchange(self, method: str, url: httpx.URL, *, json=None, content: str | bytes | None = None,
                  headers: dict[str, str] | None = None) -> httpx.Response:
        """One request and its whole answer within the deadline, the body read to at most
        ``max_response_bytes`` (decoded and not) and decoded here: the response returned holds it."""
        request = self.client.build_request(method, url, json=json, content=content, headers=headers,
                                            extensions={"trace": self._watchdog.trace})
        deadline = time.monotonic() + self.deadline
        self._watchdog.arm(self.deadline)
        try:
            response = self.client.send(request, stream=True)
            try:
                body = self._read(response, deadline)
            finally:
                response.close()
        except (httpx.TransportError, httpx.DecodingError, _Undecodable):
            if self._watchdog.expired:
                raise _Late() from None
            raise
        finally:
            self._watchdog.disarm()
        if self._watchdog.expired:  # a body cut short by the watchdog can look complete
            raise _Late()
        kept = [(k, v) for k, v in response.headers.multi_items()
                if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
        extensions = {k: v for k, v in response.extensions.items() if k in ("http_version", "reason_phrase")}
        return httpx.Response(response.status_code, headers=kept, content=body, request=request,
                              extensions=extensions)

    def _read(self, response: httpx.Response, deadline: float) -> bytes:
        limit = self.max_response_bytes
        too_long = _Oversized(f"the answer ({response.status_code}) is longer than {_size(limit)} once decoded; "
                              f"audlang reads at most that much of an answer")
        declared = response.headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            raise too_long
        decoder = _Decoder(response.headers.get("Content-Encoding", ""))
        body = bytearray()
        raw = 0
        for chunk in response.iter_raw(CHUNK):
            raw += len(chunk)
            body += decoder.feed(chunk, limit + 1 - len(body))
            if raw > limit or len(body) > limit:
                raise too_long
            if time.monotonic() > deadline:
                raise _Late()
        decoder.finish()
        return bytes(body)

    def check(self, response: httpx.Response, attempts: int = 1) -> httpx.Response:
        """A 2xx passes; any other final answer is the destination refusing the request."""
        if not 200 <= response.status_code < 300:
            raise BatchRejected(str(response.status_code), self.redact(_text(response)), attempts)
        return response

    def answer(self, response: httpx.Response, expect: type = dict) -> Answer:
        """The JSON of a 2xx answer, whose top level must be ``expect`` (an object unless said): read it with
        ``Answer.get`` and ``Answer.each``. Anything else is ``DestinationUnavailable`` naming the request
        and what was wrong, never quoting the body."""
        found = Answer(self, response, None)
        if not response.content.strip():
            raise found.unexpected("the body is empty")
        try:
            value = jsonlib.loads(response.content)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, an integer of 5,000 digits, 100,000 `[`
            raise found.unexpected("the body is not JSON") from None
        found = Answer(self, response, value)
        if not _is(value, (expect,)):
            raise found.unexpected(f"the body is {_kind(value)} where {_KINDS[expect]} was expected")
        return found


_MISSING = object()
_KINDS = {dict: "an object", list: "an array", str: "a text", int: "an integer", float: "a number",
          bool: "true or false", type(None): "null"}


def _kind(value) -> str:
    for cls in (bool, dict, list, str, int, float, type(None)):
        if isinstance(value, cls):
            return _KINDS[cls]
    return type(value).__name__


def _is(value, expect: tuple) -> bool:
    if isinstance(value, bool):
        return bool in expect
    return isinstance(value, expect)


class Answer:
    """A 2xx answer's JSON (or a part of it), read only through checked paths.

    ``get("data.id", str)`` is the value at that path when it has that type; missing (or null, unless
    None is expected) it is ``default`` when one is given, else ``DestinationUnavailable``; of another
    type, always ``DestinationUnavailable``. ``each("data")`` yields the objects of an array, each an
    ``Answer`` whose paths the messages name in full (``data[3].id``)."""

    def __init__(self, http: Http, response: httpx.Response, value: Any, where: str = ""):
        self.http = http
        self.response = response
        self.value = value
        self.where = where

    def unexpected(self, problem: str) -> DestinationUnavailable:
        request = self.response.request
        return DestinationUnavailable(self.http.redact(
            f"{request.method} {request.url.path} answered {self.response.status_code} with a body that is not "
            f"what the API documents: {problem}"), self.http.requests, self.http.retries)

    def get(self, path: str, expect: type | tuple[type, ...], default: Any = _MISSING) -> Any:
        expect = expect if isinstance(expect, tuple) else (expect,)
        value, where = self.value, self.where
        for name in path.split("."):
            if value is None:
                break  # a missing or null container: the path is missing
            if not isinstance(value, dict):
                raise self.unexpected(f"{where or 'the body'} is {_kind(value)} where an object was expected")
            where = f"{where}.{name}" if where else name
            value = value.get(name)
        full = f"{self.where}.{path}" if self.where else path
        if value is None and type(None) not in expect:
            if default is not _MISSING:
                return default
            raise self.unexpected(f"it has no {full}")
        if not _is(value, expect):
            wanted = " or ".join(_KINDS.get(cls, cls.__name__) for cls in expect)
            raise self.unexpected(f"{full} is {_kind(value)} where {wanted} was expected")
        return value

    def each(self, path: str, default: Any = _MISSING) -> Iterator[Answer]:
        items = self.get(path, list, default)
        full = f"{self.where}.{path}" if self.where else path
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise self.unexpected(f"{full}[{i}] is {_kind(item)} where an object was expected")
            yield Answer(self.http, self.response, item, f"{full}[{i}]")


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:g} MiB" if n >= 1024 * 1024 else f"{n:,} bytes"


def _text(response: httpx.Response) -> str:
    """The error text of a refusal, for a message: never raises, whatever the body holds."""
    try:
        try:
            body = jsonlib.loads(response.content)
        except (ValueError, RecursionError):
            return response.text.strip()[:500] or response.reason_phrase
        for key in ("errors", "error", "message", "detail"):
            if isinstance(body, dict) and key in body:
                value = body[key]
                if isinstance(value, list) and value and isinstance(value[0], dict):
                    value = "; ".join(str(v.get("detail") or v.get("title") or v.get("message") or v)[:500]
                                      for v in value[:10])
                return str(value)[:500]
        return str(body)[:500]
    except (RecursionError, ValueError, TypeError):  # str() of deeply nested JSON, say
        return response.text.strip()[:500] or response.reason_phrase


def split(batch: Batch, send: Callable[[Batch], BatchResult]) -> BatchResult:
    """Send ``batch``; when the destination refuses it whole, halve it until the bad members stand alone.

    The halves keep deterministic idempotency keys (``key.0``, ``key.1``), so a re-run re-sends them
    under the same keys."""
    try:
        return send(batch)
    except BatchRejected as refused:
        if len(batch.members) == 1:
            return BatchResult(rejected=(Rejection(batch.members[0], refused.status, refused.message,
                                                   refused.attempts),))
        middle = len(batch.members) // 2
        halves: Sequence[tuple[Member, ...]] = (batch.members[:middle], batch.members[middle:])
        result = BatchResult()
        for i, half in enumerate(halves):
            part = Batch(batch.target, batch.operation, batch.seq, f"{batch.idempotency_key}.{i}", half)
            result = result + split(part, send)
        return result


class HttpDestination:
    """What every HTTP destination shares: batches split to isolate bad rows, the client, its counters."""

    kind = ""

    def __init__(self, settings: Settings, target: Target, http: Http):
        self.settings = settings
        self.target = target
        self.http = http
        self.batch_size = settings.batch_size
        self.identifiers = settings.identifiers

    def add(self, batch: Batch) -> BatchResult:
        return self._guarded(batch, lambda: split(batch, lambda b: self._send(MemberOperation.ADD, b)))

    def remove(self, batch: Batch) -> BatchResult:
        return self._guarded(batch, lambda: split(batch, lambda b: self._send(MemberOperation.REMOVE, b)))

    def _guarded(self, batch: Batch, send: Callable[[], BatchResult]) -> BatchResult:
        """The boundary of the destination's code. What it raises by design (``DestinationUnavailable``,
        ``SettingsError``) passes; any other exception is a bug in audlang, most likely met on an answer
        nobody foresaw: it becomes ``DestinationFault``, so the sync engine fails this target alone, with
        the cause recorded, and runs the others (it catches ``DestinationUnavailable`` per target). The
        batch is not acknowledged, so the next apply sends it again under its key. The message names the
        exception and where it was raised, never its text, which may quote an answer or a member."""
        try:
            return send()
        except (DestinationUnavailable, SettingsError):
            raise
        except Exception as error:  # noqa: BLE001 - see the docstring: one target fails, not the apply
            frames = traceback.extract_tb(error.__traceback__)
            at = f" at {PurePath(frames[-1].filename).name}:{frames[-1].lineno} ({frames[-1].name})" if frames else ""
            raise DestinationFault(self.http.redact(
                f"nothing acknowledged: the {self.kind} destination failed on batch {batch.seq} ({batch.operation}) "
                f"with {type(error).__name__}{at}, a bug in audlang (please report it); the next apply sends the "
                f"batch again"), self.http.requests, self.http.retries) from error

    def _send(self, operation: MemberOperation, batch: Batch) -> BatchResult:
        raise NotImplementedError

    #: Seconds between two reads of an asynchronous job's status, and how long a job may take at most
    #: before the sync of the target fails (nothing acknowledged: the next apply sends the batch again).
    POLL = 0.5
    POLL_TIMEOUT = 600.0

    def _poll(self, read: Callable[[], str], final: Iterable[str], what: str) -> str:
        """Read a job's status (``read``) until it is one of ``final``, which is returned (Klaviyo's import
        jobs, Google Ads' offline user data jobs)."""
        deadline = time.monotonic() + self.POLL_TIMEOUT
        final = frozenset(final)
        while True:
            state = read()
            if state in final:
                return state
            if time.monotonic() > deadline:
                raise DestinationUnavailable(self.http.redact(
                    f"{what} did not complete in {self.POLL_TIMEOUT:.0f}s (last status {state})"),
                    self.http.requests, self.http.retries)
            time.sleep(self.POLL)

    def _refused_whole(self, response: httpx.Response) -> bool:
        """Whether a refusal is about the whole request (its credentials, the audience itself), not its
        members: then the target's sync fails instead of the batch being split member by member."""
        return response.status_code in CREDENTIALS_REFUSED

    def _check(self, response: httpx.Response) -> httpx.Response:
        """``Http.check``, with a refusal of the whole request (``_refused_whole``) failing the sync."""
        if not 200 <= response.status_code < 300 and self._refused_whole(response):
            raise DestinationUnavailable(self.http.redact(
                f"{response.request.method} {response.request.url.path} was refused with {response.status_code}: "
                f"{_text(response)}"), self.http.requests, self.http.retries)
        return self.http.check(response)

    def finish(self, members: Iterable[Member]) -> None:
        return None

    def close(self) -> None:
        self.http.close()

    @property
    def stats(self) -> tuple[int, int]:
        return self.http.requests, self.http.retries
