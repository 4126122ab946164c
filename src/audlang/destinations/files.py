"""The csv and sql destinations.

csv: the group's acknowledged membership as a file, rewritten atomically (a
temporary file beside it, then a rename) at the end of every sync; its path
is a sandboxed jinja2 template of ``campaign``, ``group`` and
``destination``, relative to the project folder. Columns: ``customer_id``,
then the other identifiers and fields; rows ordered by customer_id.

sql: a table in any SQLAlchemy database, ``(campaign, group_name,
member_key, customer_id, <identifiers and fields>)``; each batch is one
transaction (an add deletes the keys first, so a batch sent twice leaves
one row each).
"""

from __future__ import annotations

import csv
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

import sqlalchemy as sa
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy.engine import make_url

from audlang.destinations.base import Batch, BatchResult, Member, Settings, SettingsError, Target

_ENV = SandboxedEnvironment(autoescape=False)


def _slug(text: str) -> str:
    """A name safe in a file name: letters, digits, ``-``, ``_``, ``.`` and spaces kept."""
    return re.sub(r"[^\w\-. ]+", "_", text).strip() or "_"


class CsvFile:
    kind = "csv"
    #: ``finish`` writes the whole acknowledged membership (the other destinations ignore it)
    needs_membership = True

    def __init__(self, settings: Settings, target: Target, root: Path):
        self.settings = settings
        self.target = target
        self.batch_size = settings.batch_size
        self.identifiers = settings.identifiers
        try:
            rendered = _ENV.from_string(settings.get("path")).render(
                campaign=_slug(target.campaign), group=_slug(target.group), destination=_slug(target.destination))
        except Exception as error:  # noqa: BLE001 - template errors and sandbox refusals
            raise SettingsError(f"the path template cannot be rendered: {error}") from None
        path = Path(rendered)
        self.path = path if path.is_absolute() else root / path
        self.columns = ["customer_id", *[i for i in self.identifiers if i != "customer_id"], *settings.fields]
        self.stats = (0, 0)

    def add(self, batch: Batch) -> BatchResult:
        return BatchResult(accepted=batch.members)

    def remove(self, batch: Batch) -> BatchResult:
        return BatchResult(accepted=batch.members)

    def finish(self, members: Iterable[Member]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
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


def resolve_database_url(url: str, root: Path) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() in ("duckdb", "sqlite") and parsed.database not in (None, "", ":memory:") \
            and not os.path.isabs(parsed.database):
        parsed = parsed.set(database=str(root / parsed.database))
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


class SqlTable:
    kind = "sql"

    def __init__(self, settings: Settings, target: Target, root: Path):
        self.settings = settings
        self.target = target
        self.batch_size = settings.batch_size
        self.identifiers = settings.identifiers
        self.stats = (0, 0)
        try:
            self.engine = sa.create_engine(resolve_database_url(settings.get("url"), root))
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
