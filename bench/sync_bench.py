"""Benchmark: delta sync of a 1M-member campaign group to an Attentive-shaped server, then 1% churn.

1. A DuckDB warehouse with N customers (hand-written rows: id, email, phone) and
   a campaign sending everyone with a phone to an Attentive destination on a
   local HTTP server (127.0.0.1) that counts requests and member operations.
2. First apply: the campaign is materialized and synced (N adds).
3. Churn: 0.5% of the customers lose their phone (they leave), 0.5% new
   customers arrive (they join): 1% of the membership changes.
4. Second apply: only the changes travel. Checked: member operations and
   requests ≤ 1.05 × changed members, and the server ends with exactly the
   group's membership. Reported: both sync times and their ratio.

Usage: python bench/sync_bench.py [--customers 1000000] [--state sqlite|duckdb] [--batch-size 10000]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import sqlalchemy as sa

from audlang import sync
from audlang.compile import AsOf
from audlang.project import analyze


class Server:
    """Attentive's bulk segment-membership endpoint: counts requests and member operations."""

    def __init__(self):
        self.members: set[str] = set()
        self.requests = 0
        self.operations = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                return None

            def _handle(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                assert self.headers["Authorization"] == "Bearer bench-key"
                keys = [m["phone"] for m in body["members"]]
                assert 1 <= len(keys) <= 10_000
                with server.lock:
                    server.requests += 1
                    server.operations += len(keys)
                    if self.command == "POST":
                        server.members.update(keys)
                    else:
                        server.members.difference_update(keys)
                data = b'{"message":"accepted","batchJobId":"1"}'
                self.send_response(202)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


def build(engine: sa.Engine, customers: int) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS customer_360"))
        conn.execute(sa.text(
            "CREATE TABLE customer_360 AS SELECT printf('C%08d', i) AS customer_id, "
            "printf('c%d@example.com', i) AS email, printf('+1503%07d', i) AS phone "
            f"FROM range({customers}) t(i)"))


def churn(engine: sa.Engine, customers: int) -> int:
    """0.5% leave (phone removed), 0.5% join (new customers): returns the changed members."""
    n = customers // 200
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE customer_360 SET phone = NULL WHERE customer_id IN "
                             f"(SELECT customer_id FROM customer_360 ORDER BY hash(customer_id) LIMIT {n})"))
        conn.execute(sa.text(
            "INSERT INTO customer_360 SELECT printf('N%08d', i), printf('n%d@example.com', i), "
            f"printf('+1971%07d', i) FROM range({n}) t(i)"))
    return 2 * n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--state", choices=["sqlite", "duckdb"], default="sqlite")
    parser.add_argument("--batch-size", type=int, default=10_000)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="audlang-sync-bench-"))
    server = Server()
    text = f'''
destination "SMS" attentive <
  api_key = env("ATTENTIVE_API_KEY")
  segment = "bench"
  base_url = "{server.url}"
  batch_size = {args.batch_size}
>
campaign "Everyone" <
  audience < phone is set >
  treatment "All" 100% to "SMS"
>
'''
    model, diagnostics = analyze({str(folder / "bench.aud"): text})
    assert not [d for d in diagnostics if d.is_error], diagnostics
    warehouse = sa.create_engine(f"duckdb:///{folder / 'warehouse.duckdb'}")
    state_url = (f"sqlite:///{folder / 'state.db'}" if args.state == "sqlite"
                 else f"duckdb:///{folder / 'state.duckdb'}")
    state = sa.create_engine(state_url)
    as_of = AsOf.parse("2024-11-30")
    env = {"ATTENTIVE_API_KEY": "bench-key"}

    t0 = time.perf_counter()
    build(warehouse, args.customers)
    print(f"warehouse: {args.customers:,} customers in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

    def apply(label: str):
        t = time.perf_counter()
        sync.materialize_campaigns(warehouse, model, as_of)
        materialized = time.perf_counter() - t
        requests, operations = server.requests, server.operations
        t, cpu = time.perf_counter(), time.process_time()
        (result,) = sync.Syncer(model, warehouse, state, folder, env=env).sync_all()
        seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
        assert result.status == "ok", result
        sent = (server.requests - requests, server.operations - operations)
        print(f"{label}: materialized in {materialized:.2f}s; sync {seconds:.2f}s ({cpu:.2f}s CPU), "
              f"{sent[0]:,} requests, "
              f"{sent[1]:,} member operations (+{result.added:,} −{result.removed:,})", file=sys.stderr)
        return seconds, cpu, sent

    first, first_cpu, first_sent = apply("first apply")
    assert first_sent[1] == args.customers
    changed = churn(warehouse, args.customers)
    second, second_cpu, second_sent = apply("second apply (1% churn)")
    with warehouse.connect() as conn:
        want = {r[0] for r in conn.execute(sa.text("SELECT phone FROM customer_360 WHERE phone IS NOT NULL"))}
    assert server.members == want, "the server's membership differs from the group's"
    limit = 1.05 * changed
    assert second_sent[1] <= limit and second_sent[0] <= limit, (second_sent, changed)
    figures = {
        "customers": args.customers, "changed_members": changed, "state": args.state,
        "batch_size": args.batch_size,
        "first_sync_seconds": round(first, 2), "second_sync_seconds": round(second, 2),
        "ratio_second_to_first": round(second / first, 3),
        # CPU of this process (the sync and the in-process server): steadier than wall time on a busy machine
        "first_sync_cpu_seconds": round(first_cpu, 2), "second_sync_cpu_seconds": round(second_cpu, 2),
        "cpu_ratio_second_to_first": round(second_cpu / first_cpu, 3),
        "second_requests": second_sent[0], "second_member_operations": second_sent[1],
        "operations_per_changed_member": round(second_sent[1] / changed, 3),
        "python": platform.python_version(), "machine": platform.machine(),
    }
    print(json.dumps(figures, indent=2))
    warehouse.dispose()
    state.dispose()
    server.httpd.shutdown()


if __name__ == "__main__":
    main()
