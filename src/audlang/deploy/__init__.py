"""Plan and apply: the deployed state against the project, carried out in the warehouse.

- ``preview``: ``plan_project`` (the membership and sync previews, then the pure planner);
- ``apply``: ``apply_plan`` (lock, stale check, materialize, record, sync);
- ``demo``: the example project as ``audlang demo`` runs it;
- ``session``: a plan and its apply in one process, on one connection, the shared facts made once.

Storage of membership, engines and the embedded DuckDB file are the warehouse package's
(``warehouse.membership``, ``warehouse.engines``, ``warehouse.duckdb_files``).

May import ``sync``, ``plan``, ``state``, ``compile``, ``warehouse``, ``project``.
"""

from audlang.deploy.apply import ApplyResult, apply_plan, check_fresh, model_from_plan
from audlang.deploy.demo import demo_model
from audlang.deploy.preview import frozen_membership, plan_project, preview_membership
from audlang.deploy.session import Session
from audlang.warehouse.urls import state_url_for

__all__ = ["ApplyResult", "apply_plan", "check_fresh", "demo_model", "frozen_membership", "model_from_plan",
           "plan_project", "preview_membership", "Session", "state_url_for"]
