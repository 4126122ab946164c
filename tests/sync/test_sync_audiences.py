"""A vendor audience is what a destination actually writes for a group, defaults included (#16).

Customers move between two treatments sent to one destination, for every kind: the vendor ends up holding
exactly the groups' membership (in both of two audiences never, missing never), and the plan shows the
moves. A state keyed the old way (``fixtures/v2_audiences.json``, written by the audlang that had the bug)
is re-keyed without sending anything again, and the Braze users it left in both audiences are repaired.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
import state_layouts
from sync_helpers import AS_OF, expected, model_of, servers, sync_project  # noqa: F401 - fixtures
from vendor_servers import AttentiveServer, BrazeServer, KlaviyoServer, WebhookServer

from audlang import sync
from audlang.destinations import Target
from audlang.sync import audience
from audlang.sync import delta as wh_delta

FAST = {"backoff": 0.01}
FIXTURE = Path(__file__).parent / "fixtures" / "v2_audiences.json"

CAMPAIGN = '''
campaign "Holiday" <
  audience segment "Reachable"
  treatment "A" {a}% to "D"
  treatment "B" {b}% to "D"
>
'''

#: kind -> (server class or None, the destination "D", its identifiers, one vendor audience for both groups)
KINDS = {
    "braze": (BrazeServer, '''
destination "D" braze <
  api_key = env("KEY")
  base_url = "{url}"
  identifiers = (customer_id)
  batch_size = 40
>''', ("customer_id",), False),
    "braze-one-value": (BrazeServer, '''
destination "D" braze <
  api_key = env("KEY")
  base_url = "{url}"
  value = "vip"
  identifiers = (customer_id)
>''', ("customer_id",), True),
    "attentive": (AttentiveServer, '''
destination "D" attentive <
  api_key = env("KEY")
  segment = "seg-1"
  base_url = "{url}"
  identifiers = (phone, email)
  batch_size = 40
>''', ("phone", "email"), True),
    "klaviyo": (KlaviyoServer, '''
destination "D" klaviyo <
  api_key = env("KEY")
  list_id = "L1"
  base_url = "{url}"
  identifiers = (email)
  batch_size = 60
>''', ("email",), True),
    "webhook": (WebhookServer, '''
destination "D" webhook <
  url = "{url}/hook"
  header "Authorization" = "Bearer " + env("KEY")
  batch_size = 50
>''', ("customer_id",), False),
    # A body that does not say which group a member is in: the receiver holds one audience.
    "webhook-one-body": (WebhookServer, '''
destination "D" webhook <
  url = "{url}/hook"
  header "Authorization" = "Bearer " + env("KEY")
  body = "{{{{ {{'campaign': campaign, 'group': 'all', 'operation': operation, 'members': members}} | tojson }}}}"
>''', ("customer_id",), True),
    "csv": (None, '''
destination "D" csv <
  path = "exports/{{{{ campaign }}}}-{{{{ group }}}}.csv"
  identifiers = (customer_id, email)
>''', ("customer_id",), False),
    "sql": (None, '''
destination "D" sql <
  url = "sqlite:///exports/copy.db"
  table = "campaign_members"
  identifiers = (customer_id, email)
  batch_size = 30
>''', ("customer_id",), False),
}


def holdings(kind: str, server, folder: Path) -> dict[str, set[str]]:
    """What the destination holds, by the audience it holds it in (the group, or ``*`` for a shared one)."""
    if kind == "braze":
        return {g: server.members(f"audiences={g}") for g in ("A", "B")}
    if kind == "braze-one-value":
        return {"*": server.members("audiences=vip")}
    if kind == "attentive":
        return {"*": server.members("seg-1")}
    if kind == "klaviyo":
        return {"*": server.members("L1")}
    if kind == "webhook":
        return {g: server.members(f"Holiday/{g}") for g in ("A", "B")}
    if kind == "webhook-one-body":
        return {"*": server.members("Holiday/all")}
    if kind == "csv":
        out = {}
        for g in ("A", "B"):
            with open(folder / "exports" / f"Holiday-{g}.csv", newline="") as handle:
                out[g] = {row["customer_id"] for row in csv.DictReader(handle)}
        return out
    table = sa.create_engine(f"sqlite:///{folder / 'exports' / 'copy.db'}")
    try:
        with table.connect() as conn:
            rows = conn.execute(sa.text("SELECT group_name, member_key FROM campaign_members")).fetchall()
    finally:
        table.dispose()
    out = {"A": set(), "B": set()}
    for group, key in rows:
        assert key not in out[group], f"two rows of {key} in group {group}"
        out[group].add(key)
    return out


def run(model, wh, state, folder, **options):
    return sync.run(model, wh, state, AS_OF, folder, env={"KEY": "secret-key"}, http_options=FAST, **options)


@pytest.mark.parametrize("kind", list(KINDS))
def test_customers_moving_between_groups_of_one_destination(kind, sync_project, servers, tmp_path):
    server_class, destination, identifiers, shared = KINDS[kind]
    server = servers(server_class) if server_class else None
    text = destination.format(url=server.url if server else "")

    def project(a: int, b: int) -> str:
        return text + CAMPAIGN.replace("{a}", str(a)).replace("{b}", str(b))

    model, wh, state = sync_project(project(40, 60))
    first = run(model, wh, state, tmp_path)
    assert {r.status for r in first} == {"ok"}, [r.message for r in first]
    before = {g: expected(wh, "Holiday", g, identifiers) for g in ("A", "B")}

    moved_model = model_of(tmp_path, project(70, 30))
    planned = {p.group: p for p in sync.preview(moved_model, wh, state, AS_OF, allow_removals=True,
                                                env={"KEY": "secret-key"})}
    results = run(moved_model, wh, state, tmp_path, allow_removals=True)
    assert {r.status for r in results} == {"ok"}, [r.message for r in results]
    after = {g: expected(wh, "Holiday", g, identifiers) for g in ("A", "B")}
    moved = set(after["A"]) - set(before["A"])
    assert moved and moved == set(before["B"]) - set(after["B"]), "customers move from B to A only"

    # The plan shows the moves: A adds them; B removes them unless both groups write one audience (then the
    # removal would take a member of A out: it is retired, and nobody leaves the audience).
    assert (planned["A"].adds, planned["A"].removes) == (len(moved), 0)
    assert (planned["B"].adds, planned["B"].removes) == (0, 0 if shared else len(moved))
    assert {r.target.group: (r.added, r.removed) for r in results} == \
        {"A": (len(moved), 0), "B": (0, 0 if shared else len(moved))}

    held = holdings(kind, server, tmp_path)
    a, b = set(after["A"].values()), set(after["B"].values())
    if shared:
        assert held == {"*": a | b}
    else:
        assert held == {"A": a, "B": b}
        assert not held["A"] & held["B"], "a customer is in both groups' audiences"
    if server is not None:
        removals = [op for op in server.operations if op[1] == "remove"]
        assert removals == [] if shared else len(removals) == len(moved)
        # A repeated add of a member already held is the only operation that may arrive twice (shared audience).
        assert all(op[1] == "add" for op in server.duplicates()) and (shared or server.duplicates() == [])
    assert {r.status for r in run(moved_model, wh, state, tmp_path)} == {"unchanged"}


# ------------------------------------------------------------------ the key of each kind


def _model(tmp_path, destinations: str, groups=("A", "B"), to='"D"'):
    treatments = "\n".join(f'  treatment "{g}" {100 // len(groups)}% to {to}' for g in groups)
    return model_of(tmp_path, destinations + f'\ncampaign "Holiday" <\n  audience segment "Reachable"\n'
                                            f"{treatments}\n>\n")


def _keys(model) -> dict[tuple[str, str], str]:
    return {(g, d.name): audience.key(d, Target(c.name, g, d.name)) for c, g, d in sync.targets(model)}


@pytest.mark.parametrize(("kind", "settings", "one"), [
    ("braze", 'api_key = env("KEY")\n  base_url = "http://127.0.0.1:1"', False),
    ("braze", 'api_key = env("KEY")\n  base_url = "http://127.0.0.1:1"\n  value = "vip"', True),
    ("attentive", 'api_key = env("KEY")\n  segment = "s"', True),
    ("klaviyo", 'api_key = env("KEY")\n  list_id = "L"', True),
    ("webhook", 'url = "http://127.0.0.1:1/hook"', False),
    ("webhook", 'url = "http://127.0.0.1:1/hook"\n  body = "{{ members | tojson }}"', True),
    ("webhook", 'url = "http://127.0.0.1:1/hook"\n  body = "{{ {\'g\': group, \'m\': members} | tojson }}"', False),
    ("csv", 'path = "out/{{ group }}.csv"', False),
    ("sql", 'url = "sqlite:///t.db"\n  table = "t"', False),
])
def test_the_key_is_what_each_group_writes(kind, settings, one, tmp_path):
    keys = _keys(_model(tmp_path, f'destination "D" {kind} <\n  {settings}\n>\n'))
    assert (keys[("A", "D")] == keys[("B", "D")]) is one


def test_defaults_count_as_written_and_secrets_stay_out(tmp_path):
    model = _model(tmp_path, '''
destination "D" attentive <
  api_key = env("KEY")
  segment = "s"
>
destination "E" attentive <
  api_key = env("OTHER_KEY")
  segment = "s"
  base_url = "https://api.attentivemobile.com/"
>
destination "F" braze <
  api_key = env("KEY")
  base_url = env("BRAZE_URL")
>
destination "G" braze <
  api_key = env("KEY")
  base_url = env("BRAZE_URL")
  attribute = "audiences"
  value = "A"
>
destination "S1" sql <
  url = "sqlite:///t.db"
  table = "t"
>
destination "S2" sql <
  url = "sqlite:///t.db"
  table = "t"
>
''', groups=("A", "B"), to='"D", "E", "F", "G", "S1", "S2"')
    keys = _keys(model)
    assert keys[("A", "D")] == keys[("A", "E")]  # the default base URL, written out: one segment
    assert keys[("A", "F")] == keys[("A", "G")] != keys[("B", "F")]  # group A's default value is "A"
    assert keys[("A", "S1")] == keys[("A", "S2")] != keys[("B", "S1")]  # one table, rows by campaign and group
    parts = audience.parts(model.destinations["F"], Target("Holiday", "A", "F"))
    assert dict(parts) == {"base_url": "env:BRAZE_URL", "attribute": "audiences", "value": "A"}
    shared = sync.Audiences(sync.targets(model)).sharing(Target("Holiday", "A", "F"), model.destinations["F"])
    assert [(g, d.name) for _i, _c, g, d in shared] == [("A", "G"), ("B", "G")]  # G writes "A" for both


# ------------------------------------------------------------------ a state keyed before #16


def _restore(data: dict, wh: sa.Engine, state: sa.Engine, folder: Path) -> None:
    """The fixture's state tables (in the layout of their time: the sync's own version 2, alone in the
    state database; the next sync upgrades them), warehouse log and sql destination table."""
    tables = state_layouts.make(state, None, 2, meta_row=False).tables
    with state.begin() as conn:
        for name, rows in data["state"].items():
            if rows:
                conn.execute(tables[name].insert(), rows)
    columns = ("target_id", "tick", "operation", "customer_id", "member_key", "fingerprint", "data")
    with wh.begin() as conn:
        wh_delta.ensure_log(conn)
        conn.execute(wh_delta.log_table.insert(), [dict(zip(columns, row, strict=True)) for row in data["log"]])
    (folder / "exports").mkdir(exist_ok=True)
    table = sa.create_engine(f"sqlite:///{folder / 'exports' / 'copy.db'}")
    with table.begin() as conn:
        names = list(data["sql"][0])
        conn.execute(sa.text(f"CREATE TABLE campaign_members ({', '.join(n + ' VARCHAR' for n in names)})"))
        conn.execute(sa.text(f"INSERT INTO campaign_members VALUES ({', '.join(':' + n for n in names)})"),
                     data["sql"])
    table.dispose()


def _legacy(sync_project, servers, folder: Path):
    """The fixture's project, state, log and vendors, as the pre-#16 audlang left them."""
    data = json.loads(FIXTURE.read_text())
    model, wh, state = sync_project(data["project"])
    with wh.begin() as conn:
        for cid in data["churned"]:
            conn.execute(sa.text("UPDATE customer_360 SET phone = NULL, email = NULL WHERE customer_id = :c"),
                         {"c": cid})
    sync.materialize_campaigns(wh, model, AS_OF)
    groups = {g: sorted(expected(wh, "Holiday", g, ("customer_id",))) for g in ("A", "B")}
    assert groups == data["groups"], "the synthetic warehouse changed: regenerate the fixture (make_v2_audiences.py)"
    _restore(data, wh, state, folder)
    braze, attentive, klaviyo, hook = (servers(BrazeServer), servers(AttentiveServer), servers(KlaviyoServer),
                                       servers(WebhookServer))
    braze.membership = {k: set(v) for k, v in data["braze"].items()}
    attentive.membership = {k: set(v) for k, v in data["attentive"].items()}
    klaviyo.membership = {k: set(v) for k, v in data["klaviyo"]["membership"].items()}
    klaviyo.profiles = dict(data["klaviyo"]["profiles"])
    hook.membership = {k: set(v) for k, v in data["webhook"].items()}
    env = {"KEY": "secret-key", "BRAZE_URL": braze.url, "ATTENTIVE_URL": attentive.url,
           "KLAVIYO_URL": klaviyo.url, "HOOK_URL": hook.url + "/hook"}
    a, b = set(groups["A"]), set(groups["B"])
    stuck = braze.members("audiences=B") - b  # moved to A (or left), B's removal retired by the old key
    assert braze.members("audiences=A") == a and stuck and stuck == set(data["moved"]) \
        and braze.members("audiences=A") & braze.members("audiences=B") == stuck - set(data["churned"])

    def apply(**options):
        return sync.run(model, wh, state, AS_OF, folder, env=env, http_options=FAST, **options)

    return model, wh, state, env, apply, (braze, attentive, klaviyo, hook), a, b, stuck


