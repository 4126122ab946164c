"""`audlang members` written by the engine: the output's text made in the warehouse, not row by row in Python.

``members_text(url, query, header, fmt, early)`` is the entry (``members_text_on`` when ``in list``
tables must first be loaded on an engine's connection): the text, or None where the engine cannot make
it (every engine but a DuckDB file today), and the caller then fetches the rows and writes them itself
(``evaluate.format_members``, the general path: Python's ``csv`` or ``json`` module).

On DuckDB one statement around the members query makes the same text: each value formatted in SQL as
the general path prints it, the rows joined in customer_id order into a few large strings
(``string_agg`` over blocks of ``ROWS_PER_PIECE`` rows). Python writes those strings.

**No file, no path.** The text comes back as query results, so the statement names no path and writes
nothing, and stdout can be anything (a pipe, a file opened for appending, click's test runner). The
connection is opened as ``engines`` opens one for a read command (``early_connection``): the file
read-only, ``enable_external_access = false`` from the start (no statement can turn it back on). The
statement is made of the compiled members query (its literals rendered by the dialect as ``audlang sql``
prints them), column names of our own (``c0``, ``c1`` …) and constant text of our own whose only outside
part is the header's names, escaped by ``json.dumps`` and quoted as SQL string literals (quotes doubled;
DuckDB reads no backslash escape there); every statement is checked to be one SELECT before it runs.

**The same bytes, or none.** The text is exactly the general path's, or this module declines and the
caller takes the general path:

- when a field is quoted is read from the running ``csv`` module (``csv_rules``): it differs between
  Python versions (3.13 quotes a lone ``\r``, 3.11 does not);
- the engine's text for numbers is checked against Python's ``repr`` (``numbers_match``) before a
  DOUBLE, REAL or DECIMAL column is written by it;
- columns of other types (UUID, LIST, TIME, TIMESTAMP WITH TIME ZONE …) decline;
- a value the SQL does not format exactly (a date outside the years 1 to 9999, a character the csv
  module does something unusual with) raises DuckDB's ``error()`` inside the query. The result is
  ordered and aggregated, so DuckDB raises while it runs the statement, before a piece of text exists;
- any DuckDB error declines too: the general path runs the query and reports the error as it always has.

JSON strings escape control characters in SQL and non-ASCII characters in Python afterwards (they occur
only inside values, so a pass over each piece that is not ASCII is exact): ``json.dumps`` writes
``ensure_ascii`` text.

**Start-up.** The query compiles with ``printing_dialect`` (duckdb-engine's text without importing it) and
runs on its own connection, in a thread the command waits for (``Worker``: an interrupt stops it at
once); no SQLAlchemy engine is made. And the query can start before the command has read its project:
``start_early`` finds the query the same invocation ran last time in the user's cache folder and runs
it while Python loads, checks and compiles; its text is used only when the fresh query is exactly the
one it ran (``EarlyQuery``). This module imports neither SQLAlchemy nor DuckDB until it runs a query.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import os
import re
import stat
import threading
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa

#: Rows joined into one piece of text (one result row of the formatting query).
ROWS_PER_PIECE = 50_000
#: The message of DuckDB's ``error()`` for a value this module does not write as Python would.
DECLINED = "audlang: a value the engine does not write as the general path does"

_INTEGERS = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
                       "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"})
_FLOATS = frozenset({"FLOAT", "DOUBLE"})
_DECIMAL = re.compile(r"DECIMAL\(\d+,\d+\)")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
#: The characters Python's json escapes with a short form; the rest of 0x00-0x1f and 0x7f as \\u00XX.
_JSON_SHORT = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


class Unsupported(Exception):
    """The engine cannot write this output exactly as the general path does: use the general path."""


class _Declined(Exception):
    """Raised out of the transaction so that it rolls back (a failed DuckDB statement aborts it)."""


#: DuckDB's reserved keywords (``duckdb_keywords()``), quoted as identifiers in the printed query, as
#: duckdb-engine's preparer quotes them. A DuckDB that reserves more declines (``_keywords_known``).
DUCKDB_RESERVED = frozenset(
    "all analyse analyze and any array as asc asymmetric both case cast check collate column constraint create "
    "default deferrable desc describe distinct do else end except false fetch for foreign from group having in "
    "initially intersect into lambda lateral leading limit not null offset on only or order pivot pivot_longer "
    "pivot_wider placing primary qualify references returning select show some summarize symmetric table then "
    "to trailing true union unique unpivot using variadic when where window with".split())


@functools.lru_cache(maxsize=1)
def printing_dialect() -> Any:
    """A dialect that writes the SQL text duckdb-engine's does, without loading duckdb-engine (whose import
    and first connection open two in-memory databases) or opening an engine: PostgreSQL's compiler under
    the name ``duckdb`` (``compile.dialects`` keys its DuckDB forms on the name), true division, DuckDB's
    reserved words quoted. ``tests/evaluate/test_members_output.py`` holds its text to duckdb-engine's."""
    from sqlalchemy.dialects.postgresql.base import PGDialect, PGIdentifierPreparer

    class Preparer(PGIdentifierPreparer):
        reserved_words = frozenset(PGIdentifierPreparer.reserved_words) | DUCKDB_RESERVED

    class DuckDBText(PGDialect):
        name = "duckdb"
        driver = "audlang_text"
        div_is_floordiv = False
        supports_statement_cache = False
        preparer = Preparer

    return DuckDBText(paramstyle="named")


