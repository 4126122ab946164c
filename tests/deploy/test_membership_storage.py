"""The membership storage (``warehouse.membership``, ``warehouse.generations``) on each engine: a generation
table per refresh behind each segment's view.

- a refresh counts members, added and removed against the deployed membership, and leaves one table behind
  the view (two on Spark, which keeps the previous one for its readers);
- a reader in another connection sees the old membership or the new one, never a mix, also while the
  writer's transaction is open between the swap and the commit;
- a rename renames tables (the same generations, under the new name); a drop removes view and tables;
- all of it the same with the catalog tracked (``for_bind(tracked=True)``, apply's: listed once, then
  followed), mixed with renames and drops that make it list again;
- table names are plain identifiers within PostgreSQL's 63 bytes whatever the segment's name;
- the campaigns' assignment is one generation behind ``audlang_campaign_members``, paused campaigns
  carried over, an older audlang's table of that name replaced;
- a warehouse an older audlang applied (one ``audlang_membership`` table and a view per segment over it,
  written here directly as that version wrote it) reads the same before its move, is moved by ``ensure``
  in one transaction, and is left as it was, still readable, by a failure or a kill in the middle of it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import sqlalchemy as sa
from deploy_fixtures import (  # noqa: F401
    AS_OF, cli_run, generation_tables, materialized_views, project, segment_members, warehouse_url,
)
from helpers import ENGINES, WITH_SPARK

from audlang import campaigns, warehouse
from audlang.check.names import view_name
from audlang.warehouse import generations, membership, tables
from audlang.warehouse.membership import Change

PEOPLE = 400
people_table = sa.Table("people", sa.MetaData(), sa.Column("customer_id", sa.String), sa.Column("n", sa.Integer))
people = sa.table("people", sa.column("customer_id"), sa.column("n"))


def ids(lo: int, hi: int) -> sa.Select:
    """The SELECT of the people numbered lo..hi-1 (what a segment's compiled query is: distinct ids)."""
    return sa.select(people.c.customer_id).where(people.c.n >= lo, people.c.n < hi).distinct()


def expected(lo: int, hi: int) -> set[str]:
    return {f"C{n:04d}" for n in range(lo, hi)}


@pytest.fixture(scope="module")
def engine(warehouse):
    """The module's warehouse on the engine under test, with a table of PEOPLE people."""
    eng = warehouse_engine(warehouse.url)
    yield eng
    eng.dispose()


def warehouse_engine(url: str) -> sa.Engine:
    eng = warehouse.connect(url, must_exist=False)
    with transaction(eng) as conn:
        if not warehouse.has_table(conn, "people"):
            warehouse.create_table(conn, people_table)
            warehouse.bulk_insert(conn, people_table, [{"customer_id": f"C{n:04d}", "n": n} for n in range(PEOPLE)])
    return eng


@contextlib.contextmanager
def transaction(engine: sa.Engine):
    """A transaction where the engine has them (Spark: a connection: each statement is its own)."""
    if warehouse.traits(engine).transactions:
        with engine.begin() as conn:
            yield conn
    else:
        with engine.connect() as conn:
            yield conn


def members(engine: sa.Engine, segment: str) -> set[str]:
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(warehouse.for_bind(conn).members_of(segment))}


def tables_of(engine: sa.Engine, segment: str) -> list[str]:
    with engine.connect() as conn:
        view = view_name(segment)
        return [generations.table(conn, view, n) for n in generations.generations(conn, view)]


