"""Destinations: one module per kind behind one small protocol (``base.Destination``).

``open_destination(decl, target, root, exports_root=None)`` resolves the
settings (reading ``env("…")`` now; a missing variable is a ``SettingsError``)
and returns the destination for one campaign group; a file destination writes
only inside ``root`` (the project folder) or ``exports_root``. Kinds: csv and
sql (``files``), webhook, attentive, braze and klaviyo (``vendors``). HTTP goes through
``http.Http`` (httpx, tenacity retries, batch splitting).

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
    settings = resolve_settings(decl, env)
    root = Path(root)
    exports = Path(exports_root) if exports_root is not None else None
    if decl.kind == "csv":
        from audlang.destinations.files import CsvFile

        return CsvFile(settings, target, root, exports)
    if decl.kind == "sql":
        from audlang.destinations.files import SqlTable

        return SqlTable(settings, target, root, exports)
    if decl.kind == "webhook":
        from audlang.destinations.webhook import Webhook

        return Webhook(settings, target, **http_options)
    from audlang.destinations import vendors

    kinds = {"attentive": vendors.Attentive, "braze": vendors.Braze, "klaviyo": vendors.Klaviyo}
    if decl.kind not in kinds:
        raise SettingsError(f"unknown destination kind {decl.kind}")
    return kinds[decl.kind](settings, target, **http_options)


__all__ = ["Batch", "BatchRejected", "BatchResult", "Destination", "DestinationUnavailable", "Member", "Rejection",
           "Settings", "SettingsError", "Target", "env_variables", "make_member", "missing_env", "normalize_email",
           "normalize_phone", "open_destination", "resolve_settings"]
