"""The sync's pure batch planning (``audlang.sync.batches``), by tables of cases: the cut into batches and
their keys, the guards, the members as the state records them, what an acknowledgement keeps and which
rejections a delta no longer wants. No database, no destination."""

from __future__ import annotations

import hashlib

import pytest

from audlang.destinations import Member, Target
from audlang.sync.batches import (
    RETIRE, Delta, Planned, accepted_of, decode, encode, guard_of, idempotency_key, logged_operation, member_of,
    plan_batches, planned_of, unwanted_errors,
)
from audlang.sync.delta import ADD, REMOVE, Acked, Counts
from audlang.vocabulary import BatchStatus

TARGET = Target("Holiday", "A", "SMS")


def acked(*ids: str) -> list[Acked]:
    """Members C1, C2, …: key k-C1, fingerprint f-C1, data {"phone": "p-C1"}."""
    return [Acked(i, f"k-{i}", f"f-{i}", f'{{"phone":"p-{i}"}}') for i in ids]


def ids(n: int, prefix: str = "C") -> list[str]:
    return [f"{prefix}{i}" for i in range(1, n + 1)]


# ------------------------------------------------------------------ the cut into batches

# (removes, adds, retires, batch size, first seq) -> [(operation, seq, customers of the batch), …]
CUTS = [
    pytest.param(0, 0, 0, 10, 1, [], id="nothing-to-send"),
    pytest.param(0, 3, 0, 10, 1, [(ADD, 1, ids(3, "A"))], id="adds-in-one-batch"),
    pytest.param(0, 5, 0, 2, 1, [(ADD, 1, ["A1", "A2"]), (ADD, 2, ["A3", "A4"]), (ADD, 3, ["A5"])],
                 id="adds-cut-at-the-batch-size"),
    pytest.param(0, 4, 0, 2, 1, [(ADD, 1, ["A1", "A2"]), (ADD, 2, ["A3", "A4"])], id="an-exact-multiple"),
    pytest.param(2, 2, 0, 10, 1, [(REMOVE, 1, ["R1", "R2"]), (ADD, 2, ["A1", "A2"])], id="removes-before-adds"),
    pytest.param(1, 1, 1, 10, 1, [(RETIRE, 1, ["T1"]), (REMOVE, 2, ["R1"]), (ADD, 3, ["A1"])],
                 id="retirements-first"),
    pytest.param(3, 1, 3, 2, 1, [(RETIRE, 1, ["T1", "T2"]), (RETIRE, 2, ["T3"]), (REMOVE, 3, ["R1", "R2"]),
                                 (REMOVE, 4, ["R3"]), (ADD, 5, ["A1"])], id="each-operation-cut-on-its-own"),
    pytest.param(1, 1, 0, 1, 7, [(REMOVE, 7, ["R1"]), (ADD, 8, ["A1"])], id="numbered-from-the-first-seq"),
    pytest.param(2, 0, 0, 1, 1, [(REMOVE, 1, ["R1"]), (REMOVE, 2, ["R2"])], id="one-member-a-batch"),
]


@pytest.mark.parametrize(("removes", "adds", "retires", "size", "first", "expected"), CUTS)
def test_plan_batches_cuts_each_operation_in_order(removes, adds, retires, size, first, expected):
    planned = plan_batches(TARGET, acked(*ids(removes, "R")), acked(*ids(adds, "A")), size, "run-1",
                           first_seq=first, retires=acked(*ids(retires, "T")))
    got = [(p.batch.operation, p.batch.seq, [m.customer_id for m in p.batch.members]) for p in planned]
    assert got == expected
    for p in planned:
        assert [r.customer_id for r in p.rows] == [m.customer_id for m in p.batch.members]
        assert p.status == BatchStatus.PLANNED and p.tick is None and p.accepted == ()
        assert p.batch.target == TARGET
        assert p.batch.idempotency_key == idempotency_key(TARGET, "run-1", p.batch.seq)


# (target, run, seq) of two batches -> whether they share their idempotency key
KEYS = [
    pytest.param((TARGET, "run-1", 1), (TARGET, "run-1", 1), True, id="planned-again-the-same-key"),
    pytest.param((TARGET, "run-1", 1), (TARGET, "run-1", 2), False, id="another-seq"),
    pytest.param((TARGET, "run-1", 1), (TARGET, "run-2", 1), False, id="another-run"),
    pytest.param((TARGET, "run-1", 1), (Target("Holiday", "B", "SMS"), "run-1", 1), False, id="another-group"),
    pytest.param((TARGET, "run-1", 1), (Target("Holiday", "A", "Email"), "run-1", 1), False,
                 id="another-destination"),
]


@pytest.mark.parametrize(("one", "other", "same"), KEYS)
def test_idempotency_keys(one, other, same):
    assert (idempotency_key(*one) == idempotency_key(*other)) is same
    assert len(idempotency_key(*one)) == 40


