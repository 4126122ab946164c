"""Attentive, Braze and Klaviyo, each speaking its documented HTTP API (../shared VENDORS.md, docs/destinations.md).

- Attentive: ``POST`` / ``DELETE /v2/bulk/segments/members`` with the segment's
  ``externalId`` and members (phone, email, clientUserId); Bearer key; up to
  10,000 members a request.
- Braze: ``POST /users/track`` with one attributes object per member adding
  the group's value to (or removing it from) a custom array attribute
  (default ``audiences``); Bearer key; 75 objects a request. Braze answers a
  partly bad request with 201 and ``errors[].index``: those members alone are
  rejected.
- Klaviyo: adds upsert profiles by email/phone with a profile bulk import job
  that also puts them on the list, then read the job's profiles for their
  Klaviyo ids (kept in the sync state); removals ``DELETE
  /api/lists/{id}/relationships/profiles`` by those ids; rejected rows come
  from the job's import errors. ``Klaviyo-API-Key`` and a pinned ``revision``;
  1,000 members a request.
"""

from __future__ import annotations

from urllib.parse import quote

from audlang.destinations.base import (
    Batch, BatchResult, DestinationUnavailable, Member, Rejection, Settings, Target,
)
from audlang.destinations.http import Http, HttpDestination, audience_url, bearer
from audlang.vocabulary import MemberOperation

KLAVIYO_REVISION = "2025-01-15"
ATTENTIVE_BASE_URL = "https://api.attentivemobile.com"
KLAVIYO_BASE_URL = "https://a.klaviyo.com"
#: Braze's custom array attribute when ``attribute`` is not set (the value defaults to the group's name)
BRAZE_ATTRIBUTE = "audiences"


class Attentive(HttpDestination):
    kind = "attentive"
    PATH = "/v2/bulk/segments/members"

    def __init__(self, settings: Settings, target: Target, **http_options):
        http = Http(settings, settings.get("base_url") or ATTENTIVE_BASE_URL, bearer(settings.get("api_key")),
                    **http_options)
        super().__init__(settings, target, http)

    @staticmethod
    def audience(settings: Settings, target: Target) -> tuple[tuple[str, str], ...]:
        """The segment every group sent here writes to (``audlang.sync.audience``)."""
        return (("base_url", audience_url(settings.get("base_url") or ATTENTIVE_BASE_URL)),
                ("segment", str(settings.get("segment"))))

    @staticmethod
    def member(m: Member) -> dict:
        out = {}
        if "phone" in m.data:
            out["phone"] = m.data["phone"]
        if "email" in m.data:
            out["email"] = m.data["email"]
        if "customer_id" in m.data:
            out["clientUserId"] = m.data["customer_id"]
        return out

    def _send(self, operation: MemberOperation, batch: Batch) -> BatchResult:
        body = {"externalId": self.settings.get("segment"), "members": [self.member(m) for m in batch.members]}
        response = self.http.request("POST" if operation == MemberOperation.ADD else "DELETE", self.PATH, json=body)
        self.http.check(response)
        return BatchResult(accepted=batch.members)


