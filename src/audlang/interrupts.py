"""Stopping on SIGINT and SIGTERM: at once, or at the end of a step that must not stop halfway.

The CLI installs the handlers for the length of a command (``installed``). The first signal raises
``Interrupted`` (a ``KeyboardInterrupt``) in the main thread, wherever it is, so the transactions in
progress roll back and the ``finally`` blocks run (apply releases its lock). Inside a ``shielded`` block
the signal waits for the end of the block instead: a sync batch from its sending to its
acknowledgement, a segment's commit and its record in the state. A second signal there stops at once
(the batch is then sent again by the next apply, under the same idempotency key). Signals after the
stop are ignored, so the clean-up runs to its end.

While a database driver runs a query, Python's handler may not get to stop it: SQLite never runs it,
DuckDB not while the main thread executes a task itself, and DuckDB drops the handler's exception when
it runs it at the wrong moment. A watcher thread, woken by the signal through ``signal.set_wakeup_fd``,
looks at the main thread after ``GRACE`` seconds: still at the same instruction of the same frame (held
in a driver's C code), it cancels the queries of the connections checked out then (``interrupt()`` on
SQLite and DuckDB, ``cancel_safe()`` on psycopg), and again while the main thread stays there; not on
the first signal inside a shield. The drivers then raise their own errors — DuckDB's ``RuntimeError:
Query interrupted`` or ``InterruptException``, SQLite's "interrupted", psycopg's ``QueryCanceled`` —
which the CLI reports as the interruption they are (``received``), never as a failure of the project
or a bug.

Test hook: ``AUDLANG_TEST_HOLD=PHASE[:N]`` makes the process, the Nth time (default the first) it passes
``hold(PHASE, conn)``, create the file named by ``AUDLANG_TEST_HOLD_FILE`` and then run a query that
takes minutes on ``conn`` (or sleep), so that a test's signal lands in that phase, mid-query.
Phases: ``plan`` (the membership preview), ``materialize`` (a segment's new membership written, its
transaction not committed).

Imports nothing of ours (SQLAlchemy's pool events, to know the connections checked out).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

#: Seconds after a signal before the watcher cancels the queries holding the main thread.
GRACE = 0.3
SIGNALS = (signal.SIGINT, signal.SIGTERM)
HOLD_ENV = "AUDLANG_TEST_HOLD"
HOLD_FILE_ENV = "AUDLANG_TEST_HOLD_FILE"
#: The hold's query: a recursive count every engine with a state runs (for minutes), one row at a time.
HOLD_QUERY = ("WITH RECURSIVE audlang_hold(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM audlang_hold "
              "WHERE n < 1000000000) SELECT count(*) FROM audlang_hold")


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM received; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class _State:
    def __init__(self) -> None:
        self.received: int | None = None  # the first signal
        self.count = 0  # signals the handler has seen
        self.stop_count: int | None = None  # the one of them that began the stop
        self.stopping = False  # Interrupted was raised: further signals are ignored
        self.shield = 0  # depth of shielded blocks
        self.deferred: Callable[[int], None] | None = None
        self.connections: dict[int, object] = {}
        self.lock = threading.Lock()


_state = _State()
_held: Counter[str] = Counter()


def received() -> int | None:
    """The signal that interrupted this process (SIGINT or SIGTERM), or None."""
    return _state.received


def exit_code(signum: int) -> int:
    """128 + the signal's number: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + signum


def check() -> None:
    """At a point where stopping is safe: raise ``Interrupted`` when a signal was received."""
    if _state.received is not None:
        if not _state.stopping:
            _state.stopping, _state.stop_count = True, _state.count
        raise Interrupted(_state.received)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """A step that must not stop halfway: a signal received inside waits for its end (a second one does not)."""
    _state.shield += 1
    try:
        yield
    finally:
        _state.shield -= 1
    if _state.shield == 0:
        check()


