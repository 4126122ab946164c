"""The embedded default's DuckDB file: shared by a team, one writer at a time.

DuckDB lets one process open a file read-write, or any number of processes read-only. So:

- read commands open the file read-only (``engines.Role.READ``) and share it with any other reader
  (a notebook, a BI tool);
- ``apply`` holds it read-write for its whole run (``engines.Role.WRITE``) and leaves a note beside it
  (``holding``: its lock id, who, pid and start time);
- a connection that finds the file held waits up to ``AUDLANG_BUSY_TIMEOUT`` seconds (10 by default),
  then fails with E408 (``WarehouseBusy``), naming the apply from its note or the other program's pid;
- the state and its lock live in a SQLite file beside the DuckDB file (``urls.default_state``), so
  they stay readable and lockable while an apply holds the warehouse; a state an earlier audlang kept
  inside the DuckDB file moves there in place the first time it is opened (``adopt``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from audlang import backends
from audlang.diagnostics import AudlangError, Diagnostic, shown_url
from audlang.warehouse.urls import STATE_SUFFIX


def busy_timeout() -> float:
    try:
        return float(os.environ.get("AUDLANG_BUSY_TIMEOUT", "10"))
    except ValueError:
        return 10.0


# ------------------------------------------------------------------ a DuckDB file another process holds


def _busy(error: BaseException) -> str | None:
    text = str(getattr(error, "orig", error))
    if "Could not set lock on file" in text or "Conflicting lock" in text:
        return text
    return None


def waiting_for(database: str, url: str):
    """A ``do_connect`` hook: open the file, waiting a bounded time while another process holds it."""

    def do_connect(dialect, _record, cargs, cparams):
        deadline = time.monotonic() + busy_timeout()
        delay = 0.02
        params = dict(cparams)
        while True:
            try:
                given = {k: v for k, v in params.items() if k != "_shared"}
                return dialect.connect(*cargs, **dict(given, config=dict(given.get("config", {})),
                                                      url_config=dict(given.get("url_config", {}))))
            except Exception as error:  # noqa: BLE001 - duckdb raises its own IOException
                if "different configuration" in str(error) and not params.get("_shared"):
                    # This process has the file open already with the other access mode (a library caller that
                    # writes; a state kept in the warehouse file itself): share the connection's mode.
                    config = dict(params.get("url_config", {}))
                    if "access_mode" in config:
                        del config["access_mode"]
                    else:
                        config["access_mode"] = "read_only"
                    params = {**params, "url_config": config, "_shared": True}
                    continue
                held = _busy(error)
                if held is None:
                    raise
                if time.monotonic() > deadline:
                    raise WarehouseBusy(database, url, held) from None
                time.sleep(delay)
                delay = min(delay * 1.5, 0.2)

    return do_connect


class WarehouseBusy(AudlangError):
    """A DuckDB file stayed held by another process for the whole wait."""

    def __init__(self, database: str, url: str, held: str):
        m = re.search(r"PID (\d+)", held)
        pid = int(m.group(1)) if m else None
        note = holder_note(database)
        if note is not None and (pid is None or note.get("pid") == pid):
            who = (f"apply {note.get('lock_id', '?')} by {note.get('who', '?')} (pid {note.get('pid')}) "
                   f"started at {note.get('started_at', '?')}")
            hint = "wait for it to finish, then run the command again"
        else:
            who = f"another program (pid {pid})" if pid else "another program"
            hint = ("close it, or open the file read-only there (DuckDB lets any number of readers share a "
                    "file, or one writer)")
        super().__init__(Diagnostic.sourceless(
            "E408", f"the warehouse is busy: the DuckDB file is held by {who}; waited {busy_timeout():g} s "
            f"(AUDLANG_BUSY_TIMEOUT); {hint}", shown_url(url)))


def _note_path(database: str) -> Path:
    return Path(database + ".apply.json")


def holder_note(database: str) -> dict | None:
    """The note an apply leaves beside the DuckDB file it holds: its lock id, who, pid, start time."""
    try:
        with open(_note_path(database), encoding="utf-8") as f:
            note = json.loads(f.read(4096))
    except (OSError, ValueError):
        return None
    return note if isinstance(note, dict) else None


@contextlib.contextmanager
def holding(url: str, note: dict) -> Iterator[None]:
    """While an apply holds a DuckDB warehouse file, a note beside it says who (for ``WarehouseBusy``)."""
    database = backends.database_file(url) if backends.backend(url) == "duckdb" else None
    path = _note_path(database) if database else None
    if path is not None:
        with contextlib.suppress(OSError):
            path.write_text(json.dumps(note), encoding="utf-8")
    try:
        yield
    finally:
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()


# ------------------------------------------------------------------ the state moved beside the file

#: The state's tables as they were ever named in a DuckDB warehouse file (control tables of syncs too;
#: the acknowledged log ``audlang_sync_log`` is warehouse data and stays).
STATE_TABLES = ("audlang_state", "audlang_segments", "audlang_objects", "audlang_lock", "audlang_history",
                "audlang_sync_meta", "audlang_sync_targets", "audlang_sync_batches", "audlang_sync_errors",
                "audlang_sync_runs", "audlang_sync_members")  # the last: version 1's members, moved on by migrate_v1


def sibling_warehouse(state_url: str) -> str | None:
    """The DuckDB file whose default state ``state_url`` is, or None."""
    if backends.backend(state_url) != "sqlite":
        return None
    database = backends.database_file(state_url)
    if database is None or not database.endswith(STATE_SUFFIX):
        return None
    return database[: -len(STATE_SUFFIX)] + ".duckdb"


def adopt(state_url: str) -> bool:
    """Move the state out of the sibling DuckDB file if it is still there; whether anything moved."""
    duckdb_file = sibling_warehouse(state_url)
    target = backends.database_file(state_url)
    if duckdb_file is None or target is None or Path(target).exists() or not Path(duckdb_file).exists():
        return False
    with _opened(duckdb_file, state_url, read_only=True) as look:
        present = _tables(look)
    if "audlang_state" not in present:
        return False
    with _opened(duckdb_file, state_url, read_only=False) as source:
        present = _tables(source)
        tables = [t for t in STATE_TABLES if t in present]
        if "audlang_state" not in tables or Path(target).exists():
            return False
        partial = f"{target}.moving-{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
        out = sqlite3.connect(partial)
        try:
            for table in tables:
                _copy(source, out, table)
            out.commit()
        finally:
            out.close()
        try:
            os.link(partial, target)  # never over a state another process moved (and wrote to) meanwhile
        except FileExistsError:
            return False
        finally:
            os.remove(partial)
        source.execute("BEGIN")
        for table in tables:
            source.execute(f'DROP TABLE IF EXISTS "{table}"')
        source.execute("COMMIT")
        return True


def _tables(conn) -> set[str]:
    return {r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}


@contextlib.contextmanager
def _opened(duckdb_file: str, state_url: str, read_only: bool):
    """The DuckDB file, waited for (a bounded time) while another process holds it."""
    import duckdb

    deadline = time.monotonic() + busy_timeout()
    while True:
        try:
            conn = duckdb.connect(duckdb_file, read_only=read_only)
            break
        except duckdb.Error as error:
            if _busy(error) is None or time.monotonic() > deadline:
                raise AudlangError(Diagnostic.sourceless(
                    "E509", f"the state in the warehouse file must move beside it ({STATE_SUFFIX}), but the file "
                    f"cannot be opened for it now: {str(error).splitlines()[0]}; run the command again when no "
                    "other program holds it", shown_url(state_url))) from None
            time.sleep(0.05)
    try:
        conn.execute("SET enable_external_access = false")
        yield conn
    finally:
        conn.close()


_TYPES = {"BOOLEAN": "BOOLEAN", "INTEGER": "INTEGER", "BIGINT": "INTEGER", "SMALLINT": "INTEGER",
          "HUGEINT": "INTEGER", "DOUBLE": "FLOAT", "FLOAT": "FLOAT", "REAL": "FLOAT"}


def _copy(source, out: sqlite3.Connection, table: str) -> None:
    columns = source.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()
    keys: list[str] = []
    for row in source.execute("SELECT constraint_column_names FROM duckdb_constraints() "
                              "WHERE table_name = ? AND constraint_type = 'PRIMARY KEY'", [table]).fetchall():
        keys = list(row[0])
    parts = [f'"{name}" {_TYPES.get(kind.upper(), "VARCHAR")}{"" if nullable == "YES" else " NOT NULL"}'
             for name, kind, nullable in columns]
    if keys:
        parts.append("PRIMARY KEY (" + ", ".join(f'"{k}"' for k in keys) + ")")
    out.execute(f'CREATE TABLE "{table}" ({", ".join(parts)})')
    names = ", ".join(f'"{c[0]}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    rows = source.execute(f'SELECT {names} FROM "{table}"').fetchall()
    out.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', rows)