def views(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(tables.view_names(conn, "audlang_"))


@pytest.fixture(params=[False, True], ids=["listed", "tracked"])
def tracked(request) -> bool:
    """Whether the Membership under test follows the catalog it listed once (apply's) or lists it at each
    refresh."""
    return request.param


def kept(engine: sa.Engine) -> int:
    """Generation tables behind a view after a refresh: the current one, and Spark's previous one."""
    return 1 if warehouse.traits(engine).transactions else 2


# ------------------------------------------------------------------ refresh, rename, drop, names


@pytest.mark.parametrize("warehouse", WITH_SPARK, indirect=True)
def test_a_refresh_counts_against_the_deployed_membership(engine, tracked):
    mem = warehouse.for_bind(engine, tracked=tracked)
    with transaction(engine) as conn:
        mem.ensure(conn)
        assert mem.replace(conn, "Refreshed", ids(0, 100)) == Change(100, 100, 0)
    assert members(engine, "Refreshed") == expected(0, 100)
    with transaction(engine) as conn:
        assert mem.replace(conn, "Refreshed", ids(50, 200)) == Change(150, 100, 50)
    assert members(engine, "Refreshed") == expected(50, 200)
    with transaction(engine) as conn:
        assert mem.replace(conn, "Refreshed", ids(50, 200)) == Change(150, 0, 0)
        assert mem.replace(conn, "Refreshed", warehouse.nobody()) == Change(0, 0, 150)
    assert members(engine, "Refreshed") == set()
    assert len(tables_of(engine, "Refreshed")) == kept(engine)
    with engine.connect() as conn:
        assert mem.materialized(conn)


@pytest.mark.parametrize("warehouse", WITH_SPARK, indirect=True)
def test_a_new_generation_is_counted_by_its_write_where_the_engine_reports_it(engine):
    """``CREATE TABLE … AS`` reports the rows it wrote on DuckDB and PostgreSQL: that is the new
    generation's count, with no ``count(*)`` after it; elsewhere the count is a query."""
    with transaction(engine) as conn:
        tables.drop_table(conn, "counted_write")
        rows = tables.create_table_as(conn, "counted_write", ids(10, 47))
        reports = tables.traits(conn).counts_created_rows
        assert rows == (37 if reports else None)
        assert conn.execute(sa.text("SELECT count(*) FROM counted_write")).scalar_one() == 37
        tables.drop_table(conn, "counted_write")


@pytest.mark.parametrize("warehouse", ["duckdb", "postgresql"], indirect=True)
def test_duckdb_and_postgresql_report_the_rows_of_a_create_table_as(engine):
    with engine.connect() as conn:
        assert tables.traits(conn).counts_created_rows


twice_table = sa.Table("people_twice", sa.MetaData(), sa.Column("customer_id", sa.String), sa.Column("n", sa.Integer))


@pytest.mark.parametrize("warehouse", WITH_SPARK, indirect=True)
def test_the_preview_counts_what_the_refreshes_then_count(engine, monkeypatch):
    """The plan's preview (``Membership.preview``) over segments of each kind: filters over one table,
    tested together on one scan of it (``unnest`` of an array on DuckDB and PostgreSQL, a SELECT each on
    SQLite), whose table holds some ids twice; a segment's own SELECT; segments never deployed, over
    that table and over one that holds each id once (counted without their rows); and a second level
    reading a previewed segment. Its counts are those of the refreshes that follow."""
    mem = warehouse.for_bind(engine)
    with transaction(engine) as conn:
        if not warehouse.has_table(conn, "people_twice"):
            warehouse.create_table(conn, twice_table)
            warehouse.bulk_insert(conn, twice_table, [{"customer_id": f"C{n:04d}", "n": n}
                                                      for n in [*range(PEOPLE), *range(0, PEOPLE, 7)]])
        for name, (lo, hi) in {"A": (0, 100), "B": (150, 300), "C": (0, 10), "D": (30, 60)}.items():
            mem.replace(conn, name, ids(lo, hi))
    twice = sa.table("people_twice", sa.column("customer_id"), sa.column("n")).alias("w")

    def between(lo: int, hi: int) -> warehouse.Filter:
        return warehouse.Filter(twice, twice.c.customer_id, sa.and_(twice.c.n >= lo, twice.c.n < hi))

    once = people.alias("p")  # each id once: a filter over it with nothing deployed is counted without its rows
    first = {"A": between(20, 120), "B": between(150, 300), "C": ids(5, 40), "New": between(390, 400),
             "Fresh": warehouse.Filter(once, once.c.customer_id, sa.or_(once.c.n < 3, once.c.n >= 395)),
             "Fresh empty": warehouse.Filter(once, once.c.customer_id, once.c.n > PEOPLE)}

    def second(previewed):
        a = previewed("A")
        in_a = people.c.customer_id.in_(a if a is not None else ids(20, 120))
        return {"D": sa.select(people.c.customer_id).where(in_a, people.c.n < 50).distinct(),
                "E": warehouse.Filter(twice, twice.c.customer_id,
                                      sa.and_(twice.c.customer_id.in_(a if a is not None else ids(20, 120)),
                                              twice.c.n >= 100))}

    with engine.connect() as conn:
        previewed = mem.preview(conn, [lambda _previewed: first, second], used={"A"})
        # a segment a chunk: a table's check of its ids is made once and kept for the later chunks
        monkeypatch.setattr(membership, "PREVIEW_CHUNK", 1)
        assert mem.preview(conn, [lambda _previewed: first, second], used={"A"}) == previewed
    queries = {**{k: q.query() if isinstance(q, warehouse.Filter) else q for k, q in first.items()},
               "D": ids(20, 50), "E": ids(100, 120)}
    with transaction(engine) as conn:
        changes = {name: mem.replace(conn, name, query) for name, query in queries.items()}
    assert {k: (p.members, p.added, p.removed) for k, p in previewed.items()} == \
        {k: (c.members, c.added, c.removed) for k, c in changes.items()}
    assert changes["A"] == Change(100, 20, 20) and changes["New"] == Change(10, 10, 0)
    assert changes["Fresh"] == Change(8, 8, 0) and changes["Fresh empty"] == Change(0, 0, 0)
    assert previewed["D"].deployed == 30 and previewed["E"].deployed == 0


@pytest.mark.parametrize("warehouse", WITH_SPARK, indirect=True)
def test_a_rename_moves_the_tables_and_no_row(engine, tracked):
    mem = warehouse.for_bind(engine, tracked=tracked)
    with transaction(engine) as conn:
        mem.replace(conn, "Before", ids(0, 30))
        mem.replace(conn, "Before", ids(0, 40))
    moved = tables_of(engine, "Before")
    with transaction(engine) as conn:
        mem.rename(conn, "Before", "After")
    assert members(engine, "After") == expected(0, 40)
    assert view_name("Before") not in views(engine) and tables_of(engine, "Before") == []
    # The same generations, renamed: their numbers kept, no table written anew.
    assert [t.rsplit("_", 1)[1] for t in tables_of(engine, "After")] == [t.rsplit("_", 1)[1] for t in moved]
    # A refresh under a new name at once (``previous_name``) counts against the membership of the old.
    with transaction(engine) as conn:
        assert mem.replace(conn, "Last", ids(10, 40), previous_name="After") == Change(30, 0, 10)
    assert members(engine, "Last") == expected(10, 40) and view_name("After") not in views(engine)
    # A rename onto a name whose view a deleted segment left (a name that differed in case): the moved
    # membership is what the view shows; the leftover tables go.
    with transaction(engine) as conn:
        mem.replace(conn, "left over", ids(0, 5))
        mem.rename(conn, "Last", "Left Over")
    assert members(engine, "Left Over") == expected(10, 40)
    assert len(tables_of(engine, "Left Over")) <= kept(engine) + 1


@pytest.mark.parametrize("warehouse", WITH_SPARK, indirect=True)
def test_a_drop_removes_the_view_and_its_tables(engine, tracked):
    mem = warehouse.for_bind(engine, tracked=tracked)
    with transaction(engine) as conn:
        mem.replace(conn, "Dropped", ids(0, 10))
        mem.replace(conn, "Dropped", ids(0, 20))
    with transaction(engine) as conn:
        mem.drop(conn, "Dropped", drop_view=False)  # another segment has the view now: it stays
    assert members(engine, "Dropped") == expected(0, 20)
    with transaction(engine) as conn:
        mem.drop(conn, "Dropped")
    assert view_name("Dropped") not in views(engine) and tables_of(engine, "Dropped") == []


HOSTILE = ["O'Brien \"quoted\"; DROP TABLE people; --", "Ünïcödé 名前", "x" * 200, "a" * 60 + "1", "a" * 60 + "2",
           "ends in a digit 1", "ends in a digit 12"]


@pytest.mark.parametrize("warehouse", WITH_SPARK, indirect=True)
def test_table_names_are_plain_and_short_whatever_the_segment_name(engine, tracked):
    mem = warehouse.for_bind(engine, tracked=tracked)
    with transaction(engine) as conn:
        for i, name in enumerate(HOSTILE):
            mem.replace(conn, name, ids(i * 10, i * 10 + 5 + i))
    limit = warehouse.traits(engine).name_limit
    for i, name in enumerate(HOSTILE):
        assert members(engine, name) == expected(i * 10, i * 10 + 5 + i), name
        (table,) = tables_of(engine, name)
        assert tables.plain_name(table) and (limit is None or len(table) <= limit), table
    assert len({t for name in HOSTILE for t in tables_of(engine, name)}) == len(HOSTILE)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(people)).scalar() == PEOPLE
    with transaction(engine) as conn:  # the next run of this test starts from none of them
        for name in HOSTILE:
            mem.drop(conn, name)
    assert not any(tables_of(engine, name) for name in HOSTILE)