def printed_select(query: sa.Select, dialect: Any = None) -> str | None:
    """``query`` as DuckDB text, its literals rendered as ``audlang sql`` prints them; None when a value
    has no literal."""
    from sqlalchemy.exc import CompileError

    try:
        return str(query.compile(dialect=dialect or printing_dialect(), compile_kwargs={"literal_binds": True}))
    except (CompileError, NotImplementedError, TypeError):
        return None


def duckdb_file(url: str) -> str | None:
    """The DuckDB file a warehouse URL opens, absolute, when it exists and the URL sets nothing else; else
    None (memory, a server, a URL with settings, a file to be made)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from audlang import backends

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    database = backends.database_file(parsed)
    if parsed.get_backend_name() != "duckdb" or database is None or parsed.query:
        return None
    database = os.path.abspath(database)
    return database if os.path.isfile(database) else None


def members_text(url: str, query: sa.Select, header: Sequence[str], fmt: str,
                 early: EarlyQuery | None = None) -> list[str] | None:
    """The text of ``audlang members`` for ``query`` (ordered by its first column, named by ``header``)
    made by the engine, in pieces to write in order; None when the engine cannot make exactly the text
    the general path writes (any engine but a DuckDB file; a column type or value it does not write;
    any DuckDB error: the general path then runs the query and reports what is wrong as always).

    The query runs on a connection of its own, opened as ``engines`` opens one for a read command
    (``early_connection``), in a thread the command waits for, so that an interrupt stops it at once.
    ``early``: the query this command started before it read the project (``start_early``); its text is
    used when it ran exactly this query on this same file. For a query without ``in list`` tables (those
    are loaded on an engine's connection: ``members_text_on``)."""
    database = duckdb_file(url)
    select_sql = printed_select(query) if database is not None else None
    if database is None or select_sql is None:
        return None
    if early is not None:
        made = early.take(database, select_sql, list(header), fmt)
        if made is not None:
            return made
    worker = Worker(database, select_sql, list(header), fmt)
    try:
        made = worker.result()
    finally:
        worker.cancel()
    if made is not None and early is not None:
        early.remember(database, select_sql, list(header), fmt)
    return made


def members_text_on(engine: sa.Engine, query: sa.Select, header: Sequence[str], fmt: str,
                    prepare: Callable[[sa.Connection], None]) -> list[str] | None:
    """``members_text`` on a connection of ``engine``, after ``prepare(conn)`` (the ``in list`` tables,
    temporary on a read-only file, so on that connection only). None as there; the transaction of a
    failed statement is rolled back."""
    if engine.dialect.name != "duckdb":
        return None
    select_sql = printed_select(query)
    if select_sql is None:
        return None
    import duckdb

    from audlang import interrupts

    try:
        with engine.begin() as conn:
            prepare(conn)
            try:
                return duckdb_members_text(conn.connection.driver_connection, select_sql, header, fmt,
                                           checked=_single_select)
            except (Unsupported, duckdb.Error) as error:
                if interrupts.received() is not None:
                    raise
                raise _Declined from error
    except _Declined:
        return None


# ------------------------------------------------------------------ what the general path does


@functools.lru_cache(maxsize=1)
def csv_rules() -> tuple[frozenset[str], frozenset[str], bool] | None:
    """How the running ``csv`` module writes a field (``csv.writer(…, lineterminator="\\n")``, as the
    general path does): the characters that make a field quoted (the quote then doubled), the characters
    it does anything else with (never written by the engine), and whether a row of one empty field is
    written ``""``. None when fields are not simply joined with commas."""

    def line(row: list[str]) -> str:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(row)
        return out.getvalue()

    if line(["a", "b"]) != "a,b\n" or line(["", ""]) != ",\n" or line(["", "a"]) != ",a\n":
        return None
    quoted: set[str] = set()
    odd: set[str] = set()
    for ch in map(chr, [*range(128), 0x85, 0xA0, 0xE9, 0x2028, 0x2029, 0xFEFF, 0x1F600]):
        forms = [f"a{ch}b", f"{ch}a", f"a{ch}", ch]
        try:
            got = [line([form]) for form in forms]
        except csv.Error:
            odd.add(ch)
            continue
        if got == [form + "\n" for form in forms]:
            continue
        if got == ['"' + form.replace('"', '""') + '"\n' for form in forms]:
            quoted.add(ch)
        else:
            odd.add(ch)
    empty = line([""])
    if empty not in ("\n", '""\n'):
        return None
    return frozenset(quoted), frozenset(odd), empty == '""\n'


def _double_probe() -> list[float]:
    """Doubles whose shortest text is easy to get wrong: both notations and the edges between them."""
    values = [0.0, -0.0, 1.0, -1.0, 0.1, 0.5, 1 / 3, -2 / 3, 1e-4, 1e-5, 1.5e-7, 0.001, 12.5, 100.0,
              123456789012345.6, 1e15, 9999999999999998.0, 1e16, 1.5e16, 1e22, 1e23, 1e100, 5e-324,
              2.2250738585072014e-308, 1.7976931348623157e308, 45.523064, -122.676483, 2.0 ** 53 + 2]
    seed = 0x2545F4914F6CDD1D
    for exponent in range(-30, 31, 3):  # a fixed pseudo-random spread of mantissas
        seed = (seed * 6364136223846793005 + 1442695040888963407) % 2 ** 64
        values.append((seed % 10 ** 9) / 10 ** 6 * 10.0 ** exponent)
    return values


_DECIMAL_PROBE = ("12.50", "0.05", "-0.05", "99.99", "0.10", "1234567890123.45", "-0.01", "7.00",
                  "999999999999999999.99", "0.000001", "123456789.123456789")


def _numbers_match(driver: Any) -> bool:
    doubles = _double_probe()
    if _probe_column(driver, "DOUBLE", doubles, _number_text("x", "DOUBLE")) != [repr(v) for v in doubles]:
        return False
    decimal_type = "DECIMAL(38,10)"
    expected = [_python_decimal_text(Decimal(v).quantize(Decimal("1E-10"))) for v in _DECIMAL_PROBE]
    return _probe_column(driver, decimal_type, list(_DECIMAL_PROBE), _number_text("x", decimal_type)) == expected


def _python_decimal_text(value: Decimal) -> str:
    """What the general path prints for a Decimal (``evaluate.json_default``: a float, or an int when whole)."""
    return repr(float(value)) if value != value.to_integral_value() else str(int(value))


def _probe_column(driver: Any, type_name: str, values: list[Any], expression: str) -> list[str]:
    rows = driver.execute(
        f"SELECT i, {expression} FROM (SELECT i, CAST(v[i] AS {type_name}) AS x "
        f"FROM (SELECT $1 AS v), range(1, len($1) + 1) AS r(i)) AS probe ORDER BY i",
        [[str(v) if isinstance(v, str) else v for v in values]]).fetchall()
    return [text for _i, text in rows]


#: ``numbers_match``'s answer for each DuckDB version (asked once a process).
_NUMBERS: dict[str, bool] = {}


def numbers_match(driver: Any) -> bool:
    """Whether this engine writes DOUBLE and DECIMAL values as Python's ``repr`` of the general path's floats."""
    import duckdb

    if duckdb.__version__ not in _NUMBERS:
        try:
            _NUMBERS[duckdb.__version__] = _numbers_match(driver)
        except duckdb.Error:
            return False
    return _NUMBERS[duckdb.__version__]


# ------------------------------------------------------------------ values as text, in SQL


def _literal(text: str) -> str:
    """A SQL string literal: DuckDB reads no backslash escapes in one, so doubling the quote is all."""
    if "\x00" in text:
        raise Unsupported("a NUL character in the text of the statement")
    return "'" + text.replace("'", "''") + "'"


def _char_class(chars: Sequence[str]) -> str:
    """An RE2 character class of exactly these characters (each by its code point)."""
    return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in sorted(chars)) + "]"


