"""Renderers. ``plan_to_json`` is the one versioned document; text and Markdown are drawn from it.

The JSON format is documented in docs/plan-format.md. Bump ``FORMAT_VERSION``
on any change of its shape; ``plan_from_json`` reads back a saved plan of this
version or of an earlier one it still understands (``READABLE_VERSIONS``).

The sentences people read for a reason are written here, from its code and
detail (``reason_text``); the document carries both, and every rendering
draws the sentence from the code again.
"""

from __future__ import annotations

import difflib
from importlib import resources
from typing import Any

import attrs

from audlang.diagnostics import AudlangError, Diagnostic
from audlang.plan.desired import DesiredObject
from audlang.plan.model import Action, MembershipChange, Plan, Reason, SyncPreview
from audlang.syntax.formatter import quote
from audlang.vocabulary import ObjectKind, PlanAction, ReasonCode, SyncPreviewStatus, counted

#: A JSON object as ``json`` reads and writes it: the plan document and its parts.
JSONObject = dict[str, Any]

#: 2: each reason is ``{"reason_code", "detail", "text"}``; 1: each reason was its sentence.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
MINUS = "\u2212"
#: The summary's counts, in its order.
SUMMARY_ACTIONS = (PlanAction.CREATE, PlanAction.UPDATE, PlanAction.RENAME, PlanAction.REFRESH, PlanAction.DELETE,
                   PlanAction.PAUSED)

#: The sentence of each reason without a detail; ``{kind}`` is the action's object kind.
REASON_SENTENCES = {
    ReasonCode.NEW: "new {kind}",
    ReasonCode.NEW_PAUSED: "paused: its membership is computed once it is unpaused",
    ReasonCode.DEFINITION_CHANGED: "definition changed",
    ReasonCode.LIST_FILE_CHANGED: "list file changed",
    ReasonCode.PAUSED: "paused",
    ReasonCode.PAUSED_NOW: "paused now: its membership stays as deployed",
    ReasonCode.UNPAUSED: "unpaused",
    ReasonCode.WINDOW_MOVED: "window moved with the as-of date",
    ReasonCode.DATA_CHANGED: "data changed",
    ReasonCode.DESCRIPTION_CHANGED: "description changed",
    ReasonCode.RECORDED_DETAILS_CHANGED: "recorded details changed",
    ReasonCode.REMOVED: "{kind} removed from the code",
    ReasonCode.FED_DESTINATION: "it fed a destination: its audience will no longer be synced",
}
#: The sentences of the reasons that cite names: the prefix, then the names quoted and joined by ", ".
CITING = {ReasonCode.RENAMED: "renamed from ", ReasonCode.UPSTREAM_CHANGED: "upstream segment changed: "}


def reason_text(reason: Reason, kind: str) -> str:
    """The sentence for ``reason`` of an action on an object of ``kind`` (the words plans have always used)."""
    if reason.code in CITING:
        return CITING[reason.code] + ", ".join(f'"{name}"' for name in reason.detail)
    if reason.code == ReasonCode.REMOVED and kind == ObjectKind.DESTINATION:
        return "destination removed"
    return REASON_SENTENCES[reason.code].format(kind=kind)


def reason_from_text(text: str, kind: str) -> Reason:
    """A version-1 plan's sentence back to its reason; ``ValueError`` for a sentence audlang never wrote."""
    for code, prefix in CITING.items():
        if text.startswith(f'{prefix}"') and text.endswith('"') and len(text) > len(prefix) + 1:
            names = text[len(prefix) + 1:-1]
            return Reason(code, (names,) if code == ReasonCode.RENAMED else names.split('", "'))
    for code in REASON_SENTENCES:
        if reason_text(Reason(code), kind) == text:
            return Reason(code)
    raise ValueError(f"a reason no audlang wrote: {text!r}")


