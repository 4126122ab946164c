"""The checked project: what the later stages (compile, plan, apply, sync) consume."""

from __future__ import annotations

import attrs

from audlang import ast
from audlang.check.datamodel import DataModel


@attrs.frozen
class ListFile:
    """An ``in list "…"`` file: where it was found and the hash of its content."""

    written: str  # as written in the source
    path: str  # resolved path on disk
    sha256: str
    size: int = 0  # bytes, read again (and the hash compared) when the list is loaded


@attrs.frozen
class Model:
    data_model: DataModel
    #: Segments in dependency order: every segment comes after those it uses.
    segments: dict[str, ast.Segment]
    destinations: dict[str, ast.Destination]
    campaigns: dict[str, ast.Campaign]
    moves: tuple[ast.Moved, ...]
    #: segment name -> names of the segments its condition (transitively not) uses
    dependencies: dict[str, tuple[str, ...]]
    #: (declaring file, written path) -> ListFile
    lists: dict[tuple[str, str], ListFile]
    files: tuple[ast.SourceFile, ...] = ()
    #: Scores (SPEC §3.1), in declaration order.
    scores: dict[str, ast.Score] = attrs.Factory(dict)

    def segment(self, name: str) -> ast.Segment:
        return self.segments[name]

    def dependents(self, name: str) -> tuple[str, ...]:
        return tuple(s for s, deps in self.dependencies.items() if name in deps)
