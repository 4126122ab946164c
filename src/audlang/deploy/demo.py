"""The example project as ``audlang demo`` runs it."""

from __future__ import annotations

import attrs

from audlang.check import Model


def demo_model(model: Model, attentive_url: str) -> Model:
    """The example project as ``audlang demo`` runs it (cli/data.py): Attentive destinations pointed at
    the local sandbox; the destinations with no local stand-in (Klaviyo, Braze, Meta, Google Ads, webhooks)
    paused, so the demo never leaves the machine."""
    from audlang import ast

    destinations = {}
    for name, d in model.destinations.items():
        if d.kind == "attentive":
            settings = tuple(s for s in d.settings if s.key != "base_url") + (
                ast.Setting("base_url", ast.TextValue((ast.StringValue(attentive_url),))),)
            d = attrs.evolve(d, settings=settings)
        elif d.kind not in ("csv", "sql"):
            d = attrs.evolve(d, paused=True)
        destinations[name] = d
    return attrs.evolve(model, destinations=destinations)