def test_the_idempotency_key_is_stable_across_versions():
    """A batch planned by an older audlang is sent again under the key it recorded; new keys keep the recipe."""
    expected = hashlib.sha256("Holiday\x1fA\x1fSMS\x1frun-1\x1f3".encode()).hexdigest()[:40]
    assert idempotency_key(TARGET, "run-1", 3) == expected


# ------------------------------------------------------------------ the guards

# (counts, mode, max_removal, allow_empty, allow_removals) -> None, or how the reason starts
GUARDS = [
    pytest.param(Counts(desired=100, acknowledged=0, adds=100), "mirror", 20.0, False, False, None,
                 id="first-sync-nothing-acknowledged"),
    pytest.param(Counts(desired=100, acknowledged=100, departing=0), "mirror", 20.0, False, False, None,
                 id="nobody-leaves"),
    pytest.param(Counts(desired=90, acknowledged=100, departing=10), "mirror", 20.0, False, False, None,
                 id="ten-percent-leave"),
    pytest.param(Counts(desired=80, acknowledged=100, departing=20), "mirror", 20.0, False, False, None,
                 id="exactly-the-limit"),
    pytest.param(Counts(desired=79, acknowledged=100, departing=21), "mirror", 20.0, False, False,
                 "held back: this sync would remove 21 of 100 members (21%, more than max_removal = 20%)",
                 id="over-the-limit"),
    pytest.param(Counts(desired=79, acknowledged=100, departing=21), "mirror", 25.0, False, False, None,
                 id="a-higher-max-removal"),
    pytest.param(Counts(desired=79, acknowledged=100, departing=21), "mirror", 20.0, False, True, None,
                 id="allow-removals"),
    pytest.param(Counts(desired=79, acknowledged=100, departing=21), "add", 20.0, False, False, None,
                 id="add-mode-removes-nothing"),
    pytest.param(Counts(desired=0, acknowledged=5, departing=5), "mirror", 100.0, False, False,
                 "held back: this sync would empty the audience (remove all 5 members)", id="emptied"),
    pytest.param(Counts(desired=0, acknowledged=5, departing=5), "mirror", 20.0, True, False, None,
                 id="emptied-with-allow-empty"),
    pytest.param(Counts(desired=0, acknowledged=5, departing=5), "mirror", 20.0, False, True, None,
                 id="emptied-with-allow-removals"),
    pytest.param(Counts(desired=0, acknowledged=5, departing=5), "add", 20.0, False, False, None,
                 id="emptied-in-add-mode"),
    pytest.param(Counts(desired=1, acknowledged=3000, departing=2999), "mirror", 20.0, False, False,
                 "held back: this sync would remove 2,999 of 3,000 members (100%, more than max_removal = 20%)",
                 id="thousands-separated"),
    pytest.param(Counts(desired=2, acknowledged=3, departing=1), "mirror", 33.5, False, False, None,
                 id="a-fractional-limit"),
]


@pytest.mark.parametrize(("counts", "mode", "max_removal", "allow_empty", "allow_removals", "reason"), GUARDS)
def test_guard_of(counts, mode, max_removal, allow_empty, allow_removals, reason):
    got = guard_of(counts, mode, max_removal, allow_empty, allow_removals)
    if reason is None:
        assert got is None
    else:
        assert got is not None and got.startswith(reason), got


# ------------------------------------------------------------------ a delta as counted

# (counts, mode) -> (adds, removes, skipped)
DELTAS = [
    pytest.param(Counts(), "mirror", (0, 0, 0), id="empty"),
    pytest.param(Counts(group=10, keyed=8, desired=7, adds=3, stale=2), "mirror", (3, 2, 3), id="mirror"),
    pytest.param(Counts(group=10, keyed=8, desired=7, adds=3, stale=2), "add", (3, 0, 3), id="add-mode"),
    pytest.param(Counts(group=5, keyed=5, desired=5, stale=4, retire=3), "mirror", (0, 1, 0),
                 id="retired-removals-are-not-sent"),
]


@pytest.mark.parametrize(("counts", "mode", "expected"), DELTAS)
def test_delta_counts(counts, mode, expected):
    d = Delta(TARGET, counts, mode=mode)
    assert (d.n_adds, d.n_removes, d.skipped) == expected


# ------------------------------------------------------------------ members as the state records them

# rows -> their text in audlang_sync_batches
ENCODED = [
    pytest.param([], "[]", id="none"),
    pytest.param([Acked("C1", "+15035550000", "f", '{"phone":"+15035550000"}')],
                 '[["C1","+15035550000","f",{"phone":"+15035550000"}]]', id="one"),
    pytest.param([Acked('C"1', "a\\b", "", '{"n":1,"x":null}'), Acked("C2", "é", "f\x1fg", '{}')],
                 '[["C\\"1","a\\\\b","",{"n":1,"x":null}],["C2","\\u00e9","f\\u001fg",{}]]', id="escaped"),
]


