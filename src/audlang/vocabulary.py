"""The words of plans and syncs as types: what kind of object, what a plan does to it, why, and how a sync went.

Each is a ``StrEnum``: a member *is* its string (``PlanAction.CREATE == "create"``), so the JSON
documents, the state and the sync tables hold exactly the words they held before, while code and
scripts switch on a closed set instead of comparing free text. The sentences people read are written
by the renderers (``audlang.plan.render.reason_text``), never stored in place of a code.

Imports nothing of ours: every stage may use it.
"""

from __future__ import annotations

from enum import StrEnum


class ObjectKind(StrEnum):
    """What the state records and a plan acts on, in the order the planner visits them."""

    SEGMENT = "segment"
    DESTINATION = "destination"
    CAMPAIGN = "campaign"
    SCORE = "score"  # recorded with its definition; nothing is materialized for it (SPEC §3.1)


class PlanAction(StrEnum):
    """What a plan does to one object (OpenTofu's ``plans.Action``)."""

    CREATE = "create"
    UPDATE = "update"  # the definition, the description or the paused switch changed
    RENAME = "rename"  # a `moved` declaration: the object keeps its id, membership and history
    REFRESH = "refresh"  # only the membership moves
    PAUSED = "paused"  # listed, never refreshed
    DELETE = "delete"


class ReasonCode(StrEnum):
    """Why an action is in the plan (OpenTofu's ``ActionReason``); docs/plan-format.md lists the sentences."""

    NEW = "new"  # "new segment": not deployed yet
    NEW_PAUSED = "new_paused"  # created paused: no membership until it is unpaused
    RENAMED = "renamed"  # detail: the deployed (old) name
    DEFINITION_CHANGED = "definition_changed"
    LIST_FILE_CHANGED = "list_file_changed"  # an `in list` file's content changed
    PAUSED = "paused"  # paused before and now
    PAUSED_NOW = "paused_now"  # paused by this change: its membership stays as deployed
    UNPAUSED = "unpaused"
    UPSTREAM_CHANGED = "upstream_changed"  # detail: the segments it uses whose membership moves
    WINDOW_MOVED = "window_moved"  # a relative window moved with the as-of date
    DATA_CHANGED = "data_changed"
    DESCRIPTION_CHANGED = "description_changed"
    RECORDED_DETAILS_CHANGED = "recorded_details_changed"  # what it uses or reads, as the state records it
    REMOVED = "removed"  # no longer in the code
    FED_DESTINATION = "fed_destination"  # a deleted segment's audience will no longer be synced


class SyncPreviewStatus(StrEnum):
    """What the plan expects the sync of one campaign group and destination to do."""

    SEND = "send"
    UNCHANGED = "unchanged"
    HELD = "held"  # a removal guard holds it back
    PAUSED = "paused"  # the campaign or the destination is paused
    BLOCKED = "blocked"  # it cannot be sent (settings missing)
    STOPPED = "stopped"  # no longer in the project: its sync state is dropped


class SyncStatus(StrEnum):
    """How the sync of one campaign group and destination went (``audlang_sync_runs.status``)."""

    OK = "ok"
    PARTIAL = "partial"  # some members rejected
    HELD = "held"
    FAILED = "failed"
    PAUSED = "paused"
    UNCHANGED = "unchanged"
    STOPPED = "stopped"


class MemberOperation(StrEnum):
    """What a sync does with a member of a vendor audience."""

    ADD = "add"
    REMOVE = "remove"
    #: a removal recorded without sending: another group sent to the same vendor audience keeps the key
    RETIRE = "retire"


class BatchStatus(StrEnum):
    """A planned sync batch: recorded before sending, acknowledged once the destination answered."""

    PLANNED = "planned"
    ACKED = "acked"


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """A count with its noun, as every message writes one: ``1 request``, ``2 requests``, ``1,204 members``,
    ``1 batch`` (``plural`` for a noun that does not take an ``s``: ``counted(n, "batch", "batches")``)."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