def test_a_state_keyed_before_16_is_rekeyed_and_the_stuck_braze_users_repaired(sync_project, servers, tmp_path):
    model, wh, state, env, apply, vendors, a, b, stuck = _legacy(sync_project, servers, tmp_path)
    braze, attentive, klaviyo, hook = vendors
    with state.connect() as conn:
        ids = dict(conn.execute(sa.text("SELECT target, target_id FROM audlang_sync_targets")).fetchall())

    # The plan sees the repair: B removes what it holds and never sent the removal of; nothing else changes.
    planned = {(p.group, p.destination): p for p in sync.preview(model, wh, state, AS_OF, env=env)}
    assert {k for k, p in planned.items() if p.status != "unchanged"} == {("B", "Braze")}
    repair = planned[("B", "Braze")]
    assert repair.status == "held" and "max_removal" in repair.message  # 29 of 53: above the 20% guard
    allowed = {(p.group, p.destination): p for p in sync.preview(model, wh, state, AS_OF, env=env,
                                                                 allow_removals=True)}
    assert (allowed[("B", "Braze")].status, allowed[("B", "Braze")].adds, allowed[("B", "Braze")].removes) == \
        ("send", 0, len(stuck))

    held = apply()  # re-keys every target; the repair waits for --allow-removals like any large removal
    assert {(r.target.group, r.target.destination): r.status for r in held if r.status != "unchanged"} == \
        {("B", "Braze"): "held"}
    for server in (braze, attentive, klaviyo, hook):
        assert server.requests == [], f"{server.kind}: something acknowledged was sent again"
    again = {(p.group, p.destination): p for p in sync.preview(model, wh, state, AS_OF, env=env,
                                                               allow_removals=True)}
    assert (again[("B", "Braze")].adds, again[("B", "Braze")].removes) == (0, len(stuck))  # plan = apply's view

    repaired = apply(allow_removals=True)
    assert {(r.target.group, r.target.destination): (r.status, r.added, r.removed) for r in repaired
            if r.status != "unchanged"} == {("B", "Braze"): ("ok", 0, len(stuck))}
    assert braze.members("audiences=A") == a and braze.members("audiences=B") == b
    assert sorted(braze.operations) == sorted(("audiences=B", "remove", k) for k in stuck)  # one each, no more
    for server in (attentive, klaviyo, hook):
        assert server.requests == []
    assert {r.status for r in apply()} == {"unchanged"}
    with state.connect() as conn:
        after = conn.execute(sa.text("SELECT target, target_id, audience FROM audlang_sync_targets")).fetchall()
    assert {t: i for t, i, _a in after} == ids  # the same ids: nothing acknowledged was forgotten
    decls = model.destinations
    assert {t: k for t, _i, k in after} == {
        t: audience.key(decls[t.split("\x1f")[2]], Target(*t.split("\x1f"))) for t in ids}


