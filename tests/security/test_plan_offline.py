"""``validate`` and ``plan`` run on pull requests with the credentials in the environment: they must
send nothing to any destination (whatever host the pull request names) and print no secret.

Every destination kind points at one recording HTTP server on 127.0.0.1; the commands run as real
processes with the secrets set. The server must receive no request at all, and nothing may be
written where a destination would write.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from audlang.datagen import generate

SECRETS = {"ATTENTIVE_KEY": "att_secret_0001", "BRAZE_KEY": "braze_secret_0002",
           "KLAVIYO_KEY": "pk_secret_0003", "HOOK_TOKEN": "hook_secret_0004", "DB_PASSWORD": "db_secret_0005"}


@pytest.fixture
def recorder():
    received: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            return None

        def _any(self):
            received.append((self.command, self.path))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _any

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def project(root, url):
    (root / "audlang.toml").write_text('warehouse = "duckdb:///w.duckdb"\n')
    (root / "p.aud").write_text(f'''
segment "Reachable" < phone is set or email is set >
destination "A" attentive < api_key = env("ATTENTIVE_KEY") segment = "s" base_url = "{url}" identifiers = (phone) >
destination "B" braze < api_key = env("BRAZE_KEY") base_url = "{url}" identifiers = (customer_id) >
destination "K" klaviyo < api_key = env("KLAVIYO_KEY") list_id = "L1" base_url = "{url}" identifiers = (email) >
destination "W" webhook < url = "{url}/hook" header "Authorization" = "Bearer " + env("HOOK_TOKEN") >
destination "F" csv < path = "exports/{{{{ campaign }}}}-{{{{ group }}}}.csv" >
destination "S" sql < url = "postgresql+psycopg://audlang:" + env("DB_PASSWORD") + "@127.0.0.1:1/x" table = "t" >
campaign "C" <
  audience segment "Reachable"
  holdout 10%
  treatment "One" 45% to "A", "B", "F"
  treatment "Two" 45% to "K", "W", "S"
>
''')
    generate(f"duckdb:///{root / 'w.duckdb'}", customers=120, seed=2)


def run(root, *args):
    env = {**os.environ, **SECRETS, "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, "-m", "audlang", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)
    return done.returncode, done.stdout + done.stderr


def test_validate_and_plan_send_nothing_anywhere_and_print_no_secret(tmp_path, recorder):
    url, received = recorder
    project(tmp_path, url)
    code, out = run(tmp_path, "validate")
    assert code == 0, out
    for fmt in ("text", "json", "markdown"):
        code, out = run(tmp_path, "plan", "--as-of", "2024-11-30", "--format", fmt, "--out", f"plan-{fmt}.json")
        assert code == 0, out
        assert "Traceback" not in out
        for secret in SECRETS.values():
            assert secret not in out
            assert secret not in (tmp_path / f"plan-{fmt}.json").read_text()
    assert received == [], f"plan contacted a destination: {received}"
    assert not (tmp_path / "exports").exists(), "plan wrote a destination's file"