# ------------------------------------------------------------------ readers during a refresh


@pytest.mark.parametrize("warehouse", WITH_SPARK, indirect=True)
def test_a_reader_sees_the_old_membership_or_the_new_never_a_mix(engine, monkeypatch):
    """A reader in another connection polls the view while refreshes swap two different memberships; each
    refresh holds its transaction open a while after the view was swapped, before the old table is dropped
    and before the commit: the reader still sees the old membership then (the new one on Spark, whose swap
    is at once), and never anything else."""
    a, b = (0, 150), (100, PEOPLE)
    mem = warehouse.for_bind(engine)
    with transaction(engine) as conn:
        mem.replace(conn, "Watched", ids(*a))
    prune = generations.prune

    def slow_prune(*args, **kwargs):
        time.sleep(0.3)
        prune(*args, **kwargs)

    monkeypatch.setattr(generations, "prune", slow_prune)
    seen: list[frozenset[str]] = []
    stop = threading.Event()

    def read() -> None:
        with engine.connect() as conn:
            while not stop.is_set():
                try:
                    seen.append(frozenset(r[0] for r in conn.execute(sa.text(f"SELECT customer_id FROM "
                                                                             f"{view_name('Watched')}"))))
                    conn.commit()
                except sa.exc.OperationalError:
                    conn.rollback()  # SQLite: the writer holds the file while it commits

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for turn in range(4 if warehouse.traits(engine).transactions else 2):
            with transaction(engine) as conn:
                mem.replace(conn, "Watched", ids(*(b if turn % 2 == 0 else a)))
                time.sleep(0.3)
    finally:
        stop.set()
        reader.join()
    assert seen
    assert set(seen) <= {frozenset(expected(*a)), frozenset(expected(*b))}
    assert frozenset(expected(*b)) in seen


