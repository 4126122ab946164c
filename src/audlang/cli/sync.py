"""Sync commands: ``audlang sync errors`` (the members a destination rejected) and ``sync status``.

Heavy modules load inside each command.
"""

from __future__ import annotations

import json

import click

from audlang.cli import cli
from audlang.cli.options import database_options, urls
from audlang.diagnostics import printable
from audlang.vocabulary import counted



def state_engine(ctx, warehouse_option: str | None, state_option: str | None):
    """The state database's engine: --state, AUDLANG_STATE, `state` in audlang.toml, else the default."""
    from audlang import project, state, warehouse

    config = project.load_config(ctx.obj["project_dir"])
    url = urls(config, warehouse_option, state_option).state
    warehouse.duckdb_files.adopt(url)
    if warehouse.file_missing(url):
        return None, url  # no state database yet: nothing was synced
    return state.open_engine(url), url


def _read(ctx, warehouse_option, state_option, reader):
    from audlang import warehouse

    engine, url = state_engine(ctx, warehouse_option, state_option)
    if engine is None:
        return []
    try:
        with warehouse.errors_translated(url):
            return reader(engine)
    finally:
        engine.dispose()


@cli.group("sync")
def sync_group() -> None:
    """What the destination syncs did: rejected members and recent runs."""


@sync_group.command("errors")
@click.argument("destination", required=False)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@database_options()
@click.pass_context
def errors(ctx, destination, fmt, warehouse_option, state_option):
    """Members a destination rejected (retried on the next apply): key, operation, status, message, attempts."""
    from audlang import sync

    found = _read(ctx, warehouse_option, state_option, lambda engine: sync.errors(engine, destination))
    if fmt == "json":
        click.echo(json.dumps({"format_version": 1, "errors": [e.to_json() for e in found]}, indent=2,
                              ensure_ascii=False))
        return
    if not found:
        click.echo("no rejected members" + (f' for "{destination}"' if destination else ""))
        return
    current = None
    for e in found:
        heading = f'destination "{e.destination}" · campaign "{e.campaign}" · group "{e.group}"'
        if heading != current:
            click.echo(printable(heading))
            current = heading
        # a vendor's message is the vendor's text: escaped, so it cannot forge lines of a CI log
        click.echo(printable(f"  {e.operation:<6} {e.key}  (customer {e.customer_id})  {e.status}: {e.message}  "
                             f"[{counted(e.attempts, 'attempt')}, last {e.last_at}]"))
    click.echo(f"{counted(len(found), 'rejected member')}; they are retried on the next apply")


@sync_group.command("status")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@database_options()
@click.pass_context
def status(ctx, fmt, limit, warehouse_option, state_option):
    """The most recent syncs: per campaign group and destination, what was sent, skipped and rejected."""
    from audlang import sync

    found = _read(ctx, warehouse_option, state_option, sync.runs)[-limit:]
    if fmt == "json":
        click.echo(json.dumps({"format_version": 1, "runs": found}, indent=2, ensure_ascii=False))
        return
    if not found:
        click.echo("no syncs yet")
    for r in found:
        line = (f'{r["status"]:<9} "{r["campaign"]}" / "{r["group"]}" → "{r["destination"]}": '
                f'+{r["added"]:,} −{r["removed"]:,}, {r["skipped"]:,} skipped, {r["rejected"]:,} rejected, '
                f'{counted(r["requests"], "request")} ({r["retries"]:,} retried)')
        click.echo(printable(line + (f'  {r["message"]}' if r.get("message") else "")))
