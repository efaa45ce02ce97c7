"""A throw-away PostgreSQL + PostGIS server for the tests of the team store.

``initdb`` into a temporary folder, ``postgres`` on a free loopback port, password
authentication over TCP (so a wrong password can be tested), stopped and removed at the end.
PostgreSQL refuses to run as root, so under root the server runs as the ``postgres`` user
the Debian package creates.  Missing packages skip (and fail under CI=true, as real data does).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "postgres"
PASSWORD = "s3cret-pw"  # a test server's: the tests check it is never printed
TEMPLATE = "satdelta_template"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """One running server; :meth:`new_database` hands out empty PostGIS databases."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="satdelta-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as_user: list[str] = []
        self._count = 0
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self._as_user:
            shutil.chown(pwfile, "postgres", "postgres")
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--pwfile",
            str(pwfile),
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        pwfile.unlink()
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        self.admin("CREATE DATABASE " + TEMPLATE)
        self.admin("CREATE EXTENSION postgis", database=TEMPLATE)

    def _run(self, *argv: str) -> str:
        done = subprocess.run(
            [*self._as_user, *argv], capture_output=True, text=True, timeout=120, cwd=self.root
        )
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def admin(self, sql: str, *, database: str = "postgres") -> str:
        """Run ``sql`` as the superuser through the Unix socket (no password)."""
        return self._run(
            str(PG_BIN / "psql"),
            "-h",
            str(self.root),
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-qAtc",
            sql,
        )

    def url(self, database: str, *, user: str = SUPERUSER, password: str | None = PASSWORD) -> str:
        secret = f":{password}" if password else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{database}"

    def new_database(self, *, postgis: bool = True) -> str:
        """Name of a new empty database (with the PostGIS extension unless ``postgis`` is False)."""
        self._count += 1
        name = f"store_{self._count}"
        template = TEMPLATE if postgis else "template1"
        self.admin(f"CREATE DATABASE {name} TEMPLATE {template}")
        return name

    def add_user(self, name: str, password: str) -> None:
        self.admin(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")

    def stop(self) -> None:
        try:
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def postgres_available() -> bool:
    """True when the Debian PostgreSQL 15 and PostGIS packages are installed."""
    return (PG_BIN / "initdb").exists() and any(
        Path("/usr/share/postgresql/15/extension").glob("postgis--*.sql")
    )
