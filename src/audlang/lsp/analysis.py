"""One project checked as a whole, as the language server sees it: the open documents' text over the files on disk.

No server here: a document is a *key* (its real path, or its URI when it has
no path) and its text. ``analyze`` reads the project's files and checks them
with ``project.analyze``, as ``audlang validate`` does. An ``Analyzer`` gives
the same answer again and again as the user types, doing only the work a
change calls for: files on disk read again when they changed, only the
declarations that changed parsed (``reparse``), only those that changed or
depend on what did checked (``check.CheckMemory``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar, cast

import attrs
from pygls.uris import to_fs_path

from audlang import ast, project
from audlang.check import CheckMemory, Model, checker
from audlang.check.templates import ExportRoots
from audlang.diagnostics import AudlangError, Diagnostic
from audlang.files import read_regular
from audlang.lsp.reparse import FileParser

T = TypeVar("T")

#: The kinds of declaration a quoted name can refer to, and their AST classes.
NAMED = {"segment": ast.Segment, "score": ast.Score, "destination": ast.Destination, "campaign": ast.Campaign}


@attrs.frozen
class ProjectAnalysis:
    """One project checked as a whole: its sources (open documents over files on disk), model and diagnostics."""

    root: Path | None
    sources: dict[str, str]  # key (an absolute path, or a URI for an unsaved document) -> text
    model: Model
    diagnostics: tuple[Diagnostic, ...]
    #: what the features work out from the analysis, once for each (completion lists a thousand names)
    _derived: dict[object, object] = attrs.field(init=False, factory=dict, eq=False, repr=False)

    def declarations(self) -> Iterator[ast.Declaration]:
        for file in self.model.files:
            yield from file.declarations

    def find(self, kind: str, name: str) -> ast.Declaration | None:
        """The declaration of a segment, score, destination or campaign, also one the checker set aside."""
        table = {"segment": self.model.segments, "score": self.model.scores, "destination": self.model.destinations,
                 "campaign": self.model.campaigns}[kind]
        if name in table:
            return table[name]
        wanted = NAMED[kind]
        return next((d for d in self.declarations() if isinstance(d, wanted) and d.name == name), None)

    def names(self, kind: str) -> list[str]:
        wanted = NAMED[kind]
        return self.derived(("names", kind), lambda: sorted({d.name for d in self.declarations()
                                                             if isinstance(d, wanted)}))

    def derived(self, key: object, work: Callable[[], T]) -> T:
        """``work()``, done once per analysis for each ``key``: a value drawn from the analysis alone."""
        if key not in self._derived:
            self._derived[key] = work()
        return cast(T, self._derived[key])


def document_key(uri: str) -> str:
    """The key of the document at ``uri``: its real path when it is a file, else the URI itself."""
    path = to_fs_path(uri) if uri.startswith("file:") else None
    return os.path.realpath(path) if path else uri


def project_root(key: str, folders: Iterable[str] = (), fallback: str | None = None) -> Path | None:
    """The project a document belongs to: the folder holding ``audlang.toml`` above it, else the
    workspace folder that contains it, else ``--project``; ``None`` for a document on its own."""
    if not os.path.isabs(key):
        return None
    found = project.find_root(Path(key).parent)
    if found is not None:
        return found
    containing = [Path(f) for f in folders if is_within(Path(key), Path(f))]
    if containing:
        return max(containing, key=lambda p: len(p.parts))
    if fallback and is_within(Path(key), Path(fallback)):
        return Path(fallback).resolve()
    return None


def is_within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def analyze(root: Path | None, open_documents: dict[str, str]) -> ProjectAnalysis:
    """Check a project: its ``.aud`` files on disk, with the open documents' text in place of theirs.

    ``open_documents`` maps keys (see ``document_key``) to text; those outside
    ``root`` are left out. Problems with the project itself (a broken
    ``audlang.toml``, a missing folder) come back as diagnostics without a span.
    """
    sources, config, problems = _sources(root, open_documents, project.read_source)
    model, diagnostics = project.analyze(sources, config)
    return ProjectAnalysis(root, sources, model, tuple(problems + diagnostics))


#: reads a source file of the project: ``project.read_source``'s answer
_Reader = Callable[[Path, Path], str]


def _sources(root: Path | None, open_documents: dict[str, str],
             read: _Reader) -> tuple[dict[str, str], project.Config | None, list[Diagnostic]]:
    """The texts to check (key -> text: the files on disk, open documents in their place), the
    project's configuration, and the problems with the project itself."""
    sources: dict[str, str] = {}
    problems: list[Diagnostic] = []
    # ``in list`` files are read inside the project (or, for a lone document, its own folder)
    config: project.Config | None = None
    if root is not None:
        try:
            config = project.load_config(root)
            files = project.source_files([config.root / p for p in config.paths])
        except AudlangError as error:
            problems.extend(error.diagnostics)
            config = project.Config(root=root)
            files = []
        for file in files:
            key = os.path.realpath(file)
            try:
                sources[key] = read(file, config.root)
            except AudlangError as error:
                problems.extend(error.diagnostics)
        for key, text in open_documents.items():
            if os.path.isabs(key) and is_within(Path(key), root):
                sources[key] = text
    else:
        sources.update(open_documents)
        folders = {Path(key).parent for key in open_documents if os.path.isabs(key)}
        config = project.Config(root=folders.pop()) if len(folders) == 1 else None
    return sources, config, problems


