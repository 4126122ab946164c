"""The one clock of audlang: every time recorded (the state, its history, the syncs, the report) reads it.

A time is text, ISO 8601 in UTC to the second (``2024-11-30T12:00:00Z``), so it compares as it sorts on
every engine. May import nothing of ours.
"""

from __future__ import annotations

import datetime as dt


def now() -> str:
    """The current time, as every record of audlang writes it."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
