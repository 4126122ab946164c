"""A plan and the apply that carries it out in one process (``audlang apply --auto-approve``).

One warehouse connection, opened for writing, serves both, so the run's shared facts
(``compile.facts``) are computed once: the plan's membership preview computes them for every
segment it counts, and apply, which materializes some of those segments at the same as-of instant,
reads the same scratch tables instead of scanning the orders again. Without a session (``audlang
plan``, a saved plan, an apply that asks for confirmation) each stage opens its own connection and
computes its own facts: a plan opens the warehouse read-only, and nothing holds a DuckDB file while
a person reads the plan.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from audlang import warehouse
from audlang.check import Model
from audlang.compile import AsOf
from audlang.compile.facts import SharedFacts
from audlang.state.store import connect


class Session:
    """``with Session(url) as session:`` plan_project(…, session=session), then apply_plan(…, session=session)."""

    def __init__(self, url: str):
        self.url = url
        self._stack = contextlib.ExitStack()
        self._engine: Engine | None = None
        self._conn: sa.Connection | None = None
        self._facts: SharedFacts | None = None
        self._names: frozenset[str] = frozenset()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = warehouse.open_engine(self.url, warehouse.Role.WRITE)
        return self._engine

    @property
    def conn(self) -> sa.Connection:
        if self._conn is None:
            self._conn = self._stack.enter_context(contextlib.closing(connect(self.engine, self.url)))
        return self._conn

    def facts(self, model: Model, as_of: AsOf, names: Iterable[str]) -> SharedFacts:
        """The shared facts of ``names`` on this connection: those already made when they cover them at
        this as-of instant (the plan's, for apply), else made now. Call outside a transaction or in
        the connection's own."""
        wanted = frozenset(names)
        if self._facts is not None and self._facts.model is model and self._facts.as_of == as_of \
                and wanted <= self._names:
            return self._facts
        if self._facts is not None:
            self._drop()
        facts = SharedFacts.collect(model, as_of, wanted)
        self._stack.enter_context(warehouse.shared_facts(self.conn, facts))
        self._facts, self._names = facts, wanted
        return facts

    def _drop(self) -> None:
        # the facts are the last context entered; closing everything also closes the connection
        self._stack.close()
        self._stack = contextlib.ExitStack()
        self._conn, self._facts, self._names = None, None, frozenset()

    def close(self) -> None:
        self._stack.close()
        if self._engine is not None:
            self._engine.dispose()
        self._engine = self._conn = self._facts = None
