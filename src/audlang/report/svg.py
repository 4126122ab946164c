"""Inline SVG drawn in Python: bar charts, a line chart, and the project's dependency graph.

No script is needed to see them and nothing is fetched: the report works
opened from disk. Every mark carries its data (``data-value``, ``<title>``)
so a reader hovering, and a test reading the page, see the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import attrs


def _fmt(value: float, money: bool) -> str:
    return f"{value:,.2f}" if money else f"{value:,.0f}"


def bar_chart(items: Sequence[tuple[str, float, str]], label: str, money: bool = False) -> str:
    """Horizontal bars: ``(label, value, tooltip)``; an empty chart says so."""
    width, left, right, row = 460, 120, 90, 26
    height = max(1, len(items)) * row + 8
    top = max((v for _, v, _ in items), default=0) or 1
    parts = [f'<svg class="chart bar-chart" role="img" aria-label="{escape(label)}" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">']
    if not items or not any(v for _, v, _ in items):
        parts.append('<text x="4" y="18" class="empty">no data</text>')
    for i, (name, value, tip) in enumerate(items):
        y = 4 + i * row
        w = (width - left - right) * (value / top)
        parts.append(
            f'<g class="bar-row"><title>{escape(tip)}</title>'
            f'<text x="{left - 6}" y="{y + 16}" class="axis" text-anchor="end">{escape(name)}</text>'
            f'<rect class="bar" x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" rx="2" '
            f'data-label="{escape(name)}" data-value="{value}"/>'
            f'<text x="{left + w + 5:.1f}" y="{y + 16}" class="value">{escape(_fmt(value, money))}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart(points: Sequence[tuple[str, int]], label: str) -> str:
    """Members over time: ``(date, members)`` in order, one point per apply that refreshed the segment."""
    width, height, pad_left, pad, bottom = 760, 200, 56, 14, 28
    values = [v for _, v in points]
    top = max(values, default=0) or 1
    low = 0
    inner_w, inner_h = width - pad_left - pad, height - pad - bottom
    step = inner_w / max(1, len(points) - 1)

    def xy(i: int, v: int) -> tuple[float, float]:
        x = pad_left + (i * step if len(points) > 1 else inner_w / 2)
        return x, pad + inner_h * (1 - (v - low) / (top - low or 1))

    parts = [f'<svg class="chart line-chart" role="img" aria-label="{escape(label)}" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
             f'<line class="grid" x1="{pad_left}" y1="{pad + inner_h}" x2="{width - pad}" y2="{pad + inner_h}"/>',
             f'<line class="grid" x1="{pad_left}" y1="{pad}" x2="{width - pad}" y2="{pad}"/>',
             f'<text class="axis" x="{pad_left - 6}" y="{pad + 4}" text-anchor="end">{top:,}</text>',
             f'<text class="axis" x="{pad_left - 6}" y="{pad + inner_h + 4}" text-anchor="end">0</text>']
    coords = [xy(i, v) for i, (_, v) in enumerate(points)]
    if len(coords) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        parts.append(f'<polyline class="line" points="{path}"/>')
    for (x, y), (day, v) in zip(coords, points, strict=True):
        parts.append(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3.5" data-date="{escape(day)}" '
                     f'data-value="{v}"><title>{escape(day)}: {v:,} members</title></circle>')
    if points:
        parts.append(f'<text class="axis" x="{pad_left}" y="{height - 8}">{escape(points[0][0].split(" (")[0])}</text>')
        if len(points) > 1:
            parts.append(f'<text class="axis" x="{width - pad}" y="{height - 8}" text-anchor="end">'
                         f'{escape(points[-1][0].split(" (")[0])}</text>')
    parts.append("</svg>")
    return "".join(parts)


# ------------------------------------------------------------------ the dependency graph


@attrs.frozen
class Node:
    key: str  # unique: "segment:Name"
    label: str
    kind: str  # segment, score, campaign, destination
    href: str
    paused: bool = False


NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 200, 28, 90, 10, 16
#: The kinds laid out in columns by dependency depth (campaigns and destinations follow them).
LAYERED = ("segment", "score")


def layers(nodes: Sequence[Node], edges: Sequence[tuple[str, str]]) -> list[list[Node]]:
    """Nodes in columns by dependency depth (longest path from a source), ordered to keep edges short.

    Segments and scores take the columns of their depth (scores feed segments and segments scores);
    campaigns the column after the deepest segment or score;
    destinations the last. Within a column, nodes are sorted by the mean row of their
    predecessors (the barycentre heuristic, two sweeps)."""
    by_key = {n.key: n for n in nodes}
    preds: dict[str, list[str]] = {n.key: [] for n in nodes}
    for a, b in edges:
        if a in by_key and b in by_key:
            preds[b].append(a)
    depth: dict[str, int] = {}

    def depth_of(key: str, seen: frozenset = frozenset()) -> int:
        if key in depth:
            return depth[key]
        if key in seen:  # the checker refuses cycles; never loop on one anyway
            return 0
        d = 1 + max((depth_of(p, seen | {key}) for p in preds[key] if by_key[p].kind in LAYERED), default=-1)
        depth[key] = d
        return d

    segment_depth = max((depth_of(n.key) for n in nodes if n.kind in LAYERED), default=-1)
    column: dict[str, int] = {}
    for n in nodes:
        column[n.key] = depth_of(n.key) if n.kind in LAYERED else \
            segment_depth + (1 if n.kind == "campaign" else 2)
    count = max(column.values(), default=-1) + 1
    cols: list[list[Node]] = [[] for _ in range(count)]
    for n in nodes:
        cols[column[n.key]].append(n)
    cols = [c for c in cols if c]
    succs: dict[str, list[str]] = {n.key: [] for n in nodes}
    for b, ps in preds.items():
        for a in ps:
            succs[a].append(b)
    for _sweep in range(2):
        # Backward: a node moves towards the nodes it feeds; nodes feeding nothing sink to the bottom.
        for ci in range(len(cols) - 2, -1, -1):
            row = {n.key: i for c in cols[ci + 1:] for i, n in enumerate(c)}
            here = {n.key: i for i, n in enumerate(cols[ci])}

            def after(n: Node, row=row, here=here) -> tuple:
                ss = [row[s] for s in succs[n.key] if s in row]
                return (0, sum(ss) / len(ss), here[n.key]) if ss else (1, 0, here[n.key])
            cols[ci].sort(key=after)
        # Forward: a node moves towards the nodes it uses.
        for ci in range(1, len(cols)):
            row = {n.key: i for c in cols[:ci] for i, n in enumerate(c)}
            here = {n.key: i for i, n in enumerate(cols[ci])}

            def before(n: Node, row=row, here=here) -> tuple:
                ps = [row[p] for p in preds[n.key] if p in row]
                return (0, sum(ps) / len(ps), here[n.key]) if ps else (1, 0, here[n.key])
            cols[ci].sort(key=before)
    return cols


def graph(nodes: Sequence[Node], edges: Sequence[tuple[str, str]], prefix: str = "") -> str:
    cols = layers(nodes, edges)
    place: dict[str, tuple[float, float]] = {}
    for ci, col in enumerate(cols):
        for ri, n in enumerate(col):
            place[n.key] = (MARGIN + ci * (NODE_W + GAP_X), MARGIN + ri * (NODE_H + GAP_Y))
    width = MARGIN * 2 + max(1, len(cols)) * (NODE_W + GAP_X) - GAP_X
    height = MARGIN * 2 + max((len(c) for c in cols), default=1) * (NODE_H + GAP_Y)
    parts = [f'<svg id="graph" class="graph" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="dependency graph">',
             '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M0,0 L8,4 L0,8 z" class="arrowhead"/></marker></defs>',
             '<g class="edges">']
    for a, b in edges:
        if a not in place or b not in place:
            continue
        (x1, y1), (x2, y2) = place[a], place[b]
        x1, y1, x2, y2 = x1 + NODE_W, y1 + NODE_H / 2, x2, y2 + NODE_H / 2
        bend = max(30.0, (x2 - x1) / 2)
        parts.append(f'<path class="edge" data-from="{escape(a)}" data-to="{escape(b)}" '
                     f'd="M{x1:.0f},{y1:.0f} C{x1 + bend:.0f},{y1:.0f} {x2 - bend:.0f},{y2:.0f} {x2:.0f},{y2:.0f}" '
                     'marker-end="url(#arrow)"/>')
    parts.append('</g><g class="nodes">')
    for n in nodes:
        x, y = place[n.key]
        text = n.label if len(n.label) <= 27 else n.label[:25] + "…"
        classes = f"node {n.kind}" + (" paused" if n.paused else "")
        parts.append(f'<a class="node-link" href="{escape(prefix + n.href)}" data-key="{escape(n.key)}" '
                     f'data-name="{escape(n.label)}"><g class="{classes}"><title>{escape(n.kind)}: '
                     f'{escape(n.label)}{" (paused)" if n.paused else ""}</title>'
                     f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
                     f'<text x="{x + 10}" y="{y + 18}">{escape(text)}</text></g></a>')
    parts.append("</g></svg>")
    return "".join(parts)
