"""Evaluation commands: members, insights, sql, demo. Heavy modules load inside each command."""

from __future__ import annotations

import contextlib
import json
import sys

import click

from audlang.cli import cli
from audlang.cli.options import database_options, urls
from audlang.vocabulary import counted

AS_OF_HELP = ("Evaluate as of this date (YYYY-MM-DD) or UTC instant (2024-11-22T15:00:00Z); default `as_of` in "
              "audlang.toml, else today (UTC).")


def load_checked(ctx: click.Context):
    """The project, parsed and checked; its errors stop the command with their diagnostics."""
    from audlang import project
    from audlang.cli import EXIT_ERROR, _emit

    loaded = project.load(None, ctx.obj["project_dir"])
    if loaded.errors:
        _emit(loaded.diagnostics, loaded.sources)
        click.echo("the project has errors; fix them first (audlang validate)", err=True)
        ctx.exit(EXIT_ERROR)
    return loaded


def warehouse_url(loaded, option: str | None) -> str:
    return urls(loaded.config, option).warehouse


def parse_as_of(value: str | None):
    from audlang.compile import AsOf
    from audlang.diagnostics import AudlangError, Diagnostic

    if value is None:
        return AsOf.today()
    try:
        return AsOf.parse(value)
    except ValueError as error:
        raise AudlangError(Diagnostic.sourceless("E203", str(error), "--as-of")) from None


def as_of_for(config, value: str | None):
    """The as-of a command evaluates at: ``--as-of`` when given, else ``as_of`` in audlang.toml, else today
    (UTC). A date from audlang.toml that is not today is said on stderr, one line, so that figures for
    another day never pass for today's (the flag is on the command line already)."""
    import datetime as dt

    if value is not None:
        return parse_as_of(value)
    moment = config.resolved_as_of()
    if config.as_of is not None and moment.date != dt.datetime.now(dt.timezone.utc).date():
        click.echo(f"as of {moment} (audlang.toml)", err=True)
    return moment


def _json_default(value):
    from audlang.evaluate import json_default

    return json_default(value)


@cli.command()
@click.argument("name")
@click.option("--as-of", "as_of", help=AS_OF_HELP)
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--limit", type=click.IntRange(min=0), help="At most this many members.")
@click.option("--fields", help="Comma-separated customer_360 columns to add after customer_id.")
@database_options(state=False)
@click.pass_context
def members(ctx, name, as_of, fmt, limit, fields, warehouse_option):
    """The segment's members, ordered by customer_id."""
    early = ctx.meta.pop(EARLY, None) or _early(ctx.obj["project_dir"], name, as_of, fmt, limit, fields,
                                                warehouse_option)
    try:
        with _collector_paused():
            pieces = _members_text(ctx, early, name, as_of, fmt, limit, fields, warehouse_option)
    finally:
        early.cancel()
    out = sys.stdout
    for piece in pieces:
        out.write(piece)
    out.flush()


EARLY = "audlang.members.early"


def _early(project_dir, name, as_of, fmt, limit, fields, warehouse_option):
    """Last time's query for these same inputs, started now (``warehouse.engine_output``): it runs on its own
    connection while the project is read, checked and compiled, and its text is used only if the compiled
    query is exactly it."""
    import datetime as dt
    import os

    from audlang.warehouse import engine_output

    return engine_output.start_early({
        "cwd": os.getcwd(), "project": project_dir, "name": name, "fields": fields, "limit": limit,
        "format": fmt, "warehouse": warehouse_option, "env": os.environ.get("AUDLANG_WAREHOUSE"),
        "as_of": as_of or dt.datetime.now(dt.timezone.utc).date().isoformat()})


def start_members_early(ctx: click.Context, args: list[str]) -> None:
    """Called by the group once it has read its own options: ``members``' arguments read (leniently, their
    errors left to the command) and its query started before the command's start-up (``_early``)."""
    try:
        sub = members.make_context("members", list(args), parent=ctx, resilient_parsing=True)
        params = sub.params
        early = _early(ctx.params.get("project_dir"), params.get("name"), params.get("as_of"), params.get("fmt"),
                       params.get("limit"), params.get("fields"), params.get("warehouse_option"))
    except (click.ClickException, click.exceptions.Exit, TypeError, ValueError):
        return
    if early is not None:
        ctx.meta[EARLY] = early
        ctx.call_on_close(early.cancel)


def _members_text(ctx, early, name, as_of, fmt, limit, fields, warehouse_option) -> list[str]:
    from audlang import evaluate

    loaded = load_checked(ctx)
    evaluate.require_segment(loaded.model, name)
    url = warehouse_url(loaded, warehouse_option)
    field_list = [f.strip() for f in fields.split(",") if f.strip()] if fields else []
    return evaluate.members_output(url, loaded.model, name, as_of_for(loaded.config, as_of), field_list, limit, fmt,
                                   early)


@contextlib.contextmanager
def _collector_paused():
    """Python's cyclic garbage collector off while a short command loads the project and compiles: its
    passes over the many objects made at start-up cost more than they free. On again after."""
    import gc

    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@cli.command()
