"""The warehouse connection reads tables, never files: a schema mapping that names a file is an error
at validate, and DuckDB and Spark refuse to read files through their SQL even if one got through."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from audlang import warehouse
from audlang.cli import cli
from audlang.diagnostics import AudlangError


@pytest.fixture
def outside_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("outside") / "secret.csv"
    path.write_text("customer_id,score\nSECRET_ROW,7\n")
    return path


@pytest.mark.parametrize("source", ["{path}", "csv.`{path}`", "read_csv('{path}')", "a.b.c.d", "x;DROP TABLE y"])
def test_a_mapping_that_names_a_file_is_refused_at_validate(write_project, outside_csv, source):
    source = source.format(path=outside_csv)
    root = write_project({"m.aud": f'table churn_scores from "{source}" <\n  churn_score number = "score"\n>\n'
                                   'segment "X" < churn_score > 0 >\n'})
    result = CliRunner().invoke(cli, ["--project", str(root), "validate"], catch_exceptions=False)
    assert result.exit_code == 1
    assert "m.aud:1:1: error[E113]" in result.output and "is not a table name" in result.output


def test_ordinary_table_names_still_map(write_project):
    root = write_project({"m.aud": 'table churn_scores from "analytics-prod.ml.churn_scores_v2" <\n'
                                   '  churn_score number = "score"\n>\nsegment "X" < churn_score > 0 >\n'})
    result = CliRunner().invoke(cli, ["--project", str(root), "validate"], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_duckdb_reads_no_file_through_sql(tmp_path, outside_csv):
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    sa.create_engine(url).dispose()
    engine = warehouse.connect(url, must_exist=False)
    for query in (f'SELECT * FROM "{outside_csv}"', f"SELECT * FROM read_csv('{outside_csv}')",
                  "SELECT * FROM read_text('/etc/hostname')"):
        with pytest.raises(AudlangError) as caught, warehouse.errors_translated(url), engine.connect() as conn:
            conn.execute(sa.text(query)).all()
        assert "disabled by configuration" in caught.value.diagnostics[0].message
    with engine.connect() as conn:  # the database itself is untouched
        assert conn.execute(sa.text("SELECT 42")).scalar() == 42


@pytest.mark.spark
def test_spark_reads_no_file_through_sql(spark_database, outside_csv):
    url = spark_database("nofiles")
    engine = warehouse.connect(url)
    with pytest.raises(AudlangError) as caught, warehouse.errors_translated(url), engine.connect() as conn:
        conn.execute(sa.text(f"SELECT * FROM csv.`{outside_csv}`")).all()
    # without spark.sql.runSQLOnFiles=false, the query returns the file's rows
    assert "SECRET_ROW" not in caught.value.diagnostics[0].message
    assert "missing from the warehouse" in caught.value.diagnostics[0].message
