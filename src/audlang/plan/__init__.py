"""Plans: the ``Plan``/``Action`` values, the pure planner and the renderers (json, text, markdown).

``desired`` turns a checked Model into canonical definitions; ``planner.plan``
is a pure function (desired, deployed snapshot, membership preview) → Plan;
``render`` draws every human form from ``plan_to_json()``'s versioned document.
Actions, kinds and reason codes are the ``StrEnum``s of ``audlang.vocabulary``.
May import ``audlang.check``, ``audlang.syntax`` (the formatter), ``audlang.state``
(its read models only) and ``audlang.vocabulary``.
"""

from audlang.plan.desired import Desired, DesiredObject, desired_from_model
from audlang.plan.model import Action, MembershipChange, MembershipPreview, Plan, Reason, SyncPreview
from audlang.plan.planner import plan
from audlang.plan.render import (
    FORMAT_VERSION, plan_from_json, plan_to_json, reason_text, render_markdown, render_text,
)

__all__ = [
    "FORMAT_VERSION", "Action", "Desired", "DesiredObject", "MembershipChange", "MembershipPreview", "Plan", "Reason",
    "SyncPreview", "desired_from_model", "plan", "plan_from_json", "plan_to_json", "reason_text", "render_markdown",
    "render_text",
]
