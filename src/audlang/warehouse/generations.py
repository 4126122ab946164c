"""Generation tables behind a view: the one storage of materialized membership, on every engine.

A view (a segment's ``audlang_members_<slug>``, or ``audlang_campaign_members``) reads one table, its
current *generation*. A refresh writes the next generation in full with one ``CREATE TABLE … AS
SELECT`` (each row written once, into a table nobody reads yet, with no index to keep up), points the
view at it and drops the generations before it. So a refresh costs what its rows cost, whatever else
is deployed, and a rename renames tables (a catalog change: no row is read or written).

Atomicity. Where the engine has transactions (DuckDB, SQLite, PostgreSQL) all of it runs in the
caller's transaction: another connection sees the old view and table until the commit, then the new
ones, and nothing older is kept. Spark has none: the new table is complete before ``CREATE OR REPLACE
VIEW`` (one catalog update), one previous generation is kept for readers still scanning it
(``keep``), and a write that fails drops its partial table.

Names. ``audlang_gen_<view>_<n>``, numbered up from 1: safe identifiers whatever the segment's name
(``view_name`` is already a plain lower-case one). Where names are cut (``traits.name_limit``: 63
bytes, PostgreSQL's) a view name too long for that with ``NUMBER_DIGITS`` digits gives
``audlang_gen_<8 hex digits of its SHA-256>_<its slug, cut>_<n>``, which never starts like a plain
one (hex digits where a plain one has ``audlang_``). The number is the whole suffix, so a view's
prefix never picks up another view's tables (``…_vip_2`` is no generation of ``…_vi``).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from audlang.check.names import VIEW_PREFIX
from audlang.warehouse.tables import (
    catalog, create_index, create_table_as, drop_table, drop_view, has_table, has_view, plain_name, rename_table,
    replace_view, table_names, traits,
)

GENERATION_PREFIX = "audlang_gen_"
#: Digits kept free for a generation's number in a cut name: a refresh a minute for 19,000 years.
NUMBER_DIGITS = 10


def prefix(conn: sa.Connection, view: str) -> str:
    """The names of ``view``'s generations are this prefix and their number."""
    plain = f"{GENERATION_PREFIX}{plain_name(view)}_"
    limit = traits(conn).name_limit
    if limit is None or len(plain) + NUMBER_DIGITS <= limit:
        return plain
    digest = hashlib.sha256(view.encode("ascii")).hexdigest()[:8]
    room = limit - NUMBER_DIGITS - len(GENERATION_PREFIX) - len(digest) - 2
    slug = view.removeprefix(VIEW_PREFIX)[:max(room, 0)].rstrip("_")
    return f"{GENERATION_PREFIX}{digest}_{slug + '_' if slug else ''}"


def keep(conn: sa.Connection) -> int:
    """Generations kept before the current one: none in a transaction, one for Spark's readers."""
    return 0 if traits(conn).transactions else 1


def generations(conn: sa.Connection, view: str, names: Iterable[str] | None = None) -> list[int]:
    """The numbers of ``view``'s generation tables, in order (the last is the one the view reads).
    ``names``: the warehouse's generation tables, when the caller listed them once for many views."""
    start = prefix(conn, view)
    found = table_names(conn, start) if names is None else [n for n in names if n.startswith(start)]
    return sorted(int(name[len(start):]) for name in found if name[len(start):].isdigit())


class Catalog:
    """The generation tables and segment views of the warehouse, listed once (``catalog``, one query)
    and kept up to date by the refreshes made through it: for a run that refreshes many segments on
    one connection under the apply lock (no other audlang writes meanwhile), so that a refresh costs
    no catalog query at all (a catalog query costs more the more is deployed). Only for refreshes:
    after a rename, a drop, or a failure (apply stops there), it is dropped and listed again."""

    def __init__(self, conn: sa.Connection):
        found = catalog(conn, "audlang_")
        self._kinds = {n: k for n, k in found.items() if n.startswith((GENERATION_PREFIX, VIEW_PREFIX))}

    def listed(self, conn: sa.Connection, view: str) -> tuple[list[int], str | None]:
        """As ``listed``, from the snapshot."""
        start = prefix(conn, view)
        numbers = sorted(int(n[len(start):]) for n, kind in self._kinds.items()
                         if kind == "table" and n.startswith(start) and n[len(start):].isdigit())
        return numbers, self._kinds.get(view)

    def refreshed(self, conn: sa.Connection, view: str, new_table: str, before: list[int]) -> None:
        """``view`` now reads ``new_table``; of ``before`` only the last ``keep`` are left."""
        for number in before[: max(0, len(before) - keep(conn))]:
            self._kinds.pop(table(conn, view, number), None)
        self._kinds[new_table] = "table"
        self._kinds[view] = "view"


