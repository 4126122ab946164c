"""Deployment commands: plan, apply, state list/show, history, force-unlock.

Heavy modules (SQLAlchemy, the planner, the compiler) load inside each command
so that ``audlang --help`` and the language commands start fast.
"""

from __future__ import annotations

import contextlib
import json
import sys

import click

from audlang.cli import cli
from audlang.cli.options import database_options, urls
from audlang.diagnostics import printable
from audlang.vocabulary import SyncStatus, counted

AS_OF_HELP = ("Plan as of this date (YYYY-MM-DD) or UTC instant (2024-11-22T15:00:00Z); default `as_of` in "
              "audlang.toml, else today (UTC).")
EXIT_CHANGES = 2
ALLOW_REMOVALS_HELP = ("Let syncs that would empty a destination's audience or remove more than its max_removal "
                       "share go ahead (the guards hold them back otherwise).")


def _urls(config, warehouse_option: str | None, state_option: str | None) -> tuple[str, str]:
    resolved = urls(config, warehouse_option, state_option)
    return resolved.warehouse, resolved.state


def _config(ctx):
    from audlang import project

    return project.load_config(ctx.obj["project_dir"])


def _color() -> bool:
    from audlang.cli import _color as color

    return color(sys.stdout)


def _show(doc: dict, fmt: str) -> None:
    from audlang.plan import render_markdown, render_text

    if fmt == "json":
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    elif fmt == "markdown":
        click.echo(render_markdown(doc), nl=False)
    else:
        click.echo(render_text(doc, color=_color()))


def _error(code: str, message: str, subject: str | None = None):
    from audlang.diagnostics import AudlangError, Diagnostic

    return AudlangError(Diagnostic.sourceless(code, message, subject))


@cli.command()
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Save the plan to FILE for `audlang apply FILE`.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when there are no changes, 2 when there are, 1 on error.")
@click.option("--as-of", "as_of", help=AS_OF_HELP)
@click.option("--allow-removals", is_flag=True, help=ALLOW_REMOVALS_HELP)
@database_options()
@click.pass_context
def plan(ctx, out, fmt, detailed_exitcode, as_of, allow_removals, warehouse_option, state_option):
    """What apply would do: each change with its reason, definition diff and membership change."""
    from audlang.deploy import plan_project
    from audlang.cli.data import as_of_for, load_checked
    from audlang.plan import plan_to_json

    loaded = load_checked(ctx)
    warehouse_url, state_url = _urls(loaded.config, warehouse_option, state_option)
    result = plan_project(loaded, warehouse_url, state_url, as_of_for(loaded.config, as_of),
                          allow_removals=allow_removals)
    doc = plan_to_json(result)
    if out:
        try:
            with open(out, "w", encoding="utf-8") as handle:
                json.dump(doc, handle, indent=2, ensure_ascii=False)
                handle.write("\n")
        except OSError as error:
            raise _error("E534", f"cannot write the plan: {error.strerror}", out) from None
    _show(doc, fmt)
    if out and fmt == "text":
        click.echo(f"\nSaved the plan to {out}; apply exactly this plan with: audlang apply {out}")
    ctx.exit(EXIT_CHANGES if detailed_exitcode and result.has_changes else 0)


