"""The ad platforms: Meta Custom Audiences and Google Ads Customer Match (../shared VENDORS.md, docs/sync.md).

Both take an audience as hashed identifiers. The sync hashes them in the
warehouse (``Settings.hashed``, ``compile.identifiers.hashed_sql``): a member
reaches these classes as the SHA-256 hex of its normalized email and phone,
and nothing here ever sees a plain one. The credentials travel in headers
only (never ``access_token`` in a URL), to the base URL's origin only
(``http.Http``).

- Meta: ``POST`` (add) and ``DELETE`` (remove) ``/{version}/{audience_id}/users``
  with ``{"payload": {"schema": ["EMAIL_SHA256", "PHONE_SHA256"], "data": [[…], …]}}``,
  an unknown identifier left as ``""``; 10,000 rows a request. The answer counts
  the rows received and invalid, and shows samples of the invalid ones: a
  member whose hash is among the samples is rejected. Meta drops duplicate
  rows, so a batch sent again changes nothing. An answer about the request as
  a whole (a bad token, code 190; a flagged audience, code 100 / subcode
  1713230) fails the sync of the target instead of being split.
- Google Ads: each batch is one offline user data job on the Customer Match
  user list: ``:create``, one ``:addOperations`` with every member as a
  ``create`` (add) or ``remove`` operation holding its ``hashedEmail`` and
  ``hashedPhoneNumber`` (partial failure on: the operations it names by index
  are rejected), ``:run``, then the job's status read through
  ``googleAds:search`` until ``SUCCESS`` (acknowledged) or ``FAILED`` (the sync
  fails, nothing acknowledged; the next apply sends the batch in a new job).
  One request takes 100,000 identifiers: 50,000 members with email and phone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx

from audlang.destinations.base import (
    Batch, BatchResult, DestinationUnavailable, Rejection, Settings, SettingsError, Target,
)
from audlang.destinations.http import Answer, Http, HttpDestination, audience_url, bearer
from audlang.vocabulary import MemberOperation, counted

META_BASE_URL = "https://graph.facebook.com"
META_API_VERSION = "v25.0"
GOOGLE_ADS_BASE_URL = "https://googleads.googleapis.com"
GOOGLE_ADS_API_VERSION = "v26"
_VERSION = re.compile(r"v[0-9]{1,3}(\.[0-9]{1,3})?")
#: Meta's error codes that refuse the request whatever its rows hold: a bad or expired token (190), a
#: missing permission (200, 10), a flagged audience (100 with subcode 1713230).
META_WHOLE_CODES = frozenset({190, 200, 10})
META_FLAGGED = (100, 1713230)
#: Strings read at most from ``invalid_entry_samples`` (Meta shows a few).
MAX_SAMPLES = 10_000


def _version(settings: Settings, default: str) -> str:
    """The API version as a path segment (``v25.0``, ``v26``): one the destination names, else ours."""
    version = str(settings.get("api_version") or default).strip()
    if not _VERSION.fullmatch(version):
        raise SettingsError(f"`api_version` is written like {default}, not {version[:20]!r}")
    return version


def _strings(value, out: set[str]) -> None:
    """Every string in a JSON value, at most ``MAX_SAMPLES`` of them."""
    stack = [value]
    while stack and len(out) < MAX_SAMPLES:
        item = stack.pop()
        if isinstance(item, str):
            out.add(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
            stack.extend(k for k in item if isinstance(k, str))
        elif isinstance(item, list):
            stack.extend(item)


class Meta(HttpDestination):
    kind = "meta"
    SCHEMA = {"email": "EMAIL_SHA256", "phone": "PHONE_SHA256"}

    def __init__(self, settings: Settings, target: Target, **http_options):
        http = Http(settings, settings.get("base_url") or META_BASE_URL, bearer(settings.get("access_token")),
                    **http_options)
        super().__init__(settings, target, http)
        self.path = f"/{_version(settings, META_API_VERSION)}/{settings.get('audience_id')}/users"

    @staticmethod
    def audience(settings: Settings, target: Target) -> tuple[tuple[str, str], ...]:
        """The Custom Audience every group sent here goes into."""
        return (("base_url", audience_url(settings.get("base_url") or META_BASE_URL)),
                ("audience_id", str(settings.get("audience_id"))))

    def _refused_whole(self, response: httpx.Response) -> bool:
        if super()._refused_whole(response):
            return True
        try:
            error = response.json().get("error") or {}
            code, subcode = error.get("code"), error.get("error_subcode")
        except (ValueError, AttributeError, TypeError, RecursionError):
            return False
        return code in META_WHOLE_CODES or (code, subcode) == META_FLAGGED

    def _send(self, operation: MemberOperation, batch: Batch) -> BatchResult:
        schema = [self.SCHEMA[name] for name in self.identifiers]
        data = [[str(m.data.get(name) or "") for name in self.identifiers] for m in batch.members]
        body = {"payload": {"schema": schema, "data": data}}
        method = "POST" if operation == MemberOperation.ADD else "DELETE"
        answer = self.http.answer(self._check(self.http.request(method, self.path, json=body)))
        received = answer.get("num_received", int)
        if received != len(batch.members):
            raise answer.unexpected(f"num_received is {received}, not the {counted(len(batch.members), 'row')} sent")
        if not answer.get("num_invalid_entries", int, 0):
            return BatchResult(accepted=batch.members)
        samples: set[str] = set()
        _strings(answer.get("invalid_entry_samples", (dict, list), {}), samples)
        bad = [m for m in batch.members if any(m.data.get(name) in samples for name in self.identifiers)]
        rejected = tuple(Rejection(m, "invalid-entry", "Meta counted this row as an invalid entry") for m in bad)
        return BatchResult(accepted=tuple(m for m in batch.members if m not in bad), rejected=rejected)


class GoogleAds(HttpDestination):
    kind = "google_ads"
    FIELDS = {"email": "hashedEmail", "phone": "hashedPhoneNumber"}

    def __init__(self, settings: Settings, target: Target, **http_options):
        headers = {**bearer(settings.get("access_token")), "developer-token": str(settings.get("developer_token"))}
        if settings.get("login_customer_id"):
            headers["login-customer-id"] = str(settings.get("login_customer_id"))
        http = Http(settings, settings.get("base_url") or GOOGLE_ADS_BASE_URL, headers, **http_options)
        super().__init__(settings, target, http)
        self.version = _version(settings, GOOGLE_ADS_API_VERSION)
        self.customer = str(settings.get("customer_id"))
        self.user_list = f"customers/{self.customer}/userLists/{settings.get('user_list_id')}"

    @staticmethod
    def audience(settings: Settings, target: Target) -> tuple[tuple[str, str], ...]:
        """The Customer Match user list every group sent here goes on."""
        return (("base_url", audience_url(settings.get("base_url") or GOOGLE_ADS_BASE_URL)),
                ("customer_id", str(settings.get("customer_id"))), ("user_list_id", str(settings.get("user_list_id"))))

    def _post(self, path: str, body: dict) -> Answer:
        return self.http.answer(self._check(self.http.request("POST", f"/{self.version}/{path}", json=body)))

    def _send(self, operation: MemberOperation, batch: Batch) -> BatchResult:
        created = self._post(f"customers/{self.customer}/offlineUserDataJobs:create", {"job": {
            "type": "CUSTOMER_MATCH_USER_LIST", "customerMatchUserListMetadata": {"userList": self.user_list}}})
        job = created.get("resourceName", str)
        # The job's name comes from the answer and goes into the next paths: only the documented shape.
        if not re.fullmatch(rf"customers/{self.customer}/offlineUserDataJobs/[0-9]{{1,30}}", job):
            raise created.unexpected("resourceName is not customers/{customer_id}/offlineUserDataJobs/{id}")
        verb = "create" if operation == MemberOperation.ADD else "remove"
        operations = [{verb: {"userIdentifiers": [{self.FIELDS[name]: m.data[name]} for name in self.identifiers
                                                  if m.data.get(name)]}} for m in batch.members]
        added = self._post(f"{job}:addOperations", {"enablePartialFailure": True, "operations": operations})
        bad = dict(self._failed_operations(added, len(batch.members)))
        accepted = tuple(m for i, m in enumerate(batch.members) if i not in bad)
        rejected = tuple(Rejection(batch.members[i], "partial-failure", self.http.redact(message))
                         for i, message in sorted(bad.items()))
        if not accepted:  # nothing in the job: it is not run
            return BatchResult(rejected=rejected)
        self._post(f"{job}:run", {})
        state = self._poll(lambda: self._status(job), ("SUCCESS", "FAILED"), f"Google Ads job {job}")
        if state != "SUCCESS":
            raise DestinationUnavailable(self.http.redact(f"Google Ads job {job} ended FAILED"),
                                         self.http.requests, self.http.retries)
        return BatchResult(accepted=accepted, rejected=rejected)

    def _status(self, job: str) -> str:
        query = ("SELECT offline_user_data_job.resource_name, offline_user_data_job.status FROM offline_user_data_job "
                 f"WHERE offline_user_data_job.resource_name = '{job}'")
        found = self._post(f"customers/{self.customer}/googleAds:search", {"query": query})
        for row in found.each("results", default=[]):
            if row.get("offlineUserDataJob.resourceName", str) == job:
                return row.get("offlineUserDataJob.status", str)
        raise found.unexpected(f"results hold no row of the job {job}")

    def _failed_operations(self, answer: Answer, sent: int) -> Iterator[tuple[int, str]]:
        """(index, message) of each operation a partial-failure answer names."""
        failure = answer.get("partialFailureError", dict, None)
        if not failure:
            return
        named = False
        for detail in answer.each("partialFailureError.details", default=[]):
            for error in detail.each("errors", default=[]):
                message = str(error.get("message", (str, int, float), "") or "rejected")[:500]
                for element in error.each("location.fieldPathElements", default=[]):
                    if element.get("fieldName", str, "") != "operations":
                        continue
                    index = element.get("index", int)
                    if not 0 <= index < sent:
                        raise element.unexpected(f"{element.where}.index is {index}, not one of the {sent} "
                                                 "operations sent")
                    named = True
                    yield index, message
                    break
        if not named:  # a failure that names no operation leaves unknown which member failed
            raise answer.unexpected("partialFailureError names no operation")


__all__ = ["GoogleAds", "Meta"]
