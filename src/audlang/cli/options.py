"""The options every command that opens a database shares, and where the URLs come from.

``@database_options()`` adds ``--warehouse`` and ``--state`` (``state=False``: ``--warehouse`` only)
to a command; ``urls(config, warehouse_option, state_option)`` resolves both in one place
(``warehouse.resolve``: the option, then the environment, then audlang.toml, then the default).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

WAREHOUSE_HELP = "Warehouse SQLAlchemy URL (default: AUDLANG_WAREHOUSE, then `warehouse` in audlang.toml)."
STATE_HELP = ("State database URL (default: AUDLANG_STATE, then `state` in audlang.toml, then a SQLite file "
              "beside a DuckDB warehouse file, else the warehouse).")

F = TypeVar("F", bound=Callable[..., Any])


def database_options(state: bool = True) -> Callable[[F], F]:
    """``--warehouse URL`` (as ``warehouse_option``) and, unless ``state=False``, ``--state URL`` (as
    ``state_option``)."""

    def decorate(fn: F) -> F:
        if state:
            fn = click.option("--state", "state_option", help=STATE_HELP)(fn)
        return click.option("--warehouse", "warehouse_option", help=WAREHOUSE_HELP)(fn)

    return decorate


def urls(config, warehouse_option: str | None = None, state_option: str | None = None):
    """The command's ``warehouse.Urls``: its options over the environment over audlang.toml over the default."""
    from audlang import warehouse

    return warehouse.resolve(config.root, config.warehouse, config.state, warehouse_option, state_option)
