"""The webhook destination: JSON batches POSTed to a URL.

Each request carries an ``Idempotency-Key`` header: the key recorded for the
batch before it was first sent (``audlang.sync``), so a batch sent again after
a crash or a retry arrives under the same key and the receiver can drop it.
The body is ``{"campaign", "group", "destination", "operation", "batch",
"members": [{…}]}`` unless a ``body`` template says otherwise: a sandboxed
jinja2 template with the same names plus ``idempotency_key`` (``tojson``
renders a value as JSON).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from jinja2.sandbox import SandboxedEnvironment

from audlang.destinations.base import Batch, BatchResult, Member, Settings, SettingsError, Target
from audlang.destinations.http import Http, split

_ENV = SandboxedEnvironment(autoescape=False)


class Webhook:
    kind = "webhook"

    def __init__(self, settings: Settings, target: Target, **http_options):
        self.settings = settings
        self.target = target
        self.batch_size = settings.batch_size
        self.identifiers = settings.identifiers
        headers = {"Content-Type": "application/json", **dict(settings.headers)}
        self.url = settings.get("url")
        self.http = Http(settings, "", headers, **http_options)
        template = settings.get("body")
        try:
            self.template = _ENV.from_string(template) if template else None
        except Exception as error:  # noqa: BLE001 - jinja2's syntax errors
            raise SettingsError(f"the body template does not parse: {error}") from None

    def body(self, batch: Batch) -> str:
        members = [{"customer_id": m.customer_id, **m.data} for m in batch.members]
        names = {"campaign": self.target.campaign, "group": self.target.group,
                 "destination": self.target.destination, "operation": batch.operation, "batch": batch.seq,
                 "idempotency_key": batch.idempotency_key, "members": members}
        if self.template is None:
            return json.dumps(names, sort_keys=True)
        return self.template.render(**names)

    def _send(self, batch: Batch) -> BatchResult:
        response = self.http.request("POST", self.url, content=self.body(batch).encode("utf-8"),
                                     headers={"Idempotency-Key": batch.idempotency_key})
        self.http.check(response)
        return BatchResult(accepted=batch.members)

    def add(self, batch: Batch) -> BatchResult:
        return split(batch, self._send)

    def remove(self, batch: Batch) -> BatchResult:
        return split(batch, self._send)

    def finish(self, members: Iterable[Member]) -> None:
        return None

    def close(self) -> None:
        self.http.close()

    @property
    def stats(self) -> tuple[int, int]:
        return self.http.requests, self.http.retries