@click.argument("name")
@click.option("--as-of", "as_of", help=AS_OF_HELP)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@database_options(state=False)
@click.pass_context
def insights(ctx, name, as_of, fmt, warehouse_option):
    """Members, revenue in the last 365 days, active customers, reachability and SMS opt-ins."""
    from audlang import evaluate, warehouse

    loaded = load_checked(ctx)
    evaluate.require_segment(loaded.model, name)
    url = warehouse_url(loaded, warehouse_option)
    moment = as_of_for(loaded.config, as_of)
    engine = warehouse.connect(url, role=warehouse.Role.READ)
    try:
        figures = evaluate.insights(engine, url, loaded.model, name, moment)
    finally:
        engine.dispose()
    if fmt == "json":
        click.echo(json.dumps({"segment": name, "as_of": str(moment), **figures}, default=_json_default, indent=2))
    else:
        click.echo(render_insights(name, str(moment), figures))


def render_insights(name: str, as_of: str, figures: dict) -> str:
    total = figures["members"]

    def share(n: int) -> str:
        return f"  ({n / total:.1%})" if total else ""

    ads = figures["reachable_ad_platforms"]  # a usable email or phone: what Meta and Google Ads match, hashed
    lines = [
        f'Segment "{name}" as of {as_of}',
        f"  members                {total:>14,}",
        f"  revenue, last 365 days {figures['revenue_last_365_days']:>14,.2f}",
        f"  active (ordered in 365 days) {figures['active']:>8,}{share(figures['active'])}",
        f"  reachable by email     {figures['reachable_email']:>14,}{share(figures['reachable_email'])}",
        f"  reachable by phone     {figures['reachable_phone']:>14,}{share(figures['reachable_phone'])}",
        f"  reachable on ad platforms {ads:>11,}{share(ads)}",
        f"  SMS opt-ins            {figures['sms_opt_in']:>14,}{share(figures['sms_opt_in'])}",
        f"  predicted revenue (CLV) {figures['predicted_revenue']:>13,.2f}",
    ]
    return "\n".join(lines)


DIALECTS = {
    "duckdb": "duckdb", "sqlite": "sqlite", "postgresql": "postgresql", "snowflake": "snowflake",
    "bigquery": "bigquery", "trino": "trino", "spark": "hive", "hive": "hive", "databricks": "hive",
}


@cli.command()
@click.argument("name")
@click.option("--dialect", type=click.Choice(sorted(DIALECTS)), help="SQL dialect (default: the warehouse's).")
@click.option("--as-of", "as_of", help=AS_OF_HELP)
@database_options(state=False)
@click.pass_context
def sql(ctx, name, dialect, as_of, warehouse_option):
    """The SQL that selects the segment's members (dates resolved against --as-of)."""
    from audlang import evaluate
    from audlang.compile import render

    loaded = load_checked(ctx)
    evaluate.require_segment(loaded.model, name)
    if dialect is None:
        from audlang import backends

        backend = backends.backend(warehouse_url(loaded, warehouse_option))
        dialect = backend if backend in DIALECTS else "duckdb"
    click.echo(render.segment_sql(loaded.model, name, DIALECTS[dialect], as_of_for(loaded.config, as_of)))


@cli.command()
@click.argument("directory", default="audlang-demo", type=click.Path(file_okay=False))
@click.option("--customers", type=click.IntRange(min=1), default=20_000, show_default=True,
              help="Size of the synthetic warehouse.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--warehouse", "warehouse_option", help="Build the warehouse here instead of the embedded DuckDB file.")
@click.pass_context
def demo(ctx, directory, customers, seed, warehouse_option):
    """From nothing to insights: writes the example project, builds a synthetic warehouse, shows every segment."""
    from pathlib import Path

    from audlang import backends, examples, project, warehouse
    from audlang.datagen import DEFAULT_AS_OF, generate

    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    written = examples.write_example(root)
    click.echo(f"project: {root} ({counted(len(written), 'file')} written"
               f"{', existing files kept' if not written else ''})", err=True)
    ctx.obj["project_dir"] = str(root)
    # The demo's data ends on DEFAULT_AS_OF: every command in the folder evaluates then, not today
    project.write_as_of(root, DEFAULT_AS_OF, "The demo's data ends on this day: every command evaluates as of it "
                        "(\"today\" follows the clock; --as-of overrides).")
    click.echo(f'{project.CONFIG_NAME}: as_of = "{DEFAULT_AS_OF}", the last day of the demo data', err=True)
    config = project.load_config(str(root))
    url = urls(config, warehouse_option).warehouse
    _make_parent(url)
    spark = backends.is_spark(url)
    # Spark reads the generated tables from Parquet files in the project (the server must see the folder).
    options = {"parquet_folder": (root / "target" / "spark-parquet").resolve()} if spark else {}
    if spark:
        warehouse.connect(url).dispose()  # an unreachable server or missing database: one clear line
    _generate_with_progress(generate, url, customers, seed, **options)
    as_of = parse_as_of(DEFAULT_AS_OF.isoformat())
    loaded = load_checked(ctx)
    engine = warehouse.connect(url, role=warehouse.Role.READ)
    with _demo_destinations(loaded) as demo_loaded:
        _demo_deploy(ctx, demo_loaded, url, as_of)
    _insights_table(engine, url, loaded.model, as_of)
    where = f" --warehouse {warehouse.shown(url)}" if warehouse_option else ""
    click.echo(f"\nNext: cd {root} && audlang members \"Big Spenders\" --limit 5{where}", err=True)
    click.echo("The demo deployed its Attentive destinations to a local stand-in (now stopped) and paused the "
               "ones with none (Klaviyo, Braze, the webhook): an `audlang plan` here shows those destinations "
               "going back to the definitions in destinations.aud, with the secrets they need.", err=True)


