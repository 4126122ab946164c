"""Benchmark: the language server's latency on a project of N segments (default 1,000), over stdio.

Starts `audlang lsp` as a subprocess and speaks JSON-RPC to it on its stdin
and stdout, as an editor does. The generated project holds N segments in one
file (or in several, with --files), destinations, and campaigns in another
file that use the segments (and some segments use others through `in
segment`). The big file is opened, then edited E times the way an editor
sends it (a range and its new text): a number changed inside a condition, a
comment line added above a segment and removed again (every declaration below
moves), a segment that another file uses renamed and named back. Each edit is
timed from the didChange notification to the publishDiagnostics of that
version arriving. Completion is timed from the request to the answer, right
after typing the `"` of `in segment "` (the change and the request are sent
together, as an editor sends them); the answer names every segment.
Prints the machine (platform, CPUs, load) and the median and 90th percentile
of each. Usage: python bench/lsp_bench.py [N] [--edits E] [--files F]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CLAUSES = [
    "sms_opt_in", "contactable_phone", 'state in ("OR", "WA")', "lifetime_revenue > {n}",
    'predicted_lifecycle_status in ("Active", "At risk")', "loyalty_tier is set",
    "has_purchased within last {n} days", 'tagged "VIP"', "abandoned_checkout within last {n} days",
    "has_purchased spend > {n} since 2024-01-01", "not has_purchased within last 90 days",
]


def segment_name(i: int) -> str:
    return f"Segment {i:04d}"


def project_files(count: int, files: int, seed: int = 11) -> dict[str, str]:
    """``{file name: text}``: the segments over ``files`` files, then destinations and campaigns."""
    rng = random.Random(seed)
    texts: list[list[str]] = [[] for _ in range(files)]
    for i in range(count):
        parts = [rng.choice(CLAUSES).format(n=rng.randint(2, 400)) for _ in range(rng.randint(1, 3))]
        parts[0] = f"lifetime_revenue > {rng.randint(2, 400)}"  # the number each edit changes
        if i >= 10 and rng.random() < 0.1:
            parts.append(f'in segment "{segment_name(rng.randrange(i))}"')
        body = "\n  and ".join(parts)
        texts[i * files // count].append(f'# Customers of segment {i}.\nsegment "{segment_name(i)}" <\n  {body}\n>\n')
    out = {("segments.aud" if files == 1 else f"segments_{f:02d}.aud"): "\n".join(t) for f, t in enumerate(texts)}
    out["destinations.aud"] = "".join(
        f'destination "Mail {d}" csv <\n  path = "exports/{{{{ campaign }}}}-{{{{ group }}}}-{d}.csv"\n>\n\n'
        for d in range(3))
    out["campaigns.aud"] = "".join(
        f'campaign "Campaign {c}" <\n  audience segment "{segment_name(c * 7 % count)}"\n'
        f'  holdout 10%\n  treatment "All" 90% to "Mail {c % 3}"\n>\n\n' for c in range(20))
    return out


class Client:
    """A JSON-RPC client on a subprocess's stdin and stdout; a thread stamps each message as it arrives."""

    def __init__(self, command: list[str], cwd: Path):
        self.process = subprocess.Popen(command, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL)
        self.messages: queue.Queue[tuple[float, dict]] = queue.Queue()
        self.unclaimed: list[tuple[float, dict]] = []  # arrived while another message was waited for
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        while True:
            length = 0
            while (line := stream.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if not line:
                return
            body = stream.read(length)
            self.messages.put((time.perf_counter(), json.loads(body)))

    def send(self, message: dict) -> float:
        data = json.dumps({"jsonrpc": "2.0", **message}).encode()
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(b"Content-Length: %d\r\n\r\n" % len(data) + data)
        stdin.flush()
        return time.perf_counter()

    def notify(self, method: str, params: dict) -> float:
        return self.send({"method": method, "params": params})

    def request(self, method: str, params: dict) -> tuple[int, float]:
        self.next_id += 1
        return self.next_id, self.send({"id": self.next_id, "method": method, "params": params})

    def wait(self, matches, timeout: float = 60.0) -> tuple[float, dict]:
        """The first message (and when it arrived) that ``matches``; the server's requests are answered."""
        for found in self.unclaimed:
            if matches(found[1]):
                self.unclaimed.remove(found)
                return found
        deadline = time.monotonic() + timeout
        while True:
            arrived, message = self.messages.get(timeout=max(deadline - time.monotonic(), 0.001))
            if "id" in message and "method" in message:  # a request from the server (registrations)
                self.send({"id": message["id"], "result": None})
            elif matches(message):
                return arrived, message
            else:
                self.unclaimed = [*self.unclaimed[-200:], (arrived, message)]

    def answer(self, request_id: int) -> tuple[float, dict]:
        return self.wait(lambda m: m.get("id") == request_id and "method" not in m)

    def diagnostics(self, uri: str, version: int) -> tuple[float, dict]:
        return self.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                         and m["params"]["uri"] == uri
                         and m["params"].get("version") in (version, None))  # None: a server without versions