def test_a_migration_killed_halfway_is_finished_by_the_next_apply(sync_project, servers, tmp_path, monkeypatch):
    """Killed after the possibly retired removals were appended to B's log but before B was re-keyed: the
    next apply appends nothing twice and sends each repair once."""
    model, wh, state, env, apply, vendors, a, b, stuck = _legacy(sync_project, servers, tmp_path)
    braze = vendors[0]
    real = sync.syncer.Syncer._upgrade

    def killed(self, campaign, group, decl, target_id):
        begin, calls = self.state.begin, []

        def counted():
            calls.append(1)
            if len(calls) == 2:  # the tick is reserved and the rows appended; the re-key never comes
                raise KeyboardInterrupt
            return begin()

        self.state = type("Killing", (), {"begin": staticmethod(counted), "connect": self.state.connect})()
        try:
            real(self, campaign, group, decl, target_id)
        finally:
            self.state = begin.__self__

    monkeypatch.setattr(sync.syncer.Syncer, "_upgrade", killed)
    with pytest.raises(KeyboardInterrupt):
        apply(allow_removals=True)
    monkeypatch.setattr(sync.syncer.Syncer, "_upgrade", real)
    assert braze.members("audiences=B") == b | stuck  # nothing sent yet
    legacy = sync.legacy_audience_key(model.destinations["Braze"])
    with state.connect() as conn:
        target_id, recorded = conn.execute(sa.text("SELECT target_id, audience FROM audlang_sync_targets "
                                                   "WHERE target = :t"), {"t": "Holiday\x1fB\x1fBraze"}).one()
    with wh.connect() as conn:
        assert recorded == legacy and wh_delta.count_acknowledged(conn, target_id) == len(b | stuck)
    repaired = apply(allow_removals=True)
    assert {(r.target.group, r.target.destination): (r.status, r.removed) for r in repaired
            if r.status != "unchanged"} == {("B", "Braze"): ("ok", len(stuck))}
    assert braze.members("audiences=A") == a and braze.members("audiences=B") == b
    assert braze.duplicates() == [] and len(braze.operations) == len(stuck)
    assert {r.status for r in apply()} == {"unchanged"}


