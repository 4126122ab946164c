"""Seeing the audiences: ``audlang explain`` (why one customer is in or out) and ``audlang docs``
(the browsable report: generate, serve). Heavy modules load inside each command."""

from __future__ import annotations

import json
import sys

import click

from audlang.cli import cli
from audlang.cli.options import database_options
from audlang.cli.data import AS_OF_HELP, as_of_for, load_checked, warehouse_url
from audlang.vocabulary import counted


@cli.command()
@click.argument("name")
@click.argument("customer_id")
@click.option("--as-of", "as_of", help=AS_OF_HELP)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@database_options(state=False)
@click.pass_context
def explain(ctx, name, customer_id, as_of, fmt, warehouse_option):
    """Why CUSTOMER_ID is, or is not, in segment NAME: each clause's verdict and the facts behind it."""
    from audlang import evaluate, warehouse
    from audlang import explain as explaining
    from audlang.cli import _color

    loaded = load_checked(ctx)
    evaluate.require_segment(loaded.model, name)
    url = warehouse_url(loaded, warehouse_option)
    moment = as_of_for(loaded.config, as_of)
    engine = warehouse.connect(url, role=warehouse.Role.READ)
    try:
        result = explaining.explain(engine, url, loaded.model, name, customer_id, moment)
    finally:
        engine.dispose()
    if fmt == "json":
        click.echo(json.dumps(explaining.to_json(result), indent=2, ensure_ascii=False))
        return
    paint = None
    if _color(sys.stdout):
        def paint(word, value):
            return click.style(word, fg="green" if value else "red", bold=True)
    click.echo(explaining.render_text(result, paint))


@cli.group()
def docs():
    """The browsable report: segments, campaigns, destinations, the dependency graph (a static site)."""


DOCS_DIR = "target/docs"


def _docs_dir(ctx, out: str | None):
    from pathlib import Path

    from audlang import project

    if out is not None:
        return Path(out)
    return project.load_config(ctx.obj["project_dir"]).root / DOCS_DIR


@docs.command("generate")
@click.option("--out", "out", type=click.Path(file_okay=False),
              help=f"Output folder (default: {DOCS_DIR} in the project).")
@click.option("--as-of", "as_of", help="Figures as of this date (default: `as_of` in audlang.toml, else the last "
                                       "apply's, else today).")
@database_options()
@click.pass_context
def docs_generate(ctx, out, as_of, warehouse_option, state_option):
    """Write the report as a static site (open index.html, or `audlang docs serve`)."""
    import time

    from audlang import report
    from audlang.cli.options import urls

    started = time.perf_counter()
    loaded = load_checked(ctx)
    resolved = urls(loaded.config, warehouse_option, state_option)
    url, state_url = resolved.warehouse, resolved.state
    target = _docs_dir(ctx, out)
    summary = report.build(loaded.model, loaded.config.root, loaded.config.name, url, state_url, target,
                           as_of_for(loaded.config, as_of) if as_of or loaded.config.as_of else None)
    click.echo(f"wrote {counted(summary['pages'], 'page')} to {target} (figures as of {summary['as_of']}) "
               f"in {time.perf_counter() - started:.1f}s", err=True)
    click.echo(summary["index"])


@docs.command("serve")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--dir", "out", type=click.Path(file_okay=False), help=f"The generated site (default: {DOCS_DIR}).")
@click.pass_context
def docs_serve(ctx, port, out):
    """Serve the generated report on 127.0.0.1 (Ctrl-C stops)."""
    import functools
    import http.server

    from audlang.diagnostics import AudlangError, Diagnostic

    folder = _docs_dir(ctx, out)
    if not (folder / "index.html").is_file():
        raise AudlangError(Diagnostic.sourceless(
            "E211", "no report here; run `audlang docs generate` first", str(folder)))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - the stdlib's name
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as error:
        raise AudlangError(Diagnostic.sourceless("E212", f"cannot listen: {error.strerror}",
                                                 f"127.0.0.1:{port}")) from None
    click.echo(f"Serving {folder} at http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
