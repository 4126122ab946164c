"""The synthetic warehouse for the demo, the tests and the benchmarks (see README.md here).

``generate(target, customers, seed, as_of, progress)`` builds SPEC §4's standard
tables plus ``churn_scores`` in a DuckDB, SQLite, PostgreSQL or other
SQLAlchemy database; ``generate_parquet(folder, …)`` writes the same data as
Parquet files; ``generate_spark(connection, folder, …)`` (or ``generate`` with a
``hive://`` URL and ``parquet_folder``) registers those files as Spark SQL tables.
Same seed, size and as-of date: the same rows, on every engine.

May import SQLAlchemy, DuckDB and numpy; of ours only the engine layer's
``audlang.backends`` (what a URL names) and ``audlang.warehouse.loading``
(the engine-specific loading), so it never asks which engine a target is.
"""

from audlang.datagen.build import DEFAULT_AS_OF, TAGS, Progress, build
from audlang.datagen.schema import TABLES, sqlalchemy_tables
from audlang.datagen.sinks import generate, generate_parquet, generate_spark, register_spark

__all__ = [
    "DEFAULT_AS_OF", "TABLES", "TAGS", "Progress", "build", "generate", "generate_parquet", "generate_spark",
    "register_spark", "sqlalchemy_tables",
]
