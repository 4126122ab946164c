"""``apply --auto-approve`` plans and applies in one session (``deploy.session``): one connection, the shared
facts computed once by the plan and read by apply, the members what a plan apart computes (on DuckDB, SQLite
and PostgreSQL: the ``warehouse`` fixture)."""

from __future__ import annotations

import sqlalchemy as sa
from deploy_fixtures import project, warehouse_url  # noqa: F401

from audlang.compile import AsOf
from audlang.deploy import Session, apply_plan, plan_project
from audlang.project import load

AS_OF = "2024-11-30"


def test_the_plan_makes_the_facts_and_apply_reads_them(project, warehouse_url, monkeypatch):
    from audlang.warehouse import scratch

    made: list[list[str]] = []
    real = scratch.make_facts
    monkeypatch.setattr(scratch, "make_facts", lambda conn, facts: (made.append(facts.table_names),
                                                                   real(conn, facts))[1])
    loaded = load(None, str(project))
    with Session(warehouse_url) as session:
        planned = plan_project(loaded, warehouse_url, as_of=AsOf.parse(AS_OF), session=session)
        assert planned.has_changes and len(made) == 1
        facts = session.facts(loaded.model, AsOf.parse(AS_OF), ["VIP"])
        assert len(made) == 1, "a subset of the plan's segments reuses the plan's facts"
        with session.conn.begin():
            assert session.conn.execute(sa.text(f"SELECT count(*) FROM {facts.table_names[0]}")).scalar() > 0
        result = apply_plan(planned, warehouse_url, root=project, model=loaded.model, session=session)
        assert len(made) == 1, "apply computed no facts of its own"
        assert any(line.startswith('created segment "VIP"') for line in result.applied)
    again = plan_project(load(None, str(project)), warehouse_url, as_of=AsOf.parse(AS_OF))
    assert not again.has_changes  # what the session applied is what a plan apart computes
