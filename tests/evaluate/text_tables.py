"""SQLite tables as CSV imports make them: every value text, columns with no declared type
(``CREATE TABLE t(a, b)``) or declared TEXT, a missing value NULL or the empty text.

Used by the oracle (hypothesis rows) and by the example segments over the generated warehouse,
both compared with the reference evaluator, which reads the same rows typed.
"""

from __future__ import annotations

import datetime as dt
import zlib

import sqlalchemy as sa

#: name -> what every column declares in such a table ("" for no type at all)
DECLARED = {"sqlite-untyped": "", "sqlite-text": " TEXT"}

TEXT, DATE, TIMESTAMP, BOOLEAN, DECIMAL, DOUBLE, INTEGER = (
    "text", "date", "timestamp", "boolean", "decimal", "double", "integer",
)  # the kinds of audlang.datagen.schema

TRUE_SPELLINGS = ("1", "true", "TRUE", "t", " yes ", "Y")
FALSE_SPELLINGS = ("0", "false", "False", "f", "no", "N ")


def text_spelling(kind: str, value, pick: int) -> str | None:
    """``value`` as a CSV file could hold it; ``pick`` chooses among the spellings."""
    if value is None:
        return None if kind == TEXT or pick % 2 else ""  # a CSV import writes a missing value as ''
    if kind == BOOLEAN:
        spellings = TRUE_SPELLINGS if value else FALSE_SPELLINGS
        return spellings[pick % len(spellings)]
    if kind == TIMESTAMP:
        shifted = value + dt.timedelta(hours=2)
        return (value.isoformat(sep=" "), value.isoformat(), value.isoformat() + "Z",
                value.strftime("%Y-%m-%d %H:%M:%S.%f"), shifted.isoformat() + "+02:00")[pick % 5]
    if kind == DATE:
        return (value.isoformat(), value.isoformat() + "T00:00:00")[pick % 2]
    if kind == DECIMAL:
        return (str(value), format(value, ".3f"))[pick % 2]
    if kind == DOUBLE:
        return repr(float(value))
    return str(value)


def load_as_text(conn: sa.Connection, tables: dict[str, list[tuple[str, str]]], data: dict[str, list[dict]],
                 declared: str) -> None:
    """``data`` (table -> rows) into tables whose columns declare ``declared``: ``tables`` gives each
    table's (column, kind) in order. The spelling of each value is chosen by its place, not at random."""
    for name, cols in tables.items():
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        conn.exec_driver_sql(f"CREATE TABLE {name} ({', '.join(c + declared for c, _ in cols)})")
        rows = [{c: text_spelling(k, r.get(c), zlib.crc32(f"{name}.{c}.{i}".encode())) for c, k in cols}
                for i, r in enumerate(data.get(name) or [])]
        if rows:
            conn.execute(sa.text(f"INSERT INTO {name} VALUES ({', '.join(':' + c for c, _ in cols)})"), rows)
