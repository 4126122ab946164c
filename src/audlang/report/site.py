"""The static site: gathers the project, the figures, the state's history and the sync records, and
renders the jinja2 templates of ``templates/`` with the assets of ``assets/`` into a folder."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import jinja2
import sqlalchemy as sa

from audlang import ast, warehouse
from audlang.check import Model, walk
from audlang.compile import AsOf, SegmentCompiler
from audlang.report import explorer as exploring
from audlang.report import figures as figuring
from audlang.report import svg
from audlang.state.clock import now
from audlang.syntax.formatter import format_declaration
from audlang.vocabulary import counted

if TYPE_CHECKING:
    from audlang.state import StateStore
    from audlang.state.model import DeployedObject, HistoryEvent

PAGES = {"segment": "segments", "campaign": "campaigns", "destination": "destinations", "score": "scores"}


def slugs(names, kind: str) -> dict[str, str]:
    """File names for the pages: readable, unique even when two names differ only in punctuation."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or kind
        slug, n = base, 2
        while slug in taken:
            slug, n = f"{base}-{n}", n + 1
        taken.add(slug)
        out[name] = f"{PAGES[kind]}/{slug}.html"
    return out


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("audlang.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True,
                             lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["number"] = lambda v: f"{v:,}"
    env.filters["money"] = lambda v: f"{v:,.2f}"
    env.filters["percent"] = lambda part, whole: f"{part / whole:.1%}" if whole else "–"
    return env


def _highlight(text: str) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter

    from audlang.pygments_lexer import AudlangLexer

    return highlight(text, AudlangLexer(), HtmlFormatter(cssclass="highlight"))


def _pygments_css() -> str:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(style="default").get_style_defs(".highlight")


def _relative_file(span, root: Path) -> str:
    if span is None:
        return ""
    try:
        return Path(os.path.relpath(Path(span.file).resolve(), root.resolve())).as_posix()
    except ValueError:
        return span.file


def _canonical(decl) -> str:
    return "\n".join(format_declaration(decl, []))


def _secret_free(decl: ast.Destination) -> list[tuple[str, str]]:
    """Settings as written; secrets are references (``env("…")``) and stay so."""
    return [tuple(line.split(" = ", 1)) if " = " in line else (line, "")
            for line in (_canonical(ast.Destination(decl.name, decl.kind, (s,))).splitlines()[1].strip()
                         for s in decl.settings)]


# ------------------------------------------------------------------ state and sync records


def read_state(state_url: str | None, model: Model) -> dict:
    """Deployed objects, membership history per segment and the sync records; empty without a state."""
    empty = {"deployed": {}, "history": {}, "runs": defaultdict(list), "rejected": defaultdict(list),
             "has_state": False, "last_apply": None}
    if state_url is None:
        return empty
    warehouse.duckdb_files.adopt(state_url)
    if warehouse.file_missing(state_url):
        return empty
    from audlang.state import StateStore

    store = StateStore(state_url)
    try:
        snapshot = store.snapshot()
        if snapshot.lineage is None:
            return empty
        deployed = {(o.kind, o.name): o for o in snapshot.objects}
        history = _membership_history(store.history(), snapshot.objects, model)
        runs, rejected = _sync_records(store)
        last = max((o.refreshed_at or "" for o in snapshot.objects), default="") or None
        return {"deployed": deployed, "history": history, "runs": runs, "rejected": rejected,
                "has_state": True, "last_apply": last, "serial": snapshot.serial}
    finally:
        store.engine.dispose()


def _apply_labels(events: list[HistoryEvent]) -> dict[str, str]:
    """Each apply's label on the history chart: its as-of and when it ran."""
    applied_as_of: dict[str, str] = {}
    for e in events:
        if e.event == "apply started" and e.detail:
            applied_as_of[e.apply_id] = str(json.loads(e.detail).get("as_of") or e.at[:10])
    stamp = {e.apply_id: e.at[:16] for e in events}
    return {apply_id: f"{applied_as_of.get(apply_id, '')} (apply {at})" for apply_id, at in stamp.items()}


def _membership_history(events: list[HistoryEvent], objects: Iterable[DeployedObject],
                        model: Model) -> dict[str, list[tuple[str, int]]]:
    """One point per apply from the segment's creation on: the members its events recorded, carried
    forward through the applies that did not need to refresh it (nothing changed)."""
    labels = _apply_labels(events)
    names_by_id = {o.object_id: o.name for o in objects}
    history: dict[str, list[tuple[str, int]]] = defaultdict(list)
    known: dict[str, int] = {}
    gone: set[str] = set()
    current_apply = None

    def close(apply_id: str) -> None:
        for object_id, members in known.items():
            if object_id not in gone:
                history[names_by_id.get(object_id, object_id)].append((labels[apply_id], members))

    for e in events:
        if e.apply_id != current_apply:
            if current_apply is not None:
                close(current_apply)
            current_apply = e.apply_id
        if e.kind != "segment" or not e.object_id:
            continue
        if e.event == "deleted":
            gone.add(e.object_id)
            continue
        detail = json.loads(e.detail) if e.detail else {}
        if detail.get("members") is not None:
            known[e.object_id] = int(detail["members"])
            gone.discard(e.object_id)
    if current_apply is not None:
        close(current_apply)
    return {name: points for name, points in history.items() if name in model.segments}


def _sync_records(store: StateStore) -> tuple[dict[str, list[dict]], dict[str, list]]:
    """The sync runs (newest first) and the rejected members, by destination; none before the first sync."""
    from audlang import sync

    runs: dict[str, list[dict]] = defaultdict(list)
    rejected: dict[str, list] = defaultdict(list)
    with store.engine.connect() as conn:
        has_sync = sa.inspect(conn).has_table(sync.runs_table.name)
        if has_sync:
            r = sync.runs_table
            for row in conn.execute(sa.select(r).order_by(r.c.started_at.desc())):
                detail = json.loads(row.detail or "{}")
                runs[row.destination].append({
                    "when": row.finished_at or row.started_at, "campaign": row.campaign,
                    "group": row.group_name, "status": row.status, "added": detail.get("added", 0),
                    "removed": detail.get("removed", 0), "skipped": detail.get("skipped", 0),
                    "rejected": detail.get("rejected", 0), "message": detail.get("message") or ""})
    if has_sync:
        for error in sync.errors(store.engine):
            rejected[error.destination].append(error)
    return runs, rejected


def default_as_of(state: dict) -> AsOf:
    """The as-of of the last apply when there is one (the report shows the figures at the last apply)."""
    dates = [o.as_of for (kind, _), o in state["deployed"].items() if kind == "segment" and o.as_of]
    if dates:
        return AsOf.parse(max(dates))
    return AsOf.today()


# ------------------------------------------------------------------ the site


def build(model: Model, root: Path, project_name: str, url: str, state_url: str | None, out: Path,
          as_of: AsOf | None = None, progress=None) -> dict:
    """Write the report into ``out``; returns a summary (pages written, as-of, timings)."""
    state = read_state(state_url, model)
    moment = as_of or default_as_of(state)
    engine = warehouse.connect(url, role=warehouse.Role.READ)
    try:
        with warehouse.errors_translated(url, model), engine.begin() as conn:
            figures = figuring.compute(conn, model, moment, progress)
            tables = exploring.profile(conn, model, SegmentCompiler(model, moment).derived())
    finally:
        engine.dispose()
    return render(model, root, project_name, figures, state, out, tables)


def _links(model: Model):
    seg = slugs(model.segments, "segment")
    cam = slugs(model.campaigns, "campaign")
    dst = slugs(model.destinations, "destination")
    return seg, cam, dst


def _campaign_segments(campaign: ast.Campaign) -> set[str]:
    used: set[str] = set()
    if campaign.audience is not None:
        if campaign.audience.segment is not None:
            used.add(campaign.audience.segment)
        if campaign.audience.condition is not None:
            used |= {n.name for n in walk(campaign.audience.condition) if isinstance(n, ast.InSegment)}
    for s in campaign.subaudiences:
        if s.condition is not None:
            used |= {n.name for n in walk(s.condition) if isinstance(n, ast.InSegment)}
    return used


def _campaign_destinations(campaign: ast.Campaign) -> list[str]:
    seen: dict[str, None] = {}
    for group in (*campaign.treatments, *campaign.subaudiences):
        for d in group.destinations:
            seen[d.value] = None
    return list(seen)


def render(model: Model, root: Path, project_name: str, figures: figuring.Figures, state: dict, out: Path,
           tables: list[exploring.Table] | None = None) -> dict:
    env = _environment()
    _prepare_folders(out)
    seg_link, cam_link, dst_link = _links(model)
    relations = _relations(model)
    files = sorted({_relative_file(d.span, root) for d in (*model.segments.values(), *model.campaigns.values(),
                                                            *model.destinations.values(), *model.scores.values())})
    generated = now()
    common = {"project": project_name, "as_of": figures.as_of, "generated": generated,
              "has_state": state["has_state"], "last_apply": state["last_apply"]}

    def write(path: str, template: str, **context) -> None:
        depth = path.count("/")
        html = env.get_template(template).render(root="../" * depth, **common, **context)
        (out / path).write_text(html, encoding="utf-8")

    site = _Site(model, root, figures, state, seg_link, cam_link, dst_link, relations, write,
                 slugs(model.scores, "score"))
    _index_page(site, files)
    _graph_page(site)
    _segment_pages(site)
    _campaign_pages(site)
    _destination_pages(site)
    _explorer_page(site, tables or [])
    _score_pages(site)
    pages = 3 + len(model.segments) + len(model.campaigns) + len(model.destinations) + len(model.scores)
    return {"pages": pages, "as_of": figures.as_of, "index": str(out / "index.html")}


def _prepare_folders(out: Path) -> None:
    """The page folders emptied, the assets (and pygments' style sheet) copied."""
    out.mkdir(parents=True, exist_ok=True)
    for sub in PAGES.values():
        folder = out / sub
        if folder.is_dir():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    assets = out / "assets"
    assets.mkdir(exist_ok=True)
    for item in resources.files("audlang.report").joinpath("assets").iterdir():
        if item.is_file():
            (assets / item.name).write_bytes(item.read_bytes())
    (assets / "pygments.css").write_text(_pygments_css(), encoding="utf-8")


@attrs.frozen
class _Relations:
    """Who uses whom: segments, the campaigns over them, the destinations those feed."""

    uses: dict[str, list[str]]  # segment -> the segments it uses (`in segment`)
    used_by: dict[str, list[str]]  # segment -> the segments that use it
    campaign_segments: dict[str, set[str]]  # campaign -> the segments its audiences use
    campaign_destinations: dict[str, list[str]]  # campaign -> the destinations its groups go to
    campaigns_of_segment: dict[str, list[str]]  # segment -> the campaigns that use it
    feeds: dict[str, list[tuple[str, str]]]  # destination -> (campaign, group)
    segment_scores: dict[str, list[str]] = attrs.Factory(dict)  # segment -> the scores its condition reads
    score_scores: dict[str, list[str]] = attrs.Factory(dict)  # score -> the scores its items read
    score_segments: dict[str, list[str]] = attrs.Factory(dict)  # score -> the segments its items use

    def score_users(self, name: str) -> tuple[list[str], list[str]]:
        """The segments and the scores that read score ``name`` directly."""
        return ([s for s, used in self.segment_scores.items() if name in used],
                [s for s, used in self.score_scores.items() if name in used])

    def segment_destinations(self, name: str) -> list[str]:
        return sorted({d for c in self.campaigns_of_segment.get(name, []) for d in self.campaign_destinations[c]})


def _relations(model: Model) -> _Relations:
    uses = {name: sorted(figuring.direct_dependencies(model, name)) for name in model.segments}
    used_by: dict[str, list[str]] = defaultdict(list)
    for name, deps in uses.items():
        for d in deps:
            used_by[d].append(name)
    campaign_segments = {c: _campaign_segments(model.campaigns[c]) for c in model.campaigns}
    campaign_destinations = {c: _campaign_destinations(model.campaigns[c]) for c in model.campaigns}
    campaigns_of_segment: dict[str, list[str]] = defaultdict(list)
    for c, segs in campaign_segments.items():
        for s in segs:
            campaigns_of_segment[s].append(c)
    feeds: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for c, campaign in model.campaigns.items():
        for group in (*campaign.treatments, *campaign.subaudiences):
            for d in group.destinations:
                feeds[d.value].append((c, group.name))
    segment_scores = {name: _scores_read(model.segments[name].condition) for name in model.segments}
    score_scores = {name: sorted({s for item in score.items for s in _scores_read(item.condition)})
                    for name, score in model.scores.items()}
    score_segments = {name: sorted({n.name for item in score.items for n in walk(item.condition)
                                    if isinstance(n, ast.InSegment)}) for name, score in model.scores.items()}
    return _Relations(uses, used_by, campaign_segments, campaign_destinations, campaigns_of_segment, feeds,
                      segment_scores, score_scores, score_segments)


def _scores_read(condition: ast.Condition) -> list[str]:
    """The scores a condition reads directly (``score "X" CMP n``, ``score "X" in top P%``), in order."""
    seen: dict[str, None] = {}
    for n in walk(condition):
        if isinstance(n, ast.ScoreCompare):
            seen[n.score] = None
        elif isinstance(n, ast.Percentile) and n.score is not None:
            seen[n.score] = None
    return list(seen)


@attrs.frozen
class _Site:
    """What every page is made from, and ``write(path, template, **context)`` to write one."""

    model: Model
    root: Path
    figures: figuring.Figures
    state: dict
    seg_link: dict[str, str]
    cam_link: dict[str, str]
    dst_link: dict[str, str]
    relations: _Relations
    write: Callable[..., None]
    score_link: dict[str, str] = attrs.Factory(dict)


def _index_page(site: _Site, files: list[str]) -> None:
    model, root, figures, state, rel = site.model, site.root, site.figures, site.state, site.relations
    segment_rows = []
    for name, decl in model.segments.items():
        f = figures.insights[name]
        segment_rows.append({"name": name, "href": site.seg_link[name], "file": _relative_file(decl.span, root),
                             "paused": decl.paused, "description": decl.description or "",
                             "members": f["members"], "reachable_ads": f["reachable_ad_platforms"],
                             "revenue": f["revenue_last_365_days"],
                             "predicted": f["predicted_revenue"],
                             "destinations": rel.segment_destinations(name)})
    campaign_rows = [{"name": c, "href": site.cam_link[c], "file": _relative_file(campaign.span, root),
                      "paused": campaign.paused, "description": campaign.description or "",
                      "audience": campaign.audience.segment if campaign.audience else None,
                      "groups": figures.campaigns.get(c, {}), "destinations": rel.campaign_destinations[c]}
                     for c, campaign in model.campaigns.items()]
    destination_rows = [{"name": d, "href": site.dst_link[d], "file": _relative_file(decl.span, root),
                         "paused": decl.paused, "description": decl.description or "", "kind": decl.kind,
                         "destinations": [d], "rejected": len(state["rejected"].get(d, [])),
                         "last_sync": (state["runs"].get(d) or [{}])[0].get("when")}
                        for d, decl in model.destinations.items()]
    score_rows = []
    for name, score in model.scores.items():
        users, _scores = rel.score_users(name)
        f = figures.scores.get(name)
        score_rows.append({"name": name, "href": site.score_link[name], "file": _relative_file(score.span, root),
                           "description": score.description or "", "items": len(score.items),
                           "lowest": f.lowest if f else None, "highest": f.highest if f else None,
                           "segments": [(u, site.seg_link[u]) for u in users if u in site.seg_link]})
    all_destinations = sorted(model.destinations)
    site.write("index.html", "index.html.j2", segments=segment_rows, campaigns=campaign_rows,
               destinations=destination_rows, scores=score_rows, files=files, destination_names=all_destinations)


def _graph_page(site: _Site) -> None:
    """The graph of the whole project."""
    model, rel, seg_link, cam_link, dst_link = site.model, site.relations, site.seg_link, site.cam_link, site.dst_link
    nodes = [svg.Node(f"segment:{n}", n, "segment", seg_link[n], d.paused) for n, d in model.segments.items()]
    nodes += [svg.Node(f"campaign:{n}", n, "campaign", cam_link[n], c.paused) for n, c in model.campaigns.items()]
    nodes += [svg.Node(f"destination:{n}", n, "destination", dst_link[n], d.paused)
              for n, d in model.destinations.items()]
    nodes += [svg.Node(f"score:{n}", n, "score", site.score_link[n]) for n in model.scores]
    edges = [(f"segment:{d}", f"segment:{n}") for n, deps in rel.uses.items() for d in deps]
    edges += [(f"segment:{s}", f"campaign:{c}") for c, segs in rel.campaign_segments.items() for s in sorted(segs)
              if s in model.segments]
    edges += [(f"campaign:{c}", f"destination:{d}") for c, ds in rel.campaign_destinations.items() for d in ds
              if d in model.destinations]
    edges += [(f"score:{s}", f"segment:{n}") for n, used in rel.segment_scores.items() for s in used
              if s in model.scores]
    edges += [(f"score:{s}", f"score:{n}") for n, used in rel.score_scores.items() for s in used if s in model.scores]
    edges += [(f"segment:{s}", f"score:{n}") for n, used in rel.score_segments.items() for s in used
              if s in model.segments]
    site.write("graph.html", "graph.html.j2", graph=svg.graph(nodes, edges),
               counts={"segments": len(model.segments), "scores": len(model.scores), "campaigns": len(model.campaigns),
                       "destinations": len(model.destinations), "edges": len(edges)})


def _segment_pages(site: _Site) -> None:
    figures, state, rel, seg_link = site.figures, site.state, site.relations, site.seg_link
    for name, decl in site.model.segments.items():
        f = figures.insights[name]
        channels = figures.channels.get(name, [])
        channel_chart = svg.bar_chart(
            [(c, n, f"{c}: {counted(n, 'order')}, {r:,.2f} revenue") for c, n, r in channels],
            "orders by channel, last 365 days")
        band_chart = svg.bar_chart(
            [(b, r, f"{b}: {counted(n, 'member')}, {r:,.2f} lifetime revenue") for b, n, r in figures.bands[name]],
            "lifetime revenue by lifetime-spend band", money=True)
        history = state["history"].get(name, [])
        deployed = state["deployed"].get(("segment", name))
        site.write(seg_link[name], "segment.html.j2", name=name, decl=decl, file=_relative_file(decl.span, site.root),
                   line=decl.span.line if decl.span else None,
                   definition=exploring.link_attributes(_highlight(_canonical(decl)), site.model,
                                                        "../explorer.html"),
                   figures=f, channel_chart=channel_chart, band_chart=band_chart,
                   history_chart=svg.line_chart(history, "members over time") if history else None,
                   history=history, deployed=deployed,
                   upstream=[(u, seg_link[u]) for u in rel.uses[name] if u in seg_link],
                   scores=[(s, site.score_link[s]) for s in rel.segment_scores.get(name, []) if s in site.score_link],
                   downstream=[(d, seg_link[d]) for d in sorted(rel.used_by.get(name, []))],
                   campaigns=[(c, site.cam_link[c]) for c in sorted(rel.campaigns_of_segment.get(name, []))],
                   destinations=[(d, site.dst_link[d]) for d in rel.segment_destinations(name) if d in site.dst_link])


def _explorer_page(site: _Site, tables: list[exploring.Table]) -> None:
    """The Data Explorer: every table and attribute of the data model (``report.explorer``)."""
    site.write("explorer.html", "explorer.html.j2", tables=tables, min_shown=exploring.MIN_SHOWN,
               attribute_count=sum(len(t.columns) for t in tables), segment_links=site.seg_link)


def _campaign_pages(site: _Site) -> None:
    from audlang.campaigns import groups as campaign_group_list

    seg_link = site.seg_link
    for name, campaign in site.model.campaigns.items():
        sizes = site.figures.campaigns.get(name, {})
        group_rows = []
        for g in campaign_group_list(campaign):
            percent = None
            if g.low is not None and g.high is not None:
                percent = next((t.percent for t in campaign.treatments if t.name == g.name), campaign.holdout)
            group_rows.append({"name": g.name, "kind": g.kind, "percent": percent, "size": sizes.get(g.name, 0),
                               "destinations": [(d, site.dst_link.get(d)) for d in g.destinations]})
        audience = campaign.audience
        site.write(site.cam_link[name], "campaign.html.j2", name=name, decl=campaign,
                   file=_relative_file(campaign.span, site.root),
                   definition=_highlight(_canonical(campaign)), groups=group_rows,
                   total=sum(sizes.values()),
                   audience_segment=(audience.segment, seg_link.get(audience.segment))
                   if audience is not None and audience.segment else None,
                   segments=[(s, seg_link[s]) for s in sorted(site.relations.campaign_segments[name]) if s in seg_link],
                   deployed=site.state["deployed"].get(("campaign", name)))


def _destination_pages(site: _Site) -> None:
    state = site.state
    for name, decl in site.model.destinations.items():
        site.write(site.dst_link[name], "destination.html.j2", name=name, decl=decl,
                   file=_relative_file(decl.span, site.root), settings=_secret_free(decl),
                   feeds=[(c, g, site.cam_link.get(c)) for c, g in site.relations.feeds.get(name, [])],
                   runs=state["runs"].get(name, [])[:20], rejected=state["rejected"].get(name, [])[:200],
                   rejected_total=len(state["rejected"].get(name, [])),
                   deployed=state["deployed"].get(("destination", name)))


def _score_pages(site: _Site) -> None:
    """A page per score: its description, its items with the customers each holds for, the distribution of
    the totals, the segments and scores that read it."""
    from audlang.report.figures import DISTINCT_TOTALS
    from audlang.syntax.formatter import number_text, score_item_text

    rel = site.relations
    for name, score in site.model.scores.items():
        f = site.figures.scores[name]
        items = [{"points": number_text(item.points), "text": score_item_text(item), "held": held}
                 for item, held in zip(score.items, f.items, strict=True)]
        bars = []
        for low, high, count in f.distribution:
            label = number_text(low) if low == high else f"{number_text(low)} – {number_text(high)}"
            what = f"total {label}" if low == high else f"totals from {number_text(low)} to {number_text(high)}"
            bars.append((label, count, f"{what}: {counted(count, 'customer')}"))
        chart = svg.bar_chart(bars, f"customers per total of {name}")
        segments, scores = rel.score_users(name)
        site.write(site.score_link[name], "score.html.j2", name=name, decl=score,
                   file=_relative_file(score.span, site.root), line=score.span.line if score.span else None,
                   definition=_highlight(_canonical(score)), figures=f, items=items, distribution_chart=chart,
                   distinct_totals=DISTINCT_TOTALS,
                   segments=[(s, site.seg_link[s]) for s in segments if s in site.seg_link],
                   scores=[(s, site.score_link[s]) for s in scores if s in site.score_link],
                   uses_segments=[(s, site.seg_link[s]) for s in rel.score_segments.get(name, [])
                                  if s in site.seg_link],
                   uses_scores=[(s, site.score_link[s]) for s in rel.score_scores.get(name, [])
                                if s in site.score_link])
