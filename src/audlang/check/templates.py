"""Destination templates and the files they name, rendered one way at validate and at apply.

A csv destination's ``path`` and a webhook's ``body`` are jinja2 templates
written in a pull request. They are rendered only here: in an immutable
sandbox (``''.__class__`` and ``|attr('__class__')`` are refused), with
``StrictUndefined`` (``{{ nope }}`` is an error, not an empty string), with the
result's size bounded. ``validate`` renders each against the project's real
campaign groups (a sample one when none sends there) and sample members
(``check_destinations``); the destinations render the real ones with the same
functions (``render_path``, ``render_body``), so what validate accepts is what
apply renders.

A rendered csv path names a ``.csv`` file whose name is safe (not empty, not
hidden, no control characters or backslashes); it and a sql destination's
database file resolve, symlinks followed, inside the project folder or
``exports_root`` (``ExportRoots``, ``audlang.files.inside``); an existing file
there must be a regular file, not a symbolic link. Two campaign groups whose
csv paths resolve to one file are an error naming both.

Every problem is a ``TemplateProblem`` carrying its diagnostic code (E120–E126,
docs/language.md); ``str()`` is the user's message.

Imports ``ast``, ``diagnostics``, ``files`` and jinja2 (the check layer;
``destinations`` imports it).
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath

import attrs
import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from audlang import ast
from audlang.diagnostics import Diagnostic, Span
from audlang.files import OutsideRoots, inside

E_TEMPLATE = "E120"  # does not parse, or fails while rendering
E_SANDBOX = "E121"  # refused by the sandbox
E_UNDEFINED = "E122"  # names something that is not defined
E_FILE_NAME = "E123"  # an unsafe file name, or a target that is not a regular file
E_OUTSIDE = "E124"  # resolves outside the project folder and exports_root
E_NOT_JSON = "E125"  # a webhook body that is not JSON once rendered
E_SAME_FILE = "E126"  # two campaign groups write one file

#: the longest rendered path and body (a body at apply holds a whole batch)
MAX_PATH_CHARS = 1024
MAX_NAME_BYTES = 255
MAX_BODY_CHARS = 64 * 1024 * 1024
#: the largest string or list a template may build with ``*``, and the largest integer power
MAX_PRODUCT = 1_000_000
MAX_EXPONENT = 256

PATH_NAMES = ("campaign", "group", "destination")
BODY_NAMES = ("campaign", "group", "destination", "operation", "batch", "idempotency_key", "members")


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


class _Sandbox(ImmutableSandboxedEnvironment):
    """jinja2's immutable sandbox, with ``*`` and ``**`` bounded so a template cannot build a gigabyte."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator, left, right):
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(count, int) and \
                        len(seq) * count > MAX_PRODUCT:
                    raise jinja2.exceptions.SecurityError(f"a repetition longer than {MAX_PRODUCT:,} is refused")
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and \
                right > MAX_EXPONENT:
            raise jinja2.exceptions.SecurityError(f"a power above {MAX_EXPONENT} is refused")
        return super().call_binop(context, operator, left, right)


def _json_default(value):
    if isinstance(value, jinja2.Undefined):  # ``{{ nope | tojson }}``: undefined, like ``{{ nope }}``
        value._fail_with_undefined_error()
    raise TypeError(f"a {type(value).__name__} cannot be written as JSON")


