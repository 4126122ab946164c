"""A project on disk: ``audlang.toml``, its ``.aud`` files, parsed and checked.

The project is the folder holding ``audlang.toml``, found from the working
directory upward; a folder of ``.aud`` files without one works with defaults.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

from audlang.check import Model, check
from audlang.check.templates import ExportRoots
from audlang.diagnostics import AudlangError, Diagnostic, printable
from audlang.files import MAX_READ_BYTES, UnsafeFile, inside, read_regular
from audlang.syntax import parse_source
from audlang.syntax.formatter import WIDTH

CONFIG_NAME = "audlang.toml"
SOURCE_SUFFIX = ".aud"
MAX_LIST_BYTES = MAX_READ_BYTES
#: the largest ``.aud`` file read: a source file is text a person wrote, and a project of a thousand
#: segments is a few hundred KiB; its longest line (a string literal cannot span lines) likewise
MAX_SOURCE_BYTES = 4 * 1024 * 1024
MAX_SOURCE_LINE = 64 * 1024
MAX_CONFIG_BYTES = 1024 * 1024
#: the range of ``[fmt] width``: narrower than a condition's keywords, or wider than any screen, is a typo
MIN_WIDTH, MAX_WIDTH = 40, 400
SKIPPED_DIRS = {".git", "target", "node_modules", ".venv", "venv", "__pycache__"}


@attrs.frozen
class Config:
    root: Path
    name: str = "audlang"
    warehouse: str | None = None
    state: str | None = None
    paths: tuple[str, ...] = (".",)
    has_file: bool = False
    #: a folder outside the project that csv destinations (and other exports) may write under
    exports_root: Path | None = None
    #: the largest ``in list`` file read, in bytes (``max_list_bytes``; default 100 MiB)
    max_list_bytes: int = MAX_LIST_BYTES
    #: the longest line ``fmt`` keeps a condition on before it wraps (``[fmt] width``)
    fmt_width: int = WIDTH


@attrs.frozen
class LoadedProject:
    config: Config
    model: Model
    diagnostics: tuple[Diagnostic, ...]
    sources: dict[str, str]

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]


def find_root(start: Path) -> Path | None:
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    return None


def load_config(project_dir: str | os.PathLike | None = None) -> Config:
    root = _project_root(project_dir)
    config_file = root / CONFIG_NAME
    if not config_file.is_file():
        return Config(root=root)
    data = _read_config(config_file, root)
    known = {"name", "warehouse", "state", "paths", "exports_root", "max_list_bytes", "fmt"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise AudlangError(Diagnostic.sourceless(
            "E302", f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}", str(config_file)))
    paths = _source_paths(data, root, config_file)
    _check_texts(data, config_file)
    exports_root = _exports_root(data, root, config_file)
    max_list_bytes = data.get("max_list_bytes", MAX_LIST_BYTES)
    if isinstance(max_list_bytes, bool) or not isinstance(max_list_bytes, int) or max_list_bytes <= 0:
        raise AudlangError(Diagnostic.sourceless("E302", "`max_list_bytes` is a whole number of bytes above 0",
                                                 str(config_file)))
    return Config(root=root, name=data.get("name", root.name), warehouse=data.get("warehouse"),
                  state=data.get("state"), paths=tuple(paths), has_file=True, exports_root=exports_root,
                  max_list_bytes=max_list_bytes, fmt_width=_fmt_width(data, config_file))


def _fmt_width(data: dict, config_file: Path) -> int:
    """``[fmt] width``: a whole number of columns from ``MIN_WIDTH`` to ``MAX_WIDTH``."""
    table = data.get("fmt", {})
    if not isinstance(table, dict):
        raise AudlangError(Diagnostic.sourceless("E302", "`fmt` is a table: [fmt] width = 100", str(config_file)))
    unknown = sorted(set(table) - {"width"})
    if unknown:
        raise AudlangError(Diagnostic.sourceless(
            "E302", f"unknown setting(s) fmt.{', fmt.'.join(unknown)}; known: fmt.width", str(config_file)))
    width = table.get("width", WIDTH)
    if isinstance(width, bool) or not isinstance(width, int) or not MIN_WIDTH <= width <= MAX_WIDTH:
        raise AudlangError(Diagnostic.sourceless(
            "E302", f"`fmt.width` is a whole number of columns from {MIN_WIDTH} to {MAX_WIDTH}", str(config_file)))
    return width


def _project_root(project_dir: str | os.PathLike | None) -> Path:
    """The folder given (which must exist), or the nearest one up from here with an audlang.toml, or here."""
    if project_dir is not None:
        root = Path(project_dir)
        if not root.is_dir():
            raise AudlangError(Diagnostic.sourceless("E301", "project folder not found", str(project_dir)))
        return root
    return find_root(Path.cwd()) or Path.cwd()


def _read_config(config_file: Path, root: Path) -> dict:
    try:
        # audlang.toml is a pull request's file too: inside the project, regular, small
        return tomllib.loads(read_regular(config_file, [root], MAX_CONFIG_BYTES).content.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise AudlangError(Diagnostic.sourceless(
            "E302", f"cannot read {CONFIG_NAME}: {error}", str(config_file))) from None
    except (UnsafeFile, OSError) as error:
        raise AudlangError(Diagnostic.sourceless("E302", f"{CONFIG_NAME} {error}", CONFIG_NAME)) from None


def _source_paths(data: dict, root: Path, config_file: Path) -> list[str]:
    """``paths``: folders (and files) inside the project, written plainly."""
    paths = data.get("paths", ["."])
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise AudlangError(Diagnostic.sourceless("E302", "`paths` is a list of folders", str(config_file)))
    for folder in paths:
        if printable(folder) != folder:
            raise AudlangError(Diagnostic.sourceless("E302", "`paths` entries hold control characters",
                                                     str(config_file)))
        try:
            inside(root / folder, [root])
        except UnsafeFile:
            raise AudlangError(Diagnostic.sourceless(
                "E302", f"`paths` entry {folder!r} is outside the project folder", str(config_file))) from None
    return paths


def _check_texts(data: dict, config_file: Path) -> None:
    """``name``, ``warehouse`` and ``state``: text, on one line."""
    for key in ("name", "warehouse", "state"):
        if key in data and not isinstance(data[key], str):
            raise AudlangError(Diagnostic.sourceless("E302", f"`{key}` is a string", str(config_file)))
        if key in data and printable(data[key]) != data[key]:  # printed in plans and pull-request comments
            raise AudlangError(Diagnostic.sourceless("E302", f"`{key}` holds control characters", str(config_file)))


def _exports_root(data: dict, root: Path, config_file: Path) -> Path | None:
    """``exports_root``, resolved: a folder that neither is the file system's root nor holds the project."""
    exports_root = data.get("exports_root")
    if exports_root is None:
        return None
    if not isinstance(exports_root, str) or not exports_root.strip() or printable(exports_root) != exports_root:
        raise AudlangError(Diagnostic.sourceless("E302", "`exports_root` is a folder name", str(config_file)))
    resolved = (root / exports_root).resolve()
    if resolved == Path(resolved.anchor) or root.resolve().is_relative_to(resolved):
        raise AudlangError(Diagnostic.sourceless(
            "E302", "`exports_root` may not be the file system's root or a folder that holds the project",
            str(config_file)))
    return resolved


