"""A private, throwaway PostgreSQL cluster from the machine's own binaries (initdb, pg_ctl).

For tests that stop the server, fill its disk or migrate it under load: never the shared
server. The cluster listens on 127.0.0.1 on a free port and is deleted when the block ends.
As root, the server runs as the ``postgres`` system user (PostgreSQL refuses root).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.processes import free_port


def postgres_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin with initdb, or None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


def as_server_user(argv: list[str]) -> list[str]:
    """``argv`` run as the ``postgres`` system user when this process is root (PostgreSQL refuses root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@dataclass
class Cluster:
    bin_dir: Path
    data_dir: Path
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def conninfo(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            as_server_user([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-w", *args]),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir}"
        self._pg_ctl("-o", options, "-l", str(self.data_dir / "server.log"), "start")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-m", mode, "stop")

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-X",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                self.conninfo(database),
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout.strip()


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    """initdb + start a cluster; stopped and deleted afterwards (also when the test fails)."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    parent = Path(tempfile.mkdtemp(prefix="opsconsole-cluster-"))
    os.chmod(parent, 0o755)
    data_dir = parent / "data"
    data_dir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(data_dir, "postgres", "postgres")
    subprocess.run(
        as_server_user([str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres", "-A", "trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    cluster = Cluster(bin_dir=bin_dir, data_dir=data_dir, port=free_port())
    cluster.start()
    try:
        yield cluster
    finally:
        try:
            cluster.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped by the test
        shutil.rmtree(parent, ignore_errors=True)