# ------------------------------------------------------------------ campaigns


@pytest.mark.parametrize("warehouse", WITH_SPARK, indirect=True)
def test_campaigns_are_one_generation_paused_ones_carried_over(engine):
    mem = warehouse.for_bind(engine)
    table = campaigns.campaign_members_table
    rows = "SELECT campaign, group_name, customer_id FROM audlang_campaign_members"
    # What an older audlang wrote: a table of that name, here with a paused campaign and a deleted one.
    with transaction(engine) as conn:
        warehouse.create_table(conn, table)
        warehouse.bulk_insert(conn, table, [{"campaign": c, "group_name": "G", "customer_id": f"C{n:04d}"}
                                            for c in ("Paused", "Deleted") for n in range(3)])

    def assignment(lo: int, hi: int) -> sa.Select:
        s = ids(lo, hi).subquery()
        group = sa.case((sa.func.substr(s.c.customer_id, 5, 1).in_(["0", "2", "4", "6", "8"]), "Even"), else_="Odd")
        return sa.select(s.c.customer_id, group.label("group_name"))

    with transaction(engine) as conn:
        assert mem.replace_groups(conn, table, {"Live": assignment(0, 10)}, ["Paused"]) == \
            {"Live": {"Even": 5, "Odd": 5}}
    with engine.connect() as conn:
        found = {tuple(r) for r in conn.execute(sa.text(rows))}
        assert tables.has_view(conn, "audlang_campaign_members")
    assert found == {("Live", "Even" if n % 2 == 0 else "Odd", f"C{n:04d}") for n in range(10)} | \
        {("Paused", "G", f"C{n:04d}") for n in range(3)}
    with transaction(engine) as conn:
        counted = mem.replace_groups(conn, table, {"Live": assignment(0, 4)}, ["Paused"])
    assert counted == {"Live": {"Even": 2, "Odd": 2}}
    with engine.connect() as conn:
        assert len([r for r in conn.execute(sa.text(rows)) if r[0] == "Live"]) == 4
        assert len(generations.generations(conn, "audlang_campaign_members")) == kept(engine)
    # Nothing kept any more (the paused campaign deleted): the view's columns keep their types.
    with transaction(engine) as conn:
        assert mem.replace_groups(conn, table, {"Live": assignment(0, 2)}, []) == {"Live": {"Even": 1, "Odd": 1}}
    with engine.connect() as conn:
        assert {r[0] for r in conn.execute(sa.text(rows))} == {"Live"}


