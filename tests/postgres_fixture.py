"""A real PostgreSQL server for the tests, started from Debian's (or any) PostgreSQL binaries into
a temporary directory: initdb, then pg_ctl on a free loopback port with its unix socket in that
directory; stopped and removed at teardown. No system service is touched.

PostgreSQL refuses to run as root. As root (CI), the server runs as an unprivileged user (the
`postgres` account the Debian package creates, else `nobody`) in a directory that user owns.

`.ci/install-services` installs PostgreSQL on a fresh Debian machine. Without it the tests that
need the server skip, saying so.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional

import pytest

_STARTUP = 120.0  # seconds; a loaded 2-core machine can be slow to start and checkpoint


def pg_bindir() -> Optional[str]:
    """The directory holding initdb, pg_ctl and postgres, or None."""
    candidates: List[str] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(os.environ["PG_BINDIR"])
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=30)
            candidates.append(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    # Debian keeps the server binaries out of PATH, one directory per major version.
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
    for name in ("pg_ctl", "initdb"):
        found = shutil.which(name)
        if found:
            candidates.append(os.path.dirname(os.path.realpath(found)))
    for d in candidates:
        if d and all(os.access(os.path.join(d, b), os.X_OK) for b in ("initdb", "pg_ctl", "postgres")):
            return d
    return None


def _version(path: str) -> float:
    try:
        return float(path.split("/")[-2])
    except ValueError:
        return 0.0


def _unprivileged_user() -> Optional[pwd.struct_passwd]:
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    bindir: str
    root: str
    port: int
    user: str  # the database superuser (the OS user the server runs as)
    log: str

    @property
    def socket_dir(self) -> str:
        return self.root

    def url(self, dbname: str = "postgres") -> str:
        """A libpq URL over TCP on loopback (trust authentication: a throwaway server)."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True, connect_timeout=30) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _run_as(argv: List[str], user: Optional[pwd.struct_passwd], env: Dict[str, str], timeout: float) -> None:
    kwargs: dict = {}
    if user is not None:
        kwargs = dict(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, cwd="/", **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def start_postgres() -> Iterator[PostgresServer]:
    """Generator for a fixture: starts a server, yields it, stops it and removes its files."""
    bindir = pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (no initdb/pg_ctl/postgres found via pg_config --bindir, "
                    "/usr/lib/postgresql/*/bin or PATH): run .ci/install-services")
    run_as: Optional[pwd.struct_passwd] = None
    if os.geteuid() == 0:
        run_as = _unprivileged_user()
        if run_as is None:
            pytest.skip("running as root, and PostgreSQL refuses to run as root: no unprivileged user "
                        "(postgres or nobody) to run it as")
    db_user = run_as.pw_name if run_as is not None else pwd.getpwuid(os.geteuid()).pw_name
    # Not pytest's tmp_path: as root that is under a 0700 directory the server's user cannot enter.
    root = tempfile.mkdtemp(prefix="quorate-pg-")
    if run_as is not None:
        os.chown(root, run_as.pw_uid, run_as.pw_gid)
    data = os.path.join(root, "data")
    log = os.path.join(root, "server.log")
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "LANG": "C", "LC_ALL": "C", "HOME": root, "PGTZ": "UTC"}
    port = _free_port()
    server = PostgresServer(bindir=bindir, root=root, port=port, user=db_user, log=log)
    started = False
    try:
        _run_as([os.path.join(bindir, "initdb"), "-D", data, "-U", db_user, "--auth=trust", "-E", "UTF8",
                 "--no-sync", "--locale=C"], run_as, env, _STARTUP)
        options = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50")
        _run_as([os.path.join(bindir, "pg_ctl"), "-D", data, "-l", log, "-o", options, "-w", "-t",
                 str(int(_STARTUP)), "start"], run_as, env, _STARTUP + 30)
        started = True
        _wait_accepting(server)
        yield server
    finally:
        if started:
            try:
                _run_as([os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "-t", "60", "stop"],
                        run_as, env, 90)
            except Exception as e:  # pragma: no cover - report, then still remove the files
                print(f"stopping the test PostgreSQL failed: {e}")
        shutil.rmtree(root, ignore_errors=True)


def _wait_accepting(server: PostgresServer) -> None:
    import psycopg

    deadline = time.monotonic() + _STARTUP
    while True:
        try:
            with psycopg.connect(server.url(), connect_timeout=10) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as e:
            if time.monotonic() > deadline:
                with open(server.log) as f:
                    raise RuntimeError(f"PostgreSQL did not accept connections within {_STARTUP} s:\n{f.read()}") from e
            time.sleep(0.2)


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the test module, stopped after its last test (skips when
    PostgreSQL or psycopg is missing)."""
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'quorate[test]'")
    yield from start_postgres()