def _make_parent(url: str) -> None:
    from pathlib import Path

    from audlang import backends

    database = backends.database_file(url)
    if database is not None:
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _generate_with_progress(generate, url: str, customers: int, seed: int, **options) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from audlang.warehouse import shown

    console = Console(stderr=True)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), console=console, transient=not console.is_terminal) as bar:
        task = bar.add_task(f"building {counted(customers, 'customer')}", total=1.0)

        def progress(stage: str, fraction: float) -> None:
            bar.update(task, completed=min(1.0, fraction), description=f"{stage}")

        counts = generate(url, customers=customers, seed=seed, progress=progress, **options)
        bar.update(task, completed=1.0, description="warehouse built")
    summary = ", ".join(f"{table} {count:,}" for table, count in counts.items())
    click.echo(f"warehouse: {shown(url)} ({summary})", err=True)


def _demo_deploy(ctx, loaded, url: str, as_of) -> None:
    """plan → apply on the demo project: the reviewed plan, then carried out, as CI would."""
    from audlang import deploy
    from audlang.cli import _color
    from audlang.plan.render import plan_to_json, render_text

    from audlang import backends

    state = urls(loaded.config, url).state
    if backends.is_spark(state):  # the state needs transactions: a file in the project
        state = f"sqlite:///{(loaded.config.root / 'target' / 'state.db').resolve()}"
        click.echo("Spark: the state (serial, lock, history, sync progress) is in target/state.db; segments, "
                   "campaign groups and the sync log are in Spark", err=True)
    plan = deploy.plan_project(loaded, url, state, as_of)
    text = render_text(plan_to_json(plan), color=_color(sys.stdout))
    # The demo shows each action and the summary; `audlang plan` shows the definitions' diffs too.
    click.echo("\n".join(line for line in text.splitlines() if not line.startswith("      ")))
    result = deploy.apply_plan(plan, url, state, loaded.config.root, loaded.model,
                               echo=lambda line: click.echo(f"  {line}", err=True))
    click.echo(f"Apply complete: {counted(len(result.applied), 'change')}, state serial {result.serial}.\n", err=True)


@contextlib.contextmanager
def _demo_destinations(loaded):
    """The example's campaigns synced for real: Attentive destinations go to a local Attentive-shaped
    server (destinations.sandbox) with a demo key, csv and sql to files in the project; the kinds with
    no local stand-in (Klaviyo, Braze, webhooks) are paused for the demo. Shows what each received."""
    import os
    import uuid

    import attrs

    from audlang.deploy import demo_model
    from audlang.destinations.sandbox import AttentiveSandbox

    sandbox = AttentiveSandbox(os.environ.setdefault("ATTENTIVE_API_KEY", "demo-" + uuid.uuid4().hex[:12]))
    try:
        yield attrs.evolve(loaded, model=demo_model(loaded.model, sandbox.url))
        click.echo(f"The local Attentive server ({sandbox.url}) now holds:", err=True)
        for segment, members in sorted(sandbox.segments.items()):
            click.echo(f"  segment {segment}: {counted(len(members), 'member')}", err=True)
        for path in sorted((loaded.config.root / "target" / "exports").glob("*.csv")):
            with path.open(encoding="utf-8") as handle:
                rows = sum(1 for _ in handle) - 1
            click.echo(f"  file {path.relative_to(loaded.config.root)}: {counted(rows, 'member')}", err=True)
        click.echo("", err=True)
    finally:
        sandbox.close()


def _insights_table(engine, url: str, model, as_of) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from audlang import evaluate

    table = Table(title=f"Every segment, as of {as_of}", title_justify="left")
    for heading in ("segment", "members", "revenue 365d", "active", "email", "phone", "ads", "SMS", "predicted"):
        table.add_column(heading, justify="left" if heading == "segment" else "right")
    for name in model.segments:
        f = evaluate.insights(engine, url, model, name, as_of)
        table.add_row(Text(name), f"{f['members']:,}", f"{f['revenue_last_365_days']:,.2f}", f"{f['active']:,}",
                      f"{f['reachable_email']:,}", f"{f['reachable_phone']:,}", f"{f['reachable_ad_platforms']:,}",
                      f"{f['sms_opt_in']:,}",
                      f"{f['predicted_revenue']:,.2f}")
    Console(width=120).print(table)