def _reason_to_json(reason: Reason, kind: str) -> JSONObject:
    return {"reason_code": reason.code, "detail": list(reason.detail), "text": reason_text(reason, kind)}


def _reason_from_json(r: JSONObject | str, kind: str, version: int) -> Reason:
    if version == 1:
        if not isinstance(r, str):
            raise TypeError(f"a version-1 reason is a sentence, not {r!r}")
        return reason_from_text(r, kind)
    if not isinstance(r, dict):
        raise TypeError(f"a reason is an object with a reason_code, not {r!r}")
    return Reason(r["reason_code"], r.get("detail", ()))


def _diff(a: Action) -> list[str]:
    """The definition change as ``- old`` / ``+ new`` / ``  same`` lines (a rename alone is no change)."""
    before, after = a.before or "", a.after or ""
    if a.previous_name is not None:
        before = before.replace(quote(a.previous_name), quote(a.name), 1)
    if a.action == PlanAction.CREATE or before == after:
        return []
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=3)
    return [f"{line[0]} {line[1:]}" for line in lines if not line.startswith(("---", "+++", "@@"))]


def _object_to_json(o: DesiredObject | None) -> JSONObject | None:
    if o is None:
        return None
    return {"kind": o.kind, "name": o.name, "definition": o.definition, "paused": o.paused,
            "description": o.description, "depends_on": list(o.depends_on), "lists": list(o.lists),
            "relative": o.relative}


def _membership_to_json(m: MembershipChange | None) -> JSONObject | None:
    if m is None:
        return None
    return {"before": m.before, "after": m.after, "added": m.added, "removed": m.removed}


def plan_to_json(plan: Plan) -> JSONObject:
    """The plan as a JSON-ready dict with ``format_version`` (docs/plan-format.md)."""
    from audlang import __version__

    actions = []
    for a in plan.actions:
        actions.append({
            "kind": a.kind, "name": a.name, "action": a.action,
            "reasons": [_reason_to_json(r, a.kind) for r in a.reasons],
            "previous_name": a.previous_name, "object_id": a.object_id,
            "before": a.before, "after": a.after, "diff": _diff(a),
            "membership": _membership_to_json(a.membership), "feeds": list(a.feeds),
            "materialize": a.materialize, "desired": _object_to_json(a.desired),
        })
    return {
        "format_version": FORMAT_VERSION,
        "audlang_version": __version__,
        "project": plan.project,
        "as_of": plan.as_of,
        "prior_state": {"lineage": plan.lineage, "serial": plan.serial},
        "summary": {
            **{action.value: plan.count(action) for action in SUMMARY_ACTIONS},
            "unchanged": len(plan.unchanged), "members_added": plan.added, "members_removed": plan.removed,
            "has_changes": plan.has_changes,
        },
        "actions": actions,
        "unchanged": list(plan.unchanged),
        "warnings": list(plan.warnings),
        "configuration": {"sources": dict(plan.sources), "lists": dict(plan.lists)},
        # Present only for projects with campaigns that send somewhere (older plans stay byte-identical).
        **({"syncs": [attrs.asdict(s) for s in plan.syncs]} if plan.syncs else {}),
        **({"allow_removals": True} if plan.allow_removals else {}),
    }


