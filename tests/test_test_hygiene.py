"""The tests' own hygiene, read with ``ast`` from every file under tests/:

* no test returns early on some engines (``if engine_name != "duckdb": return``), which passes there having
  checked nothing: a test that applies to fewer engines runs only on those, through the one fixture;
* no test module keeps its own list of the engines to run on (``ENGINES = ["duckdb", "sqlite", "postgresql"]``,
  ``@pytest.mark.parametrize("engine", [...])``, ``{"duckdb": url, "sqlite": url}``): the ``warehouse``
  fixture of conftest.py runs a test on each of helpers.ENGINES, or on those the test picks with
  ``@pytest.mark.parametrize("warehouse", [...], indirect=True)``.

Lists of dialects that include the compile-only ones (Snowflake, BigQuery, Trino) are not engine lists: no
server runs them, so no fixture could.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from helpers import ENGINES, ROOT

TESTS = ROOT / "tests"
#: The engines the ``warehouse`` fixture runs a test on (Spark SQL where the test asks).
RUNNABLE = frozenset({*ENGINES, "spark"})
#: Every engine or dialect name: a condition that names one is about the engine.
NAMES = RUNNABLE | {"hive", "databricks", "snowflake", "bigquery", "trino"}
#: Words that make a variable or attribute name about the engine (engine_name, dialect, warehouse.name...).
WORDS = ("engine", "dialect", "backend", "warehouse")
#: The one home of the engine list: the fixture and the helpers module it reads it from.
HOMES = {TESTS / "conftest.py", TESTS / "helpers.py"}


def python_files() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if "node_modules" not in p.parts and "__pycache__" not in p.parts)


def _own_nodes(node: ast.AST):
    """The nodes of a function's body, not those of functions, lambdas or classes defined inside it."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        yield child
        yield from _own_nodes(child)


def _is_about_the_engine(test: ast.expr) -> bool:
    for node in ast.walk(test):
        if isinstance(node, ast.Name) and any(word in node.id.lower() for word in WORDS):
            return True
        if isinstance(node, ast.Attribute) and any(word in node.attr.lower() for word in WORDS):
            return True
        if isinstance(node, ast.Constant) and node.value in NAMES:
            return True
    return False


def _test_functions(tree: ast.Module):
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            yield node
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            yield from (n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                        and n.name.startswith("test"))


def early_returns(source: str) -> list[tuple[str, int]]:
    """(test, line) of each ``if <about the engine>: ... return`` in a test function's own body."""
    found = []
    for function in _test_functions(ast.parse(source)):
        for node in _own_nodes(function):
            if isinstance(node, ast.If) and _is_about_the_engine(node.test):
                branches = [ast.Module(body=node.body, type_ignores=[]), ast.Module(body=node.orelse, type_ignores=[])]
                if any(isinstance(n, ast.Return) for branch in branches for n in _own_nodes(branch)):
                    found.append((function.name, node.lineno))
    return found


