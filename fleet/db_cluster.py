"""A throwaway PostgreSQL cluster for the tests and the bench: ``initdb`` and ``pg_ctl`` from the
Debian ``postgresql`` package (scripts/setup.sh installs it) in a temporary directory, reached
through a Unix socket only (no port to collide with), removed on ``stop``.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user that the
Debian package creates (``nobody`` if there is none).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

PORT = 5432  # names the socket file in our own directory: never in use by anyone else


def binaries() -> Path | None:
    """The directory with ``initdb``, ``pg_ctl`` and ``postgres``; None when not installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name)
                   if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is not None and shutil.which("pg_ctl") is not None:
        return Path(initdb).resolve().parent
    return None


class ThrowawayCluster:
    """One PostgreSQL server of its own; ``url(db)`` for FleetStore, ``create_database`` per test.

    ``durable=False`` (tests) turns fsync off: a crash loses the cluster, which nobody keeps."""

    def __init__(self, *, durable: bool = False) -> None:
        bindir = binaries()
        if bindir is None:
            raise FileNotFoundError("PostgreSQL is not installed (Debian: apt-get install "
                                    "postgresql; scripts/setup.sh does it)")
        self._bin = bindir
        self._durable = durable
        self._root = Path(tempfile.mkdtemp(prefix="kiosk-pg-"))
        self.data = self._root / "data"
        self.socket_dir = self._root / "run"
        self.log = self._root / "server.log"
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "postgres"
            try:
                entry = pwd.getpwnam(self._user)
            except KeyError:
                self._user = "nobody"
                entry = pwd.getpwnam(self._user)
            self._root.chmod(0o755)
            for path in (self.data, self.socket_dir):
                path.mkdir(mode=0o700)
                os.chown(path, entry.pw_uid, entry.pw_gid)
            self.log.touch()
            os.chown(self.log, entry.pw_uid, entry.pw_gid)
        else:
            self.socket_dir.mkdir(mode=0o700)

    def _run(self, *args: str) -> None:
        subprocess.run([str(self._bin / args[0]), *args[1:]], check=True, user=self._user,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def start(self) -> ThrowawayCluster:
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                      "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions")
        self.start_server()
        return self

    def start_server(self) -> None:
        options = [f"-c listen_addresses='' -c unix_socket_directories='{self.socket_dir}'",
                   f"-p {PORT} -c max_connections=200"]
        if not self._durable:
            options.append("-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", " ".join(options), "start")

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server (``immediate``: as a crash would), keeping its data."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}&port={PORT}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg  # noqa: PLC0415

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.stop_server("immediate")
        shutil.rmtree(self._root, ignore_errors=True)


@contextlib.contextmanager
def throwaway_cluster(*, durable: bool = False) -> Iterator[ThrowawayCluster]:
    cluster = ThrowawayCluster(durable=durable)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
