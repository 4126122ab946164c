"""The csv and sql destinations.

csv: the group's acknowledged membership as a file, rewritten atomically (a
temporary file beside it, then a rename) at the end of every sync; its path
is a sandboxed jinja2 template of ``campaign``, ``group`` and
``destination``, relative to the project folder, rendered and checked by
``check.templates`` (the same code ``validate`` runs): a ``.csv`` file inside
the project folder or ``exports_root``, never written through a symbolic
link. Columns: ``customer_id``, then the other identifiers and fields; rows
ordered by customer_id. A path read from ``env("…")`` is rendered at apply
only: messages then name the kind of failure and never show what it renders
to (``"***"``); and two targets whose paths resolve to one file are refused,
every one but the first in the project's order (``shared_files``: the sync
engine asks before it opens them), since each writes its own group's whole
membership there.

sql: a table in any SQLAlchemy database (a DuckDB or SQLite file inside the
same roots), ``(campaign, group_name,
member_key, customer_id, <identifiers and fields>)``; each batch is one
transaction (an add deletes the keys first, so a batch sent twice leaves
one row each).
"""

from __future__ import annotations

import csv
import json
import os
import posixpath
import tempfile
from collections.abc import Iterable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from audlang import ast, backends, warehouse
from audlang.check.templates import (
    HIDDEN, ExportRoots, TemplateProblem, database_file, render_path, resolve_output,
)
from audlang.destinations.base import Batch, BatchResult, Member, Settings, SettingsError, Target, resolve_settings
from audlang.diagnostics import AudlangError


class CsvFile:
    kind = "csv"
    #: ``finish`` writes the whole acknowledged membership (the other destinations ignore it)
    needs_membership = True

    def __init__(self, settings: Settings, target: Target, root: Path, exports_root: Path | None = None):
        self.settings = settings
        self.target = target
        self.batch_size = settings.batch_size
        self.identifiers = settings.identifiers
        self.roots = ExportRoots(Path(root), exports_root)
        #: the path holds ``env("…")`` values: no message shows it, or what the template said
        self.secret = bool(settings.secrets)
        try:
            self.written = _render(settings, target)
            self.path = resolve_output(self.written, self.roots, secret=self.secret)
        except TemplateProblem as problem:
            raise SettingsError(settings.redact(f"refused, nothing written: {problem.explained()}")) from None
        self.columns = ["customer_id", *[i for i in self.identifiers if i != "customer_id"], *settings.fields]
        self.stats = (0, 0)

    @staticmethod
    def audience(settings: Settings, target: Target) -> tuple[tuple[str, str], ...]:
        """The file the group's rows go to, as rendered (relative to the project folder: moving the folder
        changes nothing)."""
        try:
            path = posixpath.normpath(render_path(settings.get("path"), target.campaign, target.group,
                                                  target.destination))
        except TemplateProblem:  # the sync fails when it opens the file; until then, the group's own
            path = json.dumps([settings.get("path"), target.campaign, target.group, target.destination])
        return (("path", path),)

    def add(self, batch: Batch) -> BatchResult:
        return BatchResult(accepted=batch.members)

    def remove(self, batch: Batch) -> BatchResult:
        return BatchResult(accepted=batch.members)

    def finish(self, members: Iterable[Member]) -> None:
        # Checked again just before writing (a folder may have become a link since the sync began), and
        # once more after the folders are made; the rename replaces a regular file or nothing.
        try:
            path = resolve_output(self.written, self.roots, secret=self.secret)
            path.parent.mkdir(parents=True, exist_ok=True)
            path = resolve_output(self.written, self.roots, secret=self.secret)
        except TemplateProblem as problem:
            raise SettingsError(self.settings.redact(f"refused, nothing written: {problem.explained()}")) from None
        self.path = path
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(self.columns)
                for m in sorted(members, key=lambda m: m.customer_id):
                    row = {"customer_id": m.customer_id, **m.data}
                    writer.writerow(["" if row.get(c) is None else row.get(c) for c in self.columns])
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def close(self) -> None:
        return None


def _render(settings: Settings, target: Target) -> str:
    """The csv path of a target at apply: a template failure names its kind and line only (the template
    may come from the environment), and a path built from ``env("…")`` is never shown."""
    return render_path(settings.get("path"), target.campaign, target.group, target.destination, detail=False,
                       secret=bool(settings.secrets))