def source_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Every ``.aud`` file under the given files and folders, in a stable order."""
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        try:
            path.stat()
        except (OSError, ValueError) as error:  # missing, a NUL byte, a name too long
            reason = "no such file or folder" if isinstance(error, FileNotFoundError) else "not a usable path"
            raise AudlangError(Diagnostic.sourceless("E303", reason, printable(display_path(path))[:200])) from None
        if path.is_file():
            found[path] = None
        elif path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS and not d.startswith("."))
                for name in sorted(filenames):
                    if name.endswith(SOURCE_SUFFIX):
                        found[Path(dirpath) / name] = None
        else:
            raise AudlangError(Diagnostic.sourceless("E303", "no such file or folder", str(raw)))
    return list(found)


def display_path(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def read_sources(files: Sequence[Path], root: Path | None = None) -> dict[str, str]:
    """The text of each source file, keyed by its display path (see ``read_source``)."""
    return {display_path(file): read_source(file, root) for file in files}


def read_source(file: Path, root: Path | None = None) -> str:
    """A source file's text. A file found in the project (``root`` given) must resolve inside it: a
    symbolic link in a pull request must not show another file's lines in a diagnostic (or have
    ``fmt`` write through it). Only a regular file, at most ``MAX_SOURCE_BYTES``."""
    roots = [root] if root is not None else [os.path.dirname(os.path.realpath(file))]
    try:
        text = read_regular(file, roots, MAX_SOURCE_BYTES).content.decode("utf-8")
        longest = max(map(len, text.splitlines()), default=0)
        if longest > MAX_SOURCE_LINE:
            raise UnsafeFile(f"has a line of {longest:,} characters (at most {MAX_SOURCE_LINE:,})")
        return text
    except UnicodeDecodeError:
        raise AudlangError(Diagnostic.sourceless("E304", "not a UTF-8 text file", str(file))) from None
    except UnsafeFile as refusal:
        raise AudlangError(Diagnostic.sourceless("E304", f"source file {refusal}", display_path(file))) from None
    except OSError as error:
        raise AudlangError(Diagnostic.sourceless("E304", f"cannot read: {error.strerror}", str(file))) from None


def analyze(sources: dict[str, str], config: Config | None = None) -> tuple[Model, list[Diagnostic]]:
    """Parse and check sources given as ``{path: text}``.

    ``in list`` files are read inside ``config.root`` (default: the working directory), at most
    ``config.max_list_bytes`` of each.
    """
    root, limit = (config.root, config.max_list_bytes) if config else (Path.cwd(), MAX_LIST_BYTES)
    diagnostics: list[Diagnostic] = []
    files = []
    for path, text in sources.items():
        parsed, problems = parse_source(text, path)
        files.append(parsed)
        diagnostics.extend(problems)
    exports = ExportRoots(config.root, config.exports_root) if config else None  # where destinations write
    model, problems = check(files, lambda path: read_regular(path, [root], limit, "max_list_bytes in audlang.toml"),
                            exports)
    diagnostics.extend(problems)
    return model, diagnostics


def load(paths: Sequence[str] | None = None, project_dir: str | None = None) -> LoadedProject:
    """Load, parse and check a project (or the given paths within it)."""
    config = load_config(project_dir)
    if paths:
        targets: list[str | Path] = list(paths)
    else:
        targets = [config.root / p for p in config.paths]
    files = source_files(targets)
    sources = read_sources(files, None if paths else config.root)
    model, diagnostics = analyze(sources, config)
    return LoadedProject(config, model, tuple(diagnostics), sources)
