"""Destinations: one module per kind behind one small protocol (``base.Destination``).

``open_destination(decl, target, root, exports_root=None)`` resolves the
settings (reading ``env("…")`` now; a missing variable is a ``SettingsError``)
and returns the destination for one campaign group; a file destination writes
only inside ``root`` (the project folder) or ``exports_root``. Kinds: csv and
sql (``files``), webhook, attentive, braze and klaviyo (``vendors``), meta and
google_ads (``ads``: identifiers arrive hashed, computed in the warehouse), listed
once in ``registry`` (kind → class). HTTP goes through
``http.Http`` (httpx, tenacity retries, batch splitting). ``audience(settings,
target)`` says which vendor audience a group's members go to, as each kind
writes it (the sync keys its state by it).

May import ``check``, ``ast`` and libraries (STYLE §1).
"""

from __future__ import annotations

from pathlib import Path

from audlang import ast
from audlang.destinations.base import (
    Batch, BatchRejected, BatchResult, Destination, DestinationUnavailable, Member, Rejection, Settings,
    SettingsError, Target, env_variables, make_member, missing_env, normalize_email, normalize_phone,
    resolve_settings,
)


def open_destination(decl: ast.Destination, target: Target, root: Path | str = ".", env=None,
                     exports_root: Path | str | None = None, **http_options) -> Destination:
    from audlang.destinations import registry  # loads every kind's module: on first use only

    settings = resolve_settings(decl, env)
    cls = registry.destination_class(decl.kind)
    if registry.speaks_http(cls):
        return cls(settings, target, **http_options)
    return cls(settings, target, Path(root), Path(exports_root) if exports_root is not None else None)


def audience(settings: Settings, target: Target) -> tuple[tuple[str, str], ...]:
    """What names the vendor audience this group's members go to, as the destination writes it, defaults
    included (Braze's value is the group's name unless set): (name, value) pairs. Two targets with the
    same kind and pairs write one audience (``audlang.sync.audience``)."""
    from audlang.destinations import registry

    return registry.destination_class(settings.kind).audience(settings, target)


__all__ = ["Batch", "BatchRejected", "BatchResult", "Destination", "DestinationUnavailable", "Member", "Rejection",
           "Settings", "SettingsError", "Target", "audience", "env_variables", "make_member", "missing_env",
           "normalize_email", "normalize_phone", "open_destination", "resolve_settings"]