def plan_from_json(doc: object, source: str = "plan file") -> Plan:
    """A saved plan back into a ``Plan``; refuses unknown format versions and damaged files.

    A version-1 plan's reasons are sentences: each is mapped back to its code (``reason_from_text``).
    """
    if not isinstance(doc, dict) or "format_version" not in doc:
        raise AudlangError(Diagnostic.sourceless("E530", "not an audlang plan file", source))
    version = doc["format_version"]
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise AudlangError(Diagnostic.sourceless(
            "E530", f"plan format version {version} is not one this audlang reads "
            f"({', '.join(map(str, READABLE_VERSIONS))}); make the plan again with this version", source))
    try:
        actions = []
        for a in doc["actions"]:
            m = a.get("membership")
            d = a.get("desired")
            actions.append(Action(
                kind=a["kind"], name=a["name"], action=a["action"],
                reasons=tuple(_reason_from_json(r, a["kind"], version) for r in a["reasons"]),
                previous_name=a.get("previous_name"), object_id=a.get("object_id"), before=a.get("before"),
                after=a.get("after"),
                membership=MembershipChange(m["before"], m["after"], m["added"], m["removed"]) if m else None,
                feeds=tuple(a.get("feeds", ())), materialize=bool(a.get("materialize")),
                desired=DesiredObject(d["kind"], d["name"], d["definition"], d["paused"], d.get("description"),
                                      tuple(d["depends_on"]), tuple(d["lists"]), bool(d["relative"]))
                if d else None))
        prior = doc["prior_state"]
        config = doc.get("configuration", {})
        return Plan(as_of=doc["as_of"], lineage=prior["lineage"], serial=int(prior["serial"]),
                    actions=tuple(actions), unchanged=tuple(doc.get("unchanged", ())),
                    warnings=tuple(doc.get("warnings", ())),
                    sources=tuple(sorted(config.get("sources", {}).items())),
                    lists=tuple(sorted(config.get("lists", {}).items())), project=doc.get("project", ""),
                    syncs=tuple(SyncPreview(**s) for s in doc.get("syncs", ())),
                    allow_removals=bool(doc.get("allow_removals", False)))
    except (KeyError, TypeError, ValueError) as error:
        raise AudlangError(Diagnostic.sourceless("E530", f"the plan file is damaged ({error!r})", source)) from None


# ------------------------------------------------------------------ text

SYMBOLS = {PlanAction.CREATE: "+", PlanAction.UPDATE: "~", PlanAction.RENAME: "→", PlanAction.REFRESH: "↻",
           PlanAction.PAUSED: "‖", PlanAction.DELETE: "-"}
COLOURS = {PlanAction.CREATE: "green", PlanAction.UPDATE: "yellow", PlanAction.RENAME: "cyan",
           PlanAction.REFRESH: "blue", PlanAction.PAUSED: "magenta", PlanAction.DELETE: "red"}


def number(n: int | None) -> str:
    return "–" if n is None else f"{n:,}"


def membership_text(m: JSONObject | None) -> str:
    if not m:
        return ""
    return f"{number(m['before'])} → {number(m['after'])} (+{m['added']:,} {MINUS}{m['removed']:,})"


def summary_line(doc: JSONObject) -> str:
    s = doc["summary"]
    if not s["has_changes"]:
        return f"No changes. The deployed state matches the code as of {doc['as_of']}."
    parts = [f"{s['create']} to create", f"{s['update']} to update", f"{s['delete']} to delete"]
    if s["rename"]:
        parts.append(f"{s['rename']} to rename")
    if s["refresh"]:
        parts.append(f"{s['refresh']} to refresh")
    return (f"Plan: {', '.join(parts)}; membership +{s['members_added']:,} {MINUS}{s['members_removed']:,}")


SYNC_COLOURS = {SyncPreviewStatus.SEND: "green", SyncPreviewStatus.HELD: "red", SyncPreviewStatus.BLOCKED: "red",
                SyncPreviewStatus.PAUSED: "magenta", SyncPreviewStatus.STOPPED: "red"}
#: The sync statuses shown loudly, and those whose message is shown.
LOUD_SYNCS = (SyncPreviewStatus.HELD, SyncPreviewStatus.BLOCKED, SyncPreviewStatus.STOPPED)
QUIET_SYNCS = (SyncPreviewStatus.SEND, SyncPreviewStatus.UNCHANGED)