def test_a_renamed_campaign_is_another_audience_where_its_name_is_written(sync_project, servers, tmp_path):
    """A sql row holds the campaign's name: after `moved campaign` the group goes to the new name's rows in
    full (the old rows stay, like any audience left); Braze writes only the group's name: nothing is sent."""
    braze = servers(BrazeServer)
    destinations = KINDS["sql"][1].format(url="") + KINDS["braze"][1].format(url=braze.url).replace('"D"', '"Bz"')
    one = '''
campaign "Holiday" <
  audience segment "Reachable"
  treatment "All" 100% to "D", "Bz"
>
'''
    model, wh, state = sync_project(destinations + one)
    run(model, wh, state, tmp_path)
    group = set(expected(wh, "Holiday", "All", ("customer_id",)))
    requests = len(braze.requests)
    renamed = model_of(tmp_path, destinations + one.replace('"Holiday"', '"Holiday 2024"')
                       + 'moved campaign "Holiday" to "Holiday 2024"\n')
    planned = {p.destination: (p.status, p.adds, p.removes) for p in sync.preview(renamed, wh, state, AS_OF,
                                                                                  env={"KEY": "secret-key"})}
    assert planned == {"D": ("send", len(group), 0), "Bz": ("unchanged", 0, 0)}
    results = {r.target.destination: (r.status, r.added) for r in run(renamed, wh, state, tmp_path)}
    assert results == {"D": ("ok", len(group)), "Bz": ("unchanged", 0)} and len(braze.requests) == requests
    table = sa.create_engine(f"sqlite:///{tmp_path / 'exports' / 'copy.db'}")
    with table.connect() as conn:
        rows = conn.execute(sa.text("SELECT campaign, customer_id FROM campaign_members")).fetchall()
    table.dispose()
    assert {c for c, i in rows if c == "Holiday 2024"} and {i for c, i in rows if c == "Holiday 2024"} == group
    assert {i for c, i in rows if c == "Holiday"} == group  # left as it is
    assert {r.status for r in run(renamed, wh, state, tmp_path)} == {"unchanged"}