def _declined() -> str:
    return f"error({_literal(DECLINED)})"


def _number_text(x: str, type_name: str) -> str:
    """The general path's text of a non-NULL number (Python's str of the int or float it prints)."""
    if type_name in _FLOATS:
        return f"CAST(CAST({x} AS DOUBLE) AS VARCHAR)"
    # A DECIMAL: an int when whole (exact digits), else the nearest double (parsed from the exact text).
    return (f"CASE WHEN {x} = trunc({x}) THEN CAST(CAST({x} AS HUGEINT) AS VARCHAR) "
            f"ELSE CAST(CAST(CAST({x} AS VARCHAR) AS DOUBLE) AS VARCHAR) END")


def _in_years(x: str) -> str:
    return f"isfinite({x}) AND year({x}) BETWEEN 1 AND 9999"


def _iso(x: str, type_name: str) -> str:
    """``date.isoformat()`` / ``datetime.isoformat()`` (microseconds only when not zero)."""
    if type_name == "DATE":
        return f"strftime({x}, '%Y-%m-%d')"
    return (f"strftime({x}, '%Y-%m-%dT%H:%M:%S') || "
            f"CASE WHEN strftime({x}, '%f') = '000000' THEN '' ELSE '.' || strftime({x}, '%f') END")


def _kind(type_name: str, numbers_ok: bool) -> str:
    if type_name == "VARCHAR":
        return "text"
    if type_name == "BOOLEAN":
        return "boolean"
    if type_name in _INTEGERS:
        return "integer"
    if (type_name in _FLOATS or _DECIMAL.fullmatch(type_name)) and numbers_ok:
        return "float" if type_name in _FLOATS else "decimal"
    if type_name in ("DATE", "TIMESTAMP"):
        return "temporal"
    raise Unsupported(f"a column of type {type_name}")