def _handler(signum: int, _frame) -> None:
    _state.count += 1
    first = _state.received is None
    if first:
        _state.received = signum
    if _state.stopping:
        return  # the stop is under way: let the clean-up finish
    if _state.shield and first:
        if _state.deferred is not None:
            _state.deferred(signum)
        return
    _state.stopping = True
    _state.stop_count = _state.count
    raise Interrupted(_state.received or signum)


def _cancel_running() -> None:
    """Cancel the query of every connection checked out now (from the watcher thread)."""
    with _state.lock:
        connections = list(_state.connections.values())
    for dbapi in connections:
        for name in ("interrupt", "cancel_safe", "cancel"):  # sqlite3 and DuckDB; psycopg
            method = getattr(dbapi, name, None)
            if method is None:
                continue
            with contextlib.suppress(Exception):
                method()
            break


def _stuck(main: int, seen) -> bool:
    """Whether the main thread is still where it was when the signal came (in a driver's C code)."""
    frame = sys._current_frames().get(main)
    return frame is not None and seen is not None and frame is seen[0] and frame.f_lasti == seen[1]


def _watch(reader: socket.socket, main: int) -> None:
    """On each signal: if after ``GRACE`` the main thread has not moved (a query holds it, and the handler
    did not run, or its exception was swallowed by the driver), cancel the running queries, and again
    while it stays there. Not on the first signal inside a shield, nor on a signal after the one that
    began the stop (the clean-up's queries run to their end)."""
    count = 0
    while True:
        try:
            data = reader.recv(64)
        except OSError:
            return
        if not data:
            return
        arrived = sum(1 for byte in data if byte in SIGNALS)
        if not arrived:
            continue
        first = count + 1  # the first of the signals read now (signals that come together are handled once)
        count += arrived
        frame = sys._current_frames().get(main)
        seen = (frame, frame.f_lasti) if frame is not None else None
        del frame
        for _attempt in range(20):
            time.sleep(GRACE)
            after_stop = _state.stop_count is not None and first > _state.stop_count
            if (_state.shield and first == 1) or after_stop or not _stuck(main, seen):
                break
            _cancel_running()
        seen = None


def _checked_out(dbapi_connection, _record, _proxy) -> None:
    with _state.lock:
        _state.connections[id(dbapi_connection)] = dbapi_connection


def _checked_in(dbapi_connection, _record) -> None:
    if dbapi_connection is not None:
        with _state.lock:
            _state.connections.pop(id(dbapi_connection), None)


@contextlib.contextmanager
def installed(deferred: Callable[[int], None] | None = None) -> Iterator[None]:
    """SIGINT and SIGTERM handled as this module says, for the length of the block (main thread only).

    ``deferred(signum)`` is called when a signal waits for the end of a shielded step (to say so)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    reader, writer = socket.socketpair()
    reader.setblocking(True)
    writer.setblocking(False)
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    old_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    _state.__init__()
    _state.deferred = deferred
    event.listen(Pool, "checkout", _checked_out)
    event.listen(Pool, "checkin", _checked_in)
    watcher = threading.Thread(target=_watch, args=(reader, threading.main_thread().ident),
                               name="audlang-interrupts", daemon=True)
    watcher.start()
    for s in SIGNALS:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(old_fd)
        event.remove(Pool, "checkout", _checked_out)
        event.remove(Pool, "checkin", _checked_in)
        writer.close()
        with contextlib.suppress(OSError):
            reader.shutdown(socket.SHUT_RDWR)
        watcher.join(timeout=1)
        reader.close()


def hold(phase: str, conn=None) -> None:
    """The test hook (module docstring): does nothing unless ``AUDLANG_TEST_HOLD`` names this phase."""
    wanted = os.environ.get(HOLD_ENV)
    if not wanted:
        return
    name, _, nth = wanted.partition(":")
    if name != phase:
        return
    _held[phase] += 1
    if _held[phase] != int(nth or 1):
        return
    path = os.environ.get(HOLD_FILE_ENV)
    if path:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(f"{phase} {os.getpid()}\n")
    if conn is not None:
        conn.exec_driver_sql(HOLD_QUERY).fetchall()
    else:
        time.sleep(600)