def _engine_name(node: ast.expr) -> str | None:
    """The engine a list element names: ``"duckdb"``, or ``pytest.param("spark", marks=...)``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "param" \
            and node.args:
        node = node.args[0]
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in RUNNABLE:
        return node.value
    return None


def _is_engine_list(node: ast.AST) -> bool:
    """A list, tuple or set of two or more of the runnable engines and nothing else; or a dict keyed by engines
    only, two or more of them helpers.ENGINES (``{"spark": ..., "duckdb": ...}`` is Spark beside the DuckDB it
    is compared with, not a list to run on)."""
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        names = [_engine_name(e) for e in node.elts]
        return len(names) >= 2 and None not in names
    if isinstance(node, ast.Dict):
        names = [_engine_name(k) for k in node.keys if k is not None]  # None: a ** splat
        return None not in names and len(set(names) & set(ENGINES)) >= 2
    return False


def _picks_of_the_fixture(tree: ast.Module) -> set[int]:
    """ids of the value lists of ``parametrize("warehouse", [...], indirect=True)``: how a test picks engines."""
    picks = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "parametrize" \
                and len(node.args) >= 2 and isinstance(node.args[0], ast.Constant) \
                and node.args[0].value == "warehouse" \
                and any(k.arg == "indirect" and isinstance(k.value, ast.Constant) and k.value.value is True
                        for k in node.keywords):
            picks.add(id(node.args[1]))
    return picks


def engine_lists(source: str) -> list[int]:
    """The lines of the engine lists a module keeps (not those through which a test picks the fixture's)."""
    tree = ast.parse(source)
    picks = _picks_of_the_fixture(tree)
    return sorted(node.lineno for node in ast.walk(tree) if _is_engine_list(node) and id(node) not in picks)


def _shown(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_no_test_returns_early_on_some_engines():
    found = [f"{_shown(path)}:{line} {name}" for path in python_files()
             for name, line in early_returns(path.read_text(encoding="utf-8"))]
    assert not found, ("a test returns early on some engines, passing there having checked nothing; run it only "
                       "on the engines it applies to: @pytest.mark.parametrize(\"warehouse\", [...], "
                       f"indirect=True): {found}")


def test_no_module_keeps_its_own_engine_list():
    found = [f"{_shown(path)}:{line}" for path in python_files() if path not in HOMES
             for line in engine_lists(path.read_text(encoding="utf-8"))]
    assert not found, ("an engine list of its own: take the warehouse fixture (conftest.py), which runs on "
                       "helpers.ENGINES, or pick with @pytest.mark.parametrize(\"warehouse\", [...], "
                       f"indirect=True): {found}")


def test_the_homes_hold_the_list():
    """The check above exempts the fixture's own files: they do hold the list."""
    assert any(engine_lists(path.read_text(encoding="utf-8")) for path in HOMES)
    assert len(python_files()) > 40


# -- the checks catch what they are for, and let the rest be -------------------------------------------

@pytest.mark.parametrize("source", [
    'def test_a(engine_name):\n    if engine_name != "duckdb":\n        return\n    assert 1\n',
    'def test_a(engine):\n    if engine == "sqlite":\n        return  # one is enough\n',
    'def test_a(warehouse):\n    if warehouse.name in ("sqlite", "postgresql"):\n        x = 1\n        return\n',
    'def test_a(url):\n    if url.startswith("duckdb"):\n        pass\n    else:\n        return\n',
    'def test_a(d):\n    for x in d:\n        if d.dialect.name != "hive":\n            return\n',
    'class TestA:\n    def test_a(self, backend):\n        if not backend:\n            return\n',
])
def test_an_early_return_on_some_engines_is_found(source):
    assert early_returns(source)


@pytest.mark.parametrize("source", [
    'def test_a(code):\n    if code is None:\n        assert True\n        return\n',
    'def load(engine):\n    if engine.dialect.name == "hive":\n        return\n',  # a helper, not a test
    'def test_a(engine):\n    def run():\n        if engine == "x":\n            return 1\n    if engine == "y":\n'
    '        url = 2\n',
    'def test_a(engine):\n    if engine == "postgresql":\n        url = "p"\n    else:\n        url = "f"\n'
    '    assert url\n',
])
def test_other_returns_are_not_early_returns_on_engines(source):
    assert early_returns(source) == []


@pytest.mark.parametrize("source", [
    'ENGINES = ["duckdb", "sqlite", "postgresql"]\n',
    'ENGINES = ("duckdb", "sqlite", pytest.param("spark", marks=pytest.mark.spark))\n',
    '@pytest.mark.parametrize("engine", ["duckdb", "sqlite"])\ndef test_a(engine):\n    pass\n',
    '@pytest.fixture(params=["duckdb", "postgresql"])\ndef engine_name(request):\n    return request.param\n',
    'def urls(folder):\n    return {"duckdb": f"duckdb:///{folder}", "sqlite": "sqlite://", **more}\n',
    '@pytest.mark.parametrize("warehouse", ["duckdb", "sqlite"])\ndef test_a(warehouse):\n    pass\n',
])
def test_an_engine_list_of_its_own_is_found(source):
    assert engine_lists(source)


@pytest.mark.parametrize("source", [
    '@pytest.mark.parametrize("warehouse", ["duckdb", "sqlite"], indirect=True)\ndef test_a(warehouse):\n'
    '    pass\n',
    'DIALECTS = ["duckdb", "sqlite", "postgresql", "snowflake", "bigquery", "trino", "spark"]\n',
    'for dialect in ("duckdb", "postgresql", "snowflake", "trino"):\n    pass\n',
    'KINDS = ("sqlite", *text_tables.DECLARED)\n',
    'ONE = ["duckdb"]\n',
    'EXT = {"duckdb": ".duckdb", "hive": None}\n',
    'def engines(spark, duck):\n    return {"spark": spark, "duckdb": duck}\n',
])
def test_other_lists_are_not_engine_lists(source):
    assert engine_lists(source) == []
