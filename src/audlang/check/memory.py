"""What one check of a project found, declaration by declaration, for the next check of the same project.

The language server checks a project again after every pause in typing (``audlang.lsp``); ``check``
takes a ``CheckMemory`` to do only the work a change calls for. Imports ``diagnostics`` and the data
model only.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from audlang.check.datamodel import DataModel
from audlang.diagnostics import Diagnostic

#: inputs that cannot be remembered: the check reads files (``in list``), which may change at any time
UNREMEMBERED = object()


class Remembered:
    """One declaration (kept alive beside its ``id``, the key), the names it uses, and what each of its
    checks found: check -> (its inputs, the diagnostics it added, the value it computed)."""

    __slots__ = ("decl", "uses", "checks")

    def __init__(self, decl: object):
        self.decl = decl
        self.uses: object | None = None  # what the checker read of the names it uses
        self.checks: dict[str, tuple[object, tuple[Diagnostic, ...], object]] = {}

    def moved(self, decl: object, lines: int) -> Remembered:
        """What is remembered of this declaration, for ``decl``: the same one ``lines`` lines further down."""
        found = Remembered(decl)
        found.uses = self.uses
        for check, found_then in self.checks.items():
            inputs, diagnostics, value = found_then
            if diagnostics:
                diagnostics = tuple(d if d.span is None else attrs.evolve(d, span=d.span.shifted(lines))
                                    for d in diagnostics)
                found_then = (inputs, diagnostics, value)
            found.checks[check] = found_then
        return found


class CheckMemory:
    """What the last check of a project found, declaration by declaration, for the next check of it.

    The language server checks the same project after every pause in typing, and a change touches one
    declaration or a few. Each declaration's own checks (its condition, a destination's settings, a
    campaign's groups, how deep a segment nests once the segments it uses are counted in) are a function
    of the declaration and of a few inputs from the rest of the project: the data model, whether each
    name it uses is declared (and, for an unknown one, every declared name, which the suggestion is
    drawn from), the nesting of the segments it uses. They are taken again for the same declaration
    (the same object: a parse that kept it) with equal inputs; so a change re-checks only the
    declarations that depend on it. Checks that read files (``in list``) and the checks across the whole
    project (duplicate names, views, cycles, renames, destination templates) run every time.

    A declaration that only moved (lines were added or removed above it) is a new object; ``moved`` says
    which one it was, and what was found about that one is taken, its diagnostics moved with it. (So a
    remembered check's messages never name a position: only its spans do.)

    What is remembered lives for one check: the declarations that are gone are dropped by the next.
    """

    def __init__(self) -> None:
        self.data_model: DataModel | None = None
        self.generation = 0  # goes up whenever the data model changes: every condition depends on it
        self.previous: dict[int, Remembered] = {}
        self.current: dict[int, Remembered] = {}
        self.views: dict[str, str] = {}
        self.moves: dict[int, tuple[object, object, int]] = {}  # id(new) -> new, the one it was, lines down

    def moved(self, moves: Iterable[tuple[object, object, int]]) -> None:
        """Declarations of the next check that are earlier ones moved down: (earlier, now, lines)."""
        for earlier, now, lines in moves:
            self.moves[id(now)] = (now, earlier, lines)

    def start(self, data_model: DataModel) -> None:
        if data_model != self.data_model:
            self.data_model = data_model
            self.generation += 1
        self.current = {}

    def finish(self) -> None:
        self.previous, self.current, self.moves = self.current, {}, {}

    def of(self, decl: object) -> Remembered:
        """What is remembered of ``decl``: from this check, else from the last (for the same object)."""
        key = id(decl)
        found = self.current.get(key)
        if found is None:
            found = self.previous.get(key)
            if found is None or found.decl is not decl:
                found = self._moved(decl) or Remembered(decl)
            self.current[key] = found
        return found

    def _moved(self, decl: object) -> Remembered | None:
        move = self.moves.get(id(decl))
        if move is None or move[0] is not decl:
            return None
        found = self.previous.get(id(move[1]))
        return found.moved(decl, move[2]) if found is not None and found.decl is move[1] else None
