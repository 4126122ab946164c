"""The webhook destination: JSON batches POSTed to a URL.

Each request carries an ``Idempotency-Key`` header: the key recorded for the
batch before it was first sent (``audlang.sync``), so a batch sent again after
a crash or a retry arrives under the same key and the receiver can drop it.
The body is ``{"campaign", "group", "destination", "operation", "batch",
"members": [{…}]}`` unless a ``body`` template says otherwise: a sandboxed
jinja2 template with the same names plus ``idempotency_key`` (``tojson``
renders a value as JSON), rendered by ``check.templates`` as ``validate``
renders it; every member holds each identifier and field (None when it has
none). A body that cannot be rendered, or is not JSON, fails the sync with
a ``SettingsError`` before the batch is sent, naming the kind of failure and
the template's line, never a member's value.

The vendor audience a group's batches go to (``audience``) is the url and
what in the body tells the groups apart: the default body names the
campaign, the group and the destination; a template's body is rendered for
the group with everything else fixed (operation, batch, idempotency key, no
members), so groups whose bodies differ only by their members and batch are
one audience at the receiver.
"""

from __future__ import annotations

import json

from audlang.check.templates import TemplateProblem, body_names, compile_template, render_body
from audlang.destinations.base import Batch, BatchResult, Settings, SettingsError, Target
from audlang.destinations.http import Http, HttpDestination
from audlang.vocabulary import MemberOperation, counted


class Webhook(HttpDestination):
    kind = "webhook"

    def __init__(self, settings: Settings, target: Target, **http_options):
        headers = {"Content-Type": "application/json", **dict(settings.headers)}
        # The url is the client's origin: its headers go there and nowhere else (``Http``).
        super().__init__(settings, target, Http(settings, settings.get("url") or "", headers, **http_options))
        self.url = settings.get("url")
        template = settings.get("body")
        try:
            self.template = compile_template(template, "the body template", detail=False) if template else None
        except TemplateProblem as problem:
            raise SettingsError(self.http.redact(f"nothing sent: {problem.explained()}")) from None

    @staticmethod
    def audience(settings: Settings, target: Target) -> tuple[tuple[str, str], ...]:
        url = str(settings.get("url") or "")
        template = settings.get("body")
        if not template:
            return (("url", url), ("campaign", target.campaign), ("group", target.group),
                    ("destination", target.destination))
        names = body_names(target.campaign, target.group, target.destination, MemberOperation.ADD, 1, "", [],
                           settings.identifiers, settings.fields)
        try:
            body = json.dumps(json.loads(render_body(compile_template(template, "the body template"), names)),
                              sort_keys=True, separators=(",", ":"))
        except TemplateProblem:
            # Not renderable without members (or at all: then the sync fails anyway): the group's own.
            body = json.dumps([template, target.campaign, target.group, target.destination])
        return (("url", url), ("body", body))

    def body(self, batch: Batch) -> str:
        members = [{"customer_id": m.customer_id, **m.data} for m in batch.members]
        if self.template is None:
            names = {"campaign": self.target.campaign, "group": self.target.group,
                     "destination": self.target.destination, "operation": batch.operation, "batch": batch.seq,
                     "idempotency_key": batch.idempotency_key, "members": members}
            return json.dumps(names, sort_keys=True)
        names = body_names(self.target.campaign, self.target.group, self.target.destination, batch.operation,
                           batch.seq, batch.idempotency_key, members, self.identifiers, self.settings.fields)
        try:
            # detail=False: the kind of failure and the template's line only, never what the expression said
            # (``{{ {}[m.email] }}`` quotes the member's email), so a member's values stay out of the
            # message, the state and the logs; and redacted, for a body read from the environment.
            return render_body(self.template, names, detail=False)
        except TemplateProblem as problem:
            members = counted(len(batch.members), "member")
            raise SettingsError(self.http.redact(f"nothing sent: batch {batch.seq} ({batch.operation}, "
                                                 f"{members}): {problem.explained()}")) from None

    def _send(self, operation: MemberOperation, batch: Batch) -> BatchResult:
        # Adds and removes travel alike: the body names the batch's operation.
        response = self.http.request("POST", self.url, content=self.body(batch).encode("utf-8"),
                                     headers={"Idempotency-Key": batch.idempotency_key})
        self.http.check(response)
        return BatchResult(accepted=batch.members)
