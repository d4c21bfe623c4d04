"""A leader-only job whose writes to a SQL database are fenced by the leadership's token.

Run one process per member, all writing to one database (PostgreSQL, or an SQLite file the
processes share on one host):

    DB=postgresql://app@db.example/app          # or DB=sqlite:///var/lib/app/app.db
    python worker.py --db $DB --id a --member a=127.0.0.1:7001 --member b=127.0.0.1:7002 --member c=127.0.0.1:7003 --data-dir /tmp/w-a
    python worker.py --db $DB --id b ...same --member list... --data-dir /tmp/w-b
    python worker.py --db $DB --id c ...same --member list... --data-dir /tmp/w-c

The leader appends one row to `ledger` every `--every` seconds. Every write is one transaction
that first raises the resource's row in `fence` to this leadership's fencing token, and only if
the token there is not higher (FENCE below). A deposed leader whose write arrives late (it was
paused, swapped out, or its packets were slow) carries an older token: the database refuses it,
whatever the deposed process believes.

`--freeze-file PATH` is for the demonstration and the tests: when PATH exists, the leader
removes it and freezes itself with SIGSTOP just before its next write, as a long GC pause would,
after it checked that it leads. Resume it with `kill -CONT`: its write is refused.

Every line the process prints is one JSON object: leadership events, `"work"` for a committed
write, `"refused"` for a write the database refused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Optional

import quorate

# The fence: one row per resource the leader's work writes to, holding the highest fencing token
# that ever wrote. The upsert changes the row (rowcount 1) only if the stored token is not higher
# than ours; otherwise it changes nothing (rowcount 0) and the transaction is rolled back. The
# row lock it takes orders concurrent writers: a lower token that waited for it re-reads the row
# and is refused. The same statement runs on PostgreSQL (9.5+) and SQLite (3.24+).
FENCE = """
INSERT INTO fence (resource, token) VALUES (?, ?)
ON CONFLICT (resource) DO UPDATE SET token = excluded.token
WHERE fence.token <= excluded.token
"""

# The work itself: here one ledger row per run, tagged with the token that wrote it.
WRITE = "INSERT INTO ledger (resource, token, node, seq) VALUES (?, ?, ?, ?)"

SCHEMA = {
    "postgresql": [
        "CREATE TABLE IF NOT EXISTS fence (resource TEXT PRIMARY KEY, token BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS ledger (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " resource TEXT NOT NULL, token BIGINT NOT NULL, node TEXT NOT NULL, seq INTEGER NOT NULL,"
        " written_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    ],
    "sqlite": [
        "CREATE TABLE IF NOT EXISTS fence (resource TEXT PRIMARY KEY, token INTEGER NOT NULL)",
        "CREATE TABLE IF NOT EXISTS ledger (id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " resource TEXT NOT NULL, token INTEGER NOT NULL, node TEXT NOT NULL, seq INTEGER NOT NULL,"
        " written_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    ],
}


class FencedStore:
    """One connection to the database, used from one thread at a time."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            self.dialect = "sqlite"
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, which takes SQLite's
            # write lock at once, so the fence check and the write form one serial transaction.
            self.conn: Any = sqlite3.connect(url[len("sqlite:///"):], timeout=30, isolation_level=None,
                                             check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
        elif url.startswith(("postgresql://", "postgres://")):
            import psycopg  # pip install 'psycopg[binary]'

            self.dialect = "postgresql"
            self.conn = psycopg.connect(url, connect_timeout=30)
        else:
            raise SystemExit(f"--db: expected sqlite:///PATH or postgresql://..., got {url!r}")

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.dialect == "postgresql" else statement

    def _begin(self) -> Any:
        if self.dialect == "postgresql" and self.conn.closed:
            import psycopg

            self.conn = psycopg.connect(self.url, connect_timeout=30)  # the server went away: reconnect
        if self.dialect == "sqlite":
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn
        return self.conn.cursor()  # psycopg opens a transaction with the first statement

    def setup(self) -> None:
        """Creates the tables; safe when several processes start at once."""
        cur = self._begin()
        try:
            if self.dialect == "postgresql":
                cur.execute("SELECT pg_advisory_xact_lock(24)")  # CREATE IF NOT EXISTS can race
            for statement in SCHEMA[self.dialect]:
                cur.execute(statement)
        except BaseException:
            self._end(False)
            raise
        self._end(True)

    def write(self, resource: str, token: int, node: str, seq: int) -> bool:
        """One fenced write: True if committed, False if the database holds a higher token."""
        cur = self._begin()
        try:
            if cur.execute(self._sql(FENCE), (resource, token)).rowcount != 1:
                ok = False  # a newer leader has written: refuse, change nothing
            else:
                cur.execute(self._sql(WRITE), (resource, token, node, seq))
                ok = True
        except BaseException:
            try:
                self._end(False)
            except Exception:
                pass  # the connection is gone; _begin() makes a new one
            raise
        self._end(ok)
        return ok

    def _end(self, commit: bool) -> None:
        if self.dialect == "postgresql":
            self.conn.commit() if commit else self.conn.rollback()
        else:
            self.conn.execute("COMMIT" if commit else "ROLLBACK")


_print_lock = threading.Lock()


def emit(record: Dict[str, Any]) -> None:
    with _print_lock:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()


def on_event(event: quorate.Event) -> None:
    emit({"event": event.kind, "node": event.node_id, "term": event.term, "leader": event.leader,
          "fencing_token": event.fencing_token, "reason": event.reason, "at": event.at})


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="sqlite:///PATH or postgresql://USER@HOST:PORT/DBNAME")
    parser.add_argument("--id", required=True, help="this process's node id")
    parser.add_argument("--member", action="append", required=True, metavar="ID=HOST:PORT",
                        help="every member, this one included (repeat the option)")
    parser.add_argument("--data-dir", required=True, help="this node's own directory for its term and vote")
    parser.add_argument("--resource", default="ledger", help="the name the fence row is kept under")
    parser.add_argument("--every", type=float, default=0.2, help="seconds between two writes")
    parser.add_argument("--freeze-file", help="demonstration: SIGSTOP this process before its next write once this file exists")
    args = parser.parse_args()
    members = dict(m.split("=", 1) for m in args.member)

    # The driver is blocking: every database call runs on one thread of its own, off the event loop.
    db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db")
    loop = asyncio.get_running_loop()
    store = await loop.run_in_executor(db, FencedStore, args.db)
    await loop.run_in_executor(db, store.setup)

    def fenced_write(token: int, seq: int) -> Optional[bool]:
        if args.freeze_file and _claim(args.freeze_file):
            emit({"freezing": args.id, "fencing_token": token, "seq": seq, "pid": os.getpid()})
            # Sent to this very thread, the stop takes it at once (os.kill would let the kernel
            # pick a thread to start the stop from, and this one could run on into the write).
            signal.pthread_kill(threading.get_ident(), signal.SIGSTOP)  # the whole process stops
        try:
            ok = store.write(args.resource, token, args.id, seq)
        except Exception as e:  # the database is unreachable or busy: say so; the job tries again
            emit({"error": f"{type(e).__name__}: {e}", "node": args.id, "fencing_token": token, "seq": seq})
            return None
        emit({"work" if ok else "refused": "ledger", "node": args.id, "fencing_token": token, "seq": seq,
              "at": time.monotonic()})
        return ok

    async def job(lead: quorate.Leadership) -> None:
        seq = 0
        while True:
            lead.check()
            seq += 1
            # Once submitted, the write goes to the database even if this job is cancelled while
            # it runs: only the token in it can stop a write that is already on its way.
            ok = await loop.run_in_executor(db, fenced_write, lead.fencing_token, seq)
            if ok is False:
                return  # a newer leader wrote: this leadership is over, whatever the node thinks
            await asyncio.sleep(args.every if ok else 1.0)  # None: an error; the next run retries

    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    node = quorate.Node(args.id, members, data_dir=args.data_dir,
                        on_elected=on_event, on_demoted=on_event, on_leader_change=on_event)
    async with node:
        emit({"event": "started", "node": args.id, "address": node.address, "pid": os.getpid()})
        leader_loop = asyncio.create_task(node.run_while_leading(job))
        stop_wait = asyncio.create_task(stopping.wait())
        await asyncio.wait({leader_loop, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        if leader_loop.done():
            leader_loop.result()
    await asyncio.wait_for(leader_loop, timeout=10)
    db.shutdown(wait=True)
    return 0


def _claim(path: str) -> bool:
    try:
        os.unlink(path)  # only one process can remove it
        return True
    except FileNotFoundError:
        return False


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