class Document:
    """The text the editor holds, and the changes it sends the server."""

    def __init__(self, client: Client, path: Path):
        self.client, self.uri, self.version = client, path.as_uri(), 1
        self.lines = path.read_text().split("\n")
        client.notify("textDocument/didOpen", {"textDocument": {
            "uri": self.uri, "languageId": "audlang", "version": 1, "text": "\n".join(self.lines)}})

    def replace(self, line: int, start: int, end: int, text: str) -> float:
        """Replace characters ``start:end`` of ``line`` (``text`` may hold line breaks); when it was sent."""
        self.version += 1
        current = self.lines[line]
        self.lines[line:line + 1] = (current[:start] + text + current[end:]).split("\n")
        return self.client.notify("textDocument/didChange", {
            "textDocument": {"uri": self.uri, "version": self.version},
            "contentChanges": [{"range": {"start": {"line": line, "character": start},
                                          "end": {"line": line, "character": end}}, "text": text}]})

    def find(self, needle: str) -> int:
        return next(i for i, text in enumerate(self.lines) if needle in text)

    def segments(self) -> list[str]:
        """The names of the segments the document declares, in order."""
        return [line.split('"')[1] for line in self.lines if line.startswith('segment "')]


def edits(doc: Document, count: int, segments: int, rng: random.Random):
    """``count`` edits, each (what it is, a function that makes it and returns when it was sent)."""
    declared = doc.segments()
    used = [name for name in declared if name in {segment_name(c * 7 % segments) for c in range(20)}]  # audiences

    def change_number():
        line = doc.find(f'segment "{rng.choice(declared)}"') + 1
        start = doc.lines[line].index("> ") + 2
        end = start + len(doc.lines[line][start:].split()[0])
        return doc.replace(line, start, end, str(rng.randint(2, 400)))

    def add_line():
        line = doc.find(f'segment "{rng.choice(declared[:len(declared) // 2])}"')
        return doc.replace(line, 0, 0, "# (a note)\n")

    def remove_line():
        return _join(doc, doc.find("# (a note)"))

    state = {"renamed": None}

    def rename():
        name = rng.choice(used)
        line = doc.find(f'segment "{name}"')
        start = doc.lines[line].index(name)
        state["renamed"] = (name, line, start)
        return doc.replace(line, start, start + len(name), name + " (old)")

    def name_back():
        name, line, start = state["renamed"]
        return doc.replace(line, start, start + len(name) + len(" (old)"), name)

    plan = [("a number in a condition", change_number), ("a line added above", add_line),
            ("a number in a condition", change_number), ("that line removed", remove_line),
            ("a used segment renamed", rename), ("the segment named back", name_back)]
    for i in range(count):
        yield plan[i % len(plan)]


def _join(doc: Document, line: int) -> float:
    """Remove ``line`` whole: a change from its start to the start of the next line."""
    doc.version += 1
    del doc.lines[line]
    return doc.client.notify("textDocument/didChange", {
        "textDocument": {"uri": doc.uri, "version": doc.version},
        "contentChanges": [{"range": {"start": {"line": line, "character": 0},
                                      "end": {"line": line + 1, "character": 0}}, "text": ""}]})


