"""The plan as data: frozen attrs values, compared by value, rendered elsewhere.

Fields marked *display* are for people only; apply never reads them.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from audlang.plan.desired import DesiredObject
from audlang.vocabulary import ObjectKind, PlanAction, ReasonCode, SyncPreviewStatus

def _names(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str) or not all(isinstance(name, str) for name in value):
        raise TypeError(f"a reason's detail is a list of names, not {value!r}")
    return tuple(value)


@attrs.frozen
class Reason:
    """Why an action is in the plan: a code scripts switch on, and the names its sentence cites.

    The sentence people read (``renamed from "Old"``) is the renderer's (``render.reason_text``).
    """

    code: ReasonCode = attrs.field(converter=ReasonCode)
    #: the names the reason is about: the deployed name of a rename, the upstream segments that changed
    detail: tuple[str, ...] = attrs.field(default=(), converter=_names)

    @detail.validator
    def _check(self, _attribute: attrs.Attribute[tuple[str, ...]], detail: tuple[str, ...]) -> None:
        least, most = _CITES.get(self.code, (0, 0))
        if not least <= len(detail) <= most:
            raise ValueError(f"reason {self.code} cites {least} to {most} names, not {list(detail)!r}")


#: How many names each reason's detail holds (the others hold none).
_CITES = {ReasonCode.RENAMED: (1, 1), ReasonCode.UPSTREAM_CHANGED: (1, 10**9)}


def _reasons(value: Iterable[Reason]) -> tuple[Reason, ...]:
    return tuple(value)


@attrs.frozen
class MembershipPreview:
    """Who would be in a segment, counted in the warehouse against its deployed membership."""

    members: int  # after
    deployed: int  # rows in the deployed membership now
    added: int
    removed: int


@attrs.frozen
class MembershipChange:
    before: int | None  # None: no deployed membership
    after: int | None  # None: not computed (paused, deleted)
    added: int
    removed: int


@attrs.frozen
class SyncPreview:
    """What apply would send to one destination for one campaign group (counted at plan time)."""

    campaign: str
    group: str
    destination: str
    kind: str  # the destination's kind
    status: SyncPreviewStatus = attrs.field(converter=SyncPreviewStatus)
    adds: int = 0
    removes: int = 0
    skipped: int = 0  # members without a usable identifier, or duplicates after normalization
    pending: int = 0  # batches an interrupted apply left, sent first
    #: display: the guard that holds the sync back, why it is paused or blocked
    message: str | None = None


#: The sync statuses that make a plan a change (``--detailed-exitcode``).
CHANGING_SYNCS = frozenset({SyncPreviewStatus.SEND, SyncPreviewStatus.HELD, SyncPreviewStatus.BLOCKED,
                            SyncPreviewStatus.STOPPED})


@attrs.frozen
class Action:
    kind: ObjectKind = attrs.field(converter=ObjectKind)
    name: str
    action: PlanAction = attrs.field(converter=PlanAction)
    #: why: definition changed, window moved with the as-of date, data changed, … (apply records them)
    reasons: tuple[Reason, ...] = attrs.field(default=(), converter=_reasons)
    previous_name: str | None = None  # rename: the deployed name
    object_id: str | None = None  # the deployed object's stable id (None when created)
    before: str | None = None  # deployed canonical definition
    after: str | None = None  # desired canonical definition
    membership: MembershipChange | None = None
    #: display: what a deleted segment fed ("campaign "X" → destination "Y"")
    feeds: tuple[str, ...] = ()
    #: the desired object to record (None for delete)
    desired: DesiredObject | None = None
    #: whether apply recomputes the segment's membership
    materialize: bool = False

    @property
    def definition_changed(self) -> bool:
        return self.before is not None and self.after is not None and self.before != self.after


@attrs.frozen
class Plan:
    as_of: str
    lineage: str | None  # the deployed state's lineage (None: no state yet)
    serial: int  # the deployed state's serial the plan was made against
    actions: tuple[Action, ...] = ()
    unchanged: tuple[str, ...] = ()  # "kind name" of objects with nothing to do (display)
    warnings: tuple[str, ...] = ()  # display
    #: the desired project as planned: {path relative to the project: text}, for apply of a saved plan
    sources: tuple[tuple[str, str], ...] = ()
    #: list files the desired definitions read: (written path in its file, sha256)
    lists: tuple[tuple[str, str], ...] = ()
    project: str = ""
    #: per campaign group and destination, what the syncs after materialization would send
    syncs: tuple[SyncPreview, ...] = ()
    #: made with --allow-removals: apply sends syncs the removal guards would hold back
    allow_removals: bool = False

    @property
    def has_changes(self) -> bool:
        return any(a.action != PlanAction.PAUSED or a.desired is not None for a in self.actions) or \
            any(s.status in CHANGING_SYNCS for s in self.syncs)

    def count(self, action: PlanAction) -> int:
        return sum(1 for a in self.actions if a.action == action)

    @property
    def added(self) -> int:
        return sum(a.membership.added for a in self.actions if a.membership)

    @property
    def removed(self) -> int:
        return sum(a.membership.removed for a in self.actions if a.membership)
