"""The examples in examples/ run as real services: each member its own process (its own
quorate.Node, peers on loopback ports, its own data_dir). Each test starts a group, waits for a
leader, kills it with SIGKILL (or stops it with SIGTERM, or freezes it with SIGSTOP) and checks
that the leader-only work moved to another process and never ran in two processes, or twice in
one, under the same fencing token. Every wait is bounded, generously (a loaded 2-core machine),
and every process is killed at teardown however the test ends."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar

import pytest

from postgres_fixture import postgres_server  # noqa: F401  (a fixture)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ELECT = 60.0  # seconds an election, a failover or a process start may take on a loaded machine
STOP = 30.0  # seconds a SIGTERM-ed process may take to exit
IDS = ("a", "b", "c")

T = TypeVar("T")


def free_ports(count: int) -> List[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def json_lines(path: Path) -> List[Dict[str, Any]]:
    """The JSON objects of a file other processes are still appending to (a partial last line,
    and any line that is not JSON, such as a log message, is skipped)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


class Service:
    """One example process; its stdout and stderr go to `log`."""

    def __init__(self, node_id: str, argv: Sequence[str], log: Path, env: Optional[Dict[str, str]] = None) -> None:
        self.node_id = node_id
        self.argv = list(argv)
        self.log = log
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.popen: Optional[subprocess.Popen] = None

    def start(self) -> "Service":
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                          cwd=str(ROOT), stdin=subprocess.DEVNULL)
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def records(self) -> List[Dict[str, Any]]:
        return json_lines(self.log)

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        assert self.popen is not None
        self.popen.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL (a stopped process dies too) and reap it."""
        if self.running():
            assert self.popen is not None
            self.popen.kill()
        if self.popen is not None:
            try:
                self.popen.wait(STOP)
            except subprocess.TimeoutExpired:  # pragma: no cover - the kernel did not reap it
                pass

    def stopped_by_signal(self) -> bool:
        """True once the process is in the stopped state (SIGSTOP)."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] == "T"
        except OSError:
            return False


@pytest.fixture
def services() -> Iterator[List[Service]]:
    """Every Service a test starts goes here; all are SIGKILLed at teardown, whatever happened."""
    started: List[Service] = []
    try:
        yield started
    finally:
        for s in started:
            s.kill()


