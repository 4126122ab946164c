"""A throwaway Spark SQL Thrift server on 127.0.0.1, from the ``pyspark`` wheel alone (ENGINES.md).

Used by the ``spark_url`` session fixture (tests/conftest.py) and by
``bench/spark_bench.py``. The wheel carries the whole engine and the Hive Thrift
server jar but not ``sbin/``; ``spark-submit`` starts ``HiveThriftServer2``
directly. Everything the server writes (warehouse, Derby metastore, logs) goes
into one folder, removed by ``stop()``.

Needs Java 17 (Debian's ``openjdk-17-jre-headless``) and ``pip install 'audlang[spark]'``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class SparkServer:
    """A running Thrift server: ``url`` is its SQLAlchemy URL (PyHive's ``hive://`` dialect)."""

    def __init__(self, process: subprocess.Popen, port: int, folder: Path, log: Path, own_folder: bool):
        self.process = process
        self.port = port
        self.folder = folder
        self.log = log
        self._own_folder = own_folder

    @property
    def url(self) -> str:
        return f"hive://127.0.0.1:{self.port}/default"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            # The process group: spark-submit's JVM and, with local-cluster, its executor JVMs.
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=10)
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _java_home() -> str | None:
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    java = shutil.which("java")
    if java is None:
        return None
    return str(Path(java).resolve().parents[1])


def start(master: str = "local[2]", folder: str | Path | None = None, port: int | None = None,
          timeout: float = 240.0, driver_memory: str = "2g", conf: dict[str, str] | None = None) -> SparkServer:
    """Start ``HiveThriftServer2`` and wait until a client can open a session and run a query.

    ``master``: ``local[2]`` (one process) or ``local-cluster[2,1,1024]`` (a driver and two
    executor processes, so data really moves between processes).
    """
    own = folder is None
    folder = Path(tempfile.mkdtemp(prefix="audlang-spark-")) if folder is None else Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    home = spark_home()
    log = folder / "thriftserver.log"
    env = dict(os.environ, SPARK_HOME=str(home), SPARK_LOCAL_IP="127.0.0.1", SPARK_LOG_DIR=str(folder),
               PYSPARK_PYTHON=os.environ.get("PYSPARK_PYTHON", "python3"))
    java_home = _java_home()
    if java_home:
        env["JAVA_HOME"] = java_home
    settings = {
        "spark.ui.enabled": "false",
        "spark.sql.warehouse.dir": str(folder / "warehouse"),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={folder}",
        "spark.driver.memory": driver_memory,
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.local.dir": str(folder / "tmp"),
        # Small data: a handful of shuffle partitions instead of 200 keeps each query quick.
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.adaptive.enabled": "true",
        **(conf or {}),
    }
    command = [str(home / "bin" / "spark-submit"), "--class",
               "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2", "--master", master]
    for key, value in settings.items():
        command += ["--conf", f"{key}={value}"]
    command += ["--hiveconf", f"hive.server2.thrift.port={port}",
                "--hiveconf", "hive.server2.thrift.bind.host=127.0.0.1", "spark-internal"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    server = SparkServer(process, port, folder, log, own)
    try:
        _wait(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait(server: SparkServer, timeout: float) -> None:
    from pyhive import hive

    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the Spark Thrift server exited ({server.process.returncode}):\n{server.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1):
                pass
        except OSError as error:
            last_error = error
            time.sleep(1)
            continue
        try:
            connection = hive.connect(host="127.0.0.1", port=server.port)
            try:
                cursor = connection.cursor()
                cursor.execute("SELECT 1")
                cursor.fetchall()
                return
            finally:
                connection.close()
        except Exception as error:  # noqa: BLE001 - not ready yet, whatever the driver says
            last_error = error
            time.sleep(1)
    raise RuntimeError(f"the Spark Thrift server did not answer within {timeout:.0f} s ({last_error}):\n"
                       f"{server.log_tail()}")


if __name__ == "__main__":  # python tests/spark_server.py [MASTER]: a server to try things by hand
    import sys

    started = time.monotonic()
    running = start(sys.argv[1] if len(sys.argv) > 1 else "local[2]")
    print(f"{running.url}  (up in {time.monotonic() - started:.1f} s; folder {running.folder}; Ctrl-C stops)")
    try:
        running.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
