"""What the code asks for: each segment, score, campaign and destination as its canonical definition.

The canonical text is the formatter's (``format_declaration``), without the
``paused`` prefix and comments: pausing and descriptions are recorded beside
the definition, so that neither shows as a definition change. A segment's
``in list`` files are part of its definition by their content hash. A
segment's definition ends with those of the scores it reads (``segment_definition``),
so that an edited score is a definition change of the segments that use it too.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from audlang import ast
from audlang.check import Model, walk, walk_through_scores
from audlang.check.checker import score_used
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
    objects: tuple[DesiredObject, ...]  # segments in dependency order, scores, destinations, campaigns
    moves: tuple[tuple[ObjectKind, str, str], ...] = ()  # (kind, old, new)
    sources: tuple[tuple[str, str], ...] = ()
    project: str = ""

    def of_kind(self, kind: ObjectKind) -> dict[str, DesiredObject]:
        return {o.name: o for o in self.objects if o.kind == kind}


def canonical(decl: ast.Declaration) -> str:
    if isinstance(decl, (ast.Segment, ast.Destination, ast.Campaign)) and decl.paused:
        decl = attrs.evolve(decl, paused=False)
    # The recorded definition keeps one layout whatever the project's `fmt.width`, and the layout it
    # had before groups wrapped: a layout change is not a definition change of what is deployed.
    return "\n".join(format_declaration(decl, [], groups=False)) + "\n"


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
    condition = model.segments[name].condition
    scored = [item.condition for score in scores_used(model, condition) for item in model.scores[score].items]
    for node in (n for c in (condition, *scored) for n in _nodes(c)):
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
    read = [(file, condition) for condition in conditions]
    for condition in conditions:  # and the lists of the scores' items, each read from its score's file
        for name in scores_used(model, condition):
            score = model.scores[name]
            read.extend((score.span.file if score.span else None, item.condition) for item in score.items)
    for file, condition in read:
        for node in walk(condition):
            if isinstance(node, ast.InFile):
                listed = model.lists.get((file, node.path)) if file is not None else None
                if listed is not None:
                    found.append(f"{node.path}={listed.sha256}")
    return tuple(sorted(set(found)))


def scores_used(model: Model, condition: ast.Condition) -> list[str]:
    """The scores a condition reads, directly or through the items of other scores, in first use order."""
    found = (score_used(node) for node in walk_through_scores(condition, model.scores))
    return list(dict.fromkeys(name for name in found if name is not None and name in model.scores))


def segment_definition(model: Model, segment: ast.Segment) -> str:
    """A segment's canonical text, followed by that of each score it reads: what its members follow from
    besides the segments it uses, so that editing a score is a definition change of its segments."""
    scores = [canonical(model.scores[name]) for name in scores_used(model, segment.condition)]
    return "\n".join([canonical(segment), *scores])


def _score_uses(model: Model, score: ast.Score) -> tuple[str, ...]:
    """The segments and scores a score's items read, as ``kind:name`` (as a campaign's uses)."""
    uses: list[str] = []
    for item in score.items:
        for node in walk(item.condition):
            if isinstance(node, ast.InSegment):
                uses.append(f"{ObjectKind.SEGMENT}:{node.name}")
            elif (name := score_used(node)) is not None:
                uses.append(f"{ObjectKind.SCORE}:{name}")
    return tuple(dict.fromkeys(uses))


def _score_lists(model: Model, score: ast.Score) -> tuple[str, ...]:
    file = score.span.file if score.span else None
    found = {f"{node.path}={listed.sha256}" for item in score.items for node in walk(item.condition)
             if isinstance(node, ast.InFile) and file is not None
             and (listed := model.lists.get((file, node.path))) is not None}
    return tuple(sorted(found))


def desired_from_model(model: Model, sources: dict[str, str] | None = None, project: str = "") -> Desired:
    objects: list[DesiredObject] = []
    for name, segment in model.segments.items():
        objects.append(DesiredObject(
            ObjectKind.SEGMENT, name, segment_definition(model, segment), segment.paused, segment.description,
            model.dependencies.get(name, ()), _lists(model, segment), _relative(model, name, set())))
    for name, score in sorted(model.scores.items()):
        objects.append(DesiredObject(ObjectKind.SCORE, name, canonical(score), False, score.description,
                                     _score_uses(model, score), _score_lists(model, score)))
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