@cli.command()
@click.argument("planfile", required=False, type=click.Path(dir_okay=False))
@click.option("--auto-approve", is_flag=True, help="Apply a fresh plan without asking.")
@click.option("--as-of", "as_of", help=AS_OF_HELP + " Not with a saved plan, which carries its own.")
@click.option("--allow-removals", is_flag=True, help=ALLOW_REMOVALS_HELP + " Not with a saved plan.")
@database_options()
@click.pass_context
def apply(ctx, planfile, auto_approve, as_of, allow_removals, warehouse_option, state_option):
    """Carry out a saved plan (refused when stale), or a fresh plan after confirmation."""
    from audlang.deploy import Session, apply_plan, plan_project
    from audlang.state import StateStore
    from audlang.cli.data import as_of_for, load_checked
    from audlang.plan import plan_from_json, plan_to_json, render_text

    echo = lambda line: click.echo(f"  {line}")  # noqa: E731
    if planfile:
        if as_of:
            raise _error("E535", "a saved plan carries its own as-of date; leave --as-of out", "--as-of")
        try:
            with open(planfile, encoding="utf-8") as handle:
                doc = json.load(handle)
        except OSError as error:
            raise _error("E530", f"cannot read the plan: {error.strerror}", planfile) from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _error("E530", "not an audlang plan file (not JSON)", planfile) from None
        saved = plan_from_json(doc, planfile)
        config = _config(ctx)
        warehouse_url, state_url = _urls(config, warehouse_option, state_option)
        if not saved.has_changes:
            click.echo("No changes in the saved plan; nothing to apply.")
            return
        click.echo(f"Applying the saved plan {planfile} (as of {saved.as_of}, state serial {saved.serial}):")
        with _SyncProgress() as progress:
            result = apply_plan(saved, warehouse_url, state_url, root=config.root, echo=echo,
                                sync_progress=progress.update)
    else:
        loaded = load_checked(ctx)
        warehouse_url, state_url = _urls(loaded.config, warehouse_option, state_option)
        StateStore(state_url).refuse_if_locked()  # a second apply fails at once, before it plans
        with contextlib.ExitStack() as held:
            # --auto-approve: plan and apply on one connection, the shared facts computed once
            session = held.enter_context(Session(warehouse_url)) if auto_approve else None
            fresh = plan_project(loaded, warehouse_url, state_url, as_of_for(loaded.config, as_of),
                                 allow_removals=allow_removals, session=session)
            click.echo(render_text(plan_to_json(fresh), color=_color()))
            if not fresh.has_changes:
                return
            if not auto_approve:
                if not sys.stdin.isatty():
                    raise _error("E536", "apply asks for confirmation, and there is no terminal to ask on: pass "
                                 "--auto-approve, or apply a saved plan (audlang plan --out FILE; audlang apply FILE)")
                if not click.confirm("\nApply these changes?", default=False):
                    click.echo("Apply cancelled; nothing changed.", err=True)
                    ctx.exit(1)
            click.echo("\nApplying:")
            with _SyncProgress() as progress:
                result = apply_plan(fresh, warehouse_url, state_url, root=loaded.config.root, model=loaded.model,
                                    echo=echo, sync_progress=progress.update, session=session)
    if result.taken_over:
        click.echo(f"(took over the lock {result.taken_over} left by a dead apply)")
    failed = _sync_summary(result.syncs)
    click.echo(f"Apply complete: {counted(len(result.applied), 'change')}; state serial {result.serial}.")
    if failed:
        click.echo(f"{counted(failed, 'sync')} failed; the others were sent. Run `audlang apply` again to resume them "
                   "(nothing already acknowledged is sent twice).", err=True)
        ctx.exit(1)


class _SyncProgress:
    """A rich progress bar per campaign group and destination while apply syncs (on stderr)."""

    def __enter__(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        # markup=False: a campaign named "Win-back [/old]" is text, not a closing tag of rich's markup
        self.bar = Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=console, transient=not console.is_terminal)
        self.tasks: dict = {}
        self.bar.__enter__()
        return self

    def update(self, target, done: int, total: int) -> None:
        if target not in self.tasks:
            self.tasks[target] = self.bar.add_task(printable(f"sync {target}"), total=total)
        self.bar.update(self.tasks[target], completed=done, total=total)

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)
        return False


#: The sync outcomes whose message the summary repeats under the table.
SHOWN_MESSAGES = (SyncStatus.FAILED, SyncStatus.HELD, SyncStatus.PARTIAL, SyncStatus.STOPPED)


def _sync_summary(syncs) -> int:
    """The per-destination summary of the syncs (sent, skipped, rejected, retried); returns how many failed."""
    if not syncs:
        return 0
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Destination syncs", title_justify="left")
    for heading in ("destination", "campaign / group", "status", "added", "removed", "skipped", "rejected",
                    "retried"):
        table.add_column(heading, justify="right" if heading in ("added", "removed", "skipped", "rejected",
                                                                  "retried") else "left")
    for r in syncs:
        # Text cells: names are the project's, never rich markup ("Win-back [/old]")
        table.add_row(*(Text(printable(cell)) for cell in (
            f"{r.target.destination} ({r.kind})", f"{r.target.campaign} / {r.target.group}", r.status,
            f"{r.added:,}", f"{r.removed:,}", f"{r.skipped:,}", f"{r.rejected:,}", f"{r.retries:,}")))
    Console(width=140, no_color=not _color()).print(table)
    for r in syncs:
        if r.message and r.status in SHOWN_MESSAGES:
            click.echo(printable(f'  {r.status}: "{r.target.campaign}" / "{r.target.group}" → '
                                 f'"{r.target.destination}": {r.message}'), err=r.status == SyncStatus.FAILED)
    return sum(1 for r in syncs if r.status == SyncStatus.FAILED)


@cli.group()
def state():
    """What is deployed."""


def _store(ctx, warehouse_option, state_option):
    from audlang.state import StateStore

    _, state_url = _urls(_config(ctx), warehouse_option, state_option)
    return StateStore(state_url)


