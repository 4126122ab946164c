"""A sync's batches, planned without I/O: the delta of a target as a value, the guards that hold it back,
its cut into batches with their idempotency keys, and the batches' members as the state records them.

Every function here is pure (values in, values out), so each is tested by tables of cases
(tests/sync/test_batches.py). The syncer (``syncer``) reads and writes the state and the destinations
around them. May import ``destinations`` (its values), ``sync.delta`` (its values) and attrs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence

import attrs

from audlang.destinations import Batch, Member, Target
from audlang.sync.delta import ADD, REMOVE, Acked, Counts
from audlang.vocabulary import BatchStatus, MemberOperation, counted

#: A removal recorded without sending: the key is a desired member's now (see ``delta.removes``).
RETIRE = MemberOperation.RETIRE


@attrs.frozen
class Delta:
    """What one sync would send to one target (counted before anything is sent)."""

    target: Target
    counts: Counts = Counts()
    adds: tuple[Acked, ...] = ()  # fetched only to send (a plan counts)
    removes: tuple[Acked, ...] = ()
    retires: tuple[Acked, ...] = ()  # removals recorded, not sent
    mode: str = "mirror"
    pending_batches: int = 0  # planned by an interrupted sync, sent first
    guard: str | None = None  # why the sync is held back

    @property
    def n_adds(self) -> int:
        return self.counts.adds

    @property
    def n_removes(self) -> int:
        return self.counts.stale - self.counts.retire if self.mode == "mirror" else 0

    @property
    def skipped(self) -> int:
        return self.counts.skipped_no_identifier + self.counts.skipped_duplicate


@attrs.frozen
class Planned:
    """A batch of the plan as the state database holds it."""

    batch: Batch
    rows: tuple[Acked, ...]
    status: BatchStatus = attrs.field(default=BatchStatus.PLANNED, converter=BatchStatus)
    tick: int | None = None
    accepted: tuple[Acked, ...] = ()


# ------------------------------------------------------------------ members as the state records them


def encode(rows: Iterable[Acked]) -> str:
    """``[[customer_id, key, fingerprint, data], …]``; each ``data`` is JSON text already, embedded as it is."""
    dumps = json.dumps
    return "[" + ",".join(f"[{dumps(r.customer_id)},{dumps(r.key)},{dumps(r.fingerprint)},{r.data}]"
                          for r in rows) + "]"


def decode(text: str) -> list[Acked]:
    """``encode``'s rows back; a batch planned by the sync's version 1 has no fingerprint (``""``)."""
    out = []
    for row in json.loads(text):
        if len(row) == 3:  # planned by version 1: no fingerprint
            row = [row[0], row[1], "", row[2]]
        out.append(Acked(row[0], row[1], row[2], json.dumps(row[3], separators=(",", ":"))))
    return out


def member_of(row: Acked) -> Member:
    return Member(row.customer_id, row.key, json.loads(row.data))


def planned_of(target: Target, seq: int, operation: str, idempotency_key: str, members: str,
               status: str | None = None, tick: int | None = None, accepted: str | None = None) -> Planned:
    """A batch from its row in ``audlang_sync_batches`` (``status`` NULL: planned before version 2)."""
    rows = tuple(decode(members))
    batch = Batch(target, operation, seq, idempotency_key, tuple(member_of(m) for m in rows))
    return Planned(batch, rows, status or BatchStatus.PLANNED, tick, tuple(decode(accepted)) if accepted else ())


def accepted_of(planned: Planned, accepted: Iterable[Member]) -> tuple[Acked, ...]:
    """The members a destination accepted, as it returned them, with the fingerprints they were planned
    with (what the log compares the next delta by)."""
    prints = {r.customer_id: r.fingerprint for r in planned.rows}
    return tuple(Acked(m.customer_id, m.key, prints.get(m.customer_id, ""),
                       json.dumps(dict(m.data), separators=(",", ":"))) for m in accepted)


def logged_operation(operation: str) -> str:
    """What the log records of a batch: a retirement is a removal the vendor needs not hear of."""
    return REMOVE if operation == RETIRE else operation


# ------------------------------------------------------------------ planning


def idempotency_key(target: Target, run_id: str, seq: int) -> str:
    """The key a batch is sent (and sent again) under: derived from the target, the run and the seq."""
    return hashlib.sha256(f"{target.key}\x1f{run_id}\x1f{seq}".encode()).hexdigest()[:40]


def plan_batches(target: Target, removes: Sequence[Acked], adds: Sequence[Acked], batch_size: int, run_id: str,
                 first_seq: int = 1, retires: Sequence[Acked] = ()) -> list[Planned]:
    """Retirements, removes, then adds, each cut at ``batch_size``: deterministic; keys derived from the run
    and the seq."""
    out: list[Planned] = []
    seq = first_seq
    for operation, rows in ((RETIRE, list(retires)), (REMOVE, list(removes)), (ADD, list(adds))):
        for start in range(0, len(rows), batch_size):
            chunk = tuple(rows[start:start + batch_size])
            batch = Batch(target, operation, seq, idempotency_key(target, run_id, seq),
                          tuple(member_of(r) for r in chunk))
            out.append(Planned(batch, chunk))
            seq += 1
    return out


def guard_of(counts: Counts, mode: str, max_removal: float = 20.0, allow_empty: bool = False,
             allow_removals: bool = False) -> str | None:
    """Why a sync is held back: it would empty the audience, or remove more than ``max_removal`` percent."""
    departing = counts.departing if mode == "mirror" else 0
    acked = counts.acknowledged
    if not acked or not departing or allow_removals:
        return None
    if not counts.desired and not allow_empty:
        return (f"held back: this sync would empty the audience (remove all {counted(acked, 'member')}); set "
                "allow_empty = true on the destination or plan with --allow-removals to send it")
    if counts.desired and departing * 100 > max_removal * acked:
        return (f"held back: this sync would remove {departing:,} of {counted(acked, 'member')} "
                f"({departing / acked:.0%}, more than max_removal = {max_removal:g}%); raise max_removal "
                "on the destination or plan with --allow-removals to send it")
    return None


def unwanted_errors(recorded: Iterable[tuple[str, str]], delta: Delta) -> list[tuple[str, str]]:
    """The recorded rejections (customer, operation) whose change the delta no longer wants (the member
    left, or came back): dropped before the sync."""
    wanted = {(m.customer_id, ADD) for m in delta.adds} | \
        {(m.customer_id, REMOVE) for m in (*delta.removes, *delta.retires)}
    return [(cid, operation) for cid, operation in recorded if (cid, operation) not in wanted]
