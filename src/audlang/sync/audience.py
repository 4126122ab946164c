"""Which vendor audience a target writes to: the one place the sync decides it (plan preview and apply).

A *target* is a campaign group sent to one destination. Its audience is what
the destination actually writes for that group, defaults included
(``destinations.audience``): Braze's attribute and value (the value is the
group's name unless set), Attentive's segment, Klaviyo's list, a webhook's
url and what its body says of the group, a csv file's rendered path, a sql
table's rows of the campaign and group. Secrets stand as their variable
names: nothing secret is hashed or stored. The key of a target is a hash of
its kind and those pairs.

Two uses, both here:

- **its own state**: a target's acknowledged membership counts only while its
  key is the one recorded with it; another key is another audience, and the
  whole group is sent to it;
- **sharing**: targets with one key write one vendor audience (two treatments
  sent to one Attentive segment), so a key one of them wants is never removed
  by another (``sharing``).

Before #16 the key hashed the *settings* naming the audience, unset ones as
None (``legacy_key``), so every group of a Braze destination without
``value`` counted as one audience and a customer moving between them was
never removed from the old one (the removal was retired). A target still
recorded under its legacy key keeps its acknowledged membership; ``split_from``
names the targets the legacy key merged with it and the current key tells
apart, whose keys may hide such removals (``syncer.Syncer._upgrade``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from audlang import ast
from audlang.destinations import Settings, Target, audience, env_variables, resolve_settings

#: The settings the legacy key hashed, and the kinds whose targets it let share an audience.
LEGACY_SETTINGS = {"csv": ("path",), "sql": ("url", "table"), "webhook": ("url",),
                   "attentive": ("base_url", "segment"), "braze": ("base_url", "attribute", "value"),
                   "klaviyo": ("base_url", "list_id")}
LEGACY_SHARED_KINDS = ("attentive", "braze", "klaviyo")
VERSION = "audlang-audience/2"


def settings_of(decl: ast.Destination) -> Settings:
    """The destination's settings with each ``env("…")`` as ``env:VARIABLE``: what names an audience,
    never a secret."""
    return resolve_settings(decl, {v: f"env:{v}" for _k, v in env_variables(decl)})


def parts(decl: ast.Destination, target: Target) -> tuple[tuple[str, str], ...]:
    """(name, value) pairs saying where the target's members go, as the destination writes them."""
    return audience(settings_of(decl), target)


def key(decl: ast.Destination, target: Target) -> str:
    """The target's audience key: a hash of the destination's kind and what it writes for the group."""
    text = json.dumps([VERSION, decl.kind, [list(p) for p in parts(decl, target)]], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def legacy_key(decl: ast.Destination) -> str:
    """The key states written before #16 hold: the kind and the settings in ``LEGACY_SETTINGS``, unset
    ones as None, the same for every group of the destination."""
    settings = settings_of(decl)
    named = [decl.kind] + [f"{k}={settings.get(k)}" for k in LEGACY_SETTINGS.get(decl.kind, ())]
    return hashlib.sha256("\x1f".join(named).encode()).hexdigest()


def member_key(decl: ast.Destination) -> str:
    """The identifier a member is keyed by (the first one): keys compare only within one identifier."""
    return settings_of(decl).identifiers[0]


class Audiences:
    """The keys of every target of a model, computed once (a csv path or a webhook body is rendered)."""

    def __init__(self, targets: Iterable[tuple[ast.Campaign, str, ast.Destination]]):
        self.targets = [(c, g, d) for c, g, d in targets]
        self._keys: dict[tuple[str, str, str], str] = {}

    def key(self, target: Target, decl: ast.Destination) -> str:
        found = self._keys.get((target.campaign, target.group, decl.name))
        if found is None:
            found = self._keys[(target.campaign, target.group, decl.name)] = key(decl, target)
        return found

    def sharing(self, target: Target, decl: ast.Destination) -> list[tuple[int, ast.Campaign, str, ast.Destination]]:
        """The other targets writing the same vendor audience with the same member key: (index, campaign,
        group, destination). A removal of a key one of them wants is retired, not sent."""
        mine, identifier = self.key(target, decl), member_key(decl)
        out = []
        for i, (c, g, d) in enumerate(self.targets):
            other = Target(c.name, g, d.name)
            if other != target and self.key(other, d) == mine and member_key(d) == identifier:
                out.append((i, c, g, d))
        return out

    def split_from(self, target: Target, decl: ast.Destination
                   ) -> list[tuple[int, ast.Campaign, str, ast.Destination]]:
        """The targets the legacy key took for this one's audience (and so let retire its removals) that
        the current key tells apart."""
        if decl.kind not in LEGACY_SHARED_KINDS:
            return []
        legacy, mine, identifier = legacy_key(decl), self.key(target, decl), member_key(decl)
        out = []
        for i, (c, g, d) in enumerate(self.targets):
            other = Target(c.name, g, d.name)
            if other == target or d.kind not in LEGACY_SHARED_KINDS or member_key(d) != identifier:
                continue
            if legacy_key(d) == legacy and self.key(other, d) != mine:
                out.append((i, c, g, d))
        return out
