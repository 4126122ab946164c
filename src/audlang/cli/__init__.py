"""The command line. The only package (beside ``lsp``) that prints, reads the terminal or exits.

Commands are grouped in modules by the stage they drive: this module holds the
group, the error handling and the language commands (validate, fmt, lsp);
``data`` the evaluation commands (members, insights, sql, demo); ``deploy``
plan/apply and the state commands. Each registers itself on ``cli``.

Every error a user can cause reaches ``main`` as an ``AudlangError`` and is
rendered there, once; anything else is a bug and is reported as one, without
a traceback unless ``AUDLANG_DEBUG`` is set.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import click

from audlang.diagnostics import AudlangError, Diagnostic, printable, render_json, render_text

EXIT_ERROR = 1


def _color(stream=None) -> bool:
    stream = stream or sys.stderr
    return stream.isatty() and "NO_COLOR" not in os.environ


def _emit(diagnostics, sources=None, fmt: str = "text", stream=None) -> None:
    stream = stream or sys.stderr
    if fmt == "json":
        click.echo(render_json(diagnostics))
    elif diagnostics:
        click.echo(render_text(diagnostics, sources, color=_color(stream)), file=stream)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


class _Group(click.Group):
    def parse_args(self, ctx, args):
        rest = super().parse_args(ctx, args)
        # `audlang members` starts last time's query now, before the interrupt handlers (which load
        # SQLAlchemy) and the project (cli.data.start_members_early). The command is the argument
        # before its own arguments: the group's parser stops at it.
        at = len(args) - len(rest) - 1
        if 0 <= at < len(args) and args[at] == "members" and args[at + 1:] == rest:
            from audlang.cli.data import start_members_early

            start_members_early(ctx, list(rest))
        return rest

    def invoke(self, ctx):
        from audlang import interrupts

        # SIGINT and SIGTERM stop a command cleanly (audlang.interrupts); whatever error the stop surfaces
        # as (a driver's cancelled query, a diagnostic made of it) is reported as the interruption.
        with interrupts.installed(_deferred):
            try:
                return super().invoke(ctx)
            except BaseException as error:
                signum = interrupts.received()
                if signum is not None:
                    click.echo("interrupted", err=True)
                    ctx.exit(interrupts.exit_code(signum))
                if isinstance(error, AudlangError):
                    _emit(error.diagnostics)
                    ctx.exit(EXIT_ERROR)
                raise


def _deferred(_signum: int) -> None:
    """Said from the signal handler (so written straight to the file, not through a buffer it may be inside)."""
    try:
        os.write(sys.stderr.fileno(), b"interrupt received: finishing the step under way (a sync batch is "
                                      b"acknowledged first); interrupt again to stop at once\n")
    except (OSError, ValueError):
        pass


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--project", "project_dir", type=click.Path(file_okay=False), default=None,
              help="Project folder (default: the folder holding audlang.toml, found upward).")
@click.version_option(package_name="audlang")
@click.pass_context
def cli(ctx: click.Context, project_dir: str | None) -> None:
    """audlang: customer-marketing audiences as code."""
    ctx.obj = {"project_dir": project_dir}


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def validate(ctx: click.Context, paths: tuple[str, ...], fmt: str) -> None:
    """Parse, resolve and type-check. Exit 0 when clean, 1 with errors."""
    from audlang import project

    loaded = project.load(list(paths), ctx.obj["project_dir"])
    _emit(loaded.diagnostics, loaded.sources, fmt)
    if fmt == "text":
        errors = len(loaded.errors)
        warnings = len(loaded.diagnostics) - errors
        model = loaded.model
        summary = ", ".join([_count(len(model.segments), "segment"), _count(len(model.scores), "score"),
                             _count(len(model.campaigns), "campaign"),
                             _count(len(model.destinations), "destination")]) + \
            f" in {_count(len(loaded.sources), 'file')}"
        if errors:
            click.echo(f"{_count(errors, 'error')}, {_count(warnings, 'warning')} ({summary})", err=True)
        else:
            click.echo(f"OK: {summary}" + (f"; {_count(warnings, 'warning')}" if warnings else ""))
    ctx.exit(EXIT_ERROR if loaded.errors else 0)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--check", is_flag=True, help="Change nothing; exit 1 when a file would change.")
@click.option("--diff", "show_diff", is_flag=True, help="Show the changes as a unified diff; change nothing.")
@click.pass_context
def fmt(ctx: click.Context, paths: tuple[str, ...], check: bool, show_diff: bool) -> None:
    """Rewrite files in the one canonical layout, keeping comments."""
    import difflib

    from audlang import project
    from audlang.syntax import format_source

    config = project.load_config(ctx.obj["project_dir"])
    targets = list(paths) or [config.root / p for p in config.paths]
    files = project.source_files(targets)
    sources = project.read_sources(files, None if paths else config.root)
    # Each text is written back to the file it was read from. Two paths naming one file (`a.aud` and
    # `sub/../a.aud`) are one source: pairing the sources with `files` in order would shift by one.
    file_of = {project.display_path(file): file for file in files}  # the last one, as read_sources reads
    problems: list[Diagnostic] = []
    changed: list[str] = []
    for path, text in sources.items():
        file = file_of[path]
        formatted, diagnostics = format_source(text, path, config.fmt_width)
        if formatted is None:
            problems.extend(diagnostics)
            continue
        if formatted == text:
            continue
        changed.append(path)
        if show_diff:
            click.echo("".join(difflib.unified_diff(
                text.splitlines(keepends=True), formatted.splitlines(keepends=True), f"a/{path}", f"b/{path}")),
                nl=False)
        if not check and not show_diff:
            _write_atomically(file, formatted)
    if problems:
        _emit(problems, sources)
    verb = "would reformat" if check or show_diff else "reformatted"
    for path in changed:
        click.echo(f"{verb} {printable(path)}", err=True)
    if not show_diff:
        click.echo(f"{_count(len(changed), 'file')} {verb}, "
                   f"{len(sources) - len(changed) - len({p.span.file for p in problems if p.span})} unchanged",
                   err=True)
    ctx.exit(EXIT_ERROR if problems or (check and changed) else 0)


STARTER_CONFIG = """# audlang project settings.
# The warehouse: a SQLAlchemy URL. Overridden by AUDLANG_WAREHOUSE and --warehouse.
warehouse = "duckdb:///target/warehouse.duckdb"
# Where deployed state lives (default: a SQLite file beside a DuckDB warehouse file, else the
# warehouse). Overridden by AUDLANG_STATE and --state.
# state = "sqlite:///target/state.db"
"""

STARTER_SEGMENTS = """# Customers who bought during the last holiday season and can get SMS.
segment "Holiday Shoppers - SMS" <
  has_purchased between 11-01 of last year and 12-31 of last year
  and sms_opt_in