def shared_files(targets: Iterable[tuple[Target, ast.Destination]], env, root: Path,
                 exports_root: Path | None = None) -> dict[Target, str]:
    """The csv targets whose paths, rendered with the environment's values, resolve to a file an earlier
    one (in the order given) writes too, each with the message its sync fails with: the first keeps the
    file, the others write nothing (never one group's rows over another's). Validate finds this for
    literal paths (E126); paths read from ``env("…")`` are known only here. Files compare as validate
    compares them (case folded). A target whose settings or path cannot be used is left alone: it fails
    when it is opened, and claims no file."""
    roots = ExportRoots(Path(root), Path(exports_root) if exports_root is not None else None)
    first: dict[str, Target] = {}
    out: dict[Target, str] = {}
    for target, decl in targets:
        if decl.kind != "csv":
            continue
        try:
            settings = resolve_settings(decl, env)
            written = _render(settings, target)
            final = resolve_output(written, roots, secret=bool(settings.secrets))
        except (SettingsError, TemplateProblem):
            continue
        key = os.path.normcase(str(final)).casefold()
        owner = first.setdefault(key, target)
        if owner != target:
            shown = HIDDEN if settings.secrets else json.dumps(written, ensure_ascii=False)
            out[target] = settings.redact(
                f"refused, nothing written: the path {shown} names the file {owner} writes; two syncs never "
                "write one file, each would replace the other's members (give each destination and group "
                "its own path)")
    return out


def resolve_database_url(url: str, root: Path, exports_root: Path | None = None) -> str:
    """The URL to open: a DuckDB or SQLite file resolved against the project folder and refused outside it
    (and ``exports_root``) with a ``SettingsError``; ``postgresql://`` gets the psycopg driver."""
    parsed = make_url(url)
    try:
        database = database_file(url)
        resolved = resolve_output(database, ExportRoots(Path(root), exports_root), "the database file") \
            if database is not None else None
    except TemplateProblem as problem:
        raise SettingsError(f"refused, nothing written: {problem.explained()}") from None
    if resolved is not None:
        parsed = parsed.set(database=str(resolved))
        resolved.parent.mkdir(parents=True, exist_ok=True)
    return backends.with_driver(parsed).render_as_string(hide_password=False)


class SqlTable:
    kind = "sql"

    def __init__(self, settings: Settings, target: Target, root: Path, exports_root: Path | None = None):
        self.settings = settings
        self.target = target
        self.batch_size = settings.batch_size
        self.identifiers = settings.identifiers
        self.stats = (0, 0)
        try:
            url = resolve_database_url(settings.get("url"), root, exports_root)
        except SettingsError as error:
            raise SettingsError(settings.redact(str(error))) from None
        except Exception as error:  # noqa: BLE001 - a URL SQLAlchemy cannot read
            raise SettingsError(settings.redact(f"cannot open the database: {error}")) from None
        try:
            self.engine = warehouse.open_engine(url, warehouse.Role.WRITE, must_exist=False)
        except AudlangError as error:
            raise SettingsError(settings.redact(f"cannot open the database: {error.diagnostics[0].message}")) from None
        except Exception as error:  # noqa: BLE001 - bad URLs and missing drivers
            raise SettingsError(settings.redact(f"cannot open the database: {error}")) from None
        schema, _, name = settings.get("table").rpartition(".")
        columns = [i for i in self.identifiers if i != "customer_id"] + list(settings.fields)
        self.table = sa.Table(
            name, sa.MetaData(), sa.Column("campaign", sa.String(500), nullable=False),
            sa.Column("group_name", sa.String(500), nullable=False),
            sa.Column("member_key", sa.String(500), nullable=False),
            sa.Column("customer_id", sa.String(500), nullable=False),
            *[sa.Column(c, sa.String) for c in columns],
            schema=schema or None)
        self.columns = columns
        self._created = False

    @staticmethod
    def audience(settings: Settings, target: Target) -> tuple[tuple[str, str], ...]:
        """The rows the group's members become: the table's rows keyed by campaign and group."""
        return (("url", str(settings.get("url"))), ("table", str(settings.get("table"))),
                ("campaign", target.campaign), ("group", target.group))

    def _ensure(self, conn: sa.Connection) -> None:
        if not self._created:
            self.table.create(conn, checkfirst=True)
            self._created = True

    def _delete(self, conn: sa.Connection, keys: list[str]) -> None:
        t = self.table
        for start in range(0, len(keys), 500):
            conn.execute(t.delete().where(t.c.campaign == self.target.campaign, t.c.group_name == self.target.group,
                                          t.c.member_key.in_(keys[start:start + 500])))

    def add(self, batch: Batch) -> BatchResult:
        rows = [{"campaign": self.target.campaign, "group_name": self.target.group, "member_key": m.key,
                 "customer_id": m.customer_id, **{c: _text(m.data.get(c)) for c in self.columns}}
                for m in batch.members]
        with self.engine.begin() as conn:
            self._ensure(conn)
            self._delete(conn, [m.key for m in batch.members])
            if rows:
                conn.execute(self.table.insert(), rows)
        return BatchResult(accepted=batch.members)

    def remove(self, batch: Batch) -> BatchResult:
        with self.engine.begin() as conn:
            self._ensure(conn)
            self._delete(conn, [m.key for m in batch.members])
        return BatchResult(accepted=batch.members)

    def finish(self, members: Iterable[Member]) -> None:
        return None

    def close(self) -> None:
        self.engine.dispose()


def _text(value) -> str | None:
    return None if value is None else str(value)
