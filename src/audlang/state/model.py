"""Read models of the state: frozen values the planner and the commands consume."""

from __future__ import annotations

import attrs

from audlang.vocabulary import ObjectKind


@attrs.frozen
class DeployedObject:
    """A deployed segment, campaign or destination.

    ``object_id`` is stable across renames: history (and, later, sync state)
    is keyed by it, so a ``moved`` rename keeps them.
    """

    kind: ObjectKind = attrs.field(converter=ObjectKind)
    name: str
    object_id: str
    definition: str  # canonical text (the formatter's), without ``paused`` and comments
    paused: bool = False
    description: str | None = None
    #: names of the objects this one uses (segments for a segment; segment and destinations for a campaign)
    depends_on: tuple[str, ...] = ()
    #: content hashes of the ``in list`` files its definition reads, as "written path=sha256"
    lists: tuple[str, ...] = ()
    #: whether the definition moves with the as-of date (``today``, ``within last``, seasonal dates)
    relative: bool = False
    members: int | None = None  # segments: members at the last refresh
    as_of: str | None = None  # segments: the as-of of the last refresh
    refreshed_at: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


@attrs.frozen
class Snapshot:
    """The whole deployed state at one serial."""

    lineage: str | None  # None: no state yet (the first apply creates it)
    serial: int
    objects: tuple[DeployedObject, ...] = ()
    schema_version: int | None = None

    def get(self, kind: ObjectKind, name: str) -> DeployedObject | None:
        for o in self.objects:
            if o.kind == kind and o.name == name:
                return o
        return None

    def of_kind(self, kind: ObjectKind) -> dict[str, DeployedObject]:
        return {o.name: o for o in self.objects if o.kind == kind}


@attrs.frozen
class LockInfo:
    lock_id: str
    operation: str
    who: str
    host: str
    pid: int
    started_at: str  # ISO 8601, UTC
    version: str = ""


@attrs.frozen
class HistoryEvent:
    seq: int
    apply_id: str
    at: str
    serial: int
    event: str  # apply started, created, updated, renamed, refreshed, deleted, paused, apply finished, …
    kind: str | None = None
    name: str | None = None
    object_id: str | None = None
    detail: str | None = None  # JSON text
