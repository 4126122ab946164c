"""The state store: tables (with a schema version), snapshots, writes under a serial, the lock, history.

Tables (schema version ``SCHEMA_VERSION``), all in the state database:

- ``audlang_state``: one row — schema_version, lineage (a uuid naming this
  state's history), serial (increases on every write), updated_at;
- ``audlang_objects``: one row per deployed segment, campaign and destination,
  keyed by (kind, name), with a stable ``object_id`` and the canonical definition;
- ``audlang_lock``: at most one row (primary key ``name = 'apply'``): the apply
  that holds the lock. On PostgreSQL the holder also keeps a session advisory
  lock, so a holder that died (its session ended) is told from a live one
  across machines; elsewhere a holder on this host whose process is gone is dead;
- ``audlang_history``: append-only events of every apply;
- the sync's control tables (``sync_tables``): its targets, the batches in
  flight, rejected members and runs.

Every write is one transaction that also increases the serial, so a saved plan
made against serial N is stale as soon as anything was written after it.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import time
import uuid
import zlib
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from audlang import warehouse
from audlang.diagnostics import AudlangError, Diagnostic, shown_url
from audlang.state.clock import now
from audlang.state.model import DeployedObject, HistoryEvent, LockInfo, Snapshot

#: The one schema version of every state table, the sync's included (``schema`` upgrades older ones).
SCHEMA_VERSION = 2
LOCK_NAME = "apply"

metadata = sa.MetaData()
state_table = sa.Table(
    "audlang_state", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("lineage", sa.String(64), nullable=False),
    sa.Column("serial", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)
objects_table = sa.Table(
    "audlang_objects", metadata,
    sa.Column("kind", sa.String(20), primary_key=True),
    sa.Column("name", sa.String(500), primary_key=True),
    sa.Column("object_id", sa.String(64), nullable=False),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("paused", sa.Boolean, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("depends_on", sa.Text, nullable=False),  # JSON list
    sa.Column("lists", sa.Text, nullable=False),  # JSON list
    sa.Column("relative", sa.Boolean, nullable=False),
    sa.Column("members", sa.Integer),
    sa.Column("as_of", sa.String(40)),
    sa.Column("refreshed_at", sa.String(40)),
    sa.Column("created_at", sa.String(40)),
    sa.Column("updated_at", sa.String(40)),
)
lock_table = sa.Table(
    "audlang_lock", metadata,
    sa.Column("name", sa.String(20), primary_key=True),
    sa.Column("lock_id", sa.String(64), nullable=False),
    sa.Column("operation", sa.String(40), nullable=False),
    sa.Column("who", sa.String(200), nullable=False),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", sa.String(40), nullable=False),
    sa.Column("version", sa.String(40), nullable=False),
)
history_table = sa.Table(
    "audlang_history", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("apply_id", sa.String(64), nullable=False),
    sa.Column("recorded_at", sa.String(40), nullable=False),
    sa.Column("serial", sa.Integer, nullable=False),
    sa.Column("event", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(20)),
    sa.Column("name", sa.String(500)),
    sa.Column("object_id", sa.String(64)),
    sa.Column("detail", sa.Text),
)


def shown(url: str) -> str:
    return shown_url(url)


def refuse_unsupported(url: str) -> None:
    """A state URL on an engine that cannot hold the state (Spark and friends) → a clear error."""
    open_engine(url).dispose()


def open_engine(url: str) -> Engine:
    """An Engine for the state database (``warehouse.open_engine`` in the state role): Spark and other
    engines without transactions are refused (E502); a DuckDB file is opened per transaction."""
    return warehouse.open_engine(url, warehouse.Role.STATE)


def connect(engine: Engine, url: str) -> sa.Connection:
    """``engine.connect()``; a DuckDB file another process holds is waited for (``warehouse.engines``)."""
    try:
        return engine.connect()
    except DBAPIError as error:
        raise AudlangError(Diagnostic.sourceless("E503", f"cannot connect: {_reason(error)}",
                                                 shown(url))) from None


@contextlib.contextmanager
def begin(engine: Engine, url: str) -> Iterator[sa.Connection]:
    """``engine.begin()``, errors → diagnostics."""
    conn = connect(engine, url)
    try:
        with conn.begin():
            yield conn
    finally:
        conn.close()


def _reason(error: BaseException) -> str:
    return warehouse.reason(error)


class LockHeld(AudlangError):
    """Another apply holds the lock."""

    def __init__(self, info: LockInfo | None, url: str):
        self.info = info
        if info is None:
            message = ("the state is locked by another apply that is still running (its lock row was removed by "
                       "force-unlock); wait for it to finish")
        else:
            message = (f"the state is locked: {info.operation} by {info.who} (pid {info.pid} on {info.host}) "
                       f"since {info.started_at}, lock id {info.lock_id}; wait for it to finish, or if that "
                       f"process is gone: audlang force-unlock {info.lock_id}")
        super().__init__(Diagnostic.sourceless("E510", message, shown(url)))


def _json_list(text: str | None) -> tuple[str, ...]:
    return tuple(json.loads(text)) if text else ()


def _gone_from_this_host(held: LockInfo) -> bool:
    """A holder on this host whose process is gone (a holder elsewhere cannot be checked from here)."""
    return held.host == socket.gethostname() and not _pid_alive(held.pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _begin_for_ddl(conn: sa.Connection) -> bool:
    """Make the CREATEs and ALTERs that follow part of the transaction; True when it began only now.

    A driver that opens its transaction only before INSERT, UPDATE or DELETE, and says so in
    ``in_transaction`` (pysqlite, SQLite's), would commit each statement of an upgrade on its own: it
    gets its BEGIN here, IMMEDIATE so that two processes upgrading one file take turns (waiting for the
    write lock) instead of deadlocking. Every other driver is in a transaction already."""
    if getattr(conn.connection.dbapi_connection, "in_transaction", True):
        return False
    conn.exec_driver_sql("BEGIN IMMEDIATE")
    return True


class StateStore:
    """The state in one database. Each method is one transaction."""

    def __init__(self, url: str, engine: Engine | None = None):
        self.url = url
        if engine is None:
            warehouse.duckdb_files.adopt(url)
        self.engine = engine or open_engine(url)
        self._session_lock: warehouse.SessionLock | None = None
        self._lock_id: str | None = None

    @contextlib.contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        try:
            with begin(self.engine, self.url) as conn:
                yield conn
        except AudlangError:
            raise
        except DBAPIError as error:
            raise AudlangError(Diagnostic.sourceless("E505", f"the state database refused: {_reason(error)}",
                                                     shown(self.url))) from None
        except SQLAlchemyError as error:
            raise AudlangError(Diagnostic.sourceless("E505", f"state database error: {_reason(error)}",
                                                     shown(self.url))) from None

    # ------------------------------------------------------------------ schema
    def schema_version(self, conn: sa.Connection) -> int | None:
        """The version of the state's tables: None when there is no state, 0 for the prototype layout."""
        inspector = sa.inspect(conn)
        if not inspector.has_table("audlang_state"):
            return None
        columns = set(conn.execute(sa.text("SELECT * FROM audlang_state WHERE 1 = 0")).keys())
        if "schema_version" not in columns:
            return 0
        value = conn.execute(sa.select(state_table.c.schema_version)).scalar()
        return 0 if value is None else int(value)

    def prepare(self, create: bool) -> int | None:
        """Upgrade an older state in place; with ``create``, make the tables of a new one.

        Returns the schema version now in the database (None: no state and not created). Sync tables an
        older audlang made alone (a sync run outside plan and apply) are an older state too: upgraded.
        """
        from audlang.state import schema, sync_tables

        for attempt in range(3):
            try:
                with self.begin() as conn:
                    version = self.schema_version(conn)
                    to_do = version < SCHEMA_VERSION if version is not None else create or sync_tables.found(conn)
                    if to_do and _begin_for_ddl(conn):  # looked at outside the driver's transaction: again
                        version = self.schema_version(conn)
                    if version is not None and version > SCHEMA_VERSION:
                        raise AudlangError(Diagnostic.sourceless(
                            "E506", f"the state was written by a newer audlang (state schema version {version}; "
                            f"this audlang knows up to {SCHEMA_VERSION}); upgrade audlang", shown(self.url)))
                    if version is not None and version < SCHEMA_VERSION:
                        schema.upgrade(conn, version)
                        return SCHEMA_VERSION
                    if version is None and (create or sync_tables.found(conn)):
                        metadata.create_all(conn)
                        conn.execute(state_table.insert().values(
                            id=1, schema_version=SCHEMA_VERSION, lineage=str(uuid.uuid4()), serial=0,
                            updated_at=now()))
                        sync_tables.upgrade(conn)  # created, or those of a sync alone brought up
                        return SCHEMA_VERSION
                    return version
            except AudlangError as error:
                # Two processes creating the tables at once (on SQLite also "UNIQUE constraint failed" on the state
                # row): the loser sees them on the next try (or, when the other's creating transaction rolled back
                # between our look and our read, finds none and makes them).
                text = str(error).lower()
                racing = ("already exists", "duplicate", "unique", "no such table")
                if attempt == 2 or not any(s in text for s in racing):
                    raise
                time.sleep(0.1)
        return None

    # ------------------------------------------------------------------ reading
    def snapshot(self) -> Snapshot:
        version = self.prepare(create=False)
        if version is None:
            return Snapshot(lineage=None, serial=0)
        with self.begin() as conn:
            return self._snapshot(conn)

    def _snapshot(self, conn: sa.Connection) -> Snapshot:
        row = conn.execute(sa.select(state_table)).one()
        objects = tuple(self._object(r) for r in conn.execute(
            sa.select(objects_table).order_by(objects_table.c.kind, objects_table.c.name)))
        return Snapshot(lineage=row.lineage, serial=row.serial, objects=objects, schema_version=row.schema_version)

    @staticmethod
    def _object(r) -> DeployedObject:
        return DeployedObject(
            kind=r.kind, name=r.name, object_id=r.object_id, definition=r.definition, paused=bool(r.paused),
            description=r.description, depends_on=_json_list(r.depends_on), lists=_json_list(r.lists),
            relative=bool(r.relative), members=r.members, as_of=r.as_of, refreshed_at=r.refreshed_at,
            created_at=r.created_at, updated_at=r.updated_at)

    def history(self, name: str | None = None, limit: int | None = None) -> list[HistoryEvent]:
        if self.prepare(create=False) is None:
            return []
        query = sa.select(history_table).order_by(history_table.c.seq)
        with self.begin() as conn:
            if name is not None:
                ids = {r.object_id for r in conn.execute(
                    sa.select(history_table.c.object_id).where(history_table.c.name == name))} - {None}
                query = query.where(sa.or_(history_table.c.name == name, history_table.c.object_id.in_(ids)))
            rows = conn.execute(query).fetchall()
        events = [HistoryEvent(r.seq, r.apply_id, r.recorded_at, r.serial, r.event, r.kind, r.name, r.object_id,
                               r.detail) for r in rows]
        return events[-limit:] if limit else events

    # ------------------------------------------------------------------ writing
    def _next_seq(self, conn: sa.Connection) -> int:
        return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(history_table.c.seq), 0))).scalar()) + 1

    def _event(self, conn, apply_id: str, serial: int, event: str, kind=None, name=None, object_id=None,
               detail: dict | None = None) -> None:
        conn.execute(history_table.insert().values(
            seq=self._next_seq(conn), apply_id=apply_id, recorded_at=now(), serial=serial, event=event, kind=kind,
            name=name, object_id=object_id, detail=json.dumps(detail, sort_keys=True) if detail is not None else None))

    def _check_lock(self, conn: sa.Connection) -> None:
        if self._lock_id is None:
            return
        held = conn.execute(sa.select(lock_table.c.lock_id).where(lock_table.c.name == LOCK_NAME)).scalar()
        if held != self._lock_id:
            raise AudlangError(Diagnostic.sourceless(
                "E511", f"the lock {self._lock_id} was taken away (force-unlock) while this apply ran; stopped "
                "before writing more", shown(self.url)))

    def log(self, apply_id: str, event: str, detail: dict | None = None) -> int:
        """An event that changes nothing deployed (apply started / finished / failed)."""
        with self.begin() as conn:
            serial = conn.execute(sa.select(state_table.c.serial)).scalar()
            self._event(conn, apply_id, serial, event, detail=detail)
            return serial

    def write(self, apply_id: str, event: str, *, put: DeployedObject | None = None,
              delete: tuple[str, str] | None = None, rename: tuple[str, str, str] | None = None,
              detail: dict | None = None) -> int:
        """One change of the deployed state with its history event, under serial + 1. Returns the new serial."""
        with self.begin() as conn:
            self._check_lock(conn)
            serial = conn.execute(sa.select(state_table.c.serial)).scalar() + 1
            conn.execute(state_table.update().values(serial=serial, updated_at=now()))
            subject = put
            if rename is not None:
                kind, old, new = rename
                conn.execute(objects_table.update().where(objects_table.c.kind == kind, objects_table.c.name == old)
                             .values(name=new, updated_at=now()))
                row = conn.execute(sa.select(objects_table).where(objects_table.c.kind == kind,
                                                                  objects_table.c.name == new)).first()
                if row is not None and put is None:
                    subject = self._object(row)
            if delete is not None:
                kind, name = delete
                row = conn.execute(sa.select(objects_table).where(objects_table.c.kind == kind,
                                                                  objects_table.c.name == name)).first()
                if row is not None:
                    subject = self._object(row)
                conn.execute(objects_table.delete().where(objects_table.c.kind == kind, objects_table.c.name == name))
            if put is not None:
                values = dict(
                    kind=put.kind, name=put.name, object_id=put.object_id, definition=put.definition,
                    paused=put.paused, description=put.description, depends_on=json.dumps(list(put.depends_on)),
                    lists=json.dumps(list(put.lists)), relative=put.relative, members=put.members, as_of=put.as_of,
                    refreshed_at=put.refreshed_at, created_at=put.created_at or now(), updated_at=now())
                conn.execute(objects_table.delete().where(objects_table.c.kind == put.kind,
                                                          objects_table.c.name == put.name))
                conn.execute(objects_table.insert().values(**values))
            self._event(conn, apply_id, serial, event, subject.kind if subject else None,
                        subject.name if subject else None, subject.object_id if subject else None, detail)
            return serial

    # ------------------------------------------------------------------ the lock
    def current_lock(self) -> LockInfo | None:
        if self.prepare(create=False) is None:
            return None
        with self.begin() as conn:
            return self._read_lock(conn)

    @staticmethod
    def _read_lock(conn: sa.Connection) -> LockInfo | None:
        row = conn.execute(sa.select(lock_table).where(lock_table.c.name == LOCK_NAME)).first()
        if row is None:
            return None
        return LockInfo(row.lock_id, row.operation, row.who, row.host, row.pid, row.started_at, row.version)

    def _advisory_key(self) -> int:
        return zlib.crc32(b"audlang-state-lock")

    def acquire(self, operation: str = "apply") -> tuple[LockInfo, LockInfo | None]:
        """Take the lock, or raise ``LockHeld`` at once. Returns (our lock, a dead holder's lock taken over)."""
        from audlang import __version__

        self.prepare(create=True)
        self._session_lock = warehouse.session_lock(self.engine, self._advisory_key())
        if self._session_lock is None:
            raise LockHeld(self.current_lock(), self.url)
        info = LockInfo(lock_id=str(uuid.uuid4()), operation=operation, who=_who(), host=socket.gethostname(),
                        pid=os.getpid(), started_at=now(), version=__version__)
        taken_over: LockInfo | None = None
        for _attempt in range(2):
            try:
                with self.begin() as conn:
                    conn.execute(lock_table.insert().values(name=LOCK_NAME, **_lock_values(info)))
                self._lock_id = info.lock_id
                return info, taken_over
            except AudlangError:
                held = self.current_lock()
                if held is None:
                    continue  # released meanwhile: try again
                if not self._dead(held):
                    self._drop_advisory()
                    raise LockHeld(held, self.url) from None
                with self.begin() as conn:
                    conn.execute(lock_table.delete().where(lock_table.c.name == LOCK_NAME,
                                                           lock_table.c.lock_id == held.lock_id))
                taken_over = held
        self._drop_advisory()
        raise LockHeld(self.current_lock(), self.url)

    def refuse_if_locked(self) -> None:
        """Raise ``LockHeld`` now if a live apply holds the lock (``acquire`` takes it later)."""
        held = self.current_lock()
        if held is not None and not _gone_from_this_host(held):
            raise LockHeld(held, self.url)

    def _dead(self, held: LockInfo) -> bool:
        """Whether the lock's holder is gone: on PostgreSQL we hold the advisory lock (so it is not alive);
        elsewhere only a holder on this host can be checked."""
        if warehouse.has_session_locks(self.engine):
            return True
        return _gone_from_this_host(held)

    def _drop_advisory(self) -> None:
        if self._session_lock is not None:
            self._session_lock.release()
            self._session_lock = None

    def release(self) -> None:
        if self._lock_id is not None:
            with contextlib.suppress(AudlangError), self.begin() as conn:
                conn.execute(lock_table.delete().where(lock_table.c.name == LOCK_NAME,
                                                       lock_table.c.lock_id == self._lock_id))
            self._lock_id = None
        self._drop_advisory()

    def force_unlock(self, lock_id: str) -> LockInfo:
        held = self.current_lock()
        if held is None:
            raise AudlangError(Diagnostic.sourceless("E512", "the state is not locked", lock_id))
        if held.lock_id != lock_id:
            raise AudlangError(Diagnostic.sourceless(
                "E512", f"the state is locked under another id ({held.lock_id}, by {held.who} since "
                f"{held.started_at}); nothing released", lock_id))
        with self.begin() as conn:
            conn.execute(lock_table.delete().where(lock_table.c.name == LOCK_NAME, lock_table.c.lock_id == lock_id))
            serial = conn.execute(sa.select(state_table.c.serial)).scalar()
            self._event(conn, lock_id, serial, "force-unlock", detail={"holder": held.who, "pid": held.pid,
                                                                       "host": held.host,
                                                                       "started_at": held.started_at})
        return held


def _lock_values(info: LockInfo) -> dict:
    return dict(lock_id=info.lock_id, operation=info.operation, who=info.who, host=info.host, pid=info.pid,
                started_at=info.started_at, version=info.version)


def _who() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
