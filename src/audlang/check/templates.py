"""Destination templates and the files they name, rendered one way at validate and at apply.

A csv destination's ``path`` and a webhook's ``body`` are jinja2 templates
written in a pull request. They are rendered only here: in an immutable
sandbox (``''.__class__`` and ``|attr('__class__')`` are refused), with
``StrictUndefined`` (``{{ nope }}`` is an error, not an empty string), bounded
in time and in what a render builds (``check.sandbox``: a deadline checked
inside the render, a budget of bytes), with the result's size bounded.
``validate`` renders each against the project's real campaign groups (a
sample one when none sends there) and sample members (``check_destinations``),
each template within ``TEMPLATE_SECONDS`` and all of them within
``CHECK_SECONDS``; the destinations render the real ones with the same
functions (``render_path``, ``render_body``), so what validate accepts is what
apply renders. At apply (``detail=False``) a failure names its kind and the
template's line only, and a path built from ``env("…")`` shows as ``"***"``
(``secret=True``).

A rendered csv path names a ``.csv`` file whose name is safe (not empty, not
hidden, no control characters or backslashes); it and a sql destination's
database file resolve, symlinks followed, inside the project folder or
``exports_root`` (``ExportRoots``, ``audlang.files.inside``); an existing file
there must be a regular file, not a symbolic link. Two campaign groups whose
csv paths resolve to one file are an error naming both.

Every problem is a ``TemplateProblem`` carrying its diagnostic code (E120–E126,
docs/language.md); ``str()`` is the user's message.

Imports ``ast``, ``diagnostics``, ``files``, ``check.sandbox`` and jinja2 (the
check layer; ``destinations`` imports it).
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from pathlib import Path, PurePosixPath
from typing import NoReturn

import attrs
import jinja2

from audlang import ast
from audlang.check import sandbox
from audlang.diagnostics import Diagnostic, Span
from audlang.files import OutsideRoots, inside

E_TEMPLATE = "E120"  # does not parse, fails while rendering, or takes too long
E_SANDBOX = "E121"  # refused by the sandbox (builds too much, too)
E_UNDEFINED = "E122"  # names something that is not defined
E_FILE_NAME = "E123"  # an unsafe file name, or a target that is not a regular file
E_OUTSIDE = "E124"  # resolves outside the project folder and exports_root
E_NOT_JSON = "E125"  # a webhook body that is not JSON once rendered
E_SAME_FILE = "E126"  # two campaign groups write one file

#: the longest rendered path and body (a body at apply holds a whole batch)
MAX_PATH_CHARS = 1024
MAX_NAME_BYTES = 255
MAX_BODY_CHARS = 64 * 1024 * 1024
#: the longest template (compiling 16 KiB of dense tags takes about a quarter of a second)
MAX_TEMPLATE_CHARS = 16 * 1024
#: the largest string or list a template may build with ``*``, and the largest integer power
MAX_PRODUCT = sandbox.MAX_PRODUCT
MAX_EXPONENT = sandbox.MAX_EXPONENT
#: how long a render may take where the caller names no deadline (a path; a body, plus per member)
RENDER_SECONDS = 0.5
SECONDS_PER_MEMBER = 0.002
COMPILE_SECONDS = 0.5
#: at validate: every render of one template together, and every template of the project together
TEMPLATE_SECONDS = 0.5
CHECK_SECONDS = 2.0
SLOW_HINT = (f"validate gives a template {TEMPLATE_SECONDS:g} s and all of a project's templates "
             f"{CHECK_SECONDS:g} s; a loop over range() or the members inside another multiplies")

PATH_NAMES = ("campaign", "group", "destination")
BODY_NAMES = ("campaign", "group", "destination", "operation", "batch", "idempotency_key", "members")
#: how a message shows a path rendered from ``env("…")`` values (as the webhook's messages show secrets)
HIDDEN = '"***"'


class TemplateProblem(Exception):
    """A template or a rendered path that audlang refuses: ``code`` is its diagnostic code."""

    def __init__(self, code: str, message: str, suggestion: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.suggestion = suggestion

    def explained(self) -> str:
        """The message with its suggestion, for where there is no ``help:`` line (a failed sync)."""
        return self.message + (f" ({self.suggestion})" if self.suggestion else "")


def _json_default(value: object) -> NoReturn:
    if isinstance(value, jinja2.Undefined):  # ``{{ nope | tojson }}``: undefined, like ``{{ nope }}``
        value._fail_with_undefined_error()
    raise TypeError(f"a {type(value).__name__} cannot be written as JSON")


#: jinja2's immutable sandbox, bounded in time and size (``check.sandbox``)
ENVIRONMENT = sandbox.Sandbox(autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
ENVIRONMENT.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": _json_default}

_COMPILED: dict[str, jinja2.Template] = {}
_COMPILED_MOST = 256


def compile_template(text: str, what: str, *, deadline: float | None = None, detail: bool = True) -> jinja2.Template:
    """``what`` names the template in messages ("the path template"). Compiled once per text (a plan
    renders a template for every target). ``detail=False`` (apply) leaves the parser's words out of the
    message: a template read from ``env("…")`` is a secret."""
    found = _COMPILED.get(text)
    if found is not None:
        return found
    lines = text.count("\n") + 1
    if len(text) > MAX_TEMPLATE_CHARS:
        raise TemplateProblem(E_TEMPLATE, f"{what} is longer than {MAX_TEMPLATE_CHARS:,} characters")
    until = time.monotonic() + COMPILE_SECONDS
    try:
        with sandbox.limits(until if deadline is None else min(until, deadline), 0, compiling=True):
            template = ENVIRONMENT.from_string(text)
    except sandbox.TooSlow:
        raise TemplateProblem(E_TEMPLATE, f"{what} takes too long to parse", SLOW_HINT) from None
    except jinja2.TemplateSyntaxError as error:
        where = f" (line {error.lineno} of the template)" if lines > 1 or not detail else ""
        raise TemplateProblem(E_TEMPLATE, f"{what} does not parse" + (f": {error.message}" if detail else "")
                              + where) from None
    except RecursionError:
        raise TemplateProblem(E_TEMPLATE, f"{what} does not parse: it nests too deep") from None
    except Exception as error:  # noqa: BLE001 - jinja2 raises a few others for odd sources
        raise TemplateProblem(E_TEMPLATE, f"{what} does not parse" + (f": {error}" if detail else "")) from None
    # jinja2's Template declares no such attribute: read back with getattr (1 for one compiled elsewhere)
    template.audlang_lines = lines  # type: ignore[attr-defined]
    if len(_COMPILED) >= _COMPILED_MOST:
        try:
            _COMPILED.pop(next(iter(_COMPILED)), None)
        except (StopIteration, RuntimeError):  # emptied or changed by another thread meanwhile
            pass
    _COMPILED[text] = template
    return template


def render(template: jinja2.Template, names: Mapping[str, object], what: str, limit: int,
           known: Sequence[str], *, deadline: float | None = None, seconds: float = RENDER_SECONDS,
           detail: bool = True) -> str:
    """The rendered text, or a ``TemplateProblem`` saying why not (never another exception).

    The render stops at ``deadline`` (or after ``seconds``) and once it has built more than
    ``sandbox.budget(names)`` bytes (``check.sandbox``). ``detail=False`` (apply): the message names the
    kind of failure and the template's line only, never what the expression said, which can quote a
    member's value (``{{ {}[m.email] }}``) or a template read from ``env("…")``."""
    until = time.monotonic() + seconds if deadline is None else deadline
    out: list[str] = []
    size = 0
    try:
        with sandbox.limits(until, sandbox.budget(names)) as state:
            for chunk in template.generate(**names):
                size += len(chunk)
                if size > limit:
                    raise TemplateProblem(E_TEMPLATE, f"{what} renders to more than {limit:,} characters")
                state.charge(len(chunk))
                out.append(chunk)
            return "".join(out)
    except TemplateProblem:
        raise
    except sandbox.TooSlow as stop:
        raise TemplateProblem(E_TEMPLATE, f"{what} takes too long to render" + _line(template, stop.line, detail),
                              SLOW_HINT if detail else None) from None
    except sandbox.TooBig as error:
        raise TemplateProblem(E_SANDBOX, f"{what} is refused by the sandbox: {error}"
                              + _line(template, _template_line(error), detail),
                              "a template builds paths and request bodies, not large texts or lists") from None
    except jinja2.exceptions.SecurityError as error:
        raise TemplateProblem(E_SANDBOX, f"{what} is refused by the sandbox" + (f": {error}" if detail else "")
                              + _line(template, _template_line(error), detail),
                              "templates may use the names given and jinja2's filters, not Python attributes"
                              ) from None
    except jinja2.exceptions.UndefinedError as error:
        raise TemplateProblem(E_UNDEFINED, f"{what} uses something that is not defined"
                              + (f": {error}" if detail else "") + _line(template, _template_line(error), detail),
                              f"the names are {', '.join(known)}") from None
    except RecursionError:
        raise TemplateProblem(E_TEMPLATE, f"{what} cannot be rendered: it nests too deep") from None
    except MemoryError:
        raise TemplateProblem(E_SANDBOX, f"{what} is refused by the sandbox: it runs out of memory") from None
    except Exception as error:  # noqa: BLE001 - whatever a template's expression raises (1/0, a bad filter)
        # At validate the members are samples, so what the expression said can be shown, cut short.
        raise TemplateProblem(E_TEMPLATE, f"{what} cannot be rendered: {type(error).__name__}"
                              + (f": {_short(str(error))}" if detail else "")
                              + _line(template, _template_line(error), detail)) from None


