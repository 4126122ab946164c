"""Delta sync of campaign groups to destinations, with exactly-once effect.

Split by job: ``syncer`` sends each target's batches and acknowledges them
(its docstring describes the protocol); ``batches`` plans them without I/O
(the delta as a value, the guards, the cut into batches and their keys);
``targets`` says which groups go where and reads and writes what the state
records of each target; ``preview`` counts what a sync would send (the
plan); ``records`` reads back the runs and the rejected members; ``delta``
keeps what each destination acknowledged in the warehouse and computes the
delta there, in SQL; ``audience`` says which vendor audience each target
writes (what its destination sends for the group, defaults included). The
control tables in the state database are the state's (``state.sync_tables``).
See docs/sync.md for the user's view.

May import ``campaigns``, ``destinations``, ``check``, ``compile``, ``state``,
``warehouse`` and SQLAlchemy (STYLE §1).
"""

from audlang.campaigns import materialize_campaigns
from audlang.state.sync_tables import batches_table, errors_table, runs_table, targets_table
from audlang.sync.audience import Audiences, key as audience_key, legacy_key as legacy_audience_key
from audlang.sync.batches import RETIRE, Delta, Planned, guard_of, plan_batches
from audlang.sync.delta import ADD, LOG_TABLE, REMOVE, Acked, Counts
from audlang.sync.preview import preview
from audlang.sync.records import SyncError, errors, runs
from audlang.sync.syncer import FAULT_ENV, Syncer, SyncResult, apply_syncs, run
from audlang.sync.targets import STOPPED_MESSAGE, has_targets, migrate_v1, missing_secrets, targets

__all__ = ["ADD", "Acked", "Audiences", "Counts", "Delta", "FAULT_ENV", "LOG_TABLE", "Planned", "REMOVE", "RETIRE",
           "STOPPED_MESSAGE", "SyncError", "SyncResult", "Syncer", "apply_syncs", "audience_key", "batches_table",
           "errors", "errors_table", "guard_of", "has_targets", "legacy_audience_key", "materialize_campaigns",
           "migrate_v1", "missing_secrets", "plan_batches", "preview", "run", "runs", "runs_table", "targets",
           "targets_table"]
