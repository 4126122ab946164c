"""Shared fixtures and hooks (only: plain helpers are in helpers.py): an inline-project writer (dbt's
functional-test style), real PostgreSQL and Spark SQL servers for the session, and ``warehouse``: the
engine a test runs on, each of them in turn. The session's cache folder (``AUDLANG_CACHE_DIR``: where
`audlang members` keeps its last queries) is a temporary one, never the user's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import ENGINES, SPARK_MASTER, Warehouse, file_databases, postgresql_bindir, server_databases


@pytest.fixture(scope="session", autouse=True)
def private_cache_folder(tmp_path_factory):
    """`audlang members` keeps its last queries in a folder of the session's (subprocesses inherit it)."""
    previous = os.environ.get("AUDLANG_CACHE_DIR")
    os.environ["AUDLANG_CACHE_DIR"] = str(tmp_path_factory.mktemp("audlang-cache"))
    yield
    if previous is None:
        os.environ.pop("AUDLANG_CACHE_DIR", None)
    else:
        os.environ["AUDLANG_CACHE_DIR"] = previous


@pytest.fixture
def write_project(tmp_path):
    """Write ``{relative path: text}`` into a fresh folder and return it."""

    def write(files: dict[str, str], config: str | None = "") -> Path:
        if config is not None:
            (tmp_path / "audlang.toml").write_text(config)
        for name, text in files.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return tmp_path

    return write


# -- a real PostgreSQL server for the whole test session ------------------------------------------

@pytest.fixture(scope="session")
def postgresql_url():
    """A throwaway PostgreSQL server on 127.0.0.1 for this session; yields its SQLAlchemy URL.

    initdb and pg_ctl refuse to run as root, so as root they run as the ``postgres``
    user (``runuser``) in a temporary folder that user owns. The server is stopped
    and its folder removed at the end of the session.
    """
    import shutil
    import socket
    import subprocess
    import tempfile

    bindir = postgresql_bindir()
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    folder = Path(tempfile.mkdtemp(prefix="audlang-pg-"))
    if as_root:
        shutil.chown(folder, "postgres", "postgres")
    data = folder / "data"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def run(*args: str) -> None:
        result = subprocess.run([*prefix, *args], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"{' '.join(args[:1])} failed: {result.stderr or result.stdout}")

    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
        "--no-sync", "--locale=C")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "server.log"), "-w", "start")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgresql_database(postgresql_url):
    """A factory of fresh databases on the session's server, so test modules never share tables."""
    import sqlalchemy as sa

    admin = sa.create_engine(postgresql_url, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def create(name: str) -> str:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return postgresql_url.rsplit("/", 1)[0] + f"/{name}"

    yield create
    admin.dispose()


# -- a real Spark SQL Thrift server for the whole test session (the Spark leg, marker `spark`) -----

@pytest.fixture(scope="session")
def spark_url():
    """A Spark Thrift server on 127.0.0.1 for this session; yields its ``hive://`` URL.

    ``local-cluster[2,1,1024]``: a driver and two executor processes, so data really moves
    between processes. Started from the ``pyspark`` wheel with ``spark-submit`` (up in about
    a minute and a half on two cores), stopped at the end of the session. Needs Java 17
    (.ci/run installs Debian's openjdk-17-jre-headless) and ``pip install -e '.[test,spark]'``.
    ``AUDLANG_SPARK_URL=hive://127.0.0.1:PORT/default`` uses a server already running instead
    (``python tests/spark_server.py`` starts one by hand).
    """
    import shutil

    import spark_server

    if os.environ.get("AUDLANG_SPARK_URL"):
        yield os.environ["AUDLANG_SPARK_URL"]
        return

    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.fail("Java is needed for the Spark tests: apt-get install openjdk-17-jre-headless (.ci/run does)")
    server = spark_server.start(SPARK_MASTER)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def spark_database(spark_url):
    """A factory of fresh Spark databases (schemas) on the session's server, so test modules never share tables."""
    import sqlalchemy as sa

    admin = sa.create_engine(spark_url)

    def create(name: str) -> str:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} CASCADE")
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        return spark_url.rsplit("/", 1)[0] + f"/{name}"

    yield create
    admin.dispose()


# -- two workers (pytest -n 2 --dist loadgroup, as the README runs it) -------------------------------

def pytest_collection_modifyitems(config, items):
    """The Spark leg is one group, so one worker starts the one Spark server and runs all of it; every
    other test is grouped with its module, whose module-scoped fixtures are then made once."""
    for item in items:
        group = "spark" if item.get_closest_marker("spark") else item.module.__name__
        item.add_marker(pytest.mark.xdist_group(group))


# -- the engine under test ------------------------------------------------------------------------

@pytest.fixture(scope="module", params=ENGINES)
def warehouse(request, tmp_path_factory) -> Warehouse:
    """The engine a test runs on: each of helpers.ENGINES in turn (DuckDB, SQLite, PostgreSQL), unless the
    test picks with ``@pytest.mark.parametrize("warehouse", [...], indirect=True)`` (helpers.WITH_SPARK
    adds Spark SQL, marker ``spark``). A ``helpers.Warehouse``: the engine's ``name``, ``url`` (a fresh
    empty database of the module's on that engine) and ``new_url()`` (another, empty or a copy).

    Module-scoped, so a module's fixtures can fill one database per engine once for all its tests; the
    servers start only for a test that runs on them.
    """
    name = request.param
    if name in ("duckdb", "sqlite"):
        make = file_databases(name, tmp_path_factory.mktemp(f"warehouse-{name}"))
    elif name == "postgresql":
        make = server_databases(name, request.getfixturevalue("postgresql_database"),
                                request.getfixturevalue("postgresql_url"))
    elif name == "spark":
        make = server_databases(name, request.getfixturevalue("spark_database"), None)
    else:
        pytest.fail(f"the warehouse fixture knows no engine {name!r}")
    return Warehouse(name, make)
