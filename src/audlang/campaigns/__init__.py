"""Campaigns: an audience split into a holdout and treatment groups, or into sub-audiences, in SQL.

``assignment_query(model, name, compiler)`` is one query per campaign giving
``(customer_id, group_name)`` for every member of the audience that falls in a
group (holdout included). ``materialize_campaigns`` writes it to the warehouse view
``audlang_campaign_members(campaign, group_name, customer_id)``, where the
holdout stays recorded for measuring lift; ``audlang.sync`` reads the other
groups from there.

May import ``check``, ``compile``, ``ast`` and SQLAlchemy (STYLE §1).
"""

from audlang.campaigns.assign import (
    CAMPAIGN_MEMBERS_TABLE, HOLDOUT, Group, assignment_query, bucket_ranges, campaign_members_table, groups,
    materialize_campaigns, prepare_connection, salt_of,
)

__all__ = ["CAMPAIGN_MEMBERS_TABLE", "HOLDOUT", "Group", "assignment_query", "bucket_ranges",
           "campaign_members_table", "groups", "materialize_campaigns", "prepare_connection", "salt_of"]
