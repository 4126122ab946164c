"""Engine differences live in the engine layer only: ``compile/dialects.py``, ``backends.py`` and the
``warehouse`` package (docs/architecture.md). Everywhere else code asks what an engine can do
(``warehouse.traits``) or goes through the membership interface, never which engine it is."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "audlang"
ENGINE_LAYER = {"compile/dialects.py", "backends.py"}
ENGINE_PACKAGE = "warehouse/"
NAMES = {"duckdb", "sqlite", "postgresql", "hive", "databricks", "spark", "snowflake", "bigquery", "trino",
         "mysql", "psycopg", "psycopg2"}
FORBIDDEN = re.compile(r"\b(spark_engine|SPARK_DIALECTS|SPARK_BACKENDS|FILE_BACKENDS|FILE_DIALECTS)\b")


def outside_engine_layer() -> list[Path]:
    return [p for p in sorted(SRC.rglob("*.py"))
            if (rel := p.relative_to(SRC).as_posix()) not in ENGINE_LAYER and not rel.startswith(ENGINE_PACKAGE)]


def _is_dialect_name(node: ast.AST) -> bool:
    """``x.dialect.name``, ``x.get_backend_name()``, ``x.drivername``, ``dialect.driver``."""
    if isinstance(node, ast.Attribute) and node.attr == "name" and isinstance(node.value, ast.Attribute) \
            and node.value.attr == "dialect":
        return True
    if isinstance(node, ast.Attribute) and node.attr in ("drivername", "driver") and isinstance(node.value, ast.Name) \
            and node.value.id in ("dialect", "parsed", "url"):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
        and node.func.attr == "get_backend_name"


def _names_an_engine(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.lower() in NAMES
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_names_an_engine(e) for e in node.elts)
    return False


def engine_branches(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_is_dialect_name(s) for s in sides) or (
                    any(_names_an_engine(s) for s in sides)
                    and any(isinstance(s, (ast.Attribute, ast.Call, ast.Name)) and not _names_an_engine(s)
                            for s in sides) and _mentions_dialect(sides)):
                found.append(f"{path.relative_to(SRC)}:{node.lineno}: {ast.unparse(node)}")
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if FORBIDDEN.search(line):
            found.append(f"{path.relative_to(SRC)}:{lineno}: {line.strip()}")
    return found


def _mentions_dialect(sides: list[ast.AST]) -> bool:
    text = " ".join(ast.unparse(s) for s in sides).lower()
    return any(word in text for word in ("dialect", "backend", "driver", "engine"))


def test_no_engine_branch_outside_the_engine_layer():
    found = [hit for path in outside_engine_layer() for hit in engine_branches(path)]
    assert found == [], "engine branches outside the engine layer:\n" + "\n".join(found)


def test_the_check_finds_each_kind_of_branch(tmp_path):
    """The scan itself: each way of branching on the engine is found (so the test above can fail)."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "if conn.dialect.name == 'duckdb': pass\n"
        "if url.get_backend_name() in ('duckdb', 'sqlite'): pass\n"
        "if warehouse.spark_engine(conn): pass\n"
        "if backend_name != 'postgresql': pass\n"
        "if parsed.drivername == 'postgresql': pass\n"
        "if kind == 'csv': pass\n")
    hits = [h.split(": ", 1)[1] for h in engine_branches_at(sample)]
    assert len(hits) == 5, hits
    assert not any("kind" in h for h in hits)


def engine_branches_at(path: Path) -> list[str]:
    global SRC
    saved, SRC = SRC, path.parent
    try:
        return engine_branches(path)
    finally:
        SRC = saved
