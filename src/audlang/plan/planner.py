"""The planner: a pure function (desired, deployed, membership preview) → Plan. No I/O.

Order of the actions: scores (recorded only: nothing is materialized for
them), segments in dependency order (creations, updates, renames and refreshes
at their place), then destinations, then campaigns; deletions last, in
reverse: campaigns, destinations, segments with those that use others first,
then scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

from audlang.diagnostics import AudlangError, Diagnostic
from audlang.plan.desired import Desired, DesiredObject
from audlang.plan.model import Action, MembershipChange, MembershipPreview, Plan, Reason
from audlang.state.model import DeployedObject, Snapshot
from audlang.syntax.formatter import quote
from audlang.vocabulary import ObjectKind, PlanAction, ReasonCode

KIND_ORDER = (ObjectKind.SCORE, ObjectKind.SEGMENT, ObjectKind.DESTINATION, ObjectKind.CAMPAIGN)


class _Common(TypedDict):
    """The fields every action on a deployed, still desired object carries."""

    previous_name: str | None
    object_id: str
    before: str
    after: str
    desired: DesiredObject


def plan(desired: Desired, deployed: Snapshot, preview: Mapping[str, MembershipPreview], as_of: str,
         warnings: tuple[str, ...] = ()) -> Plan:
    """What apply must do to turn ``deployed`` into ``desired`` at ``as_of``.

    ``preview`` holds, for each segment to be refreshed (not paused), its
    membership counted in the warehouse against the deployed membership (of
    its old name, for a rename). Raises ``AudlangError`` for a plan that
    cannot be carried out (a deleted segment still in use, a conflicting move).
    """
    errors: list[Diagnostic] = []
    actions: list[Action] = []
    unchanged: list[str] = []
    renamed_from: dict[tuple[ObjectKind, str], DeployedObject] = {}
    moved_away: set[tuple[ObjectKind, str]] = set()

    for kind, old, new in desired.moves:
        have_old = deployed.get(kind, old)
        if have_old is None:
            continue  # already applied: a `moved` may stay in the code
        if deployed.get(kind, new) is not None:
            errors.append(Diagnostic.sourceless(
                "E520", f'cannot move {kind} "{old}" to "{new}": both are deployed; remove the `moved` '
                f'declaration or delete one of them first', f'{kind} "{new}"'))
            continue
        renamed_from[(kind, new)] = have_old
        moved_away.add((kind, old))

    changed_members: set[str] = set()
    for kind in KIND_ORDER:
        for name, want in desired.of_kind(kind).items():
            have = deployed.get(kind, name)
            previous = None
            if have is None and (kind, name) in renamed_from:
                have = renamed_from[(kind, name)]
                previous = have.name
            action = _action(want, have, previous, preview.get(name) if kind == ObjectKind.SEGMENT else None,
                             as_of, changed_members)
            if action is None:
                unchanged.append(f'{kind} "{name}"')
                continue
            moved = action.membership is not None and (action.membership.added or action.membership.removed)
            if kind == ObjectKind.SEGMENT and moved:
                changed_members.add(name)
            actions.append(action)

    deletions: list[Action] = []
    wanted = {(o.kind, o.name) for o in desired.objects}
    deleted_names = {(o.kind, o.name) for o in deployed.objects
                     if (o.kind, o.name) not in wanted and (o.kind, o.name) not in moved_away}
    for kind in reversed(KIND_ORDER):
        gone = [o for o in deployed.objects if o.kind == kind and (kind, o.name) in deleted_names]
        if kind == ObjectKind.SEGMENT:
            gone = _dependents_first(gone)
        for o in gone:
            users = [f"{w.kind} \"{w.name}\"" for w in desired.objects
                     if (w.kind == kind == ObjectKind.SEGMENT and o.name in w.depends_on)
                     or (w.kind == ObjectKind.CAMPAIGN and f"{kind}:{o.name}" in w.depends_on)]
            if users:
                errors.append(Diagnostic.sourceless(
                    "E521", f'cannot delete {kind} "{o.name}": {", ".join(users)} still uses it', f'{kind} "{o.name}"'))
                continue
            deletions.append(_deletion(o, deployed))
    if errors:
        raise AudlangError(errors)
    return Plan(as_of=as_of, lineage=deployed.lineage, serial=deployed.serial, actions=tuple(actions + deletions),
                unchanged=tuple(unchanged), warnings=tuple(warnings), sources=desired.sources,
                lists=tuple(sorted({_list_entry(item) for o in desired.objects for item in o.lists})),
                project=desired.project)


def _list_entry(item: str) -> tuple[str, str]:
    """A desired object's "written path=sha256" as (written path, sha256)."""
    path, sha256 = item.split("=", 1)
    return path, sha256


def _action(want: DesiredObject, have: DeployedObject | None, previous: str | None,
            preview: MembershipPreview | None, as_of: str, changed_members: set[str]) -> Action | None:
    if have is None:
        return _creation(want, preview)
    is_segment = want.kind == ObjectKind.SEGMENT
    reasons = []
    if previous is not None:
        reasons.append(Reason(ReasonCode.RENAMED, (previous,)))
    definition_changed = _definition_changed(want, have, previous)
    if definition_changed:
        reasons.append(Reason(ReasonCode.DEFINITION_CHANGED))
    elif is_segment and tuple(want.lists) != tuple(have.lists) and have.lists:
        reasons.append(Reason(ReasonCode.LIST_FILE_CHANGED))
    record = definition_changed or previous is not None or _recorded_details_differ(want, have)
    common = _Common(previous_name=previous, object_id=have.object_id, before=have.definition,
                     after=want.definition, desired=want)

    if want.paused:
        return _paused(want, have, previous, record, reasons, common)
    if have.paused:
        reasons.append(Reason(ReasonCode.UNPAUSED))

    membership = None
    moved = False
    if is_segment and preview is not None:
        membership = MembershipChange(preview.deployed, preview.members, preview.added, preview.removed)
        moved = bool(preview.added or preview.removed)
        if moved and not reasons:
            reasons.extend(_refresh_reasons(want, have, as_of, changed_members))
    action = _change(want, have, previous, definition_changed, moved, record, reasons)
    if action is None:
        return None
    return Action(want.kind, want.name, action, tuple(reasons), membership=membership,
                  materialize=is_segment and (action != PlanAction.UPDATE or moved or definition_changed or have.paused
                                              or previous is not None), **common)


