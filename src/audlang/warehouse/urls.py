"""Where the warehouse and the state are: resolved in one place, for every command.

``--warehouse`` over ``AUDLANG_WAREHOUSE`` over ``warehouse`` in audlang.toml over the embedded
DuckDB file; ``--state`` over ``AUDLANG_STATE`` over ``state`` in audlang.toml over the default.
File paths from audlang.toml are relative to the project folder.

The default state of a DuckDB-file warehouse is a SQLite file beside it (``warehouse.duckdb`` →
``warehouse.state.sqlite``): DuckDB lets one process write a file, so an apply holds the warehouse
file for its whole run while the lock and the state stay readable to every other command. Any other
warehouse keeps the state in itself (docs/architecture.md, "The embedded default").
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from audlang import backends

DEFAULT_WAREHOUSE = "duckdb:///target/warehouse.duckdb"
STATE_SUFFIX = ".state.sqlite"


def resolve_url(cli_value: str | None, config_value: str | None, root: Path, env_var: str = "AUDLANG_WAREHOUSE",
                default: str | None = DEFAULT_WAREHOUSE) -> str | None:
    """``--flag`` over the environment over ``audlang.toml`` over the default; files relative to the project."""
    value = cli_value or os.environ.get(env_var) or config_value or default
    if value is None:
        return None
    if value is not config_value and value is not default:
        return value
    try:
        url = make_url(value)
    except ArgumentError:
        return value
    if url.get_backend_name() in backends.FILE_BACKENDS and url.database and url.database != ":memory:":
        if not os.path.isabs(url.database):
            url = url.set(database=str(root / url.database))
    return url.render_as_string(hide_password=False)


def default_state(warehouse_url: str) -> str:
    """The state's URL when none is set: a SQLite file beside a DuckDB warehouse file, else the warehouse."""
    if backends.is_duckdb_file(warehouse_url):
        database = backends.database_file(warehouse_url) or ""
        stem = database[: -len(".duckdb")] if database.endswith(".duckdb") else database
        return f"sqlite:///{stem}{STATE_SUFFIX}"
    return warehouse_url


@attrs.frozen
class Urls:
    warehouse: str
    state: str
    state_is_default: bool  # no --state, AUDLANG_STATE or `state` in audlang.toml


def resolve(root: Path, config_warehouse: str | None, config_state: str | None,
            warehouse_option: str | None = None, state_option: str | None = None) -> Urls:
    """Both URLs of a command, from its options, the environment and audlang.toml."""
    warehouse = resolve_url(warehouse_option, config_warehouse, root)
    assert warehouse is not None
    state = resolve_url(state_option, config_state, root, env_var="AUDLANG_STATE", default=None)
    if state is None:
        return Urls(warehouse, default_state(warehouse), True)
    return Urls(warehouse, state, False)


def state_url_for(warehouse_url: str, state_option: str | None = None, config_state: str | None = None,
                  root: Path | None = None) -> str:
    """``--state`` over AUDLANG_STATE over ``state`` in audlang.toml over the default beside the warehouse."""
    state = resolve_url(state_option, config_state, Path(root or "."), env_var="AUDLANG_STATE", default=None)
    return state or default_state(warehouse_url)


def file_missing(url: str) -> bool:
    """A DuckDB or SQLite URL whose file does not exist (yet)."""
    database = backends.database_file(url)
    return database is not None and not Path(database).exists()
