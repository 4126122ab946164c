"""What the code asks for: each segment, campaign and destination as its canonical definition.

The canonical text is the formatter's (``format_declaration``), without the
``paused`` prefix and comments: pausing and descriptions are recorded beside
the definition, so that neither shows as a definition change. A segment's
``in list`` files are part of its definition by their content hash.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from audlang import ast
from audlang.check import Model, walk
from audlang.check.datamodel import DERIVED_ATTRIBUTES
from audlang.syntax.formatter import format_declaration
from audlang.vocabulary import ObjectKind

_DATED = (ast.HasPurchased, ast.AbandonedCheckout, ast.Today, ast.SeasonalDate, ast.HolidayDate, ast.Anniversary,
          ast.MostPurchased, ast.FirstPurchased)


@attrs.frozen
class DesiredObject:
    kind: ObjectKind = attrs.field(converter=ObjectKind)
    name: str
    definition: str
    paused: bool = False
    description: str | None = None
    depends_on: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()  # "written path=sha256"
    relative: bool = False


@attrs.frozen
class Desired:
    objects: tuple[DesiredObject, ...]  # segments in dependency order, then destinations, then campaigns
    moves: tuple[tuple[ObjectKind, str, str], ...] = ()  # (kind, old, new)
    sources: tuple[tuple[str, str], ...] = ()
    project: str = ""

    def of_kind(self, kind: ObjectKind) -> dict[str, DesiredObject]:
        return {o.name: o for o in self.objects if o.kind == kind}


def canonical(decl: ast.Declaration) -> str:
    if isinstance(decl, (ast.Segment, ast.Destination, ast.Campaign)) and decl.paused:
        decl = attrs.evolve(decl, paused=False)
    return "\n".join(format_declaration(decl, [])) + "\n"


def _nodes(node: object) -> Iterator[object]:
    """Every attrs node under ``node`` (values and windows included), itself first."""
    yield node
    cls = type(node)
    if attrs.has(cls):
        for field in attrs.fields(cls):
            if field.name == "span" or field.name.endswith("_span"):
                continue
            value = getattr(node, field.name)
            if isinstance(value, tuple):
                for item in value:
                    yield from _nodes(item)
            elif attrs.has(type(value)):
                yield from _nodes(value)


def _relative(model: Model, name: str, seen: set[str]) -> bool:
    """Whether a segment's membership moves with the as-of date even when the data does not."""
    seen.add(name)
    for node in _nodes(model.segments[name].condition):
        if isinstance(node, _DATED):
            return True
        if isinstance(node, ast.Attribute) and node.name in DERIVED_ATTRIBUTES:
            return True
        if isinstance(node, ast.InSegment) and node.name in model.segments and node.name not in seen:
            if _relative(model, node.name, seen):
                return True
    return False


def _lists(model: Model, decl: ast.Segment | ast.Campaign) -> tuple[str, ...]:
    file = decl.span.file if decl.span else None
    found = []
    conditions: list[ast.Condition] = []
    if isinstance(decl, ast.Segment):
        conditions.append(decl.condition)
    elif isinstance(decl, ast.Campaign):
        if decl.audience is not None and decl.audience.condition is not None:
            conditions.append(decl.audience.condition)
        conditions.extend(s.condition for s in decl.subaudiences if s.condition is not None)
    for condition in conditions:
        for node in walk(condition):
            if isinstance(node, ast.InFile):
                listed = model.lists.get((file, node.path)) if file is not None else None
                if listed is not None:
                    found.append(f"{node.path}={listed.sha256}")
    return tuple(sorted(set(found)))


def desired_from_model(model: Model, sources: dict[str, str] | None = None, project: str = "") -> Desired:
    objects: list[DesiredObject] = []
    for name, segment in model.segments.items():
        objects.append(DesiredObject(
            ObjectKind.SEGMENT, name, canonical(segment), segment.paused, segment.description,
            model.dependencies.get(name, ()), _lists(model, segment), _relative(model, name, set())))
    for name, destination in sorted(model.destinations.items()):
        objects.append(DesiredObject(ObjectKind.DESTINATION, name, canonical(destination), destination.paused,
                                     destination.description))
    for name, campaign in sorted(model.campaigns.items()):
        uses: list[str] = []
        if campaign.audience is not None and campaign.audience.segment is not None:
            uses.append(f"{ObjectKind.SEGMENT}:{campaign.audience.segment}")
        groups: tuple[ast.Treatment | ast.SubAudience, ...] = (*campaign.treatments, *campaign.subaudiences)
        for group in groups:
            uses.extend(f"{ObjectKind.DESTINATION}:{d.value}" for d in group.destinations)
        objects.append(DesiredObject(ObjectKind.CAMPAIGN, name, canonical(campaign), campaign.paused,
                                     campaign.description, tuple(dict.fromkeys(uses)), _lists(model, campaign)))
    moves = tuple((ObjectKind(m.kind), m.old, m.new) for m in model.moves)
    return Desired(tuple(objects), moves, tuple(sorted((sources or {}).items())), project)
