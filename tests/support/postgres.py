"""A real PostgreSQL server for the suite: Debian's binaries, a temporary cluster, 127.0.0.1.

One server runs for the whole session (`initdb` takes seconds); each test gets a
database of its own, copied from a migrated template, and dropped after. As
root the server runs as the `postgres` user (initdb and pg_ctl refuse root).
Durability is off (fsync, synchronous commit): the tests prove behaviour, not
crash safety of the disk.

Besides `postgres` (trusted), the cluster has a role `locked` whose password
is LOCKED_PASSWORD, for the tests of wrong credentials.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from support.smtp_server import free_port

REQUIRE_VARIABLE = "PUBLISHER_REQUIRE_POSTGRES"  # set by .ci/run: a missing server fails
LOCKED_ROLE = "locked"
LOCKED_PASSWORD = "right-password"
TEMPLATE = "publisher_template"

HBA = f"""\
local all all trust
host all {LOCKED_ROLE} 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
"""


def binaries() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, else Debian's newest /usr/lib/postgresql/N/bin."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(versions[-1]).parent if versions else None


class PostgresServer:
    """A running cluster on 127.0.0.1:port, and databases made in it for tests."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="publisher-pg-"))
        self.data = self.folder / "data"
        self._names = itertools.count(1)
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        if self._as_root:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")  # fmt: skip
        (self.data / "pg_hba.conf").write_text(HBA, encoding="utf-8")
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        log = str(self.folder / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "-t", "60",
                  "start")  # fmt: skip
        self.admin(f"CREATE ROLE {LOCKED_ROLE} LOGIN PASSWORD '{LOCKED_PASSWORD}'")
        self.admin(f"CREATE DATABASE {TEMPLATE}")
        from publisher.store import open_store

        with open_store(self.url(TEMPLATE)):
            pass  # migrated once; each test's database is a copy of it

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str, user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str, database: str = "postgres") -> list[tuple[object, ...]]:
        """Run *sql* as the superuser, outside any transaction (CREATE DATABASE needs that)."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            cursor = conn.execute(sql.encode("utf-8"))
            return list(cursor.fetchall()) if cursor.description else []

    def create_database(self, *, empty: bool = False) -> str:
        """A new database: a copy of the migrated template, or without a table (*empty*)."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        template = "template0" if empty else TEMPLATE
        self.admin(f"CREATE DATABASE {name} TEMPLATE {template}")
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def terminate(self, database: str) -> int:
        """Kill every connection to *database* but ours, as a network drop would: their count."""
        rows = self.admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        )
        return len(rows)


@contextlib.contextmanager
def running_server() -> Iterator[PostgresServer | str]:
    """A started server, or why there is none (no binaries, or one that would not start)."""
    bin_dir = binaries()
    if bin_dir is None:
        yield "PostgreSQL's initdb and pg_ctl are not installed (Debian's package: postgresql)"
        return
    server = PostgresServer(bin_dir)
    try:
        server.start()
    except (OSError, subprocess.SubprocessError) as err:
        server.stop()
        detail = getattr(err, "stderr", "") or str(err)
        yield f"PostgreSQL did not start: {detail.strip()}"
        return
    try:
        yield server
    finally:
        server.stop()


def append_state_url(site_dir: Path, url: str, secret: str = "5e" * 32) -> None:
    """Point the site at *url*, with the secret file an operator copies to each machine."""
    config = site_dir / "publisher.toml"
    with config.open("a", encoding="utf-8") as handle:
        handle.write(f'\n[state]\nurl = "{url}"\n')
    state = site_dir / ".publisher"
    state.mkdir(mode=0o700, exist_ok=True)
    path = state / "secret"
    path.write_text(secret + "\n", encoding="ascii")
    path.chmod(0o600)