class Braze(HttpDestination):
    kind = "braze"
    PATH = "/users/track"
    ID_FIELDS = {"customer_id": "external_id", "email": "email", "phone": "phone"}

    def __init__(self, settings: Settings, target: Target, **http_options):
        http = Http(settings, settings.get("base_url"), bearer(settings.get("api_key")), **http_options)
        super().__init__(settings, target, http)
        self.attribute, self.value = self.written(settings, target)

    @staticmethod
    def written(settings: Settings, target: Target) -> tuple[str, str]:
        """The custom array attribute and the value this group adds and removes (defaults included)."""
        return settings.get("attribute") or BRAZE_ATTRIBUTE, settings.get("value") or target.group

    @classmethod
    def audience(cls, settings: Settings, target: Target) -> tuple[tuple[str, str], ...]:
        """The attribute value the group writes: two groups share one only when they write the same value."""
        attribute, value = cls.written(settings, target)
        return (("base_url", audience_url(settings.get("base_url"))), ("attribute", str(attribute)),
                ("value", str(value)))

    def _send(self, operation: MemberOperation, batch: Batch) -> BatchResult:
        key_field = self.ID_FIELDS[self.identifiers[0]]
        attributes = [{key_field: m.key, self.attribute: {operation: [self.value]}} for m in batch.members]
        response = self.http.check(self.http.request("POST", self.PATH, json={"attributes": attributes}))
        # A 2xx is an object; its ``errors`` (when any) flag attributes by index. An error on our attributes
        # that names no index we sent leaves unknown which member failed: nothing is acknowledged then.
        answer = self.http.answer(response)
        bad: dict[int, str] = {}
        for error in answer.each("errors", default=[]):
            if error.get("input_array", str, "attributes") != "attributes":
                continue
            index = error.get("index", int)
            if not 0 <= index < len(batch.members):
                raise error.unexpected(f"{error.where}.index is {index}, not one of the {len(batch.members)} "
                                       f"attributes sent")
            message = error.get("type", (str, int, float), None) or error.get("message", (str, int, float), None)
            bad[index] = str(message or "rejected")[:500]
        accepted = tuple(m for i, m in enumerate(batch.members) if i not in bad)
        rejected = tuple(Rejection(batch.members[i], str(response.status_code), self.http.redact(msg))
                         for i, msg in sorted(bad.items()))
        return BatchResult(accepted=accepted, rejected=rejected)


