"""One project checked as a whole, as the language server sees it: the open documents' text over the files on disk.

No server here: a document is a *key* (its real path, or its URI when it has
no path) and its text; ``analyze`` reads the project's files and checks them
with ``project.analyze``, as ``audlang validate`` does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import attrs
from pygls.uris import to_fs_path

from audlang import ast, project
from audlang.check import Model
from audlang.diagnostics import AudlangError, Diagnostic

#: The kinds of declaration a quoted name can refer to, and their AST classes.
NAMED = {"segment": ast.Segment, "destination": ast.Destination, "campaign": ast.Campaign}


@attrs.frozen
class ProjectAnalysis:
    """One project checked as a whole: its sources (open documents over files on disk), model and diagnostics."""

    root: Path | None
    sources: dict[str, str]  # key (an absolute path, or a URI for an unsaved document) -> text
    model: Model
    diagnostics: tuple[Diagnostic, ...]

    def declarations(self) -> Iterator[ast.Declaration]:
        for file in self.model.files:
            yield from file.declarations

    def find(self, kind: str, name: str) -> ast.Declaration | None:
        """The declaration of a segment, destination or campaign, also one the checker set aside."""
        table = {"segment": self.model.segments, "destination": self.model.destinations,
                 "campaign": self.model.campaigns}[kind]
        if name in table:
            return table[name]
        wanted = NAMED[kind]
        return next((d for d in self.declarations() if isinstance(d, wanted) and d.name == name), None)

    def names(self, kind: str) -> list[str]:
        wanted = NAMED[kind]
        return sorted({d.name for d in self.declarations() if isinstance(d, wanted)})


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
                sources[key] = project.read_source(file, config.root)
            except AudlangError as error:
                problems.extend(error.diagnostics)
        for key, text in open_documents.items():
            if os.path.isabs(key) and is_within(Path(key), root):
                sources[key] = text
    else:
        sources.update(open_documents)
        folders = {Path(key).parent for key in open_documents if os.path.isabs(key)}
        config = project.Config(root=folders.pop()) if len(folders) == 1 else None
    model, diagnostics = project.analyze(sources, config)  # through the module: a test replaces it
    return ProjectAnalysis(root, sources, model, tuple(problems + diagnostics))