def csv_value(x: str, type_name: str, rules: tuple[frozenset[str], frozenset[str], bool],
              numbers_ok: bool) -> str:
    """A value as the general path's csv field: NULL empty, the rest as Python's str, strings quoted
    as the csv module quotes them."""
    quoted, odd, _empty_quoted = rules
    kind = _kind(type_name, numbers_ok)
    if kind == "text":
        checks = f"WHEN regexp_matches({x}, {_literal(_char_class(sorted(odd)))}) THEN {_declined()} " if odd else ""
        if quoted:
            checks += (f"WHEN regexp_matches({x}, {_literal(_char_class(sorted(quoted)))}) "
                       f"THEN '\"' || replace({x}, '\"', '\"\"') || '\"' ")
        return f"CASE WHEN {x} IS NULL THEN '' {checks}ELSE {x} END"
    if kind == "boolean":
        return f"CASE WHEN {x} IS NULL THEN '' WHEN {x} THEN 'True' ELSE 'False' END"
    if kind == "integer":
        return f"coalesce(CAST({x} AS VARCHAR), '')"
    if kind in ("float", "decimal"):
        return f"CASE WHEN {x} IS NULL THEN '' ELSE {_number_text(x, type_name)} END"
    return (f"CASE WHEN {x} IS NULL THEN '' WHEN NOT ({_in_years(x)}) THEN {_declined()} "
            f"ELSE {_iso(x, type_name)} END")