def _template_line(error: BaseException) -> int | None:
    """The innermost line of the template an error was raised at (jinja2 rewrites the traceback so that
    the template's frames carry its lines)."""
    line, tb = None, error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == sandbox.TEMPLATE_FILE:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _line(template: jinja2.Template, line: int | None, detail: bool) -> str:
    """Where in the template: always at apply, at validate only for a template of several lines."""
    if line is None or (detail and getattr(template, "audlang_lines", 1) <= 1):
        return ""
    return f" (line {line} of the template)"


def _short(text: str, most: int = 160) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


# ------------------------------------------------------------------ csv paths


def file_name_part(text: str) -> str:
    """A name safe inside a file name: letters, digits, ``-``, ``_``, ``.`` and spaces kept, the rest ``_``;
    never empty, never starting with a dot (so never ``.`` or ``..``), never holding a separator."""
    slug = re.sub(r"[^\w\-. ]+", "_", text).strip() or "_"
    return "_" + slug if slug.startswith(".") else slug


def path_names(campaign: str, group: str, destination: str) -> dict[str, str]:
    return {"campaign": file_name_part(campaign), "group": file_name_part(group),
            "destination": file_name_part(destination)}


def render_path(template: str | jinja2.Template, campaign: str, group: str, destination: str, *,
                deadline: float | None = None, detail: bool = True, secret: bool = False) -> str:
    """The csv path for one campaign group, as written (relative to the project folder, or absolute),
    checked to name a safe ``.csv`` file. ``secret``: the template holds ``env("…")`` values, so no
    message shows what it renders to (``HIDDEN``); ``detail``: as ``render``."""
    if isinstance(template, str):
        template = compile_template(template, "the path template", deadline=deadline, detail=detail)
    rendered = render(template, path_names(campaign, group, destination), "the path template",
                      4 * MAX_PATH_CHARS, PATH_NAMES, deadline=deadline, detail=detail)
    check_file_name(rendered, secret=secret)
    return rendered