def listed(conn: sa.Connection, view: str) -> tuple[list[int], str | None]:
    """``view``'s generations (as ``generations``) and what the catalog holds under the view's own name
    (``"view"``, ``"table"`` or None), in one catalog query: all a refresh needs to know."""
    start = prefix(conn, view)
    found = catalog(conn, start, [view])
    numbers = sorted(int(n[len(start):]) for n, kind in found.items()
                     if kind == "table" and n.startswith(start) and n[len(start):].isdigit())
    return numbers, found.get(view)


def table(conn: sa.Connection, view: str, number: int) -> str:
    return f"{prefix(conn, view)}{number}"


def write(conn: sa.Connection, view: str, query: sa.Select, index: Sequence[str] = (),
          before: list[int] | None = None) -> tuple[str, int | None]:
    """Write ``query`` as ``view``'s next generation, not yet read by the view; returns its table and
    the rows written, where the engine reports them (``tables.create_table_as``).
    ``index``: columns to index where indexes help (made once, after the rows); ``before``: the view's
    generations, when the caller has listed them (then the next number is known to be free)."""
    found = generations(conn, view) if before is None else before
    name = table(conn, view, (found[-1] + 1) if found else 1)
    limit = traits(conn).name_limit
    if limit is not None and len(name) > limit:
        raise ValueError(f"generation table name too long: {name}")
    if before is None or not traits(conn).transactions:
        drop_table(conn, name)  # on Spark: what a write stopped by a kill left
    try:
        rows = create_table_as(conn, name, query)
        if index:
            create_index(conn, name, index)
    except BaseException:
        if not traits(conn).transactions:  # in a transaction the rollback removes it
            with contextlib.suppress(Exception):
                drop_table(conn, name)
        raise
    return name, rows


def swap(conn: sa.Connection, view: str, new_table: str, columns: Sequence[str] = ("customer_id",),
         before: list[int] | None = None, at_view: str | None = None) -> None:
    """Point ``view`` at ``new_table`` (its newest generation), then drop the generations before it but
    ``keep`` (``before``: those generations, when the caller listed them before the write; ``at_view``:
    then also what the catalog held under the view's name, as ``listed`` says). A table, not a view,
    under the view's own name with no generation behind it is what an older audlang wrote there (the
    campaigns' table): dropped before the view takes its name."""
    if before is None:
        before = [n for n in generations(conn, view) if table(conn, view, n) != new_table]
        at_view = "view" if has_view(conn, view) else "table" if has_table(conn, view) else None
    if not before and at_view == "table":
        drop_table(conn, view)
    replace_view(conn, view, _select(columns, new_table))
    prune(conn, view, before)


def prune(conn: sa.Connection, view: str, older: list[int] | None = None) -> None:
    """Drop ``view``'s generations older than its current one (``older``: those, when listed), but
    ``keep``."""
    older = generations(conn, view)[:-1] if older is None else older
    for number in older[: max(0, len(older) - keep(conn))]:
        drop_table(conn, table(conn, view, number))


def rename(conn: sa.Connection, old_view: str, new_view: str, columns: Sequence[str] = ("customer_id",)) -> bool:
    """Move ``old_view``'s generations and view to ``new_view``, renaming tables (no row moves).

    Generations already under the new name (left by a deleted set that had it) are numbered below the
    moved ones and dropped but ``keep``. False when ``old_view`` has no generation to move."""
    if old_view == new_view:
        return True
    found = generations(conn, old_view)
    if not found:
        return False
    there = generations(conn, new_view)
    shift = there[-1] if there and there[-1] >= found[0] else 0
    for number in found:
        rename_table(conn, table(conn, old_view, number), table(conn, new_view, number + shift))
    replace_view(conn, new_view, _select(columns, table(conn, new_view, found[-1] + shift)))
    drop_view(conn, old_view)
    prune(conn, new_view, sorted([*there, *(n + shift for n in found[:-1])]))
    return True


def drop(conn: sa.Connection, view: str) -> None:
    """Remove ``view`` and every generation behind it."""
    drop_view(conn, view)
    for number in generations(conn, view):
        drop_table(conn, table(conn, view, number))


def _select(columns: Sequence[str], source: str) -> str:
    return f"SELECT {', '.join(plain_name(c) for c in columns)} FROM {plain_name(source)}"
