"""Seeing the audiences: ``audlang explain`` (why one customer is in or out) and ``audlang docs``
(the browsable report: generate, serve). Heavy modules load inside each command."""

from __future__ import annotations

import json

import click

from audlang.cli import cli
from audlang.cli.data import AS_OF_HELP, WAREHOUSE_HELP, load_checked, parse_as_of, warehouse_url


@cli.command()
@click.argument("name")
@click.argument("customer_id")
@click.option("--as-of", "as_of", help=AS_OF_HELP)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--warehouse", "warehouse_option", help=WAREHOUSE_HELP)
@click.pass_context
def explain(ctx, name, customer_id, as_of, fmt, warehouse_option):
    """Why CUSTOMER_ID is, or is not, in segment NAME: each clause's verdict and the facts behind it."""
    from audlang import evaluate, warehouse
    from audlang import explain as explaining
    from audlang.cli import _color

    loaded = load_checked(ctx)
    evaluate.require_segment(loaded.model, name)
    url = warehouse_url(loaded, warehouse_option)
    engine = warehouse.connect(url)
    result = explaining.explain(engine, url, loaded.model, name, customer_id, parse_as_of(as_of))
    if fmt == "json":
        click.echo(json.dumps(explaining.to_json(result), indent=2, ensure_ascii=False))
        return
    paint = None
    if _color(click.get_text_stream("stdout")):
        def paint(word, value):
            return click.style(word, fg="green" if value else "red", bold=True)
    click.echo(explaining.render_text(result, paint))