def _json_string(x: str) -> str:
    """A string as ``json.dumps`` writes it, but for its non-ASCII characters (escaped in Python after)."""
    escaped = f"replace(replace({x}, '\\', '\\\\'), '\"', '\\\"')"
    for code in [*range(0x20), 0x7F]:
        replacement = _JSON_SHORT.get(chr(code), f"\\u{code:04x}")
        escaped = f"replace({escaped}, chr({code}), {_literal(replacement)})"
    special = _literal(_char_class([*map(chr, range(0x20)), "\x7f", '"', "\\"]))
    return f"'\"' || CASE WHEN regexp_matches({x}, {special}) THEN {escaped} ELSE {x} END || '\"'"


def json_value(x: str, type_name: str, numbers_ok: bool) -> str:
    """A value as ``json.dumps(…, default=evaluate.json_default)`` writes it."""
    kind = _kind(type_name, numbers_ok)
    if kind == "text":
        body = _json_string(x)
    elif kind == "boolean":
        body = f"CASE WHEN {x} THEN 'true' ELSE 'false' END"
    elif kind == "integer":
        body = f"CAST({x} AS VARCHAR)"
    elif kind == "float":
        body = (f"CASE WHEN isnan({x}) THEN 'NaN' WHEN CAST({x} AS DOUBLE) = CAST('inf' AS DOUBLE) "
                f"THEN 'Infinity' WHEN CAST({x} AS DOUBLE) = CAST('-inf' AS DOUBLE) THEN '-Infinity' "
                f"ELSE {_number_text(x, type_name)} END")
    elif kind == "decimal":
        body = _number_text(x, type_name)
    else:
        body = f"CASE WHEN NOT ({_in_years(x)}) THEN {_declined()} ELSE '\"' || {_iso(x, type_name)} || '\"' END"
    return f"CASE WHEN {x} IS NULL THEN 'null' ELSE {body} END"


