"""Delta sync of campaign groups to destinations, with exactly-once effect.

``engine`` runs the syncs and keeps their control data in the state database;
``delta`` keeps what each destination acknowledged in the warehouse and
computes the delta there, in SQL; ``audience`` says which vendor audience each
target writes (what its destination sends for the group, defaults included).
See ``engine``'s docstring for the protocol and docs/sync.md for the user's
view.

May import ``campaigns``, ``destinations``, ``check``, ``compile``, ``state``,
``warehouse`` and SQLAlchemy (STYLE §1).
"""

from audlang.campaigns import materialize_campaigns
from audlang.sync.audience import Audiences, key as audience_key, legacy_key as legacy_audience_key
from audlang.sync.delta import ADD, LOG_TABLE, REMOVE, Acked, Counts
from audlang.sync.engine import (
    FAULT_ENV, SYNC_SCHEMA_VERSION, Delta, Planned, SyncError, Syncer, SyncResult, apply_syncs, batches_table,
    errors, errors_table, guard_of, has_targets, meta_table, migrate_v1, missing_secrets, plan_batches,
    prepare_state, preview, run, runs, runs_table, targets, targets_table,
)

__all__ = ["ADD", "Acked", "Audiences", "Counts", "Delta", "FAULT_ENV", "LOG_TABLE", "Planned", "REMOVE",
           "SYNC_SCHEMA_VERSION", "SyncError", "SyncResult", "Syncer", "apply_syncs", "audience_key",
           "batches_table", "errors", "errors_table", "guard_of", "has_targets", "legacy_audience_key",
           "materialize_campaigns", "meta_table", "migrate_v1", "missing_secrets", "plan_batches", "prepare_state",
           "preview", "run", "runs", "runs_table", "targets", "targets_table"]