def _shown(written: str, secret: bool) -> str:
    return HIDDEN if secret else json.dumps(written, ensure_ascii=False)


def check_file_name(rendered: str, *, secret: bool = False) -> None:
    shown = _shown(rendered, secret)
    bad = next((c for c in rendered if ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        raise TemplateProblem(E_FILE_NAME, f"the path renders to {shown}, which holds a control character")
    if "\\" in rendered:
        raise TemplateProblem(E_FILE_NAME, f"the path renders to {shown}, which holds a backslash",
                              "separate folders with /")
    name = PurePosixPath(rendered).name if not rendered.endswith("/") else ""
    if name in ("", ".", ".."):
        raise TemplateProblem(E_FILE_NAME, f"the path renders to {shown}, which names no file",
                              'end the path with a file name, such as "{{ campaign }}-{{ group }}.csv"')
    if name.startswith("."):
        raise TemplateProblem(E_FILE_NAME, f"the path renders to {shown}: a file name that starts with a dot "
                              "(hidden, or only an extension)",
                              'give the file a name before ".csv", such as "{{ campaign }}-{{ group }}.csv"')
    if not name.lower().endswith(".csv"):
        raise TemplateProblem(E_FILE_NAME, f"the path renders to {shown}; a csv destination writes only files "
                              "named *.csv", 'end the path with ".csv"')
    if len(rendered) > MAX_PATH_CHARS or any(len(p.encode()) > MAX_NAME_BYTES for p in PurePosixPath(rendered).parts):
        raise TemplateProblem(E_FILE_NAME, f"the path renders to {shown}, which is too long for a file system")


@attrs.frozen
class ExportRoots:
    """Where a project may write: its folder, and ``exports_root`` when ``audlang.toml`` names one."""

    project: Path
    exports: Path | None = None

    @property
    def all(self) -> tuple[Path, ...]:
        return (self.project,) if self.exports is None else (self.project, self.exports)

    def describe(self) -> str:
        return "the project folder" if self.exports is None else "both the project folder and exports_root"


def resolve_output(written: str, roots: ExportRoots, what: str = "the path", *, secret: bool = False) -> Path:
    """Where a rendered path (relative to the project folder, or absolute) writes: its folders resolved,
    symlinks followed (they need not exist yet), the file name kept; refused outside the roots and where a
    file exists there that is a symbolic link or not a regular file. ``secret``: messages show the path
    as ``HIDDEN`` (it holds ``env("…")`` values)."""
    joined = Path(written) if os.path.isabs(written) else roots.project / written
    final = Path(os.path.realpath(joined.parent)) / joined.name
    shown = _shown(written, secret)
    try:
        inside(final, roots.all)
    except OutsideRoots:
        how = " through a symbolic link" if _lexically_inside(joined, roots.all) else \
            " (an absolute path)" if os.path.isabs(written) else ""
        raise TemplateProblem(E_OUTSIDE, f"{what} {shown} leads outside {roots.describe()}{how}",
                              "write inside the project folder, or name the outside folder as exports_root in "
                              "audlang.toml") from None
    # Below its root, no hidden folder (.git, .github, .venv): exports never land among the tools' files.
    for root in roots.all:
        real = Path(os.path.realpath(root))
        if final.is_relative_to(real):
            hidden = [p for p in final.relative_to(real).parts[:-1] if p.startswith(".")]
            if hidden:
                folder = "a hidden folder" if secret else f"the hidden folder {hidden[0]}"
                raise TemplateProblem(E_FILE_NAME, f"{what} {shown} leads into {folder}",
                                      "write exports into a visible folder, such as target/exports/")
            break
    check_target_file(final, f"{what} {shown}")
    return final


def _lexically_inside(path: Path, roots: Iterable[Path]) -> bool:
    """Inside a root as written (``..`` taken literally): then only a symbolic link can lead out."""
    written = os.path.abspath(path)
    for root in roots:
        try:
            if os.path.commonpath([written, os.path.abspath(root)]) == os.path.abspath(root):
                return True
        except ValueError:  # another drive
            continue
    return False


def check_target_file(path: Path, what: str) -> None:
    """A file that is there already must be a regular file (never written through a symbolic link)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as error:
        raise TemplateProblem(E_FILE_NAME, f"{what} cannot be used: {error.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise TemplateProblem(E_FILE_NAME, f"{what} names a symbolic link; audlang writes only regular files",
                              "remove the link, or point the path at the file itself")
    if not stat.S_ISREG(info.st_mode):
        raise TemplateProblem(E_FILE_NAME, f"{what} names something that is not a regular file (a folder, device, "
                              "socket or FIFO)")


def database_file(url: str) -> str | None:
    """The file a DuckDB or SQLite URL opens (as written, maybe relative), or None (a server, memory)."""
    from audlang import backends

    if backends.is_uri_filename(url):
        # SQLite decodes a URI filename (%2E%2E is ..) after any check of ours: not accepted
        raise TemplateProblem("E124", "a SQLite URI filename (file:…, uri=true) is not accepted as a destination "
                              "database", "name the file as a path: sqlite:///exports/copy.db")
    return backends.database_file(url)


# ------------------------------------------------------------------ webhook bodies


def body_names(campaign: str, group: str, destination: str, operation: str, batch: int, idempotency_key: str,
               members: Iterable[Mapping[str, object]], identifiers: Sequence[str] = (),
               fields: Sequence[str] = ()) -> dict[str, object]:
    """The names a body template sees; every identifier and field is present in each member (None when
    the member has none), so ``{{ m.email }}`` is never undefined for a member without an email."""
    blank = {name: None for name in (*identifiers, *fields)}
    return {"campaign": campaign, "group": group, "destination": destination, "operation": operation,
            "batch": batch, "idempotency_key": idempotency_key,
            "members": [{**blank, **dict(m)} for m in members]}


def render_body(template: str | jinja2.Template, names: Mapping[str, object], *, deadline: float | None = None,
                detail: bool = True) -> str:
    """The request body: the template rendered, and valid JSON. Without a ``deadline`` the render may take
    ``RENDER_SECONDS`` plus ``SECONDS_PER_MEMBER`` per member (a batch at apply); ``detail``: as ``render``
    (apply passes False: the members are real)."""
    if isinstance(template, str):
        template = compile_template(template, "the body template", deadline=deadline, detail=detail)
    members = names.get("members")
    seconds = RENDER_SECONDS + SECONDS_PER_MEMBER * (len(members) if isinstance(members, Sized) else 0)
    text = render(template, names, "the body template", MAX_BODY_CHARS, BODY_NAMES, deadline=deadline,
                  seconds=seconds, detail=detail)
    try:
        json.loads(text)
    except ValueError as error:
        raise TemplateProblem(E_NOT_JSON, f"the body template does not render JSON: {error.args[0]}",
                              "render values with tojson, for example {{ members | tojson }}") from None
    return text


# ------------------------------------------------------------------ validate


#: a sample member's identifiers and, by attribute type, its fields
SAMPLE_IDENTIFIERS = {"customer_id": "C000001", "email": "ada@example.com", "phone": "+15035550100"}
SAMPLE_VALUES = {"text": "Sample", "number": 12.5, "integer": 3, "boolean": True, "date": "2024-01-31",
                 "timestamp": "2024-01-31 12:00:00"}
SAMPLE_TARGET = ("Campaign", "Group")


def sample_members(identifiers: Sequence[str], fields: Sequence[str],
                   type_of: Callable[[str], str | None]) -> list[dict[str, object]]:
    """Two members: one with every identifier and field, one with only its key (what apply sends for a
    member without an email or a field's value)."""
    identifiers = tuple(identifiers) or ("customer_id",)
    full: dict[str, object] = {"customer_id": SAMPLE_IDENTIFIERS["customer_id"]}
    full.update({i: SAMPLE_IDENTIFIERS.get(i, "sample") for i in identifiers})
    full.update({f: SAMPLE_VALUES.get(type_of(f) or "text", "Sample") for f in fields})
    key = identifiers[0]
    sparse: dict[str, object] = {"customer_id": "C000002", key: SAMPLE_IDENTIFIERS.get(key, "sample2")}
    if key == "email":
        sparse[key] = "grace@example.com"
    elif key == "phone":
        sparse[key] = "+15035550101"
    return [full, sparse]


@attrs.frozen
class _Literal:
    text: str
    span: Span | None


def _literal(destination: ast.Destination, key: str) -> _Literal | None:
    """A setting's text when the file holds all of it (no ``env("…")``): only then can validate render it."""
    for setting in destination.settings:
        if setting.header or setting.key != key or not isinstance(setting.value, ast.TextValue):
            continue
        if setting.value.has_env:
            return None
        parts = (p.value for p in setting.value.parts if isinstance(p, ast.StringValue))  # no env: all strings
        return _Literal("".join(parts), setting.value.span or setting.span)
    return None


def _list_setting(destination: ast.Destination, key: str) -> tuple[str, ...] | None:
    for setting in destination.settings:
        if not setting.header and setting.key == key and isinstance(setting.value, ast.ListValue):
            return tuple(item.value for item in setting.value.items)
    return None


DEFAULT_IDENTIFIERS = {"webhook": ("customer_id",), "csv": ("customer_id",)}


def campaign_targets(campaigns: Iterable[ast.Campaign]) -> list[tuple[ast.Campaign, str, ast.StringValue]]:
    """(campaign, group, the reference to a destination) of every group sent somewhere (a holdout never is)."""
    out: list[tuple[ast.Campaign, str, ast.StringValue]] = []
    for campaign in campaigns:
        seen: set[str] = set()
        groups: tuple[ast.Treatment | ast.SubAudience, ...] = (*campaign.treatments, *campaign.subaudiences)
        for group in groups:
            if group.name in seen:
                continue
            seen.add(group.name)
            for ref in group.destinations:
                out.append((campaign, group.name, ref))
    return out


def check_destinations(destinations: Mapping[str, ast.Destination], campaigns: Iterable[ast.Campaign],
                       roots: ExportRoots, type_of: Callable[[str], str | None]) -> list[Diagnostic]:
    """Render every literal path and body template the project holds, as apply would, and check the files
    they name: one diagnostic per problem and setting, at the setting."""
    diagnostics: list[Diagnostic] = []
    sent_to: dict[str, list[tuple[str, str]]] = {}
    for target, group, ref in campaign_targets(campaigns):
        if ref.value in destinations:
            sent_to.setdefault(ref.value, []).append((target.name, group))
    written: dict[str, _Written] = {}
    # Each template's renders together have TEMPLATE_SECONDS, all of them CHECK_SECONDS: validate and the
    # language server answer in about a second whatever the templates do.
    check_until = time.monotonic() + CHECK_SECONDS
    for name, destination in destinations.items():
        groups = sent_to.get(name) or [SAMPLE_TARGET]
        until = min(time.monotonic() + TEMPLATE_SECONDS, check_until)
        if destination.kind == "csv" and (path := _literal(destination, "path")) is not None:
            diagnostics += _check_csv_path(name, path, groups, name in sent_to, roots, written, until)
        elif destination.kind == "webhook" and (body := _literal(destination, "body")) is not None:
            diagnostics += _check_webhook_body(name, destination, body, groups, type_of, until)
        elif destination.kind == "sql" and (url := _literal(destination, "url")) is not None:
            diagnostics += _check_sql_url(url, roots)
    return diagnostics


def _problem(error: TemplateProblem, span: Span | None) -> Diagnostic:
    return Diagnostic.error(error.code, error.message, span, error.suggestion)


def _check_csv_path(name: str, path: _Literal, groups: Sequence[tuple[str, str]], sent: bool, roots: ExportRoots,
                    written: dict[str, _Written], until: float) -> list[Diagnostic]:
    """A csv destination's path, rendered for each group sent to it (a sample group when none is): inside
    the export roots, and no file written for two groups (of any destination: ``written``, filled here)."""
    diagnostics: list[Diagnostic] = []
    try:
        template = compile_template(path.text, "the path template", deadline=until)
        for campaign, group in groups:
            rendered = render_path(template, campaign, group, name, deadline=until)
            final = resolve_output(rendered, roots)
            if (campaign, group) == SAMPLE_TARGET and not sent:
                continue
            key = os.path.normcase(str(final)).casefold()
            if key in written:
                diagnostics.append(_same_file(written[key], (campaign, group, name, rendered, path.span)))
                continue
            written[key] = (campaign, group, name, rendered, path.span)
    except TemplateProblem as error:
        diagnostics.append(_problem(error, path.span))
    return diagnostics


def _check_webhook_body(name: str, destination: ast.Destination, body: _Literal, groups: Sequence[tuple[str, str]],
                        type_of: Callable[[str], str | None], until: float) -> list[Diagnostic]:
    """A webhook destination's body template, rendered for each group as apply would, on sample members."""
    identifiers = _list_setting(destination, "identifiers") or DEFAULT_IDENTIFIERS["webhook"]
    fields = _list_setting(destination, "fields") or ()
    members = sample_members(identifiers, fields, type_of)
    try:
        template = compile_template(body.text, "the body template", deadline=until)
        for campaign, group in groups:  # every group, as apply renders (and a plan's audiences)
            for operation, batch in (("add", members), ("remove", members[1:])):
                render_body(template, body_names(campaign, group, name, operation, 1, "0" * 40, batch,
                                                 identifiers, fields), deadline=until)
    except TemplateProblem as error:
        return [_problem(error, body.span)]
    return []


def _check_sql_url(url: _Literal, roots: ExportRoots) -> list[Diagnostic]:
    """A sql destination's database file (a file URL's), inside the export roots."""
    try:
        database = database_file(url.text)
    except TemplateProblem as error:
        return [_problem(error, url.span)]
    except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot read: apply says so when it opens it
        return []
    if database is not None:
        try:
            resolve_output(database, roots, "the database file")
        except TemplateProblem as error:
            return [_problem(error, url.span)]
    return []


#: a csv file one destination writes for one campaign group: (campaign, group, destination, the
#: rendered path, the path setting's span)
_Written = tuple[str, str, str, str, Span | None]


def _same_file(first: _Written, second: _Written) -> Diagnostic:
    c1, g1, d1, w1, span1 = first
    c2, g2, d2, w2, span2 = second
    case = " (one file on a case-insensitive file system)" if w1 != w2 and w1.casefold() == w2.casefold() else ""
    if d1 == d2:
        message = (f'csv destination "{d2}" would write one file for two groups, "{c1}" / "{g1}" and '
                   f'"{c2}" / "{g2}": both render to {json.dumps(w2, ensure_ascii=False)}{case}')
        hint = 'put the campaign and the group in the path: "…/{{ campaign }}-{{ group }}.csv"'
    else:
        message = (f'csv destinations "{d1}" ("{c1}" / "{g1}") and "{d2}" ("{c2}" / "{g2}") would write one '
                   f"file: {json.dumps(w1, ensure_ascii=False)} and {json.dumps(w2, ensure_ascii=False)}{case}"
                   + (f" (the first at {span1})" if span1 else ""))
        hint = "give each destination its own path"
    return Diagnostic.error(E_SAME_FILE, message, span2, hint)