#: a file on disk is read again when one of these changed: its times, size, inode, device or mode
_Stamp = tuple[int, int, int, int, int, int]
#: a file whose last change is older than this is trusted not to change unseen: a file system's clock
#: ticks in steps of milliseconds (ext4), a second (HFS+) or two (FAT), and a change within the same
#: tick as the read leaves the same stamp
SETTLED_SECONDS = 2.0


class Analyzer:
    """``analyze``'s answer for one project (or lone document), again and again, as cheaply as a change allows.

    - files on disk are read again only when their stamp (``os.stat``) changed, or while their last change
      is too recent for the stamp to tell (``SETTLED_SECONDS``);
    - each text is parsed piece by piece (``reparse.FileParser``): only the declarations that changed;
    - the check remembers what it found about each declaration (``check.CheckMemory``): only the
      declarations that changed, and those that depend on what did, are checked again.

    The parse and check here are ``project.analyze``'s, with the parser and the memory supplied;
    ``tests/editors/test_lsp_incremental.py`` holds the two answers equal as a project is edited.
    """

    def __init__(self, root: Path | None):
        self.root = root
        self.parser = FileParser()
        self.memory = CheckMemory()
        self._disk: dict[str, tuple[_Stamp, str, bool, str]] = {}  # key -> stamp, text, settled, root

    def analyze(self, open_documents: dict[str, str]) -> ProjectAnalysis:
        """``analyze(self.root, open_documents)``."""
        sources, config, problems = _sources(self.root, open_documents, self._read)
        for key in [k for k in self._disk if k not in sources]:
            del self._disk[key]
        model, diagnostics = self._check(sources, config)
        return ProjectAnalysis(self.root, sources, model, tuple(problems + diagnostics))

    def _read(self, file: Path, root: Path) -> str:
        """``project.read_source(file, root)``, taken from the last read while the file has not changed."""
        key, inside = os.path.realpath(file), os.path.realpath(root)
        try:
            info = os.stat(key)
        except (OSError, ValueError):
            return project.read_source(file, root)  # which says what is wrong
        stamp = (info.st_mtime_ns, info.st_ctime_ns, info.st_size, info.st_ino, info.st_dev, info.st_mode)
        known = self._disk.get(key)
        if known is not None and known[0] == stamp and known[2] and known[3] == inside:
            return known[1]
        text = project.read_source(file, root)  # a refusal raises, and is not remembered
        settled = time.time() - max(info.st_mtime, info.st_ctime) > SETTLED_SECONDS
        self._disk[key] = (stamp, text, settled, inside)
        return text

    def _check(self, sources: dict[str, str], config: project.Config | None) -> tuple[Model, list[Diagnostic]]:
        """``project.analyze(sources, config)``, parsing with ``self.parser`` and checking with ``self.memory``."""
        root, limit = (config.root, config.max_list_bytes) if config else (Path.cwd(), project.MAX_LIST_BYTES)
        diagnostics: list[Diagnostic] = []
        files = []
        for path, text in sources.items():
            parsed, problems = self.parser.parse(text, path)
            files.append(parsed)
            diagnostics.extend(problems)
        self.parser.keep_only(sources)
        self.memory.moved(self.parser.take_moves())
        exports = ExportRoots(config.root, config.exports_root) if config else None  # where destinations write
        model, problems = checker.check(
            files, lambda path: read_regular(path, [root], limit, "max_list_bytes in audlang.toml"), exports,
            memory=self.memory)
        diagnostics.extend(problems)
        return model, diagnostics
