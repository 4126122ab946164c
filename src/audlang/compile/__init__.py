"""The compile stage: checked Model + as-of date → one SQLAlchemy Core Select per segment.

May import ``audlang.check`` (the Model), ``audlang.ast`` and SQLAlchemy. The
few dialect differences live in ``dialects``; date arithmetic in ``asof``.
"""

from audlang.compile.asof import AsOf
from audlang.compile.compiler import SegmentCompiler, list_files_used, list_table_name

__all__ = ["AsOf", "SegmentCompiler", "list_files_used", "list_table_name"]