# ------------------------------------------------------------------ the statement and its text


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def csv_header(header: Sequence[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(list(header))
    return out.getvalue()


def formatting_query(select_sql: str, types: Sequence[str], header: Sequence[str], fmt: str,
                     numbers_ok: bool) -> tuple[str, str]:
    """The statement that makes the output's rows as pieces of text, and the text between two pieces."""
    columns = [f"c{i}" for i in range(len(types))]
    if fmt == "csv":
        rules = csv_rules()
        if rules is None:
            raise Unsupported("the csv module does not join fields plainly")
        values = [csv_value(c, t, rules, numbers_ok) for c, t in zip(columns, types, strict=True)]
        line = " || ',' || ".join(values)
        if len(values) == 1 and rules[2]:
            line = f"CASE WHEN {line} = '' THEN '\"\"' ELSE {line} END"
        line = f"{line} || chr(10)"
        separator = ""
    else:
        # dict(zip(header, row)): a repeated name keeps its first place and its last value (the same column).
        last = {name: i for i, name in enumerate(header)}
        parts = []
        for n, name in enumerate(dict.fromkeys(header)):
            lead = "  {\n    " if n == 0 else ",\n    "
            parts.append(f"{_literal(lead + json.dumps(name) + ': ')} || "
                         f"{json_value(columns[last[name]], types[last[name]], numbers_ok)}")
        line = " || ".join(parts) + " || " + _literal("\n  }")
        separator = ",\n"
    statement = (
        f"SELECT string_agg(line, {_literal(separator)} ORDER BY n) AS piece FROM ("
        f"SELECT row_number() OVER (ORDER BY c0) AS n, {line} AS line "
        f"FROM ({select_sql}) AS audlang_members({', '.join(columns)})) AS audlang_lines "
        f"GROUP BY (n - 1) // {ROWS_PER_PIECE} ORDER BY (n - 1) // {ROWS_PER_PIECE}")
    return statement, separator


def result_types(driver: Any, select_sql: str) -> list[str]:
    """The DuckDB type of each column of ``select_sql`` (bound, not run)."""
    return [row[1] for row in driver.execute(f"DESCRIBE {select_sql}").fetchall()]


def duckdb_members_text(driver: Any, select_sql: str, header: Sequence[str], fmt: str,
                        checked: Callable[[str], bool] | None = None) -> list[str]:
    """The text of ``audlang members`` for ``select_sql`` (its columns named by ``header``, ordered by the
    first), in pieces to write in order; exactly what the general path writes for the same rows.

    ``driver``: a DuckDB connection (the driver's, or duckdb-engine's wrapper of it). Raises
    ``Unsupported`` when the engine cannot make this text exactly, and DuckDB's errors as they are; on
    either, nothing has been produced and the caller's transaction is to be rolled back. ``checked(text)``,
    when given, must hold of each statement before it runs.
    """
    if fmt not in ("csv", "json"):
        raise Unsupported(f"the format {fmt}")
    if checked is not None and not checked(select_sql):
        raise Unsupported("not one SELECT")
    types = result_types(driver, select_sql)
    if len(types) != len(header) or not types:
        raise Unsupported("the columns do not match the header")
    numbers = any(t in _FLOATS or _DECIMAL.fullmatch(t) for t in types)
    statement, separator = formatting_query(select_sql, types, header, fmt, numbers and numbers_match(driver))
    if checked is not None and not checked(statement):
        raise Unsupported("not one SELECT")
    pieces = [piece for (piece,) in driver.execute(statement).fetchall()]
    if fmt == "csv":
        return [csv_header(header), *pieces]
    if not pieces:
        return ["[]\n"]
    pieces = [piece if piece.isascii() else _NON_ASCII.sub(_json_escape, piece) for piece in pieces]
    out = ["[\n", pieces[0]]
    for piece in pieces[1:]:
        out += [separator, piece]
    out.append("\n]\n")
    return out


# ------------------------------------------------------------------ the query started early


def cache_folder() -> Path | None:
    """Where the last query of each ``audlang members`` invocation is kept: ``AUDLANG_CACHE_DIR`` (empty:
    nowhere), else ``$XDG_CACHE_HOME/audlang``, else ``~/.cache/audlang``. The user's own folder, never the
    project's: a project someone else wrote cannot leave a query there for us to start."""
    setting = os.environ.get("AUDLANG_CACHE_DIR")
    if setting is not None:
        return Path(setting) / "members" if setting else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "audlang" / "members"


def _owned(path: Path, kind: int) -> bool:
    """``path`` is of ``kind`` (not a link), ours, and no one else may write it."""
    try:
        info = path.lstat()
    except OSError:
        return False
    return stat.S_IFMT(info.st_mode) == kind and info.st_uid == os.getuid() and not info.st_mode & 0o022


def _single_select(statement: str) -> bool:
    """One statement, a SELECT (an early query is text read back from a file: it runs nothing else)."""
    import duckdb

    try:
        statements = duckdb.extract_statements(statement)
    except duckdb.Error:
        return False
    return len(statements) == 1 and statements[0].type == duckdb.StatementType.SELECT


def early_connection(database: str) -> Any:
    """The DuckDB file read-only, as ``engines`` opens it for a read command: no file but the database may
    be read or written (``enable_external_access`` off from the start), no progress bar."""
    import duckdb

    conn = duckdb.connect(database, read_only=True, config={"enable_external_access": False})
    conn.execute("SET enable_progress_bar = false")
    return conn


class Worker:
    """``duckdb_members_text`` run in a thread on a connection of its own (``early_connection``): the
    caller waits for it in steps an interrupt can end (``result``), and ``cancel`` stops the query and
    lets go of the file. Any failure is a None: the command then takes the general path."""

    def __init__(self, database: str, select_sql: str, header: list[str], fmt: str) -> None:
        self.job = (database, select_sql, header, fmt)
        self._conn: Any = None
        self._made: list[str] | None = None
        self._cancelled = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="audlang-members-query", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        database, select_sql, header, fmt = self.job
        try:
            conn = early_connection(database)
            with self._lock:
                self._conn = conn
                if self._cancelled:
                    return
            if not _keywords_known(conn):
                return
            self._made = duckdb_members_text(conn, select_sql, header, fmt, checked=_single_select)
        except Exception:  # noqa: BLE001 - any failure only means the general path writes the output
            self._made = None

    def result(self) -> list[str] | None:
        while self._thread.is_alive():
            self._thread.join(0.05)  # a wait an interrupt can end (the caller then cancels)
        made, self._made = self._made, None
        return made

    def cancel(self) -> None:
        """Stop the query if it runs, and close the connection (before the command opens the file again)."""
        with self._lock:
            self._cancelled = True
        while self._thread.is_alive():
            with self._lock:
                conn = self._conn
            if conn is not None:
                try:
                    conn.interrupt()
                except Exception:  # noqa: BLE001 - a connection being made or closed
                    pass
            self._thread.join(0.02)
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass


def _keywords_known(conn: Any) -> bool:
    """DuckDB reserves no keyword that ``printing_dialect`` would leave unquoted."""
    reserved = conn.execute("SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'")
    return {name for (name,) in reserved.fetchall()} <= DUCKDB_RESERVED


class EarlyQuery:
    """The members query this same invocation ran last time, started (a ``Worker``) before the project is
    read, so that the engine works while Python loads and checks the project and compiles.

    Only its text is used, and only when the freshly compiled query is exactly the one it ran, on the
    same file, with the same header and format (``take``): so the output is what the command makes
    without it. Otherwise it is cancelled. Its connection is the engines' READ one: the file read-only,
    ``enable_external_access = false`` from the start; the text it runs is checked to be one SELECT.
    """

    def __init__(self, key: str, inputs: dict[str, Any], entry: dict[str, Any] | None) -> None:
        self.key, self.inputs, self.entry = key, inputs, entry
        self._worker = Worker(entry["database"], entry["sql"], entry["header"], entry["format"]) \
            if entry is not None else None

    def take(self, database: str, select_sql: str, header: list[str], fmt: str) -> list[str] | None:
        """The early query's text if it ran exactly this query (its end awaited); else None, cancelled."""
        worker, self._worker = self._worker, None
        if worker is None:
            return None
        try:
            return worker.result() if worker.job == (database, select_sql, header, fmt) else None
        finally:
            worker.cancel()

    def cancel(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()

    def remember(self, database: str, select_sql: str, header: list[str], fmt: str) -> None:
        """Keep this invocation's query for the next one (atomically; failures are only a slower next run)."""
        entry = {"inputs": self.inputs, "database": database, "sql": select_sql, "header": header, "format": fmt}
        if entry == self.entry:
            return
        folder = cache_folder()
        if folder is None:
            return
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not _owned(folder, stat.S_IFDIR):
                return
            partial = folder / f".{self.key}.{os.getpid()}.{threading.get_ident()}"
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(entry, out)
            os.replace(partial, folder / f"{self.key}.json")
            _prune(folder)
        except OSError:
            pass


#: Entries kept in the cache folder (the oldest read go first).
KEEP = 200


def _prune(folder: Path) -> None:
    entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
    for old in entries[:-KEEP]:
        old.unlink(missing_ok=True)


def start_early(inputs: dict[str, Any]) -> EarlyQuery:
    """An ``EarlyQuery`` for the command's inputs (project folder, working folder, segment, options,
    the environment's warehouse): started when the cache has a query for them, else idle (it then only
    remembers this run's query). Reads no project file and imports neither SQLAlchemy nor DuckDB here."""
    from audlang import __version__

    inputs = {**inputs, "audlang": __version__}
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:40]
    folder = cache_folder()
    entry = None
    if folder is not None and _owned(folder, stat.S_IFDIR) and _owned(folder / f"{key}.json", stat.S_IFREG):
        try:
            with open(folder / f"{key}.json", encoding="utf-8") as f:
                entry = json.loads(f.read(4 * 1024 * 1024))
        except (OSError, ValueError):
            entry = None
        if not (isinstance(entry, dict) and entry.get("inputs") == json.loads(json.dumps(inputs, default=str))
                and isinstance(entry.get("database"), str) and isinstance(entry.get("sql"), str)
                and isinstance(entry.get("header"), list) and entry.get("format") in ("csv", "json")
                and all(isinstance(h, str) for h in entry["header"]) and os.path.isfile(entry["database"])):
            entry = None
        else:
            os.utime(folder / f"{key}.json")  # read: kept longer (``_prune``)
    return EarlyQuery(key, inputs, entry)