def percentiles(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p90 = statistics.quantiles(ms, n=10, method="inclusive")[8] if len(ms) > 1 else ms[0]
    return f"median {statistics.median(ms):6.1f} ms   p90 {p90:6.1f} ms   (n={len(ms)})"


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("segments", nargs="?", type=int, default=1000)
    options.add_argument("--edits", type=int, default=60)
    options.add_argument("--completions", type=int, default=30)
    options.add_argument("--files", type=int, default=1, help="files the segments are spread over")
    args = options.parse_args()
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp).resolve()
        (root / "audlang.toml").write_text('name = "bench"\n')
        for name, text in project_files(args.segments, args.files).items():
            (root / name).write_text(text)
        edited = root / ("segments.aud" if args.files == 1 else "segments_00.aud")
        size = edited.stat().st_size
        client = Client([sys.executable, "-m", "audlang.cli", "lsp"], root)
        try:
            init, _ = client.request("initialize", {
                "processId": os.getpid(), "rootUri": root.as_uri(),
                "workspaceFolders": [{"uri": root.as_uri(), "name": "bench"}],
                "capabilities": {"textDocument": {"publishDiagnostics": {"versionSupport": True}}}})
            client.answer(init)
            client.notify("initialized", {})
            sent = time.perf_counter()
            doc = Document(client, edited)
            opened, message = client.diagnostics(doc.uri, 1)
            assert message["params"]["diagnostics"] == [], message["params"]["diagnostics"][:3]
            by_kind: dict[str, list[float]] = {}
            for kind, make in edits(doc, args.edits, args.segments, rng):
                sent_at = make()
                arrived, message = client.diagnostics(doc.uri, doc.version)
                by_kind.setdefault(kind, []).append(arrived - sent_at)
                time.sleep(0.05)  # a pause between keys, as a user makes
            completions = complete(doc, args, rng)
            client.answer(client.request("shutdown", None)[0])
            client.notify("exit", None)
            client.process.wait(timeout=10)
        finally:
            if client.process.poll() is None:
                client.process.kill()
                client.process.wait()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs (load {load}), "
          f"{platform.python_implementation()} {platform.python_version()}")
    print(f"{args.segments:,} segments in {args.files} file(s); the edited file holds {size:,} bytes")
    print(f"open to first diagnostics: {(opened - sent) * 1000:.0f} ms (a whole parse and check)")
    every = [t for times in by_kind.values() for t in times]
    print(f"diagnostics after a change:      {percentiles(every)}")
    for kind, times in by_kind.items():
        print(f"  {kind + ':':<30}  {percentiles(times)}")
    print(f"completion after `in segment \"`: {percentiles(completions)}")


def complete(doc: Document, args: argparse.Namespace, rng: random.Random) -> list[float]:
    """Type `  and in segment "` on a new line of a segment, ask for completion at once; time the answer."""
    times = []
    declared = doc.segments()
    for _ in range(args.completions):
        line = doc.find(f'segment "{rng.choice(declared)}"') + 1
        doc.replace(line, len(doc.lines[line]), len(doc.lines[line]), '\n  and in segment "')
        request, sent = doc.client.request("textDocument/completion", {
            "textDocument": {"uri": doc.uri}, "position": {"line": line + 1, "character": len(doc.lines[line + 1])},
            "context": {"triggerKind": 2, "triggerCharacter": '"'}})
        arrived, message = doc.client.answer(request)
        items = message["result"]["items"]
        # every segment (or all but the one typed in, once its unclosed string is checked)
        assert args.segments - 1 <= len(items) <= args.segments, len(items)
        times.append(arrived - sent)
        doc.client.diagnostics(doc.uri, doc.version)
        _join(doc, line + 1)
        doc.client.diagnostics(doc.uri, doc.version)
        time.sleep(0.05)
    return times


if __name__ == "__main__":
    main()