def wait_for(condition: Callable[[], Optional[T]], timeout: float, what: str,
             diagnose: Callable[[], str] = lambda: "") -> T:
    """Polls `condition` until it returns something truthy, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{diagnose()}")
        time.sleep(0.05)


def logs_of(group: Dict[str, Service]) -> Callable[[], str]:
    def show() -> str:
        parts = []
        for s in group.values():
            text = s.log.read_text(errors="replace") if s.log.exists() else ""
            parts.append(f"--- {s.node_id} (pid {s.popen.pid if s.popen else None}, "
                         f"exit {s.popen.poll() if s.popen else None}):\n{text[-3000:]}")
        return "\n".join(parts)

    return show


def member_args(members: Dict[str, str]) -> List[str]:
    return [arg for i, a in members.items() for arg in ("--member", f"{i}={a}")]


def check_work(records: List[Dict[str, Any]]) -> None:
    """The leader-only work never ran in two processes under one fencing token, nor twice in one
    process under one token (two jobs of one leadership would both count seq from 1)."""
    owner: Dict[int, str] = {}
    seen = set()
    for r in records:
        token, node = r["fencing_token"], r["node"]
        assert owner.setdefault(token, node) == node, f"token {token} used by {owner[token]} and {node}"
        assert (token, r["seq"]) not in seen, f"run {r['seq']} of token {token} twice: {r}"
        seen.add((token, r["seq"]))


def work_after(records: List[Dict[str, Any]], not_node: str, above: int) -> Optional[Dict[str, Any]]:
    """The first run by another process than `not_node` with a token above `above`."""
    return next((r for r in records if r["node"] != not_node and r["fencing_token"] > above), None)


# ----- (a) an asyncio service with a leader-only periodic job ------------------------------------


def start_asyncio_group(tmp_path: Path, services: List[Service]) -> Tuple[Dict[str, Service], Path]:
    ports = free_ports(len(IDS))
    members = {i: f"127.0.0.1:{p}" for i, p in zip(IDS, ports)}
    work = tmp_path / "work.jsonl"
    group = {}
    for i in IDS:
        argv = [sys.executable, str(EXAMPLES / "asyncio_service" / "service.py"), "--id", i, *member_args(members),
                "--data-dir", str(tmp_path / i), "--work-log", str(work), "--every", "0.1"]
        group[i] = Service(i, argv, tmp_path / f"{i}.log").start()
        services.append(group[i])
    return group, work


def test_asyncio_service_the_job_moves_when_the_leader_is_killed(tmp_path, services):
    group, work = start_asyncio_group(tmp_path, services)
    diagnose = logs_of(group)
    wait_for(lambda: len(json_lines(work)) >= 3, ELECT, "three runs of the leader's job", diagnose)
    latest = json_lines(work)[-1]  # the leader now (a loaded machine may have re-elected meanwhile)
    leader, token = latest["node"], latest["fencing_token"]

    group[leader].kill()  # SIGKILL
    killed_at = time.monotonic()
    moved = wait_for(lambda: work_after(json_lines(work), leader, token), ELECT, "the job on another process", diagnose)
    wait_for(lambda: sum(r["node"] == moved["node"] for r in json_lines(work)) >= 3, ELECT, "three runs", diagnose)

    records = json_lines(work)
    check_work(records)
    assert all(r["at"] <= killed_at for r in records if r["node"] == leader), "the killed process ran on"
    assert {r["node"] for r in records if r["at"] > killed_at} == {moved["node"]}


def test_asyncio_service_sigterm_exits_0_promptly_and_hands_the_job_over(tmp_path, services):
    group, work = start_asyncio_group(tmp_path, services)
    diagnose = logs_of(group)

    def follows(i: str, who: str, since: float = 0.0) -> bool:
        """Process `i` has followed `who` since `since` (and, with no `since`, follows it now)."""
        changes = [r for r in group[i].records() if r.get("event") == "leader_changed" and r["at"] > since]
        return any(r["leader"] == who for r in changes) if since else bool(changes) and changes[-1]["leader"] == who

    def leading_and_followed() -> Optional[Tuple[str, int]]:
        runs = json_lines(work)
        if not runs:
            return None
        leader = runs[-1]["node"]
        if all(follows(i, leader) for i in IDS if i != leader):
            return leader, runs[-1]["fencing_token"]
        return None

    leader, token = wait_for(leading_and_followed, ELECT, "a leader running its job, followed by the others",
                             diagnose)
    others = [i for i in IDS if i != leader]

    sent = time.monotonic()
    group[leader].signal(signal.SIGTERM)
    code = group[leader].popen.wait(STOP)  # type: ignore[union-attr]
    took = time.monotonic() - sent
    assert code == 0, diagnose()
    assert took < STOP
    own = group[leader].records()
    assert any(r.get("event") == "demoted" and r["reason"] == "stopped" for r in own), own
    assert own[-1] == {"event": "exited", "node": leader}, own[-1]

    # The others see the leader go, and follow a new one of themselves (a graceful hand-off).
    successor = wait_for(lambda: next((r["node"] for r in json_lines(work) if r["fencing_token"] > token), None),
                         ELECT, "the job on another process", diagnose)
    assert successor in others
    wait_for(lambda: all(follows(i, successor, sent) for i in others), ELECT,
             f"both remaining processes following {successor}", diagnose)
    records = json_lines(work)
    check_work(records)
    assert all(r["at"] <= sent + took for r in records if r["node"] == leader)


# ----- (b) a FastAPI app under uvicorn -----------------------------------------------------------


def http_json(port: int, path: str) -> Optional[Tuple[int, Dict[str, Any]]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")
    except (OSError, ValueError):
        return None


def agreed_leader(ports: Dict[str, int]) -> Optional[Dict[str, Any]]:
    """/leader of the process that leads, once every process in `ports` names it."""
    answers = {i: http_json(p, "/leader") for i, p in ports.items()}
    if any(a is None or a[0] != 200 for a in answers.values()):
        return None
    leaders = {a[1]["leader"] for a in answers.values()}  # type: ignore[index]
    if len(leaders) != 1 or None in leaders:
        return None
    (leader,) = leaders
    if leader not in answers or not answers[leader][1]["is_leader"]:  # type: ignore[index]
        return None
    return answers[leader][1]  # type: ignore[index]


def test_fastapi_app_serves_health_and_leader_and_the_work_moves_on_sigkill(tmp_path, services):
    pytest.importorskip("fastapi", reason="fastapi is not installed: pip install 'quorate[examples]'")
    pytest.importorskip("uvicorn", reason="uvicorn is not installed: pip install 'quorate[examples]'")
    ports = free_ports(2 * len(IDS))
    members = ",".join(f"{i}=127.0.0.1:{p}" for i, p in zip(IDS, ports))
    http = dict(zip(IDS, ports[len(IDS):]))
    work = tmp_path / "work.jsonl"
    group = {}
    for i in IDS:
        argv = [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(EXAMPLES / "fastapi_app"),
                "--host", "127.0.0.1", "--port", str(http[i])]
        env = {"QUORATE_ID": i, "QUORATE_MEMBERS": members, "QUORATE_DATA_DIR": str(tmp_path / i),
               "WORK_LOG": str(work), "WORK_EVERY": "0.1"}
        group[i] = Service(i, argv, tmp_path / f"{i}.log", env).start()
        services.append(group[i])
    diagnose = logs_of(group)

    wait_for(lambda: all((http_json(p, "/healthz") or (0,))[0] == 200 for p in http.values()), ELECT,
             "/healthz 200 on every process", diagnose)
    first = wait_for(lambda: agreed_leader(http), ELECT, "one leader named by every /leader", diagnose)
    leader, token = first["node"], first["fencing_token"]
    assert first["leader"] == leader and token is not None
    wait_for(lambda: sum(r["node"] == leader for r in json_lines(work)) >= 3, ELECT, "the leader's work", diagnose)
    for i in IDS:
        status, body = http_json(http[i], "/healthz")  # type: ignore[misc]
        assert status == 200 and body["ok"] and body["leader"] is not None, body
    # The leader now (a loaded machine may have re-elected since).
    current = wait_for(lambda: agreed_leader(http), ELECT, "one leader named by every /leader", diagnose)
    leader, token = current["node"], current["fencing_token"]

    group[leader].kill()  # SIGKILL
    killed_at = time.monotonic()
    survivors = {i: p for i, p in http.items() if i != leader}
    second = wait_for(lambda: (lambda a: a if a and a["node"] != leader else None)(agreed_leader(survivors)),
                      ELECT, "a new leader named by both survivors", diagnose)
    assert second["fencing_token"] > token
    moved = wait_for(lambda: work_after(json_lines(work), leader, token), ELECT, "the work on the new leader", diagnose)
    assert moved["node"] == second["node"]
    records = json_lines(work)
    check_work(records)
    assert all(r["at"] <= killed_at for r in records if r["node"] == leader)

    # uvicorn's graceful shutdown runs the lifespan's exit, which stops the node.
    follower = next(i for i in survivors if i != second["node"])
    group[follower].signal(signal.SIGTERM)
    code = group[follower].popen.wait(STOP)  # type: ignore[union-attr]
    # uvicorn re-raises the signal after a clean shutdown (exit status -SIGTERM) in recent
    # versions, and exits 0 in older ones.
    assert code in (0, -signal.SIGTERM), diagnose()
    assert "Application shutdown complete" in group[follower].log.read_text(), diagnose()


# ----- (c) fenced writes to PostgreSQL and SQLite ------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    server = request.getfixturevalue("postgres_server")
    return server.create_database(f"ledger_{uuid.uuid4().hex[:12]}")


def read_ledger(url: str) -> Tuple[List[Dict[str, Any]], Optional[int]]:
    """The ledger rows in commit order, and the fence's token."""
    query = "SELECT id, token, node, seq FROM ledger ORDER BY id"
    fence = "SELECT token FROM fence WHERE resource = 'ledger'"
    try:
        if url.startswith("sqlite:///"):
            conn = sqlite3.connect(url[len("sqlite:///"):], timeout=30)
            try:
                rows, top = conn.execute(query).fetchall(), conn.execute(fence).fetchone()
            finally:
                conn.close()
        else:
            import psycopg

            with psycopg.connect(url, connect_timeout=30) as pg:
                rows, top = pg.execute(query).fetchall(), pg.execute(fence).fetchone()
    except (sqlite3.OperationalError, ImportError) as e:
        if "no such table" in str(e):
            return [], None
        raise
    except Exception as e:  # psycopg.errors.UndefinedTable before the workers made the tables
        if type(e).__name__ == "UndefinedTable":
            return [], None
        raise
    return [{"id": r[0], "fencing_token": r[1], "node": r[2], "seq": r[3]} for r in rows], (top[0] if top else None)


