"""The browsable report (``audlang docs generate`` / ``serve``): a static site from the project, the
warehouse's figures, the state's history and the sync records.

- ``figures``: every segment's figures in a few batched, set-based queries;
- ``svg``: charts and the dependency graph as inline SVG;
- ``site``: gathers it all and renders the jinja2 ``templates/`` with the ``assets/`` (our own CSS and
  JS; nothing from a CDN, no web fonts), so the site works opened from disk with no network.

May import every stage below the CLI (check, compile, evaluate, warehouse, state, sync, campaigns).
"""

from audlang.report.site import build

__all__ = ["build"]