class Klaviyo(HttpDestination):
    kind = "klaviyo"
    JOBS = "/api/profile-bulk-import-jobs"
    #: Pages of one listing followed at most: a job's profiles or import errors are at most a batch
    #: (1,000), 50 pages at Klaviyo's default page size of 20; beyond, the sync fails (docs/sync.md).
    MAX_PAGES = 100

    def __init__(self, settings: Settings, target: Target, **http_options):
        headers = {"Authorization": f"Klaviyo-API-Key {settings.get('api_key')}",
                   "revision": settings.get("revision") or KLAVIYO_REVISION,
                   "Content-Type": "application/vnd.api+json", "Accept": "application/vnd.api+json"}
        http = Http(settings, settings.get("base_url") or KLAVIYO_BASE_URL, headers, **http_options)
        super().__init__(settings, target, http)
        self.list_id = settings.get("list_id")

    @staticmethod
    def audience(settings: Settings, target: Target) -> tuple[tuple[str, str], ...]:
        """The list every group sent here goes on."""
        return (("base_url", audience_url(settings.get("base_url") or KLAVIYO_BASE_URL)),
                ("list_id", str(settings.get("list_id"))))

    @staticmethod
    def _profile(m: Member) -> dict:
        attributes = {}
        if "email" in m.data:
            attributes["email"] = m.data["email"]
        if "phone" in m.data:
            attributes["phone_number"] = m.data["phone"]
        if "customer_id" in m.data:
            attributes["external_id"] = m.data["customer_id"]
        return {"type": "profile", "attributes": attributes}

    def _match(self, attributes: dict) -> str | None:
        """The member key a profile or an import error's original row stands for."""
        name = self.identifiers[0]
        field = {"email": "email", "phone": "phone_number", "customer_id": "external_id"}[name]
        value = attributes.get(field)
        if not isinstance(value, str):
            return None
        from audlang.destinations.base import NORMALIZERS

        return NORMALIZERS[name](value)

    def _send(self, operation: MemberOperation, batch: Batch) -> BatchResult:
        if operation == MemberOperation.ADD:
            return self._import(batch)
        ids, unknown = [], []
        for m in batch.members:
            (ids if m.data.get("klaviyo_id") else unknown).append(m)
        rejected = tuple(Rejection(m, "no-profile-id", "no Klaviyo profile id was recorded for this member")
                         for m in unknown)
        if not ids:
            return BatchResult(rejected=rejected)
        body = {"data": [{"type": "profile", "id": m.data["klaviyo_id"]} for m in ids]}
        self.http.check(self.http.request("DELETE", f"/api/lists/{self.list_id}/relationships/profiles",
                                          json=body))
        return BatchResult(accepted=tuple(ids), rejected=rejected)

    def _import(self, batch: Batch) -> BatchResult:
        body = {"data": {"type": "profile-bulk-import-job", "attributes": {
            "profiles": {"data": [self._profile(m) for m in batch.members]}},
            "relationships": {"lists": {"data": [{"type": "list", "id": self.list_id}]}}}}
        created = self.http.answer(self.http.check(self.http.request("POST", self.JOBS, json=body)))
        job = str(created.get("data.id", (str, int)))
        if not job:
            raise created.unexpected("data.id is empty")
        # The job id comes from the response: quoted, it stays one path segment under the jobs endpoint.
        job_path = f"{self.JOBS}/{quote(job, safe='')}"

        def status() -> str:
            polled = self.http.answer(self.http.check(self.http.request("GET", job_path)))
            return polled.get("data.attributes.status", str)

        state = self._poll(status, ("complete", "cancelled", "failed"), f"Klaviyo import job {job}")
        if state != "complete":
            raise DestinationUnavailable(self.http.redact(f"Klaviyo import job {job} ended {state}"))
        # Only the batch's own keys are kept: what else the pages hold cannot grow the memory.
        sent = {m.key for m in batch.members}
        profile_ids: dict[str, str] = {}
        for item in self._pages(f"{job_path}/profiles", {"fields[profile]": "email,phone_number,external_id"}):
            key = self._match(item.get("attributes", dict, {}))
            if key in sent:
                profile_ids[key] = item.get("id", str)
        errors: dict[str, tuple[str, str]] = {}
        scalar = (str, int, float)
        for item in self._pages(f"{job_path}/import-errors", None):
            key = self._match(item.get("attributes.original_payload", dict, {}))
            if key in sent:
                code = item.get("attributes.code", scalar, None)
                detail = item.get("attributes.detail", scalar, None) or item.get("attributes.title", scalar, "")
                errors[key] = (str(code or "import-error")[:100], self.http.redact(str(detail)[:500]))
        accepted, rejected = [], []
        for m in batch.members:
            if m.key in errors:
                rejected.append(Rejection(m, *errors[m.key]))
            elif m.key in profile_ids:
                accepted.append(Member(m.customer_id, m.key, {**m.data, "klaviyo_id": profile_ids[m.key]}))
            else:
                rejected.append(Rejection(m, "not-imported", "the import job returned no profile for this member"))
        return BatchResult(accepted=tuple(accepted), rejected=tuple(rejected))

    def _pages(self, path: str, params):
        """The items (objects, as ``Answer``) of every page, following ``links.next``; a link off the base
        URL's origin is refused by ``Http`` (``ForeignOrigin``) before anything is sent to it. At most
        ``MAX_PAGES`` pages, and never one link twice: a listing that goes on is a failed sync."""
        url, what = path, None
        seen: set[str] = set()
        for _page in range(self.MAX_PAGES):
            page = self.http.answer(self.http.check(self.http.request("GET", url, params=params, what=what)))
            yield from page.each("data")
            following = page.get("links.next", (str, type(None)), None)
            if not following:
                return
            if following in seen:
                raise DestinationUnavailable(self.http.redact(
                    f"GET {path}: links.next names a page already read; the listing would never end"),
                    self.http.requests, self.http.retries)
            seen.add(following)
            url, params, what = following, None, f"the links.next of a page of GET {path}"
        raise DestinationUnavailable(self.http.redact(
            f"GET {path}: more than {self.MAX_PAGES} pages (links.next still names another); audlang follows at "
            f"most {self.MAX_PAGES}, far more than a batch of {self.batch_size:,} needs"),
            self.http.requests, self.http.retries)