def check_ledger(url: str) -> List[Dict[str, Any]]:
    rows, top = read_ledger(url)
    check_work(rows)
    tokens = [r["fencing_token"] for r in rows]
    assert tokens == sorted(tokens), f"a lower token committed after a higher one: {tokens}"
    assert top == max(tokens), (top, tokens)
    return rows


def start_workers(tmp_path: Path, url: str, services: List[Service], *extra: str) -> Dict[str, Service]:
    ports = free_ports(len(IDS))
    members = {i: f"127.0.0.1:{p}" for i, p in zip(IDS, ports)}
    group = {}
    for i in IDS:
        argv = [sys.executable, str(EXAMPLES / "fenced_sql" / "worker.py"), "--db", url, "--id", i,
                *member_args(members), "--data-dir", str(tmp_path / i), "--every", "0.1", *extra]
        group[i] = Service(i, argv, tmp_path / f"{i}.log").start()
        services.append(group[i])
    return group


def test_fenced_sql_writes_move_on_sigkill_and_the_token_only_grows(tmp_path, services, database):
    group = start_workers(tmp_path, database, services)
    diagnose = logs_of(group)
    wait_for(lambda: len(read_ledger(database)[0]) >= 3, ELECT, "three writes", diagnose)
    latest = read_ledger(database)[0][-1]  # the leader now
    leader, token = latest["node"], latest["fencing_token"]

    group[leader].kill()  # SIGKILL
    moved = wait_for(lambda: work_after(read_ledger(database)[0], leader, token), ELECT,
                     "a write by another process", diagnose)
    wait_for(lambda: sum(r["node"] == moved["node"] for r in read_ledger(database)[0]) >= 3, ELECT,
             "three writes by the new leader", diagnose)
    rows = check_ledger(database)
    assert {r["node"] for r in rows if r["id"] > moved["id"]} == {moved["node"]}
    assert not any("refused" in r for s in group.values() for r in s.records())