@pytest.mark.parametrize(("rows", "text"), ENCODED)
def test_encode_and_decode(rows, text):
    assert encode(rows) == text
    assert decode(text) == rows


# text written by an older audlang -> the rows read back
DECODED = [
    pytest.param('[["C1","k1",{"phone":"k1"}]]', [Acked("C1", "k1", "", '{"phone":"k1"}')],
                 id="version-1-no-fingerprint"),
    pytest.param('[["C1", "k1", "f1", {"b": 2, "a": 1}]]', [Acked("C1", "k1", "f1", '{"b":2,"a":1}')],
                 id="spaces-dropped-order-kept"),
]


@pytest.mark.parametrize(("text", "rows"), DECODED)
def test_decode_older_texts(text, rows):
    assert decode(text) == rows


def test_a_recorded_batch_reads_back_as_planned():
    (planned,) = plan_batches(TARGET, [], acked("C1", "C2"), 10, "run-1")
    row = planned_of(TARGET, 1, "add", planned.batch.idempotency_key, encode(planned.rows))
    assert row == planned
    assert [dict(m.data) for m in row.batch.members] == [{"phone": "p-C1"}, {"phone": "p-C2"}]
    done = planned_of(TARGET, 1, "add", "k", encode(planned.rows), "acked", 4, encode(planned.rows[:1]))
    assert (done.status, done.tick, done.accepted) == (BatchStatus.ACKED, 4, planned.rows[:1])
    assert planned_of(TARGET, 1, "add", "k", "[]", None).status == BatchStatus.PLANNED  # NULL before version 2


# ------------------------------------------------------------------ acknowledgements

# the members a destination accepted (customer, data as returned) -> the rows the log appends
ACCEPTED = [
    pytest.param([], [], id="none-accepted"),
    pytest.param([("C1", {"phone": "p-C1"})], [Acked("C1", "k-C1", "f-C1", '{"phone":"p-C1"}')],
                 id="the-planned-fingerprint-kept"),
    pytest.param([("C2", {"phone": "p-C2", "id": "vendor-7"})],
                 [Acked("C2", "k-C2", "f-C2", '{"phone":"p-C2","id":"vendor-7"}')], id="what-the-vendor-added-kept"),
    pytest.param([("C9", {"phone": "p-C9"})], [Acked("C9", "k-C9", "", '{"phone":"p-C9"}')],
                 id="a-member-not-planned-has-no-fingerprint"),
]


@pytest.mark.parametrize(("accepted", "expected"), ACCEPTED)
def test_accepted_of(accepted, expected):
    (planned,) = plan_batches(TARGET, [], acked("C1", "C2"), 10, "run-1")
    members = [Member(cid, f"k-{cid}", data) for cid, data in accepted]
    assert list(accepted_of(planned, members)) == expected


@pytest.mark.parametrize(("operation", "logged"), [(ADD, ADD), (REMOVE, REMOVE), (RETIRE, REMOVE)])
def test_what_the_log_records_of_each_operation(operation, logged):
    assert logged_operation(operation) == logged


def test_member_of_reads_the_data():
    (row,) = acked("C1")
    member = member_of(row)
    assert (member.customer_id, member.key, dict(member.data)) == ("C1", "k-C1", {"phone": "p-C1"})


# ------------------------------------------------------------------ rejections no longer wanted

# (recorded rejections, the delta's adds, removes, retires) -> the rejections dropped
UNWANTED = [
    pytest.param([], [], [], [], [], id="none-recorded"),
    pytest.param([("C1", "add")], ["C1"], [], [], [], id="still-to-add"),
    pytest.param([("C1", "add")], [], [], [], [("C1", "add")], id="no-longer-to-add"),
    pytest.param([("C1", "remove")], [], ["C1"], [], [], id="still-to-remove"),
    pytest.param([("C1", "remove")], [], [], ["C1"], [], id="retired-counts-as-a-removal"),
    pytest.param([("C1", "remove")], ["C1"], [], [], [("C1", "remove")], id="came-back"),
    pytest.param([("C1", "add"), ("C2", "remove"), ("C3", "add")], ["C3"], ["C2"], [], [("C1", "add")],
                 id="several"),
]


@pytest.mark.parametrize(("recorded", "adds", "removes", "retires", "dropped"), UNWANTED)
def test_unwanted_errors(recorded, adds, removes, retires, dropped):
    delta = Delta(TARGET, adds=tuple(acked(*adds)), removes=tuple(acked(*removes)), retires=tuple(acked(*retires)))
    assert unwanted_errors(recorded, delta) == dropped


def test_planned_is_a_value():
    one = plan_batches(TARGET, [], acked("C1"), 10, "run-1")
    assert one == plan_batches(TARGET, [], acked("C1"), 10, "run-1")
    assert isinstance(one[0], Planned) and one != plan_batches(TARGET, [], acked("C1"), 10, "run-2")
