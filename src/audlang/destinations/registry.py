"""Every destination kind, once: the kind's name → the class that writes it.

Each class names its own kind (``kind = "csv"``); this table only lists the
classes, and ``open_destination`` and ``audience`` find a kind's class here.
The checker keeps the language's view of the same kinds, their settings
(``check.destinations.KINDS``); it sits below this package and cannot import
it, so ``tests/sync/test_destination_kinds.py`` holds the two equal. A new
kind is a class here and an entry there.

Importing this module loads every kind's module (httpx, SQLAlchemy), so the
package imports it on first use, not at start-up.
"""

from __future__ import annotations

from audlang.destinations.ads import GoogleAds, Meta
from audlang.destinations.base import SettingsError
from audlang.destinations.files import CsvFile, SqlTable
from audlang.destinations.http import HttpDestination
from audlang.destinations.vendors import Attentive, Braze, Klaviyo
from audlang.destinations.webhook import Webhook

#: In the order the checker lists them.
CLASSES: tuple[type, ...] = (CsvFile, Webhook, SqlTable, Attentive, Braze, Klaviyo, Meta, GoogleAds)
KINDS: dict[str, type] = {cls.kind: cls for cls in CLASSES}


def destination_class(kind: str) -> type:
    """The class of a destination kind; an unknown kind (which ``validate`` reports first) is a ``SettingsError``."""
    try:
        return KINDS[kind]
    except KeyError:
        raise SettingsError(f"unknown destination kind {kind}") from None


def speaks_http(cls: type) -> bool:
    """Whether the kind sends over HTTP (opened with the HTTP options), else writes files or tables
    (opened with the project's folder and the exports folder)."""
    return issubclass(cls, HttpDestination)
