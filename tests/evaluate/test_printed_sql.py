"""`audlang sql` prints runnable SQL: the text, exactly as the CLI prints it, run in a SQL console
(``psql`` for PostgreSQL, the ``duckdb`` and ``sqlite3`` modules with no parameters), selects the
customers `audlang members` selects, on DuckDB, SQLite and PostgreSQL.

The segments cover every operator kind over strings holding what a literal or a LIKE pattern can
get wrong (``'``, ``%``, ``_``, ``\\``, non-ASCII), dates, timestamps (an as-of instant with a
fraction of a second), booleans, decimals, derived attributes, behaviour, custom tables and
``in list``. The warehouse is the generated one plus a few customers whose e-mail addresses and
cities hold those characters, each beside a decoy that an unescaped wildcard would also match.

``in list`` tables are loaded by `members` (as by insights and apply); the printed SQL refers to
them by name and names them in a comment, so it runs once `members` has run.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from audlang.cli import cli
from helpers import EXAMPLES, postgresql_bindir

AS_OF = "2024-11-30T15:30:00.250Z"

# (customer_id, email, city, given_name): a value and, after it, the decoy an unescaped pattern matches.
CRAFTED = [
    ("Z01", "50%off@example.com", "Zürich", "O'Brien"),
    ("Z02", "50Xoff@example.com", "Zurich", "OBrien"),
    ("Z03", "a_b@example.com", "Saint-Étienne", "D'Arcy"),
    ("Z04", "aXb@example.com", "Saint-Etienne", "DArcy"),
    ("Z05", "back\\slash@example.com", "100%", "Zoë"),
    ("Z06", "backslash@example.com", "1000", "Zoe"),
    ("Z07", "it's@example.com", "x_%", "Łukasz"),
    ("Z08", "its@example.com", "xy%", "Lukasz"),
    ("Z09", "z9@example.com", "1000", "Zed"),
    ("Z10", "z10@example.com", "100%x", "Zed"),
]

PRINTED = r'''
# Strings: quotes, wildcards, backslashes and non-ASCII in the values.
segment "P Contains Percent" < email contains "50%" >
segment "P Starts Underscore" < email starts with "a_b" >
segment "P Contains Quote" < email contains "it's" >
segment "P Contains Backslash" < email contains "k\\s" >
segment "P Ends Percent" < city ends with "0%" >
segment "P Equals Percent" < city = "100%" or city in ("x_%", "no'pe") >
segment "P Ends Underscore Percent" < city ends with "_%" >
segment "P Non-ASCII" < city = "Zürich" or city starts with "Saint-É" or given_name in ("Zoë", "Łukasz") >
segment "P Quotes" < given_name in ("O'Brien", "D'Arcy") >
segment "P Text Not" < state != "OR" and city not in ("Portland", "Zürich") >
segment "P Text Is Set" < loyalty_tier is set and postal is not set >
# Numbers and decimals.
segment "P Between Decimals" < predicted_clv between 100 and 250.5 >
segment "P Compare Decimals" < predicted_clv > 99.99 and predicted_clv <= 1000 or predicted_clv < 10.5 >
segment "P Tiny Decimal" < predicted_clv > 0.0000001 and predicted_clv != 300 >
segment "P Number In" < lifetime_orders in (1, 3) and lifetime_revenue >= 20.25 >
segment "P Number Not In" < lifetime_orders not in (0, 1, 2) and lifetime_revenue < 5000.75 >
segment "P Average" < average_order_value > 75.5 >
segment "P Days Since" < days_since_last_order between 10 and 45 or days_since_last_order = 2 >
segment "P Custom Table" < churn_score between 0.25 and 0.75 >
# Dates and timestamps.
segment "P Dates" < birthdate between 1980-01-01 and 1990-12-31 or birthdate = 1975-06-15 >
segment "P Date Compare" < birthdate >= today - 30 years and birthdate != 2000-01-01 >
segment "P Date In" < birthdate not in (1990-01-01, 1985-05-05) and birthdate < 1970-01-01 >
segment "P Timestamps" < created_at < 2023-06-01 and created_at >= 2020-01-01 >
segment "P Timestamp In" < created_at in (2024-11-29, 2024-11-30) or created_at > today - 10 days >
segment "P Derived Dates" < first_order_date < 2023-01-01 and last_order_date >= today - 6 months >
# Booleans.
segment "P Booleans" < sms_opt_in = true and email_opt_in = false >
segment "P Not Boolean" < not contactable_phone and contactable_email is set >
# Behaviour.
segment "P Hours" < has_purchased within last 36 hours or abandoned_checkout within last 6 hours >
segment "P Spend" < has_purchased category "Accessories" spend >= 49.95 between 2024-01-01 and 2024-11-30 >
segment "P Quantity" < has_purchased channel "online" quantity > 3 since 2024-06-01 >
segment "P Windows" < has_purchased before 2023-01-01 and has_purchased after 2024-11-01 >
segment "P On" < has_purchased on 2024-11-29 or has_purchased orders between 2 and 3 within last 2 months >
segment "P Items" < has_purchased brand in ("Nike", "Acme") store "PDX-01" >
segment "P Tags" < tagged in ("VIP", "Friends & Family") >
segment "P List" < in list "../lists/printed.csv" and not in segment "P Tags" >
segment "P Near" < near store "PDX-01" within 25 km or near store "SEA-01" within 3.5 miles >
'''

LIKE_CASES = {  # segment -> the crafted customers it selects, and so none of the decoys
    "P Contains Percent": {"Z01"},
    "P Starts Underscore": {"Z03"},
    "P Contains Quote": {"Z07"},
    "P Contains Backslash": {"Z05"},
    "P Ends Percent": {"Z05"},
    "P Equals Percent": {"Z05", "Z07"},
    "P Ends Underscore Percent": {"Z07"},
    "P Quotes": {"Z01", "Z03"},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("printed")
    shutil.copytree(EXAMPLES / "retail", root, dirs_exist_ok=True)
    (root / "segments" / "printed.aud").write_text(PRINTED, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def warehouse_url(warehouse, project):
    """The generated warehouse and the crafted customers on the engine under test; the list file."""
    from audlang.datagen import generate

    url = warehouse.url
    generate(url, customers=150, seed=5)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO customer_360 (customer_id, email, city, given_name) "
                             "VALUES (:i, :e, :c, :g)"),
                     [dict(zip("iecg", row, strict=True)) for row in CRAFTED])
        some = [r[0] for r in conn.execute(sa.text("SELECT customer_id FROM customer_360 "
                                                   "ORDER BY customer_id LIMIT 40"))]
    engine.dispose()
    ids = sorted(set(some[::2]) | {"Z01", "Z03", "Z05"})  # the same on every engine: the same generated rows
    (project / "lists" / "printed.csv").write_text("customer_id\n" + "\n".join(ids) + "\n")
    return url


def cli_run(project, *args) -> str:
    result = CliRunner().invoke(cli, ["--project", str(project), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def members(project, url, name) -> list[str]:
    rows = list(csv.reader(io.StringIO(cli_run(project, "members", name, "--as-of", AS_OF, "--warehouse", url))))
    assert rows[0] == ["customer_id"]
    return sorted(r[0] for r in rows[1:])


def load_lists(project, url: str, names: list[str]) -> None:
    """The segments' list tables, made as apply makes them (a DuckDB file is only read by ``members``)."""
    from audlang import warehouse
    from audlang.compile import list_files_used

    from audlang.project import load

    model = load(None, str(project)).model
    engine = warehouse.open_engine(url, warehouse.Role.WRITE)
    try:
        with engine.begin() as conn:
            for name in names:
                for listed in list_files_used(model, model.segments[name].condition):
                    warehouse.load_list(conn, listed)
    finally:
        engine.dispose()