def test_fenced_sql_refuses_the_late_write_of_a_frozen_leader(tmp_path, services, database):
    freeze = tmp_path / "freeze"
    group = start_workers(tmp_path, database, services, "--freeze-file", str(freeze))
    diagnose = logs_of(group)
    wait_for(lambda: read_ledger(database)[0], ELECT, "the first leader's write", diagnose)

    # The leader checks that it leads, then freezes (SIGSTOP) just before its next write.
    freeze.touch()
    frozen = wait_for(lambda: next((r for s in group.values() for r in s.records() if "freezing" in r), None),
                      ELECT, "the leader to freeze", diagnose)
    leader, stale_token, stale_seq = frozen["freezing"], frozen["fencing_token"], frozen["seq"]
    wait_for(group[leader].stopped_by_signal, ELECT, "the leader's process to be stopped", diagnose)

    # The others elect a new leader, which writes with a higher token.
    newer = wait_for(lambda: work_after(read_ledger(database)[0], leader, stale_token), ELECT,
                     "a write by a new leader", diagnose)
    assert newer["fencing_token"] > stale_token

    # Resumed, the old leader goes on with the write it had started: the database refuses it.
    group[leader].signal(signal.SIGCONT)
    refused = wait_for(lambda: next((r for r in group[leader].records() if "refused" in r), None), ELECT,
                       "the stale write to be refused", diagnose)
    assert (refused["fencing_token"], refused["seq"]) == (stale_token, stale_seq)
    wait_for(lambda: sum(r["node"] == newer["node"] for r in read_ledger(database)[0]) >= 3, ELECT,
             "three writes by the new leader", diagnose)
    rows = check_ledger(database)
    assert (stale_token, stale_seq) not in {(r["fencing_token"], r["seq"]) for r in rows}
    assert group[leader].running(), "the resumed process runs on, as a follower"
