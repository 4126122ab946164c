"""Real HTTP servers on 127.0.0.1 speaking each vendor's request shape (VENDORS.md).

Each checks the auth headers and the batch limit, keeps the membership it was
told, and records every member operation it applied, so a test can assert
that it ends with exactly the group's membership and that no operation
arrived twice. Faults are queued per server: ``429`` (with ``Retry-After``),
``500``, ``drop`` (the connection closed before an answer, the request not
applied), ``redirect`` (a 3xx whose ``Location`` is another base URL plus the
request's path), ``echo`` (a 400 whose error text quotes the request's
headers, as a careless vendor might), ``echo_path`` (a 400 quoting the request's
path as sent, percent-encoded), ``raw`` (status, body bytes, headers: any
answer at all, such as a 201 ``[]`` or a gzip bomb) and ``drip`` (delay, what:
the answer's ``"headers"`` or its ``"body"`` sent one byte at a time); a
fault answers before the request is applied. ``poison`` keys make the server
refuse any request holding them (Braze: flag their index in a 201, as Braze
does; Klaviyo: an import error). Klaviyo's ``endless`` makes ``links.next``
go on forever (``"new"``: a new cursor each page, ``"same"``: the same link).
Every request's headers are kept in ``received``; ``RecordingServer`` stands
for another host that only records what reaches it.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class VendorServer:
    kind = ""
    limit = 0

    def __init__(self, api_key: str = "secret-key"):
        self.api_key = api_key
        self.lock = threading.Lock()
        self.membership: dict[str, set[str]] = {}
        self.operations: list[tuple[str, str, str]] = []  # (audience, operation, member key) as applied
        self.requests: list[tuple[str, str]] = []
        self.bodies: list[bytes] = []  # every request's body, as received
        self.received: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers) of every request
        self.faults: list[tuple] = []
        self.poison: set[str] = set()
        self.refused: list[str] = []
        handler = type("Handler", (_VendorHandler,), {"vendor": self})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def members(self, audience: str) -> set[str]:
        with self.lock:
            return set(self.membership.get(audience, set()))

    def duplicates(self) -> list:
        return [op for op, n in Counter(self.operations).items() if n > 1]

    def apply(self, audience: str, operation: str, keys: list[str]) -> None:
        with self.lock:
            members = self.membership.setdefault(audience, set())
            for key in keys:
                self.operations.append((audience, operation, key))
                (members.add if operation == "add" else members.discard)(key)

    def authorized(self, headers) -> bool:
        return headers.get("Authorization") == f"Bearer {self.api_key}"

    def handle(self, method, path, payload, headers):
        raise NotImplementedError


class AttentiveServer(VendorServer):
    kind = "attentive"
    limit = 10_000

    def handle(self, method, path, payload, headers):
        if path != "/v2/bulk/segments/members" or method not in ("POST", "DELETE"):
            return 404, {"errors": [{"detail": "no such endpoint"}]}, {}
        if headers.get("Content-Type") != "application/json":
            return 415, {"errors": [{"detail": "content type"}]}, {}
        members = payload.get("members") if isinstance(payload, dict) else None
        if not payload.get("externalId") or not isinstance(members, list) or not 1 <= len(members) <= self.limit:
            return 400, {"errors": [{"detail": "1-10000 members and an externalId"}]}, {}
        keys = []
        for m in members:
            key = m.get("phone") or m.get("email") or m.get("clientUserId")
            if not key:
                return 400, {"errors": [{"detail": "a member needs phone, email or clientUserId"}]}, {}
            if key in self.poison or (m.get("phone") and not m["phone"].startswith("+")):
                self.refused.append(key)
                return 400, {"errors": [{"detail": f"invalid member {key}"}]}, {}
            keys.append(key)
        self.apply(payload["externalId"], "add" if method == "POST" else "remove", keys)
        return 202, {"message": "accepted", "batchJobId": "job-1"}, {}


class BrazeServer(VendorServer):
    kind = "braze"
    limit = 75

    def handle(self, method, path, payload, headers):
        if path != "/users/track" or method != "POST":
            return 404, {"message": "no such endpoint"}, {}
        attributes = payload.get("attributes") if isinstance(payload, dict) else None
        if not isinstance(attributes, list) or not 1 <= len(attributes) <= self.limit:
            return 400, {"message": "1-75 objects a request"}, {}
        errors = []
        for i, a in enumerate(attributes):
            key = a.get("external_id") or a.get("email") or a.get("phone")
            changes = [(k, v) for k, v in a.items() if isinstance(v, dict)]
            if not key or len(changes) != 1 or key in self.poison:
                errors.append({"type": f"invalid user {key}", "input_array": "attributes", "index": i})
                continue
            attribute, change = changes[0]
            for operation in ("add", "remove"):
                for value in change.get(operation, []):
                    self.apply(f"{attribute}={value}", operation, [key])
        answer = {"message": "success", "attributes_processed": len(attributes) - len(errors)}
        if errors:
            answer["errors"] = errors
        return 201, answer, {}


class KlaviyoServer(VendorServer):
    kind = "klaviyo"
    limit = 1000
    page = 100

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.jobs: dict[str, dict] = {}
        self.profiles: dict[str, str] = {}  # profile id -> email
        self.next_base: str | None = None  # where links.next points (default: this server)
        self.endless: str | None = None  # "new" or "same": links.next never ends

    def authorized(self, headers) -> bool:
        return (headers.get("Authorization") == f"Klaviyo-API-Key {self.api_key}" and bool(headers.get("revision"))
                and headers.get("Accept") == "application/vnd.api+json")

    def members(self, audience: str) -> set[str]:
        with self.lock:
            return {self.profiles[p] for p in self.membership.get(audience, set())}

    def handle(self, method, path, payload, headers):
        parsed = urlparse(path)
        parts = parsed.path.strip("/").split("/")
        if parsed.path == "/api/profile-bulk-import-jobs" and method == "POST":
            data = payload["data"]
            profiles = data["attributes"]["profiles"]["data"]
            if not 1 <= len(profiles) <= 10_000:
                return 400, {"errors": [{"detail": "1-10000 profiles"}]}, {}
            list_id = data["relationships"]["lists"]["data"][0]["id"]
            job = f"job{len(self.jobs) + 1}"
            ok, errors = [], []
            for i, p in enumerate(profiles):
                email = p["attributes"].get("email")
                if not email or email in self.poison:
                    errors.append({"type": "import-error", "id": f"e{i}", "attributes": {
                        "code": "invalid", "title": "Invalid email", "detail": f"{email} is not valid",
                        "source": {"pointer": f"/data/attributes/profiles/data/{i}"},
                        "original_payload": p["attributes"]}})
                    continue
                pid = "p" + hashlib.sha1(email.encode()).hexdigest()[:12]
                self.profiles[pid] = email
                ok.append(pid)
            self.apply(list_id, "add", ok)
            self.jobs[job] = {"profiles": ok, "errors": errors, "polls": 0}
            return 202, {"data": {"type": "profile-bulk-import-job", "id": job,
                                  "attributes": {"status": "queued"}}}, {}
        if len(parts) >= 3 and parts[:2] == ["api", "profile-bulk-import-jobs"] and method == "GET":
            job = self.jobs.get(parts[2])
            if job is None:
                return 404, {"errors": [{"detail": "no such job"}]}, {}
            if len(parts) == 3:
                job["polls"] += 1
                status = "processing" if job["polls"] == 1 else "complete"
                return 200, {"data": {"type": "profile-bulk-import-job", "id": parts[2],
                                      "attributes": {"status": status}}}, {}
            items = job["profiles"] if parts[3] == "profiles" else job["errors"]
            cursor = int(parse_qs(parsed.query).get("page[cursor]", ["0"])[0])
            chunk = items[cursor:cursor + self.page]
            if parts[3] == "profiles":
                data = [{"type": "profile", "id": pid, "attributes": {"email": self.profiles[pid]}} for pid in chunk]
            else:
                data = chunk
            base = self.next_base or self.url
            links = {"next": f"{base}/api/profile-bulk-import-jobs/{parts[2]}/{parts[3]}?page[cursor]="
                             f"{cursor + self.page}" if cursor + self.page < len(items) else None}
            if self.endless:
                links["next"] = f"{base}/api/profile-bulk-import-jobs/{parts[2]}/{parts[3]}?page[cursor]=" + \
                    (str(cursor + self.page) if self.endless == "new" else "0")
            return 200, {"data": data, "links": links}, {}
        if len(parts) == 5 and parts[:2] == ["api", "lists"] and parts[3:] == ["relationships", "profiles"] \
                and method in ("POST", "DELETE"):
            data = payload["data"]
            if not 1 <= len(data) <= self.limit:
                return 400, {"errors": [{"detail": "1-1000 ids"}]}, {}
            self.apply(parts[2], "add" if method == "POST" else "remove", [d["id"] for d in data])
            return 204, None, {}
        return 404, {"errors": [{"detail": "no such endpoint"}]}, {}


_SHA256 = re.compile(r"[0-9a-f]{64}")


class MetaServer(VendorServer):
    """Meta's Custom Audience users edge: ``POST`` / ``DELETE /{version}/{audience_id}/users``, hashed rows.

    As Graph API does, it answers a bad token with 400 and error code 190 (``authorized`` passes every
    request to ``handle``), a malformed payload with code 100, a token in the URL is refused (audlang sends
    it in the Authorization header only) and a ``flagged`` audience answers code 100, subcode 1713230.
    A row whose hashes hold a ``poison`` one is counted invalid and shown in ``invalid_entry_samples``."""

    kind = "meta"
    limit = 10_000
    SCHEMA = ("EMAIL_SHA256", "PHONE_SHA256")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.flagged: set[str] = set()

    def authorized(self, headers) -> bool:
        return True

    @staticmethod
    def error(code: int, message: str, subcode: int | None = None):
        body = {"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "x"}}
        if subcode is not None:
            body["error"]["error_subcode"] = subcode
        return 400, body, {}

    def handle(self, method, path, payload, headers):
        parsed = urlparse(path)
        if "access_token" in parse_qs(parsed.query):
            self.refused.append("access_token in the URL")
            return self.error(100, "the access token belongs in the Authorization header here")
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            return self.error(190, "Invalid OAuth access token - Cannot parse access token")
        found = re.fullmatch(r"/v[0-9]+\.[0-9]+/([0-9]+)/users", parsed.path)
        if not found or method not in ("POST", "DELETE"):
            return 404, {"error": {"message": "Unknown path components", "code": 2500}}, {}
        audience = found.group(1)
        if audience in self.flagged:
            return self.error(100, "Invalid parameter", 1713230)
        if headers.get("Content-Type") != "application/json" or not isinstance(payload, dict):
            return self.error(100, "(#100) payload is required")
        body = payload.get("payload")
        schema = body.get("schema") if isinstance(body, dict) else None
        data = body.get("data") if isinstance(body, dict) else None
        if (not isinstance(schema, list) or not schema or len(set(schema)) != len(schema)
                or any(key not in self.SCHEMA for key in schema)):
            return self.error(100, "(#100) Invalid schema")
        if not isinstance(data, list) or not 1 <= len(data) <= self.limit:
            return self.error(100, f"(#100) 1-{self.limit} rows a request")
        keys, invalid = [], {}
        for row in data:
            if (not isinstance(row, list) or len(row) != len(schema)
                    or any(not isinstance(v, str) or (v and not _SHA256.fullmatch(v)) for v in row)):
                return self.error(100, "(#100) each row holds one hash (or \"\") per schema key")
            if not any(row) or self.poison & set(row):
                invalid.update({v: "invalid" for v in row if v})
                continue
            keys.append(row[0])
        self.apply(audience, "add" if method == "POST" else "remove", keys)
        return 200, {"audience_id": audience, "session_id": "1", "num_received": len(data),
                     "num_invalid_entries": len(data) - len(keys), "invalid_entry_samples": invalid}, {}


class GoogleAdsServer(VendorServer):
    """Google Ads' offline user data jobs for Customer Match: create, addOperations, run, and the job's
    status through ``googleAds:search``. A job applies its operations once run, at the second status read
    (RUNNING, then SUCCESS); ``fail_jobs`` makes jobs end FAILED instead. At most 100,000 identifiers a
    request; an identifier that is not a SHA-256 hex, or a ``poison`` one, fails its operation (partial
    failure, named by index). Membership is keyed by an operation's first identifier."""

    kind = "google_ads"
    limit = 100_000
    FIELDS = ("hashedEmail", "hashedPhoneNumber")

    def __init__(self, *args, developer_token: str = "dev-token", customer: str = "1234567890",
                 user_list: str = "987654321", login: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.developer_token, self.customer, self.user_list, self.login = developer_token, customer, user_list, login
        self.jobs: dict[str, dict] = {}
        self.fail_jobs = False

    def authorized(self, headers) -> bool:
        return (headers.get("Authorization") == f"Bearer {self.api_key}"
                and headers.get("developer-token") == self.developer_token
                and (self.login is None or headers.get("login-customer-id") == self.login))

    @staticmethod
    def error(status: int, message: str, code: str = "INVALID_ARGUMENT"):
        return status, {"error": {"code": status, "message": message, "status": code}}, {}

    def handle(self, method, path, payload, headers):
        parsed = urlparse(path)
        prefix = f"/v26/customers/{self.customer}/"
        if method != "POST" or not parsed.path.startswith(prefix) or parsed.query:
            return self.error(404, "not found", "NOT_FOUND")
        if headers.get("Content-Type") != "application/json" or not isinstance(payload, dict):
            return self.error(400, "a JSON body")
        rest = parsed.path[len(prefix):]
        if rest == "offlineUserDataJobs:create":
            return self.create(payload)
        if rest == "googleAds:search":
            return self.search(payload)
        found = re.fullmatch(r"offlineUserDataJobs/([0-9]+):(addOperations|run)", rest)
        if not found or found.group(1) not in self.jobs:
            return self.error(404, "no such job", "NOT_FOUND")
        job = self.jobs[found.group(1)]
        if job["status"] != "PENDING":
            return self.error(400, "the job has run already")
        if found.group(2) == "run":
            job["status"] = "RUNNING"
            return 200, {"name": f"customers/{self.customer}/operations/{found.group(1)}"}, {}
        return self.add_operations(job, payload)

    def create(self, payload):
        job = payload.get("job") or {}
        user_list = (job.get("customerMatchUserListMetadata") or {}).get("userList")
        if job.get("type") != "CUSTOMER_MATCH_USER_LIST" or user_list != \
                f"customers/{self.customer}/userLists/{self.user_list}":
            return self.error(400, "a CUSTOMER_MATCH_USER_LIST job on an existing user list")
        job_id = str(1000 + len(self.jobs))
        self.jobs[job_id] = {"status": "PENDING", "operations": [], "reads": 0}
        return 200, {"resourceName": f"customers/{self.customer}/offlineUserDataJobs/{job_id}"}, {}

    def add_operations(self, job, payload):
        operations = payload.get("operations")
        if payload.get("enablePartialFailure") is not True or not isinstance(operations, list) or not operations:
            return self.error(400, "operations, with enablePartialFailure")
        identifiers = sum(len(next(iter(op.values()), {}).get("userIdentifiers", []))
                          for op in operations if isinstance(op, dict))
        if identifiers > self.limit:
            return self.error(400, f"at most {self.limit} identifiers a request, not {identifiers}")
        errors = []
        for i, op in enumerate(operations):
            kinds = [k for k in op if k in ("create", "remove")] if isinstance(op, dict) else []
            ids = op[kinds[0]].get("userIdentifiers") if len(kinds) == 1 and len(op) == 1 else None
            values = [next(iter(u.values())) for u in ids or [] if isinstance(u, dict) and len(u) == 1
                      and next(iter(u)) in self.FIELDS]
            if (not ids or len(ids) > 20 or len(values) != len(ids)
                    or any(not isinstance(v, str) or not _SHA256.fullmatch(v) or v in self.poison for v in values)):
                errors.append({"errorCode": {"offlineUserDataJobError": "INVALID_SHA256_FORMAT"},
                               "message": "The SHA256 encoded value is malformed.",
                               "location": {"fieldPathElements": [{"fieldName": "operations", "index": i},
                                                                  {"fieldName": kinds[0] if kinds else "create"}]}})
                continue
            job["operations"].append(("add" if kinds[0] == "create" else "remove", values[0]))
        if not errors:
            return 200, {}, {}
        return 200, {"partialFailureError": {"code": 3, "message": "Multiple errors in details.", "details": [
            {"@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
             "errors": errors}]}}, {}

    def search(self, payload):
        found = re.fullmatch(r"SELECT offline_user_data_job\.resource_name, offline_user_data_job\.status "
                             r"FROM offline_user_data_job WHERE offline_user_data_job\.resource_name = "
                             rf"'customers/{self.customer}/offlineUserDataJobs/([0-9]+)'", payload.get("query", ""))
        if not found:
            return self.error(400, "a GAQL query of one offline user data job")
        job = self.jobs.get(found.group(1))
        if job is None:
            return 200, {"results": []}, {}
        if job["status"] == "RUNNING":
            job["reads"] += 1
            if job["reads"] >= 2:
                job["status"] = "FAILED" if self.fail_jobs else "SUCCESS"
                if job["status"] == "SUCCESS":
                    for operation, key in job["operations"]:
                        self.apply(self.user_list, operation, [key])
        name = f"customers/{self.customer}/offlineUserDataJobs/{found.group(1)}"
        return 200, {"results": [{"offlineUserDataJob": {"resourceName": name, "status": job["status"]}}],
                     "fieldMask": "offlineUserDataJob.resourceName,offlineUserDataJob.status"}, {}


class WebhookServer(VendorServer):
    kind = "webhook"
    limit = 1000

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.keys: dict[str, list] = {}  # idempotency key -> the (operation, member) pairs of its first delivery
        self.redelivered: list[str] = []

    def handle(self, method, path, payload, headers):
        key = headers.get("Idempotency-Key")
        if method != "POST" or not key:
            return 400, {"error": "POST with an Idempotency-Key"}, {}
        members = payload.get("members") or []
        if len(members) > self.limit:
            return 413, {"error": "too many members"}, {}
        if any(m.get("customer_id") in self.poison for m in members):
            return 422, {"error": "a member is invalid"}, {}
        with self.lock:
            if key in self.keys:
                self.redelivered.append(key)
                return 200, {"ok": True, "duplicate": True}, {}
            self.keys[key] = [(payload["operation"], m["customer_id"]) for m in members]
        audience = f"{payload['campaign']}/{payload['group']}"
        self.apply(audience, payload["operation"], [m["customer_id"] for m in members])
        return 200, {"ok": True}, {}


class RecordingServer(VendorServer):
    """Another host: answers every request with an empty last page and keeps its headers (``received``)."""

    kind = "recorder"

    def authorized(self, headers) -> bool:
        return True

    def handle(self, method, path, payload, headers):
        return 200, {"data": [], "links": {"next": None}}, {}


class _VendorHandler(BaseHTTPRequestHandler):
    """The HTTP side of a ``VendorServer`` (``vendor``): faults first, then auth, then the vendor's answer."""

    vendor: VendorServer

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm each answer on a kept-alive
    # connection waited for the client's delayed ACK (about 40 ms a request).
    disable_nagle_algorithm = True

    def log_message(self, *args):
        return None

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.vendor.lock:
            self.vendor.requests.append((self.command, self.path))
            self.vendor.bodies.append(body)
            self.vendor.received.append((self.command, self.path, dict(self.headers.items())))
            fault = self.vendor.faults.pop(0) if self.vendor.faults else None
        if fault is not None and self._fault(fault):
            return
        if not self.vendor.authorized(self.headers):
            return self.reply(401, {"errors": [{"detail": "bad credentials"}]})
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            return self.reply(400, {"errors": [{"detail": "not JSON"}]})
        status, answer, headers = self.vendor.handle(self.command, self.path, payload, self.headers)
        self.reply(status, answer, headers)

    def _fault(self, fault: tuple) -> bool:
        """Act out a queued fault; whether one was (the request is then answered)."""
        if fault[0] == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        if fault[0] == "429":
            headers = {"Retry-After": str(fault[1])} if len(fault) > 1 and fault[1] is not None else {}
            self.reply(429, {"errors": [{"detail": "rate limited"}]}, headers)
            return True
        if fault[0] == "500":
            self.reply(500, {"errors": [{"detail": "internal error"}]})
            return True
        if fault[0] == "redirect":
            self.reply(fault[1], None, {"Location": fault[2] + self.path})
            return True
        if fault[0] == "echo":
            self.reply(400, {"errors": [{"detail": f"refused: {dict(self.headers.items())}"}]})
            return True
        if fault[0] == "echo_path":
            self.reply(400, {"errors": [{"detail": f"no hook at {self.path}"}]})
            return True
        if fault[0] == "raw":
            self.send_raw(fault[1], fault[2], fault[3] if len(fault) > 3 else {})
            return True
        if fault[0] == "drip":
            self.drip(fault[1], fault[2])
            return True
        return False

    def reply(self, status, answer, headers=None):
        data = b"" if answer is None else json.dumps(answer).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_raw(self, status, data: bytes, headers):
        try:
            self.send_response(status)
            headers = {"Content-Type": "application/json", **headers}
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client stopped reading (a bomb cut short)

    def drip(self, delay: float, what: str):
        data = json.dumps({"message": "accepted", "batchJobId": "job-1", "ok": True}).encode()
        head = (f"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n\r\n").encode()
        self.close_connection = True
        try:
            if what == "body":
                self.wfile.write(head)
                self.wfile.flush()
            for byte in (head + data if what == "headers" else data):
                time.sleep(delay)
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
        except OSError:
            return  # the client gave up

    do_GET = do_POST = do_DELETE = _handle
