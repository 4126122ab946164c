"""The warehouse object name of each segment: readable, stable, and never shared by two segments.

``audlang_members_<slug>``: the name lower-cased, accents dropped, every run of other characters
one ``_``. A slug that lost something a reader could not restore — a name with characters outside
ASCII, or one longer than ``MAX_SLUG`` — ends in ``_`` and 8 hex digits of the SHA-256 of the exact
name, so that it stays unique and fits in 63 bytes (PostgreSQL's limit on identifiers). Two names
that still map to one object (``"Big Spenders"`` and ``"big_spenders"``) are an error at validate
(E117). Names that fitted before keep their object, so deployed views are not renamed.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

VIEW_PREFIX = "audlang_members_"
#: the longest slug kept as it is: prefix + 47 characters = 63, PostgreSQL's identifier limit
MAX_SLUG = 47
#: the length a slug is cut to before its hash suffix (prefix + 38 + "_" + 8 = 63)
CUT_SLUG = 38


def view_name(segment: str) -> str:
    """The view (or table) that holds ``segment``'s materialized membership."""
    ascii_text = unicodedata.normalize("NFKD", segment).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    if slug and len(slug) <= MAX_SLUG and segment.isascii():
        return VIEW_PREFIX + slug
    digest = hashlib.sha256(segment.encode("utf-8")).hexdigest()[:8]
    return VIEW_PREFIX + (slug[:CUT_SLUG].rstrip("_") + "_" if slug else "") + digest