ENVIRONMENT = _Sandbox(autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
ENVIRONMENT.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": _json_default}


def compile_template(text: str, what: str) -> jinja2.Template:
    """``what`` names the template in messages ("the path template")."""
    try:
        return ENVIRONMENT.from_string(text)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateProblem(E_TEMPLATE, f"{what} does not parse: {error.message}"
                              + (f" (line {error.lineno} of the template)" if "\n" in text else "")) from None
    except Exception as error:  # noqa: BLE001 - jinja2 raises a few others for odd sources
        raise TemplateProblem(E_TEMPLATE, f"{what} does not parse: {error}") from None


def render(template: jinja2.Template, names: Mapping[str, object], what: str, limit: int,
           known: Sequence[str]) -> str:
    """The rendered text, or a ``TemplateProblem`` saying why not (never another exception)."""
    out: list[str] = []
    size = 0
    try:
        for chunk in template.generate(**names):
            size += len(chunk)
            if size > limit:
                raise TemplateProblem(E_TEMPLATE, f"{what} renders to more than {limit:,} characters")
            out.append(chunk)
    except TemplateProblem:
        raise
    except jinja2.exceptions.SecurityError as error:
        raise TemplateProblem(E_SANDBOX, f"{what} is refused by the sandbox: {error}",
                              "templates may use the names given and jinja2's filters, not Python attributes"
                              ) from None
    except jinja2.exceptions.UndefinedError as error:
        raise TemplateProblem(E_UNDEFINED, f"{what} uses something that is not defined: {error}",
                              f"the names are {', '.join(known)}") from None
    except RecursionError:
        raise TemplateProblem(E_TEMPLATE, f"{what} cannot be rendered: it nests too deep") from None
    except Exception as error:  # noqa: BLE001 - whatever a template's expression raises (1/0, a bad filter)
        # Cut short: an expression's error may quote a member's value.
        raise TemplateProblem(E_TEMPLATE, f"{what} cannot be rendered: {type(error).__name__}: "
                              f"{_short(str(error))}") from None
    return "".join(out)


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


def render_path(template: str | jinja2.Template, campaign: str, group: str, destination: str) -> str:
    """The csv path for one campaign group, as written (relative to the project folder, or absolute),
    checked to name a safe ``.csv`` file."""
    if isinstance(template, str):
        template = compile_template(template, "the path template")
    rendered = render(template, path_names(campaign, group, destination), "the path template",
                      4 * MAX_PATH_CHARS, PATH_NAMES)
    check_file_name(rendered)
    return rendered


def check_file_name(rendered: str) -> None:
    shown = json.dumps(rendered, ensure_ascii=False)
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


def resolve_output(written: str, roots: ExportRoots, what: str = "the path") -> Path:
    """Where a rendered path (relative to the project folder, or absolute) writes: its folders resolved,
    symlinks followed (they need not exist yet), the file name kept; refused outside the roots and where a
    file exists there that is a symbolic link or not a regular file."""
    joined = Path(written) if os.path.isabs(written) else roots.project / written
    final = Path(os.path.realpath(joined.parent)) / joined.name
    shown = json.dumps(written, ensure_ascii=False)
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
                raise TemplateProblem(E_FILE_NAME, f"{what} {shown} leads into the hidden folder {hidden[0]}",
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
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() not in ("duckdb", "sqlite"):
        return None
    database = parsed.database or ""
    if database.startswith("file:") or "uri" in parsed.query:
        # SQLite decodes a URI filename (%2E%2E is ..) after any check of ours: not accepted
        raise TemplateProblem("E124", "a SQLite URI filename (file:…, uri=true) is not accepted as a destination "
                              "database", "name the file as a path: sqlite:///exports/copy.db")
    if database in ("", ":memory:") or database.startswith(("md:", "motherduck:")):
        return None
    return database


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


def render_body(template: str | jinja2.Template, names: Mapping[str, object]) -> str:
    """The request body: the template rendered, and valid JSON."""
    if isinstance(template, str):
        template = compile_template(template, "the body template")
    text = render(template, names, "the body template", MAX_BODY_CHARS, BODY_NAMES)
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
        return _Literal("".join(p.value for p in setting.value.parts), setting.value.span or setting.span)
    return None


def _list_setting(destination: ast.Destination, key: str) -> tuple[str, ...] | None:
    for setting in destination.settings:
        if not setting.header and setting.key == key and isinstance(setting.value, ast.ListValue):
            return tuple(item.value for item in setting.value.items)
    return None


DEFAULT_IDENTIFIERS = {"webhook": ("customer_id",), "csv": ("customer_id",)}


def campaign_targets(campaigns: Iterable[ast.Campaign]) -> list[tuple[ast.Campaign, str, ast.StringValue]]:
    """(campaign, group, the reference to a destination) of every group sent somewhere (a holdout never is)."""
    out = []
    for campaign in campaigns:
        seen: set[str] = set()
        for group in (*campaign.treatments, *campaign.subaudiences):
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
    for campaign, group, ref in campaign_targets(campaigns):
        if ref.value in destinations:
            sent_to.setdefault(ref.value, []).append((campaign.name, group))
    written: dict[str, tuple[str, str, str, str, Span | None]] = {}

    def problem(error: TemplateProblem, span: Span | None) -> None:
        diagnostics.append(Diagnostic.error(error.code, error.message, span, error.suggestion))

    for name, destination in destinations.items():
        groups = sent_to.get(name) or [SAMPLE_TARGET]
        if destination.kind == "csv" and (path := _literal(destination, "path")) is not None:
            try:
                template = compile_template(path.text, "the path template")
                for campaign, group in groups:
                    rendered = render_path(template, campaign, group, name)
                    final = resolve_output(rendered, roots)
                    if (campaign, group) == SAMPLE_TARGET and name not in sent_to:
                        continue
                    key = os.path.normcase(str(final)).casefold()
                    if key in written:
                        diagnostics.append(_same_file(written[key], (campaign, group, name, rendered, path.span)))
                        continue
                    written[key] = (campaign, group, name, rendered, path.span)
            except TemplateProblem as error:
                problem(error, path.span)
        elif destination.kind == "webhook" and (body := _literal(destination, "body")) is not None:
            identifiers = _list_setting(destination, "identifiers") or DEFAULT_IDENTIFIERS["webhook"]
            fields = _list_setting(destination, "fields") or ()
            members = sample_members(identifiers, fields, type_of)
            try:
                template = compile_template(body.text, "the body template")
                campaign, group = groups[0]
                for operation, batch in (("add", members), ("remove", members[1:])):
                    render_body(template, body_names(campaign, group, name, operation, 1, "0" * 40, batch,
                                                     identifiers, fields))
            except TemplateProblem as error:
                problem(error, body.span)
        elif destination.kind == "sql" and (url := _literal(destination, "url")) is not None:
            try:
                database = database_file(url.text)
            except TemplateProblem as error:
                problem(error, url.span)
                database = None
            except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot read: apply says so when it opens it
                database = None
            if database is not None:
                try:
                    resolve_output(database, roots, "the database file")
                except TemplateProblem as error:
                    problem(error, url.span)
    return diagnostics


def _same_file(first: tuple, second: tuple) -> Diagnostic:
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
