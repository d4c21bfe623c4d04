"""A service process with a leader-only periodic job, in asyncio.

Run one process per member (three here), each with its own id and data directory:

    python service.py --id a --member a=127.0.0.1:7001 --member b=127.0.0.1:7002 --member c=127.0.0.1:7003 --data-dir /tmp/svc-a
    python service.py --id b ...same --member list... --data-dir /tmp/svc-b
    python service.py --id c ...same --member list... --data-dir /tmp/svc-c

Whichever process leads runs `report()` every `--every` seconds; the others wait. Kill the
leader (even with kill -9) and another process takes the job over within about a second, with a
higher fencing token. SIGTERM (or Ctrl-C) stops a process cleanly: a leader hands its leadership
to a peer first, and the process exits 0.

Every line the process prints is one JSON object: its leadership events, and one line per run
of the job (`"work"`); `--work-log FILE` also appends the job's lines to FILE, which several
processes may share.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from typing import Any, Dict, Optional

import quorate


def emit(record: Dict[str, Any], path: Optional[str] = None) -> None:
    """Prints one JSON line (and appends it to `path`: one write, so lines of several processes
    never interleave)."""
    line = json.dumps(record) + "\n"
    sys.stdout.write(line)
    sys.stdout.flush()
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def on_event(event: quorate.Event) -> None:
    # Callbacks run on the node's dispatcher thread, in event order: keep them short.
    emit({"event": event.kind, "node": event.node_id, "term": event.term, "leader": event.leader,
          "fencing_token": event.fencing_token, "reason": event.reason, "at": event.at})


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--id", required=True, help="this process's node id")
    parser.add_argument("--member", action="append", required=True, metavar="ID=HOST:PORT",
                        help="every member, this one included (repeat the option)")
    parser.add_argument("--data-dir", required=True, help="this node's own directory for its term and vote")
    parser.add_argument("--every", type=float, default=0.2, help="seconds between two runs of the job")
    parser.add_argument("--work-log", help="also append the job's lines to this file")
    args = parser.parse_args()
    members = dict(m.split("=", 1) for m in args.member)

    async def report(lead: quorate.Leadership) -> None:
        """The leader-only job: runs while this process leads, cancelled the moment it does not."""
        seq = 0
        while True:
            lead.check()  # raises LeadershipLost if the lease ran out meanwhile (a long pause, say)
            seq += 1
            # The real work goes here. Hand lead.fencing_token to whatever it writes to (see
            # examples/fenced_sql), so a store can refuse a deposed leader's late write.
            emit({"work": "report", "node": args.id, "fencing_token": lead.fencing_token, "seq": seq,
                  "pid": os.getpid(), "at": time.monotonic()}, args.work_log)
            await asyncio.sleep(args.every)

    # SIGTERM and SIGINT set an event; the main task then leaves `async with node`, which stops
    # the node in a worker thread (stop() blocks, so never on the event loop).
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)

    node = quorate.Node(args.id, members, data_dir=args.data_dir,
                        on_elected=on_event, on_demoted=on_event, on_leader_change=on_event)
    async with node:  # start() now; a graceful stop() (a leader hands off first) on the way out
        emit({"event": "started", "node": args.id, "address": node.address, "pid": os.getpid()})
        leader_loop = asyncio.create_task(node.run_while_leading(report))
        stop_wait = asyncio.create_task(stopping.wait())
        # Either a signal arrives, or the leader loop ends by itself (the job raised: let it show).
        await asyncio.wait({leader_loop, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        if leader_loop.done():
            leader_loop.result()  # re-raises the job's exception
    # The node is stopped: run_while_leading cancels the job and returns.
    await asyncio.wait_for(leader_loop, timeout=10)
    emit({"event": "exited", "node": args.id})
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
