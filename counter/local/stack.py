"""The local stack process: one asyncio (uvloop) process hosting every part of the emulated AWS.

It owns the fleet endpoint (balancer + group), the function URL (+ its environments), the control API
and the timeline sampler, all on 127.0.0.1 at random free ports. When every endpoint listens it prints
one JSON line on stdout, ``{"ready": true, "pid", "fleet_url", "lambda_url", "control_url"}``, and
nothing else ever goes to stdout; logs go to stderr. It stops on ``POST /shutdown``, SIGTERM, SIGINT or
SIGHUP: endpoints close, every child is SIGKILLed and reaped, then the process exits. It dies with the
process that started it when that one announced itself in ``CHAOSCHECK_PARENT_PID``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from counter.local.activities import ActivityLog
from counter.local.balancer import Balancer
from counter.local.children import Reaper
from counter.local.config import StackConfig
from counter.local.control import ControlApi
from counter.local.fleet import Group
from counter.local.function_url import FunctionUrl
from counter.local.http1 import HttpServer
from counter.local.lambda_pool import FunctionPool
from counter.local.scaling import policy_for
from counter.local.timeline import Timeline
from counter.sqlite_store import SQLiteStore

log = logging.getLogger("counter.local")

TOKEN_ENV = "CHAOSCHECK_CONTROL_TOKEN"
REAP_INTERVAL = 0.1


def write_state_file(path: Path, content: dict[str, Any]) -> None:
    """Write ``content`` as JSON readable by the owner only (it holds the control token)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)
        json.dump(content, out)
    os.replace(tmp, path)


async def run(config: StackConfig, db_path: Path, token: str, state_file: Path | None = None) -> None:
    """Run the stack until it is told to stop, then stop every child."""
    SQLiteStore(db_path).close()  # create the file and its schema once, before any child opens it
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    reaper = Reaper()
    activities = ActivityLog()
    group = Group(config.fleet, str(db_path), reaper, activities)
    balancer = Balancer(group, config.fleet)
    policy = policy_for(group, balancer)
    pool = FunctionPool(config.lambda_, str(db_path), reaper, activities)
    timeline = Timeline(config.sample_interval, group, balancer, pool)
    fleet_server = HttpServer(balancer, "fleet")
    lambda_server = HttpServer(FunctionUrl(pool), "lambda")
    info: dict[str, Any] = {"pid": os.getpid(), "db": str(db_path)}
    control = ControlApi(token, group, balancer, pool, timeline, info, stopped.set, activities, policy)
    control_server = HttpServer(control, "control")
    servers = (fleet_server, lambda_server, control_server)
    reaping: asyncio.Task[None] | None = None
    try:
        for server in servers:
            await server.listen()
        info.update(fleet_url=fleet_server.url, lambda_url=lambda_server.url, control_url=control_server.url)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, stopped.set)
        group.start()
        if policy is not None:
            policy.start()
        pool.start()
        timeline.start()
        reaping = loop.create_task(_reap_forever(reaper))
        if state_file is not None:
            write_state_file(state_file, {**info, "token": token})
        sys.stdout.write(json.dumps({"ready": True, **info}) + "\n")
        sys.stdout.flush()
        _silence_stdout()
        log.info("stack ready: fleet %s, lambda %s, control %s", *(s.url for s in servers))
        await stopped.wait()
        log.info("stack stopping")
    finally:
        for server in servers:
            server.close()
        if reaping is not None:
            reaping.cancel()
        timeline.stop()
        if policy is not None:
            policy.stop()
        group.stop()
        pool.stop()
        reaper.kill_all()
        if state_file is not None:
            state_file.unlink(missing_ok=True)
        log.info("stack stopped: every child reaped")


async def _reap_forever(reaper: Reaper) -> None:
    while True:
        await asyncio.sleep(REAP_INTERVAL)
        for pid, code in reaper.reap():
            log.info("child %d exited with %d", pid, code)


def _silence_stdout() -> None:
    """After the ready line, stdout goes to /dev/null: a parent that stopped reading must not block us."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