# ------------------------------------------------------------------ an older audlang's warehouse

#: An older audlang's membership: {segment: the range of people in it}; "Nobody" has a view and no rows.
LEGACY = {"Big Spenders": (0, 100), "O'Brien's \"best\"": (50, 60), "Nobody": (0, 0), "Ünïcödé 名前": (300, 400),
          "x" * 80: (5, 8)}


def write_legacy(engine: sa.Engine) -> None:
    """The layout of audlang before generation tables, written as it wrote it: one indexed table of
    (segment, customer_id), a view per segment over it, and the rows of a staging key an interrupted
    refresh would have rolled back (never shown by a view)."""
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE audlang_membership (segment VARCHAR(500) NOT NULL, "
                             "customer_id VARCHAR NOT NULL)"))
        conn.execute(sa.text("CREATE INDEX audlang_membership_segment ON audlang_membership (segment)"))
        conn.execute(sa.text(
            "INSERT INTO audlang_membership (segment, customer_id) SELECT :s, customer_id FROM people "
            "WHERE n >= :lo AND n < :hi"),
            [{"s": s, "lo": lo, "hi": hi} for s, (lo, hi) in [*LEGACY.items(), ("audlang:staging:x", (0, 400))]])
        quote = conn.dialect.identifier_preparer.quote
        for segment in LEGACY:
            literal = segment.replace("'", "''")
            conn.execute(sa.text(f"CREATE VIEW {quote(view_name(segment))} AS SELECT customer_id FROM "
                                 f"audlang_membership WHERE segment = '{literal}'"))


def assert_legacy_reads(engine: sa.Engine) -> None:
    for segment, (lo, hi) in LEGACY.items():
        assert members(engine, segment) == expected(lo, hi), segment


