"""`audlang members` on DuckDB is written by the engine (``warehouse.engine_output``): its bytes are the
general path's (rows fetched, Python's csv and json modules) for every format, option and value.

The warehouse is the generated one plus crafted customers whose values are what a formatter gets wrong:
quotes, commas, line breaks (``\\n`` and a lone ``\\r``, which Python 3.13 quotes and 3.11 does not), NUL,
tabs, DEL, non-ASCII and astral characters, an empty customer_id (csv writes a row of one empty field
as ``""``), NULLs, doubles in both notations and at their edges (inf, nan, -0.0, 5e-324), decimals
whole and not, dates and timestamps at years 1 and 9999, with and without microseconds. Values the
engine does not write (an infinite date) make it decline, and the general path writes them: the same
output either way.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import duckdb
import pytest
from click.testing import CliRunner

from audlang import evaluate, warehouse
from audlang.cli import cli
from audlang.compile import AsOf
from audlang.datagen import generate
from audlang.project import load
from audlang.warehouse import engine_output
from helpers import EXAMPLES

AS_OF = "2024-11-30"
COLUMNS = ["given_name", "surname", "email", "city", "birthdate", "created_at", "sms_opt_in", "predicted_clv",
           "latitude", "longitude"]
CRAFTED = [  # customer_id and COLUMNS
    ("Z,1", 'O"Brien', "a,b", "x\ny", "cr\rhere", "0001-01-01", "2024-01-01 10:00:00.000001", True, "12.00",
     float("inf"), -0.0),
    ("", "", None, "tab\there", "nul\x00here", "9999-12-31", "0001-01-01 00:00:00", False, "0.05",
     float("-inf"), 5e-324),
    ("Z\n2", "Zoë", "😀 emoji", "\u2028line sep", "\x7fdel\x1bansi", "1970-01-01", "9999-12-31 23:59:59.999999",
     None, "-0.01", float("nan"), 1e16),
    ('Z"3', "back\\slash", "', '); --", "é,\"", "\r\n", None, None, True, "9999999999.99", 0.1, 1e-5),
    ("Zé", " lead", "trail ", "\x01\x02\x1f", "\ufeffbom", "2000-02-29", "2024-02-29 12:34:56", False, None,
     123456789012345.6, -122.676483),
    ("Z𝄞", None, "\\u0041", "\"\"", ",", "1999-12-31", "2024-11-30 23:59:59.5", True, "100.00", 45.523064, 1.5e16),
]
PROJECT = 'segment "Crafted" < loyalty_tier = "Crafted" >\nsegment "Infinite" < loyalty_tier = "Infinite" >\n'
FIELD_SETS = [[], ["email"], COLUMNS, ["loyalty_tier", "email", "email", "predicted_clv"]]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("retail")
    shutil.copytree(EXAMPLES / "retail", root, dirs_exist_ok=True)
    (root / "segments" / "crafted.aud").write_text(PROJECT, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def warehouse_url(warehouse):
    generate(warehouse.url, customers=300, seed=7)
    conn = duckdb.connect(warehouse.url.removeprefix("duckdb:///"))
    names = ", ".join(["customer_id", "loyalty_tier", *COLUMNS])
    marks = ", ".join("?" for _ in range(len(COLUMNS) + 2))
    conn.executemany(f"INSERT INTO customer_360 ({names}) VALUES ({marks})",
                     [(row[0], "Crafted", *row[1:]) for row in CRAFTED])
    conn.execute("INSERT INTO customer_360 (customer_id, loyalty_tier, birthdate, email) "
                 "VALUES ('Y1', 'Infinite', 'infinity', 'y@example.com'), ('Y2', 'Infinite', '2001-01-01', NULL)")
    conn.close()
    return warehouse.url


@pytest.fixture(scope="module")
def model(project):
    return load(None, str(project)).model


@pytest.fixture
def written_by_engine(monkeypatch):
    """Whether each query of the test was written by the engine (True) or declined (on its own connection,
    ``members_text``, or after the ``in list`` tables on an engine's, ``members_text_on``)."""
    seen: list[bool] = []

    def spying(original):
        def spy(*args, **kwargs):
            made = original(*args, **kwargs)
            seen.append(made is not None)
            return made

        return spy

    for name in ("members_text", "members_text_on"):
        monkeypatch.setattr(engine_output, name, spying(getattr(engine_output, name)))
    return seen


def both(url, model, name, fields, limit, fmt) -> tuple[str, str]:
    """The command's text, and the general path's (rows fetched through an engine, then written)."""
    as_of = AsOf.parse(AS_OF)
    made = evaluate.members_output(url, model, name, as_of, fields, limit, fmt)
    engine = warehouse.connect(url, role=warehouse.Role.READ)
    try:
        header, rows = evaluate.members(engine, url, model, name, as_of, fields, limit)
    finally:
        engine.dispose()
    return "".join(made), "".join(evaluate.format_members(header, rows, fmt))


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize("fields", FIELD_SETS, ids=["id", "one", "all-kinds", "repeated"])
@pytest.mark.parametrize("limit", [None, 0, 2])
def test_crafted_values_are_written_exactly(warehouse_url, model, written_by_engine, fmt, fields, limit):
    made, general = both(warehouse_url, model, "Crafted", fields, limit, fmt)
    assert made == general
    assert written_by_engine == [True]
    if fmt == "json":
        assert len(json.loads(made)) == (len(CRAFTED) if limit is None else limit)


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_every_example_segment_is_written_exactly(warehouse_url, model, written_by_engine):
    for name in model.segments:
        for fmt in ("csv", "json"):
            made, general = both(warehouse_url, model, name, ["predicted_clv", "created_at"], None, fmt)
            assert made == general, (name, fmt)
    assert all(written_by_engine) and len(written_by_engine) == 2 * len(model.segments)


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_a_value_the_engine_does_not_write_is_written_by_the_general_path(warehouse_url, model,
                                                                           written_by_engine):
    for fmt in ("csv", "json"):
        made, general = both(warehouse_url, model, "Infinite", ["birthdate", "email"], None, fmt)
        assert made == general and "9999-12-31" in made
    assert written_by_engine == [False, False]
    # Without the infinite date, the engine writes it.
    made, general = both(warehouse_url, model, "Infinite", ["email"], None, "csv")
    assert made == general and written_by_engine[-1] is True


def test_a_column_type_the_engine_does_not_write_declines():
    driver = duckdb.connect()
    with pytest.raises(engine_output.Unsupported):
        engine_output.duckdb_members_text(driver, "SELECT 'a' AS customer_id, uuid() AS u", ["customer_id", "u"],
                                          "csv")
    assert engine_output.duckdb_members_text(driver, "SELECT 'a' AS customer_id, 2 AS n", ["customer_id", "n"],
                                             "csv") == ["customer_id,n\n", "a,2\n"]


def test_the_csv_rules_are_the_running_csv_module_s():
    quoted, odd, empty_quoted = engine_output.csv_rules()
    assert {",", '"', "\n"} <= quoted and empty_quoted
    assert ("\r" in quoted) == (sys.version_info >= (3, 13))  # 3.13 quotes a lone carriage return
    assert not odd


def test_engine_numbers_are_python_s():
    assert engine_output.numbers_match(duckdb.connect())


def test_the_early_start_loads_neither_sqlalchemy_nor_duckdb(tmp_path):
    code = ("import sys; from audlang.warehouse import engine_output as e; "
            "e.start_early({'name': 'x'}).cancel(); "
            "print(sorted(m for m in ('sqlalchemy', 'duckdb', 'audlang.check', 'lark') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "AUDLANG_CACHE_DIR": str(tmp_path)})
    assert done.stdout.strip() == "[]"


# ------------------------------------------------------------------ the query started early, through the CLI


def run(project, *args):
    result = CliRunner().invoke(cli, ["--project", str(project), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def early_taken(monkeypatch, tmp_path):
    """A private cache folder; the list of what each run's early query gave (None: not used)."""
    monkeypatch.setenv("AUDLANG_CACHE_DIR", str(tmp_path / "cache"))
    taken: list[bool] = []
    original = engine_output.EarlyQuery.take

    def spy(self, *args):
        made = original(self, *args)
        taken.append(made is not None)
        return made

    monkeypatch.setattr(engine_output.EarlyQuery, "take", spy)
    return taken


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_a_repeated_members_uses_its_early_query(project, warehouse_url, early_taken, tmp_path):
    args = ("members", "Crafted", "--as-of", AS_OF, "--warehouse", warehouse_url, "--fields", ",".join(COLUMNS))
    first = run(project, *args)
    assert early_taken == [False] and len(list((tmp_path / "cache" / "members").glob("*.json"))) == 1
    assert run(project, *args) == first
    assert early_taken == [False, True]
    json_args = (*args, "--format", "json")
    assert run(project, *json_args) == run(project, *json_args)
    assert early_taken[2:] == [False, True]


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_an_edited_segment_is_not_answered_by_its_early_query(project, warehouse_url, early_taken, tmp_path):
    copy = tmp_path / "p"
    shutil.copytree(project, copy)
    args = ("members", "Big Spenders", "--as-of", AS_OF, "--warehouse", warehouse_url)
    before = run(copy, *args)
    segments = next(p for p in (copy / "segments").glob("*.aud")
                    if 'segment "Big Spenders" <' in p.read_text(encoding="utf-8"))  # not a file that uses it
    text = segments.read_text(encoding="utf-8")
    assert "lifetime_revenue > 500" in text
    segments.write_text(text.replace("lifetime_revenue > 500", "lifetime_revenue > 900"), encoding="utf-8")
    after = run(copy, *args)
    assert early_taken == [False, False]  # the first run's query started, compared, cancelled
    engine = warehouse.connect(warehouse_url, role=warehouse.Role.READ)
    header, rows = evaluate.members(engine, warehouse_url, load(None, str(copy)).model, "Big Spenders",
                                    AsOf.parse(AS_OF))
    engine.dispose()
    assert after == "".join(evaluate.format_members(header, rows, "csv"))
    assert set(after.splitlines()[1:]) < set(before.splitlines()[1:])


def test_the_printing_dialect_writes_duckdb_engine_s_text(tmp_path):
    """The fast path compiles without duckdb-engine (``engine_output.printing_dialect``): the same text as
    `audlang sql` prints with duckdb-engine's dialect, for every example segment and every operator of
    test_printed_sql's segments (quotes, wildcards, backslashes, non-ASCII, dates, instants, decimals)."""
    from audlang.compile.render import dialect_for
    from evaluate.test_printed_sql import PRINTED

    shutil.copytree(EXAMPLES / "retail", tmp_path / "p")
    (tmp_path / "p" / "lists" / "printed.csv").write_text("customer_id\nC1\n")
    (tmp_path / "p" / "segments" / "printed.aud").write_text(PRINTED, encoding="utf-8")
    (tmp_path / "p" / "segments" / "crafted.aud").write_text(PROJECT, encoding="utf-8")
    loaded = load(None, str(tmp_path / "p"))
    assert not loaded.errors
    compared = 0
    for as_of in ("2024-11-30", "2024-11-30T15:30:00.250Z"):
        for name in loaded.model.segments:
            for fields, limit in (([], None), (COLUMNS, 7)):
                query = evaluate.members_query(loaded.model, name, AsOf.parse(as_of), fields, limit)
                text = engine_output.printed_select(query)
                assert text is not None and text == engine_output.printed_select(query, dialect_for("duckdb")), name
                compared += 1
    assert compared > 150


def test_the_reserved_words_are_duckdb_s():
    reserved = duckdb.connect().execute(
        "SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'").fetchall()
    assert {name for (name,) in reserved} <= engine_output.DUCKDB_RESERVED