def run_printed(engine: str, url: str, text: str, tmp_path) -> list[str]:
    """The printed text in a console: no driver-side parameter handling anywhere."""
    path = sa.engine.make_url(url).database
    if engine == "duckdb":
        # The duckdb connection itself (duckdb-engine's wrapper hands ``execute`` straight to it), opened
        # as audlang's read commands open it (read-only): DuckDB refuses a second configuration for an open file.
        from audlang import warehouse

        raw = warehouse.connect(url).raw_connection()
        try:
            return sorted(r[0] for r in raw.driver_connection.execute(text).fetchall())
        finally:
            raw.close()
    if engine == "sqlite":
        import sqlite3

        con = sqlite3.connect(path)
        try:
            return sorted(r[0] for r in con.execute(text).fetchall())
        finally:
            con.close()
    script = tmp_path / "printed.sql"
    script.write_text(text, encoding="utf-8")
    libpq = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    done = subprocess.run([str(postgresql_bindir() / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                           "-d", libpq, "-f", str(script)], capture_output=True, text=True, encoding="utf-8")
    assert done.returncode == 0, done.stderr
    return sorted(line for line in done.stdout.splitlines() if line)


def segment_names(project) -> list[str]:
    from audlang.project import load

    loaded = load(None, str(project))
    assert not loaded.errors, [str(d) for d in loaded.diagnostics]
    return list(loaded.model.segments)


def test_printed_sql_selects_the_members(project, warehouse, warehouse_url, tmp_path):
    engine, url = warehouse.name, warehouse_url
    populated = 0
    load_lists(project, url, segment_names(project))  # as apply does (`members` only reads a DuckDB file)
    for name in segment_names(project):
        expected = members(project, url, name)
        printed = cli_run(project, "sql", name, "--dialect", engine, "--as-of", AS_OF)
        assert run_printed(engine, url, printed, tmp_path) == expected, f"{name} on {engine}:\n{printed}"
        populated += bool(expected)
    assert populated >= 40, "most segments should select someone in the generated warehouse"


def test_like_wildcards_in_values_match_only_themselves(project, warehouse, warehouse_url):
    """`contains "50%"` is the text 50%, not 50 then anything: the decoys beside each value stay out."""
    for name, crafted in LIKE_CASES.items():
        got = {c for c in members(project, warehouse_url, name) if c.startswith("Z")}
        assert got == crafted, f"{name} on {warehouse.name}"


# The printed text per dialect, compiled only (the tests above run it): one engine writes the list file.
@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_printed_literals_per_dialect(project, warehouse_url):
    """The literals as each console reads them, and the list tables named in a comment."""
    def sql(name, dialect):
        return cli_run(project, "sql", name, "--dialect", dialect, "--as-of", AS_OF)

    for dialect in ("duckdb", "postgresql", "snowflake", "trino"):  # one %: no doubling for a DB-API
        assert "(c1.email LIKE '%@gmail.com' ESCAPE" in sql("Gmail Subscribers", dialect), dialect
    assert "LIKE '%50\\%%' ESCAPE '\\'" in sql("P Contains Percent", "duckdb")
    assert "LIKE '%50\\%%' ESCAPE '\\'" in sql("P Contains Percent", "postgresql")
    assert "LIKE '%50\\\\%%' ESCAPE '\\\\'" in sql("P Contains Percent", "snowflake")  # backslash escapes
    assert "LIKE '%50\\\\%%')" in sql("P Contains Percent", "bigquery")  # no ESCAPE clause in BigQuery
    assert "LIKE '%50\\\\%%')" in sql("P Contains Percent", "spark")
    assert "LIKE '%it''s%' ESCAPE '\\'" in sql("P Contains Quote", "trino")
    assert "instr(c1.email, 'it''s') > 0" in sql("P Contains Quote", "sqlite")
    assert "'O''Brien', 'D''Arcy'" in sql("P Quotes", "postgresql")
    assert "'Zürich'" in sql("P Non-ASCII", "duckdb")
    assert "> 0.0000001" in sql("P Tiny Decimal", "duckdb") and "1E-7" not in sql("P Tiny Decimal", "trino")
    assert "<= 250.5" in sql("P Between Decimals", "postgresql")
    assert "DATE '1980-01-01'" in sql("P Dates", "duckdb") and "DATE '1980-01-01'" in sql("P Dates", "trino")
    hours = sql("P Hours", "postgresql")
    assert "TIMESTAMP '2024-11-30 15:30:00.250000'" in hours and "TIMESTAMP '2024-11-29 03:30:00.250000'" in hours
    assert "= true" in sql("P Booleans", "postgresql") and "= false" in sql("P Booleans", "duckdb")
    listed = sql("P List", "duckdb")
    assert listed.startswith("-- reads the customer_id column of in-list files, as warehouse tables:\n--   "
                             "audlang_list_")
    assert '"../lists/printed.csv"' in listed and '`audlang members "P List"`' in listed
    assert str(project) not in listed  # no path of this machine in the output