@state.command("list")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@database_options()
@click.pass_context
def state_list(ctx, fmt, warehouse_option, state_option):
    """Every deployed segment, campaign and destination."""
    snapshot = _store(ctx, warehouse_option, state_option).snapshot()
    if fmt == "json":
        click.echo(json.dumps({"lineage": snapshot.lineage, "serial": snapshot.serial, "objects": [
            {"kind": o.kind, "name": o.name, "paused": o.paused, "members": o.members, "as_of": o.as_of,
             "updated_at": o.updated_at} for o in snapshot.objects]}, indent=2, ensure_ascii=False))
        return
    if snapshot.lineage is None:
        click.echo("Nothing is deployed yet (no state).")
        return
    click.echo(f"state serial {snapshot.serial}, lineage {snapshot.lineage}")
    for o in snapshot.objects:
        members = f"{counted(o.members, 'member'):>18} as of {o.as_of}" if o.members is not None else ""
        click.echo(f"  {o.kind:<12} {o.name!r:<40} {'paused ' if o.paused else ''}{members}".rstrip())


@state.command("show")
@click.argument("name")
@database_options()
@click.pass_context
def state_show(ctx, name, warehouse_option, state_option):
    """One deployed object: its definition, membership and dates."""
    snapshot = _store(ctx, warehouse_option, state_option).snapshot()
    found = [o for o in snapshot.objects if o.name == name]
    if not found:
        from audlang.diagnostics import did_you_mean_quoted

        hint = did_you_mean_quoted(name, [o.name for o in snapshot.objects])
        raise _error("E537", "nothing deployed under this name" + (f"; {hint}" if hint else ""), f'"{name}"')
    for o in found:
        click.echo(f'{o.kind} "{o.name}"' + (" (paused)" if o.paused else ""))
        click.echo(f"  id          {o.object_id}")
        if o.description:
            click.echo(f"  description {o.description}")
        if o.members is not None:
            from audlang.check.names import view_name

            click.echo(f"  members     {o.members:,} as of {o.as_of} (refreshed {o.refreshed_at})")
            click.echo(f"  view        {view_name(o.name)}")
            click.echo(f"  query       SELECT customer_id FROM {view_name(o.name)}")
        if o.depends_on:
            click.echo(f"  uses        {', '.join(o.depends_on)}")
        click.echo(f"  created     {o.created_at}, updated {o.updated_at}")
        click.echo("  definition:")
        for line in o.definition.splitlines():
            click.echo(f"    {line}")


@cli.command()
@click.argument("name", required=False)
@click.option("--limit", type=click.IntRange(min=1), help="Only the last N events.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@database_options()
@click.pass_context
def history(ctx, name, limit, fmt, warehouse_option, state_option):
    """What each apply did (of one object, across its renames, when NAME is given)."""
    from audlang.deploy.apply import sync_summary

    events = _store(ctx, warehouse_option, state_option).history(name, limit)
    if fmt == "json":
        click.echo(json.dumps([{"seq": e.seq, "apply_id": e.apply_id, "at": e.at, "serial": e.serial,
                                "event": e.event, "kind": e.kind, "name": e.name, "object_id": e.object_id,
                                "detail": json.loads(e.detail) if e.detail else None} for e in events],
                              indent=2, ensure_ascii=False))
        return
    if not events:
        click.echo("No history yet.")
        return
    current = None
    for e in events:
        if e.apply_id != current:
            current = e.apply_id
            click.echo(f"apply {e.apply_id}")
        subject = f' {e.kind} "{e.name}"' if e.name else ""
        detail = json.loads(e.detail) if e.detail else {}
        extra = ""
        if "members" in detail:
            extra = f": {counted(detail['members'], 'member')} (+{detail['added']:,} \u2212{detail['removed']:,})"
        elif e.event == "synced" and sync_summary(detail):  # which sync, and what it sent
            extra = f" {sync_summary(detail)}"
        elif e.event == "apply started" and detail.get("as_of"):
            extra = f" (as of {detail['as_of']})"
        elif detail.get("error"):
            extra = f": {detail['error']}"
        click.echo(printable(f"  {e.at}  serial {e.serial:<4} {e.event}{subject}{extra}"))


@cli.command("force-unlock")
@click.argument("lock_id")
@database_options()
@click.pass_context
def force_unlock(ctx, lock_id, warehouse_option, state_option):
    """Release a lock left by a dead apply (the id is in the error of the apply it blocks)."""
    held = _store(ctx, warehouse_option, state_option).force_unlock(lock_id)
    click.echo(f"Released the lock {lock_id} ({held.operation} by {held.who}, pid {held.pid}, since "
               f"{held.started_at}).")