>

# Customers whose lifetime spend is above 500.
segment "Big Spenders" < lifetime_revenue > 500 >
"""


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
def init(directory: str) -> None:
    """Write a starter project (audlang.toml and a first .aud file); existing files are kept."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    for name, text in (("audlang.toml", STARTER_CONFIG), ("segments.aud", STARTER_SEGMENTS)):
        path = root / name
        if path.exists():
            click.echo(f"kept {path} (already there)", err=True)
        else:
            path.write_text(text, encoding="utf-8")
            click.echo(f"wrote {path}", err=True)
    click.echo("next: audlang validate; audlang demo builds a synthetic warehouse to try segments on", err=True)


@cli.command()
@click.option("--stdio", is_flag=True, hidden=True, help="Accepted for editors that pass it; stdio is the default.")
@click.pass_context
def lsp(ctx: click.Context, stdio: bool) -> None:
    """The language server, on stdio (for editors)."""
    from audlang.lsp import main as serve  # pygls loads only here: start-up stays fast

    serve(ctx.obj["project_dir"])


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.audlang-tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# The other command modules register on ``cli`` when imported (heavy imports stay inside the commands).
from audlang.cli import data  # noqa: E402,F401
from audlang.cli import sync  # noqa: E402,F401
from audlang.cli import report  # noqa: E402,F401
from audlang.cli import deploy  # noqa: E402,F401


#: The collector's first generation is collected after this many allocations (CPython's default is 2,000).
#: A command builds many small objects that live until it ends (syntax trees, SQLAlchemy expressions):
#: at the default the collector walks them again and again, for a tenth of a plan's time. mypy does the
#: same (``gc.set_threshold(200 * 1000, 30, 30)``).
GC_THRESHOLD = (200_000, 30, 30)


def main(argv: list[str] | None = None) -> None:
    gc.set_threshold(*GC_THRESHOLD)
    try:
        _main(argv)
    finally:
        # What the command built lives until the process ends: the collection at exit would only walk it
        # (a third of a second after a plan of 1,000 segments). Frozen objects are left to the exit.
        gc.freeze()


def _main(argv: list[str] | None) -> None:
    try:
        cli.main(args=argv, prog_name="audlang", standalone_mode=True)
    except AudlangError as error:  # raised outside a command (option parsing callbacks)
        _emit(error.diagnostics)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as error:  # a bug: say so plainly
        from audlang import interrupts

        if interrupts.received() is not None:  # a driver's error made of the interruption
            click.echo("interrupted", err=True)
            sys.exit(interrupts.exit_code(interrupts.received()))
        if os.environ.get("AUDLANG_DEBUG"):
            raise
        click.echo(f"internal error: {type(error).__name__}: {error}\n"
                   "this is a bug in audlang; run again with AUDLANG_DEBUG=1 for details and report it", err=True)
        sys.exit(70)


if __name__ == "__main__":
    main()
