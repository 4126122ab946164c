"""HTTP for the vendor and webhook destinations: httpx with tenacity retries, and batch splitting.

Retried: 429 (waiting what ``Retry-After`` says when the server sends it; a
429 is not a failed attempt, it only counts against a separate, larger
budget), 5xx, timeouts and dropped connections, with bounded exponential
backoff and jitter. Anything else that is not 2xx is the destination
refusing the request: ``BatchRejected``, which ``split`` answers by halving
the batch until the bad members stand alone. Secrets never reach a message.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Iterable, Sequence

import httpx
import tenacity

from audlang.destinations.base import (
    Batch, BatchRejected, BatchResult, DestinationUnavailable, Member, Rejection, Settings, Target,
)

#: Backoff of failed attempts: base × 2^(n−1) seconds with jitter, at most MAX_BACKOFF.
BACKOFF = 0.5
MAX_BACKOFF = 30.0
MAX_ATTEMPTS = 5  # failed attempts (5xx, timeouts, dropped connections) per request
MAX_RATE_LIMITED = 30  # 429s per request
MAX_RETRY_AFTER = 120.0


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
                 backoff: float | None = None, max_attempts: int | None = None):
        self.settings = settings
        self.client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)
        self.backoff = BACKOFF if backoff is None else backoff
        self.max_attempts = max_attempts or MAX_ATTEMPTS
        self.requests = 0
        self.retries = 0

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, path: str, *, json=None, content: str | bytes | None = None,
                headers: dict[str, str] | None = None, params=None) -> httpx.Response:
        """Send until a final answer: a 2xx or a refusal (returned), or the retries exhausted (raised)."""
        failures = 0
        limited = 0

        def attempt() -> httpx.Response:
            nonlocal failures, limited
            self.requests += 1
            try:
                response = self.client.request(method, path, json=json, content=content, headers=headers,
                                               params=params)
            except (httpx.TimeoutException, httpx.TransportError) as error:
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
            raise DestinationUnavailable(self.settings.redact(
                f"{method} {path}: gave up after {failures} failed attempts and {limited} rate-limited ones; "
                f"last: {error.reason}"), self.requests, self.retries) from None

    def check(self, response: httpx.Response, attempts: int = 1) -> httpx.Response:
        """A 2xx passes; any other final answer is the destination refusing the request."""
        if not 200 <= response.status_code < 300:
            raise BatchRejected(str(response.status_code), self.settings.redact(_text(response)), attempts)
        return response


def _text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    for key in ("errors", "error", "message", "detail"):
        if isinstance(body, dict) and key in body:
            value = body[key]
            if isinstance(value, list) and value and isinstance(value[0], dict):
                value = "; ".join(str(v.get("detail") or v.get("title") or v.get("message") or v) for v in value)
            return str(value)[:500]
    return str(body)[:500]


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
        return split(batch, lambda b: self._send("add", b))

    def remove(self, batch: Batch) -> BatchResult:
        return split(batch, lambda b: self._send("remove", b))

    def _send(self, operation: str, batch: Batch) -> BatchResult:
        raise NotImplementedError

    def finish(self, members: Iterable[Member]) -> None:
        return None

    def close(self) -> None:
        self.http.close()

    @property
    def stats(self) -> tuple[int, int]:
        return self.http.requests, self.http.retries