def _creation(want: DesiredObject, preview: MembershipPreview | None) -> Action:
    """CREATE: a segment not paused is materialized (its members counted in the preview)."""
    is_segment = want.kind == ObjectKind.SEGMENT
    reasons = [Reason(ReasonCode.NEW)]
    membership = None
    if is_segment and want.paused:
        reasons.append(Reason(ReasonCode.NEW_PAUSED))
    elif is_segment and preview is not None:
        membership = MembershipChange(None, preview.members, preview.added, preview.removed)
    return Action(want.kind, want.name, PlanAction.CREATE, tuple(reasons), desired=want, after=want.definition,
                  membership=membership, materialize=is_segment and not want.paused)


def _definition_changed(want: DesiredObject, have: DeployedObject, previous: str | None) -> bool:
    before_text = have.definition
    if previous is not None:  # the name is in the text: a rename alone is not a definition change
        before_text = before_text.replace(quote(previous), quote(want.name), 1)
    return want.definition != before_text


def _recorded_details_differ(want: DesiredObject, have: DeployedObject) -> bool:
    """A detail the state records, other than the definition and the name, differs."""
    return (want.paused != have.paused or want.description != have.description
            or tuple(want.depends_on) != tuple(have.depends_on) or tuple(want.lists) != tuple(have.lists)
            or want.relative != have.relative)


def _paused(want: DesiredObject, have: DeployedObject, previous: str | None, record: bool, reasons: list[Reason],
            common: _Common) -> Action:
    """A paused object: RENAME when it was renamed too, else PAUSED; one with nothing to record when it was
    paused already and nothing else changed."""
    reasons.append(Reason(ReasonCode.PAUSED if have.paused else ReasonCode.PAUSED_NOW))
    if not record and have.paused:
        return Action(want.kind, want.name, PlanAction.PAUSED, (Reason(ReasonCode.PAUSED),),
                      object_id=have.object_id, before=have.definition, after=want.definition, desired=None)
    return Action(want.kind, want.name, PlanAction.RENAME if previous else PlanAction.PAUSED, tuple(reasons),
                  **common)


def _refresh_reasons(want: DesiredObject, have: DeployedObject, as_of: str, changed_members: set[str]) -> list[Reason]:
    """Why the members of a segment whose definition did not change moved: the segments it uses, its
    window, or else the data."""
    reasons = []
    upstream = [d for d in want.depends_on if d in changed_members]
    if upstream:
        reasons.append(Reason(ReasonCode.UPSTREAM_CHANGED, tuple(upstream)))
    if want.relative and have.as_of is not None and have.as_of != as_of:
        reasons.append(Reason(ReasonCode.WINDOW_MOVED))
    return reasons or [Reason(ReasonCode.DATA_CHANGED)]


def _change(want: DesiredObject, have: DeployedObject, previous: str | None, definition_changed: bool, moved: bool,
            record: bool, reasons: list[Reason]) -> PlanAction | None:
    """RENAME, UPDATE or REFRESH of an object not paused, or None when nothing changed; adds the reason of
    an update whose reason is not in ``reasons`` yet."""
    if previous is not None:
        return PlanAction.RENAME
    if definition_changed or have.paused or want.description != have.description:
        if not reasons:
            reasons.append(Reason(ReasonCode.DESCRIPTION_CHANGED))
        return PlanAction.UPDATE
    if moved:
        return PlanAction.REFRESH  # also records any detail the state lacks (after an upgrade)
    if record:
        reasons.append(Reason(ReasonCode.RECORDED_DETAILS_CHANGED))
        return PlanAction.UPDATE
    return None


def _deletion(o: DeployedObject, deployed: Snapshot) -> Action:
    reasons = [Reason(ReasonCode.REMOVED)]
    feeds: list[str] = []
    if o.kind == ObjectKind.SEGMENT:
        for c in deployed.objects:
            if c.kind == ObjectKind.CAMPAIGN and f"{ObjectKind.SEGMENT}:{o.name}" in c.depends_on:
                destinations = [d.split(":", 1)[1] for d in c.depends_on
                                if d.startswith(f"{ObjectKind.DESTINATION}:")]
                if destinations:
                    feeds.extend(f'campaign "{c.name}" → destination "{d}"' for d in destinations)
                else:
                    feeds.append(f'campaign "{c.name}"')
        if feeds:
            reasons.append(Reason(ReasonCode.FED_DESTINATION))
    members = o.members or 0
    membership = MembershipChange(members, None, 0, members) if o.kind == ObjectKind.SEGMENT else None
    return Action(o.kind, o.name, PlanAction.DELETE, tuple(reasons), object_id=o.object_id, before=o.definition,
                  membership=membership, feeds=tuple(feeds))


def _dependents_first(objects: list[DeployedObject]) -> list[DeployedObject]:
    """Deployed segments ordered so that a segment comes before those it uses."""
    by_name = {o.name: o for o in objects}
    done: list[DeployedObject] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for other in sorted(by_name):
            if name in by_name[other].depends_on:
                visit(other)
        done.append(by_name[name])

    for name in sorted(by_name):
        visit(name)
    return done