def sync_line(s: JSONObject) -> str:
    """One campaign group and destination: +adds −removes, skipped, and any guard."""
    where = f'"{s["campaign"]}" / "{s["group"]}" → "{s["destination"]}" ({s["kind"]})'
    counts = f"+{s['adds']:,} {MINUS}{s['removes']:,}"
    if s["skipped"]:
        counts += f", {s['skipped']:,} skipped (no usable identifier or duplicate)"
    if s["pending"]:
        counts += f", {counted(s['pending'], 'batch', 'batches')} of an interrupted apply first"
    status = {SyncPreviewStatus.SEND: "", SyncPreviewStatus.UNCHANGED: "  no changes"}.get(
        s["status"], f"  {s['status'].upper()}")
    message = f": {s['message']}" if s.get("message") and s["status"] not in QUIET_SYNCS else ""
    return f"  {where}  {counts}{status}{message}"


def reasons_text(a: JSONObject) -> str:
    """An action's reasons as people read them, written from the document's codes."""
    return "; ".join(reason_text(Reason(r["reason_code"], r["detail"]), a["kind"]) for r in a["reasons"])


def _title(a: JSONObject) -> str:
    if a["action"] == PlanAction.RENAME:
        return f'rename {a["kind"]} "{a["previous_name"]}" to "{a["name"]}"'
    return f'{a["action"]} {a["kind"]} "{a["name"]}"'


def render_text(doc: JSONObject, color: bool = False) -> str:
    """The human plan, from ``plan_to_json``'s document; ANSI colours only when ``color``."""
    import click

    def style(text: str, fg: str | None = None, bold: bool | None = None) -> str:
        return click.style(text, fg=fg, bold=bold) if color else text

    out = [f"audlang plan as of {doc['as_of']} (state serial {doc['prior_state']['serial']})", ""]
    for a in doc["actions"]:
        colour = COLOURS[a["action"]]
        head = f"  {SYMBOLS[a['action']]} {_title(a)}"
        reasons = f"  ({reasons_text(a)})" if a["reasons"] else ""
        out.append(style(head, fg=colour, bold=True) + reasons)
        if a["action"] == PlanAction.CREATE and a["after"]:
            out.extend(style(f"      + {line}", fg="green") for line in a["after"].splitlines())
        for line in a["diff"]:
            fg = "green" if line.startswith("+") else "red" if line.startswith("-") else None
            out.append(style(f"      {line}", fg=fg) if fg else f"      {line}")
        if a["membership"]:
            out.append(f"      membership {membership_text(a['membership'])}")
        for fed in a["feeds"]:
            out.append(style(f"      !! it fed {fed}", fg="red", bold=True))
    if doc["actions"]:
        out.append("")
    if doc.get("syncs"):
        out.append("Destination syncs (campaign / group → destination):")
        for s in doc["syncs"]:
            out.append(style(sync_line(s), fg=SYNC_COLOURS.get(s["status"]), bold=s["status"] in LOUD_SYNCS))
        out.append("")
    for warning in doc["warnings"]:
        out.append(style(f"warning: {warning}", fg="yellow"))
    if doc["warnings"]:
        out.append("")
    out.append(style(summary_line(doc), bold=True))
    return "\n".join(out)


# ------------------------------------------------------------------ markdown


def render_markdown(doc: JSONObject) -> str:
    """A pull-request comment: the summary, loud deletions, and each action in a <details> block."""
    import jinja2

    template_text = resources.files("audlang.plan").joinpath("templates/plan.md.j2").read_text(encoding="utf-8")
    env = jinja2.Environment(autoescape=False, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["number"] = number
    env.filters["membership"] = membership_text
    env.filters["md"] = _escape_md
    env.filters["html"] = _escape_html
    loud = [a for a in doc["actions"] if a["feeds"]]
    return env.from_string(template_text).render(
        doc=doc, summary=summary_line(doc), symbols=SYMBOLS, title=_title, reasons=reasons_text, loud=loud,
        minus=MINUS, PlanAction=PlanAction, SyncPreviewStatus=SyncPreviewStatus)


def _escape_md(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _escape_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
