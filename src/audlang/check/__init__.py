"""The check stage: standard data model, schema mappings, names, types, cycles → ``Model``.

May import ``audlang.ast`` and ``audlang.diagnostics``.
"""

from audlang.check.checker import check, walk, walk_through_scores
from audlang.check.memory import CheckMemory
from audlang.check.model import Model

__all__ = ["CheckMemory", "Model", "check", "walk", "walk_through_scores"]
