"""A local Attentive-shaped server for ``audlang demo``: the bulk segment-membership endpoints on 127.0.0.1.

``POST`` / ``DELETE /v2/bulk/segments/members`` with a Bearer key, 1–10,000
members a request; it keeps each segment's membership in memory so the demo
can show what a real Attentive account would now hold.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class AttentiveSandbox:
    def __init__(self, api_key: str):
        self.api_key = api_key
        self.segments: dict[str, set[str]] = {}
        self.requests = 0
        self.lock = threading.Lock()
        sandbox = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                return None

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.path != "/v2/bulk/segments/members":
                    return self._reply(404, {"message": "not found"})
                if self.headers.get("Authorization") != f"Bearer {sandbox.api_key}":
                    return self._reply(401, {"message": "unauthorized"})
                try:
                    body = json.loads(raw)
                    members = body["members"]
                    segment = body["externalId"]
                except (ValueError, KeyError, TypeError):
                    return self._reply(400, {"message": "externalId and members expected"})
                if not 1 <= len(members) <= 10_000:
                    return self._reply(400, {"message": "1 to 10,000 members a request"})
                keys = [m.get("phone") or m.get("email") or m.get("clientUserId") for m in members]
                if not all(keys):
                    return self._reply(400, {"message": "each member needs phone, email or clientUserId"})
                with sandbox.lock:
                    sandbox.requests += 1
                    held = sandbox.segments.setdefault(segment, set())
                    (held.update if self.command == "POST" else held.difference_update)(keys)
                self._reply(202, {"message": "accepted", "batchJobId": f"sandbox-{sandbox.requests}"})

            do_POST = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
