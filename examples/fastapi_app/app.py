"""A FastAPI app whose lifespan runs a quorate Node, with leader-only background work.

Run one uvicorn process per member, configured through the environment:

    export QUORATE_MEMBERS=a=127.0.0.1:7001,b=127.0.0.1:7002,c=127.0.0.1:7003
    QUORATE_ID=a QUORATE_DATA_DIR=/tmp/app-a uvicorn app:app --port 8001
    QUORATE_ID=b QUORATE_DATA_DIR=/tmp/app-b uvicorn app:app --port 8002
    QUORATE_ID=c QUORATE_DATA_DIR=/tmp/app-c uvicorn app:app --port 8003

Every process serves HTTP; only the leader runs `refresh()`. `GET /leader` says who leads,
`GET /healthz` answers 200 while the node runs and can persist its state (and 503 otherwise, for a
load balancer or an orchestrator's probe). SIGTERM (what uvicorn, systemd and Kubernetes send)
ends the lifespan, which stops the node: a leader hands its leadership to a peer first.

`QUORATE_SECRET_FILE` (optional) names a file with the cluster's shared secret;
`WORK_LOG` (optional) a file the leader's work appends one JSON line per run to.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict, Optional

from fastapi import FastAPI, Response

import quorate

NODE_ID = os.environ["QUORATE_ID"]
MEMBERS = dict(m.split("=", 1) for m in os.environ["QUORATE_MEMBERS"].split(","))
DATA_DIR = os.environ["QUORATE_DATA_DIR"]
SECRET_FILE = os.environ.get("QUORATE_SECRET_FILE")
WORK_LOG = os.environ.get("WORK_LOG")
EVERY = float(os.environ.get("WORK_EVERY", "0.2"))


class State:
    node: quorate.Node
    leader_loop: "asyncio.Task[None]"
    runs = 0
    last_run: Optional[Dict[str, Any]] = None


state = State()


async def refresh(lead: quorate.Leadership) -> None:
    """Leader-only background work: runs while this process leads, cancelled the moment it does
    not. Pass lead.fencing_token to every write (see examples/fenced_sql)."""
    while True:
        lead.check()
        state.runs += 1
        state.last_run = {"work": "refresh", "node": NODE_ID, "fencing_token": lead.fencing_token,
                          "seq": state.runs, "pid": os.getpid(), "at": time.monotonic()}
        if WORK_LOG:
            with open(WORK_LOG, "a") as f:  # one short line per write: lines never interleave
                f.write(json.dumps(state.last_run) + "\n")
        await asyncio.sleep(EVERY)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    secret = quorate.read_secret(SECRET_FILE) if SECRET_FILE else None
    node = quorate.Node(NODE_ID, MEMBERS, data_dir=DATA_DIR, secret=secret)
    # `async with` starts the node and, at shutdown, stops it in a worker thread (stop() blocks).
    async with node:
        state.node = node
        state.leader_loop = asyncio.create_task(node.run_while_leading(refresh))
        yield
    # Stopped: run_while_leading has cancelled the job and returns (or raises what the job raised).
    await asyncio.wait_for(state.leader_loop, timeout=10)


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
def healthz(response: Response) -> Dict[str, Any]:
    # Plain `def` endpoints run in FastAPI's thread pool: status() never blocks the event loop.
    status = state.node.status()
    problem = None
    if status.health != "ok":
        problem = status.last_error or status.health
    elif state.leader_loop.done():
        problem = "the leader loop ended"  # the job raised: its traceback is in the log
    if problem:
        response.status_code = 503
    return {"node": NODE_ID, "ok": problem is None, "problem": problem, "health": status.health,
            "role": status.role, "leader": status.leader}


@app.get("/leader")
def leader() -> Dict[str, Any]:
    node = state.node
    return {"node": NODE_ID, "leader": node.leader, "is_leader": node.is_leader, "term": node.term,
            "fencing_token": node.fencing_token, "runs": state.runs, "last_run": state.last_run}