def is_legacy(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return warehouse.has_table(conn, "audlang_membership")


@pytest.fixture
def legacy(warehouse):
    """A new warehouse on the engine under test, in an older audlang's layout."""
    eng = warehouse_engine(warehouse.new_url("legacy"))
    write_legacy(eng)
    yield eng
    eng.dispose()


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_an_older_warehouse_reads_the_same_and_is_moved_by_ensure(legacy):
    assert_legacy_reads(legacy)
    mem = warehouse.for_bind(legacy)
    # The plan's preview, before the move, counts against the old views.
    with legacy.connect() as conn:
        counted = mem.preview(conn, [lambda _previewed: {"Big Spenders": ids(50, 150), "New": ids(0, 3)}])
    assert (counted["Big Spenders"].members, counted["Big Spenders"].deployed, counted["Big Spenders"].added,
            counted["Big Spenders"].removed) == (100, 100, 50, 50)
    assert (counted["New"].deployed, counted["New"].added) == (0, 3)
    with legacy.begin() as conn:
        mem.ensure(conn)
    assert not is_legacy(legacy)
    assert_legacy_reads(legacy)
    for segment in LEGACY:
        assert len(tables_of(legacy, segment)) == 1, segment
    assert len(generation_tables(legacy.url.render_as_string(hide_password=False))) == len(LEGACY)
    with legacy.begin() as conn:
        mem.ensure(conn)  # once moved, nothing more to do
        assert mem.replace(conn, "Big Spenders", ids(0, 120)) == Change(120, 20, 0)
    assert members(legacy, "Big Spenders") == expected(0, 120)


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_move_that_fails_half_way_leaves_the_older_warehouse_as_it_was(legacy, monkeypatch):
    swap, swapped = generations.swap, []

    def failing_swap(*args, **kwargs):
        if len(swapped) == 2:
            raise RuntimeError("the disk is full")
        swap(*args, **kwargs)
        swapped.append(args[1])

    monkeypatch.setattr(generations, "swap", failing_swap)
    mem = warehouse.for_bind(legacy)
    with pytest.raises(RuntimeError, match="the disk is full"), legacy.begin() as conn:
        mem.ensure(conn)
    assert len(swapped) == 2
    assert is_legacy(legacy) and generation_tables(legacy.url.render_as_string(hide_password=False)) == []
    assert_legacy_reads(legacy)
    monkeypatch.setattr(generations, "swap", swap)
    with legacy.begin() as conn:
        mem.ensure(conn)
    assert not is_legacy(legacy)
    assert_legacy_reads(legacy)


KILLED_MOVE = textwrap.dedent('''
    import sys, time
    import sqlalchemy as sa
    from audlang import warehouse
    from audlang.warehouse import generations, tables

    swap = generations.swap
    def swap_then_hang(*args, **kwargs):
        swap(*args, **kwargs)
        print("moving", flush=True)
        time.sleep(120)
    generations.swap = swap_then_hang
    engine = warehouse.connect(sys.argv[1])
    with engine.begin() as conn:
        warehouse.for_bind(conn).ensure(conn)
''')


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_move_killed_half_way_leaves_the_older_warehouse_as_it_was(legacy):
    url = legacy.url.render_as_string(hide_password=False)
    legacy.dispose()  # a DuckDB file has one writing process: the mover's
    mover = subprocess.Popen([sys.executable, "-c", KILLED_MOVE, url], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**os.environ})
    try:
        line = mover.stdout.readline()
        assert line.strip() == "moving", line + mover.stderr.read()
        mover.send_signal(signal.SIGKILL)
        mover.wait(timeout=30)
    finally:
        if mover.poll() is None:
            mover.kill()
            mover.wait()
        mover.stdout.close()
        mover.stderr.close()
    time.sleep(0.5)  # PostgreSQL: the server ends the dead client's session and rolls its transaction back
    assert is_legacy(legacy) and generation_tables(url) == []
    assert_legacy_reads(legacy)
    with legacy.begin() as conn:
        warehouse.for_bind(conn).ensure(conn)
    assert not is_legacy(legacy)
    assert_legacy_reads(legacy)


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_an_older_warehouse_plans_no_change_then_the_next_apply_moves_it(project, warehouse_url, cli_run):
    """Through the CLI: a project applied, its warehouse rewritten into the older layout (the state does not
    change with the layout), then plan (no changes: the old views are read), then an apply that moves it."""
    assert cli_run(project, "apply", "--auto-approve", "--as-of", AS_OF).returncode == 0
    names = ("Big Spenders", "VIP", "Recent")
    before = {name: segment_members(warehouse_url, name) for name in names}
    engine = sa.create_engine(warehouse_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE audlang_membership (segment VARCHAR(500) NOT NULL, "
                             "customer_id VARCHAR NOT NULL)"))
        for name in names:
            conn.execute(sa.text(f"INSERT INTO audlang_membership SELECT '{name}', customer_id FROM "
                                 f"{view_name(name)}"))
            generations.drop(conn, view_name(name))
            conn.execute(sa.text(f"CREATE VIEW {view_name(name)} AS SELECT customer_id FROM audlang_membership "
                                 f"WHERE segment = '{name}'"))
    engine.dispose()
    assert generation_tables(warehouse_url) == []
    assert {name: segment_members(warehouse_url, name) for name in names} == before
    planned = cli_run(project, "plan", "--as-of", AS_OF, "--detailed-exitcode")
    assert planned.returncode == 0 and "No changes." in planned.stdout, planned.stdout + planned.stderr
    (project / "segments.aud").write_text((project / "segments.aud").read_text().replace("> 500", "> 800"))
    applied = cli_run(project, "apply", "--auto-approve", "--as-of", AS_OF)
    assert applied.returncode == 0, applied.stderr
    assert set(generation_tables(warehouse_url)) == {generations.GENERATION_PREFIX + view_name(n) + "_" + g
                                                     for n, g in (("Big Spenders", "2"), ("VIP", "2"),
                                                                  ("Recent", "1"))}
    assert segment_members(warehouse_url, "Recent") == before["Recent"]
    assert segment_members(warehouse_url, "Big Spenders") < before["Big Spenders"]
    assert set(materialized_views(warehouse_url)) == {view_name(n) for n in names}
    assert cli_run(project, "plan", "--as-of", AS_OF, "--detailed-exitcode").returncode == 0
