"""The delta sync at its edges: rejected removals of changed keys, keys passing between customers, `add` to
`mirror`, renames declared late or onto names with state, version-1 plans, compaction (found in review)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
import state_layouts
from sync_helpers import AS_OF, expected, model_of, servers, sync_project, warehouse  # noqa: F401 - fixtures
from vendor_servers import AttentiveServer

from audlang import sync
from audlang.sync import delta as wh_delta

FAST = {"backoff": 0.01}
IDS = ("phone", "email")

ONE_GROUP = '''
campaign "Holiday" <
  audience segment "Reachable"
  treatment "All" 100% to "{dest}"
>
'''


@pytest.fixture
def setup(sync_project):
    def make(destinations: str, campaign: str = ONE_GROUP, dest: str = "D"):
        return sync_project(destinations + campaign.format(dest=dest))

    return make


def run(model, wh, state, tmp_path, env=None, **options):
    return sync.run(model, wh, state, AS_OF, tmp_path, env=env or {"KEY": "secret-key"},
                    http_options=FAST, **options)


def attentive(server, batch_size=40, extra=""):
    return f'''
destination "D" attentive <
  api_key = env("KEY")
  segment = "seg-1"
  base_url = "{server.url}"
  identifiers = (phone, email)
  batch_size = {batch_size}
  {extra}
>
'''


def _phone_customers(wh, n):
    with wh.connect() as conn:
        return [r[0] for r in conn.execute(sa.text(
            "SELECT customer_id FROM customer_360 WHERE phone IS NOT NULL ORDER BY customer_id"))][:n]


# ------------------------------------------------------------------ re-key: remove of old key rejected


def test_rekeyed_member_whose_old_key_removal_was_rejected_is_removed_later(setup, servers, tmp_path):
    """X changes phone: remove old key (rejected) + add new key (accepted). The rejected removal must be
    retried by the next apply (docs: 'a rejected member ... is tried again by the next apply')."""
    server = servers(AttentiveServer)
    model, wh, state = setup(attentive(server))
    run(model, wh, state, tmp_path)
    before = expected(wh, "Holiday", "All", IDS)
    cid = next(c for c in sorted(before) if before[c].startswith("+"))
    old_key = before[cid]
    with wh.begin() as conn:
        conn.execute(sa.text("UPDATE customer_360 SET phone = '+15035559999' WHERE customer_id = :c"), {"c": cid})
    server.poison = {old_key}
    first = run(model, wh, state, tmp_path)
    assert first[0].status == "partial"
    # (also: sync.errors(state) is already [] here: the add of the same customer in a later batch of the same
    # run deleted the 'remove' rejection, _acknowledge deletes errors by customer_id for every operation)
    recorded = [e.operation for e in sync.errors(state)]
    server.poison = set()
    run(model, wh, state, tmp_path)
    want = set(expected(wh, "Holiday", "All", IDS).values())
    assert old_key not in server.members("seg-1"), "the old key stays in the destination forever"
    assert server.members("seg-1") == want
    assert recorded == ["remove"], "the rejected removal was not kept in audlang_sync_errors"


# ------------------------------------------------------------------ a key shared by two acked customers


class RemovalRefusingServer(AttentiveServer):
    """Refuses poisoned keys in removals only (adds of them go through)."""

    def handle(self, method, path, payload, headers):
        if method == "POST":
            saved, self.poison = self.poison, set()
            try:
                return super().handle(method, path, payload, headers)
            finally:
                self.poison = saved
        return super().handle(method, path, payload, headers)


def test_rejected_removal_then_a_new_customer_with_the_same_key(setup, servers, tmp_path):
    """X (acked with key k) leaves and Y joins with k in one sync; the removal of X:k is rejected, Y:k is
    added (both now acked with k). When X's removal is retried, k leaves the destination although Y
    (desired, acknowledged) holds it, and Y is never sent again."""
    server = servers(RemovalRefusingServer)
    model, wh, state = setup(attentive(server))
    run(model, wh, state, tmp_path)
    acked = expected(wh, "Holiday", "All", IDS)
    x = next(c for c in sorted(acked, reverse=True) if acked[c].startswith("+"))
    k = acked[x]
    with wh.connect() as conn:
        members = {r[0] for r in conn.execute(sa.text(
            "SELECT customer_id FROM audlang_campaign_members WHERE group_name = 'All'"))}
        all_ids = [r[0] for r in conn.execute(sa.text("SELECT customer_id FROM customer_360 ORDER BY 1"))]
    y = next(c for c in all_ids if c not in members)
    with wh.begin() as conn:
        conn.execute(sa.text("UPDATE customer_360 SET phone = NULL, email = NULL WHERE customer_id = :c"), {"c": x})
        conn.execute(sa.text("UPDATE customer_360 SET phone = :p, email = NULL WHERE customer_id = :c"),
                     {"p": k, "c": y})
    sync.materialize_campaigns(wh, model, AS_OF)
    assert y in expected(wh, "Holiday", "All", IDS), "Y joins the group with X's old key"
    server.poison = {k}
    run(model, wh, state, tmp_path)  # remove X:k refused, add Y:k accepted
    assert k in server.members("seg-1")
    server.poison = set()
    run(model, wh, state, tmp_path)  # X's removal retried
    run(model, wh, state, tmp_path)
    assert k in server.members("seg-1"), "Y's key was removed by X's retried removal and never re-added"


# ------------------------------------------------------------------ add -> mirror with a shared key


def test_switching_add_to_mirror_keeps_a_key_held_by_a_current_member(setup, servers, tmp_path):
    """In add mode X (key k) leaves and Y joins with k: the log acks both X:k and Y:k. Switching to mirror
    then removes X:k, so k leaves the destination though Y is in the group; Y is never added back."""
    server = servers(AttentiveServer)
    model, wh, state = setup(attentive(server, extra='mode = add'))
    run(model, wh, state, tmp_path)
    acked = expected(wh, "Holiday", "All", IDS)
    x = next(c for c in sorted(acked) if acked[c].startswith("+"))
    k = acked[x]
    with wh.connect() as conn:
        members = {r[0] for r in conn.execute(sa.text(
            "SELECT customer_id FROM audlang_campaign_members WHERE group_name = 'All'"))}
        all_ids = [r[0] for r in conn.execute(sa.text("SELECT customer_id FROM customer_360 ORDER BY 1"))]
    y = next(c for c in all_ids if c not in members)
    with wh.begin() as conn:
        conn.execute(sa.text("UPDATE customer_360 SET phone = NULL, email = NULL WHERE customer_id = :c"), {"c": x})
        conn.execute(sa.text("UPDATE customer_360 SET phone = :p, email = NULL WHERE customer_id = :c"),
                     {"p": k, "c": y})
    run(model, wh, state, tmp_path)
    if y not in expected(wh, "Holiday", "All", IDS):
        pytest.skip("Y not in the group after the change")
    mirror = model_of(tmp_path, attentive(server) + ONE_GROUP.format(dest="D"))
    run(mirror, wh, state, tmp_path, allow_removals=True)
    run(mirror, wh, state, tmp_path, allow_removals=True)
    assert k in server.members("seg-1"), "a desired, acknowledged member's key was removed and never re-added"


# ------------------------------------------------------------------ moves: history rows collide


CSV = '''
destination "D" csv <
  path = "out/{{ campaign }}-{{ group }}.csv"
  identifiers = (customer_id)
>
'''


def test_a_move_declared_after_the_rename_was_applied_does_not_break_apply(setup, tmp_path):
    """Rename a campaign, apply (the old target is STOPPED and dropped, a 'stopped' run recorded under the
    old name with the same run id as the new name's sync), then declare the `moved`: follow_moves renames
    the old name's runs onto the new name's (run_id, target) primary key and every later apply crashes."""
    model, wh, state = setup(CSV)
    run(model, wh, state, tmp_path)
    renamed = model_of(tmp_path, CSV + ONE_GROUP.format(dest="D").replace('"Holiday"', '"Holiday 2024"'))
    run(renamed, wh, state, tmp_path)
    with_move = model_of(tmp_path, CSV + ONE_GROUP.format(dest="D").replace('"Holiday"', '"Holiday 2024"')
                         + 'moved campaign "Holiday" to "Holiday 2024"\n')
    results = run(with_move, wh, state, tmp_path)
    assert {r.status for r in results} == {"unchanged"}


def test_a_move_onto_a_name_that_already_has_state(setup, tmp_path):
    """`apply` of one campaign only (sync_all(only=...)) leaves the old name's state; a later `moved` then
    collides on audlang_sync_targets' primary key and the whole apply raises."""
    model, wh, state = setup(CSV)
    run(model, wh, state, tmp_path)
    renamed = model_of(tmp_path, CSV + ONE_GROUP.format(dest="D").replace('"Holiday"', '"Holiday 2024"'))
    sync.materialize_campaigns(wh, renamed, AS_OF)
    sync.Syncer(renamed, wh, state, tmp_path, env={}).sync_all(only=["Holiday 2024"])
    with_move = model_of(tmp_path, CSV + ONE_GROUP.format(dest="D").replace('"Holiday"', '"Holiday 2024"')
                         + 'moved campaign "Holiday" to "Holiday 2024"\n')
    results = run(with_move, wh, state, tmp_path)
    assert {r.status for r in results} <= {"unchanged", "stopped"}


# ------------------------------------------------------------------ compaction keeps the membership


def test_compact_keeps_the_acknowledged_membership(warehouse):
    e = sa.create_engine(warehouse.new_url("log"))
    A = wh_delta.Acked
    with e.begin() as conn:
        wh_delta.ensure_log(conn)
        wh_delta.append(conn, "t", 1, "add", [A("1", "k1", "f", "{}"), A("2", "k2", "f", "{}"),
                                              A("3", "k3", "f", "{}")])
        wh_delta.append(conn, "t", 2, "remove", [A("1", "k1", "f", "{}"), A("2", "k2", "f", "{}")])
        wh_delta.append(conn, "t", 3, "add", [A("2", "k2b", "g", "{}")])
    with e.connect() as conn:
        before = sorted(wh_delta.acknowledged(conn, "t"), key=repr)
    with e.begin() as conn:
        assert wh_delta.compact(conn, "t", slack=0) > 0
    with e.connect() as conn:
        assert sorted(wh_delta.acknowledged(conn, "t"), key=repr) == before
    e.dispose()


# ------------------------------------------------------------------ version 1: a target with a plan, nothing acked


def test_version_1_target_with_a_pending_plan_and_no_members_resumes_its_plan(setup, servers, tmp_path):
    """A version-1 sync killed in its first batch leaves a target row and planned batches but no
    audlang_sync_members rows. migrate_v1 gives it no target_id, so _target_id treats it as a new audience and
    deletes its plan: the batch in flight is re-planned under a new idempotency key instead of resumed."""
    server = servers(AttentiveServer)
    model, wh, state = setup(attentive(server, batch_size=1000))
    target = "Holiday\x1fAll\x1fD"
    tables = state_layouts.make(state, None, 1).tables  # the sync's version 1, alone in the state database
    with state.begin() as conn:
        conn.execute(tables["audlang_sync_targets"].insert().values(
            target=target, audience=sync.legacy_audience_key(model.destinations["D"])))
        conn.execute(tables["audlang_sync_batches"].insert().values(
            target=target, seq=1, operation="add", idempotency_key="v1-key-1",
            members=json.dumps([["C000001", "+15035550000", {"phone": "+15035550000"}]]),
            planned_at="2024-11-01T00:00:00Z"))
    results = run(model, wh, state, tmp_path)
    assert results[0].resumed_batches == 1, "the version-1 plan in flight was dropped, not resumed"


# ------------------------------------------------------------------ two groups, one vendor audience


def test_customers_moving_between_groups_sent_to_one_audience_stay_in_it(setup, servers, tmp_path):
    """Both treatments go to one Attentive segment. When the percentages change, customers move from B
    to A: A's add is a no-op at the vendor, and B must not remove them (its removal is retired)."""
    server = servers(AttentiveServer)
    campaign = '''
campaign "Holiday" <
  audience segment "Reachable"
  treatment "A" {a}% to "D"
  treatment "B" {b}% to "D"
>
'''
    model, wh, state = setup(attentive(server, batch_size=40), campaign.replace("{a}", "40").replace("{b}", "60"))
    run(model, wh, state, tmp_path)
    everyone = set(expected(wh, "Holiday", "A", IDS).values()) | set(expected(wh, "Holiday", "B", IDS).values())
    assert server.members("seg-1") == everyone
    moved = model_of(tmp_path, attentive(server, batch_size=40) + campaign.replace("{a}", "70").replace("{b}", "30"))
    planned = sync.preview(moved, wh, state, AS_OF, env={"KEY": "secret-key"})
    assert {p.group: p.removes for p in planned} == {"A": 0, "B": 0}  # nobody leaves the audience
    results = run(moved, wh, state, tmp_path)
    assert {r.status for r in results} == {"ok"}, [r.message for r in results]
    assert {r.target.group: r.removed for r in results} == {"A": 0, "B": 0}
    assert server.members("seg-1") == everyone
    # The state follows: a third run has nothing to do.
    assert {r.status for r in run(moved, wh, state, tmp_path)} == {"unchanged"}
