"""The fleet: an EC2 Auto Scaling group emulation with the load balancer's target health checks.

The sequence of states follows shared/reference/aws-semantics.md, with the timers of
:class:`counter.local.config.FleetConfig`:

- ``launch``: the instance is ``pending``; after ``boot_delay`` its process starts (an instance server
  on a listening socket the group made, so its port is known before it runs).
- Every ``health_interval`` the balancer's health check sends ``GET /health`` on a fresh connection;
  it fails when no 200 arrives within ``health_timeout``. After ``healthy_threshold`` passes in a row
  a pending (or unhealthy) instance is ``in_service`` and gets its round-robin share of requests.
- A dead or frozen instance keeps its share (and fails it) until it has failed ``unhealthy_threshold``
  checks in a row; then it is ``unhealthy`` and gets no requests.
- At its next pass (every ``health_interval``) the group terminates unhealthy instances (SIGKILL) and
  launches replacements to keep ``desired`` instances; scale-in deregisters an instance first and stops
  it with SIGTERM, so the requests it has in flight finish (uvicorn's graceful shutdown), then SIGKILL
  after ``upstream_timeout`` if it is still alive.
- ``terminate`` is the group terminating an instance itself (``TerminateInstanceInAutoScalingGroup``):
  deregistered first, stopped like a scale-in, then replaced at once or, with ``decrement_desired``,
  not replaced (desired drops by one, never below the minimum).
- Terminated instances stay listed (the last 200) with ``terminated_ns``, so a run can see history.
- Every change of capacity is a scaling activity (``counter.local.activities``): each launch (until in
  service) and termination, and each change of the desired capacity, by the target tracking policy
  (``counter.local.scaling``) or through the control API, with its cause.
- Capacity: each instance serves ``instance_concurrency`` requests at once, each held ``service_time``
  (``counter.local.capacity``), so latency rises with the load per instance.
- Warm-up: with a scaling policy, an instance that enters service is warm ``warmup`` later; until
  then the policy counts it neither in its metric nor as capacity that allows a scale-in. The
  instances of the initial capacity are warm at once.

No fail-open: when no instance is in service, the balancer answers 503 (an ALB would route to all
unhealthy targets instead; here the group replaces unhealthy instances within one interval anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections import deque
from typing import Any

from counter.local import capacity
from counter.local.activities import CANCELLED, FAILED, SUCCESSFUL, Activity, ActivityLog
from counter.local.children import SIGNALS, Reaper, signal_by_name, spawn_python
from counter.local.config import FleetConfig
from counter.local.upstream import UpstreamPool

log = logging.getLogger(__name__)

PENDING, IN_SERVICE, UNHEALTHY, TERMINATED = "pending", "in_service", "unhealthy", "terminated"
KEEP_TERMINATED = 200
HOST = "127.0.0.1"


def new_instance_id() -> str:
    return "i-" + secrets.token_hex(9)[:17]


class Instance:
    """One member of the group and, once booted, its instance server process."""

    def __init__(self, instance_id: str) -> None:
        self.id = instance_id
        self.state = PENDING
        self.pid: int | None = None
        self.port: int | None = None
        self.launched_ns = time.time_ns()
        self.in_service_ns: int | None = None
        self.unhealthy_ns: int | None = None
        self.terminated_ns: int | None = None
        self.pool: UpstreamPool | None = None
        self.in_flight = 0
        self.passes = 0
        self.fails = 0
        self.task: asyncio.Task[None] | None = None
        self.kill_at: float | None = None  # monotonic deadline for SIGKILL after a graceful stop
        self.requests = 0  # routed to it by the balancer (the scaling policy's metric)
        self.warm_ns: int | None = None  # when its warm-up ends (set when it enters service)
        self.initial = False  # launched for the group's initial capacity: warm at once
        self.launch_activity: Activity | None = None
        self.terminate_activity: Activity | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "pid": self.pid,
            "port": self.port,
            "launched_ns": self.launched_ns,
            "in_service_ns": self.in_service_ns,
            "unhealthy_ns": self.unhealthy_ns,
            "terminated_ns": self.terminated_ns,
            "warm_ns": self.warm_ns,
        }

    def warm(self, now_ns: int) -> bool:
        """In service and past its warm-up."""
        return self.state == IN_SERVICE and self.warm_ns is not None and now_ns >= self.warm_ns


class Group:
    """The Auto Scaling group: keeps ``desired`` instances, health-checks them, replaces the unhealthy."""

    def __init__(
        self, config: FleetConfig, db_path: str, reaper: Reaper, activities: ActivityLog | None = None
    ) -> None:
        self.config = config
        self.db_path = db_path
        self.reaper = reaper
        self.activities = activities if activities is not None else ActivityLog()
        self.warmup_ns = int((config.scaling.warmup if config.scaling is not None else 0.0) * 1e9)
        self._replacing: deque[str] = deque()  # terminated instances still owed a replacement
        self._scale_outs: deque[tuple[Activity, list[int]]] = deque()  # (activity, [launches still owed])
        self._children: dict[str, tuple[Activity, list[Activity]]] = {}  # parent id -> (parent, children)
        self._scale_in: Activity | None = None  # the scale-in whose terminations the next pass makes
        self.desired = config.desired
        self.min = config.min
        self.max = config.max
        self.instances: dict[str, Instance] = {}
        self.rotation: list[Instance] = []  # in service, in launch order: the balancer's targets
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None

    # -- the group's own loop -------------------------------------------------------------------------

    def start(self) -> None:
        for _ in range(max(self.min, min(self.desired, self.max))):
            self._launch("the group's initial capacity", initial=True)
        self._reconcile()
        self._loop_task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.health_interval)
            self._wake.clear()
            try:
                self._reconcile()
            except Exception:
                log.exception("group pass failed")

    def _reconcile(self) -> None:
        now = time.monotonic()
        for inst in self.instances.values():
            if inst.kill_at is not None and now >= inst.kill_at:
                inst.kill_at = None
                if inst.pid is not None and self.reaper.signal(inst.pid, SIGNALS["KILL"]):
                    log.warning("instance %s did not stop after SIGTERM: killed", inst.id)
            if inst.pool is not None and inst.state == IN_SERVICE:
                inst.pool.expire_idle()
            ending = inst.terminate_activity
            if (
                ending is not None
                and not ending.done
                and (inst.pid is None or not self.reaper.alive(inst.pid))
            ):
                ending.finish()
        for inst in [i for i in self.instances.values() if i.state == UNHEALTHY]:
            log.info("group: terminating unhealthy instance %s", inst.id)
            cause = f"instance {inst.id} failed {inst.fails} health checks in a row: terminated and replaced"
            self._terminate(inst, graceful=False, cause=cause, replace=True)
        for inst in [i for i in self.instances.values() if i.state == PENDING and i.pid is not None]:
            if not self.reaper.alive(inst.pid):  # its process died while booting: replace it
                log.warning("group: %s exited while pending: terminating it", inst.id)
                cause = f"instance {inst.id} exited while booting: terminated and replaced"
                self._terminate(inst, graceful=False, cause=cause, replace=True)
        live = [i for i in self.instances.values() if i.state != TERMINATED]
        target = max(self.min, min(self.desired, self.max))
        for _ in range(target - len(live)):
            self._launch(f"desired capacity {self.desired}, {len(live)} instance(s) alive")
        if len(live) > target:  # scale in: the newest pending ones first, then the newest in service
            newest_first = sorted(live, key=lambda i: i.launched_ns, reverse=True)
            victims = [i for i in newest_first if i.state == PENDING] + [
                i for i in newest_first if i.state == IN_SERVICE
            ]
            parent = self._scale_in
            for inst in victims[: len(live) - target]:
                log.info("group: scaling in, terminating %s", inst.id)
                cause = f"desired capacity lowered to {self.desired}: instance {inst.id} terminated"
                self._terminate(inst, graceful=True, cause=cause, parent=parent)
        self._scale_in = None  # its terminations (if any) are made: it ends when they have
        self._replacing.clear()  # a replacement not launched now is not owed: the group is at capacity
        for activity, owed in list(self._scale_outs):
            if owed[0] <= 0:
                self._scale_outs.remove((activity, owed))
        self._settle_parents()
        self._forget_old()

    def _forget_old(self) -> None:
        gone = [i for i in self.instances.values() if i.state == TERMINATED and i.kill_at is None]
        for inst in gone[: max(0, len(gone) - KEEP_TERMINATED)]:
            del self.instances[inst.id]

    # -- lifecycle of one instance --------------------------------------------------------------------

    def _launch(self, cause: str, initial: bool = False) -> Instance:
        inst = Instance(new_instance_id())
        inst.initial = initial
        alive = sum(1 for i in self.instances.values() if i.state != TERMINATED)
        replaces = self._replacing.popleft() if self._replacing else None
        parent: Activity | None = None
        if replaces is not None:
            cause = f"replacing instance {replaces}"
        elif self._scale_outs:
            parent, owed = self._scale_outs[0]
            owed[0] -= 1
            if owed[0] <= 0:
                self._scale_outs.popleft()
            cause = f"{parent.kind} {parent.from_capacity} -> {parent.to_capacity} ({parent.activity_id})"
        self.instances[inst.id] = inst
        inst.launch_activity = self.activities.start(
            "fleet",
            "launch",
            f"launching instance {inst.id}: {cause}",
            alive,
            alive + 1,
            subject=inst.id,
            replaces=replaces,
            parent=parent.activity_id if parent is not None else None,
            start_ns=inst.launched_ns,
        )
        if parent is not None:
            self._children.setdefault(parent.activity_id, (parent, []))[1].append(inst.launch_activity)
        log.info("group: launched %s (pending, boots in %.2fs)", inst.id, self.config.boot_delay)
        inst.task = asyncio.get_running_loop().create_task(self._live(inst))
        return inst

    async def _live(self, inst: Instance) -> None:
        """Boot the instance, then health-check it every interval until it is terminated."""
        await asyncio.sleep(self.config.boot_delay)
        if inst.state == TERMINATED:
            return
        try:
            self._boot(inst)
        except Exception:
            log.exception("group: %s failed to boot", inst.id)
            self._terminate(inst, graceful=False, cause=f"instance {inst.id} failed to boot", replace=True)
            self._wake.set()
            return
        interval = self.config.health_interval
        loop = asyncio.get_running_loop()
        next_check = loop.time() + interval
        while inst.state != TERMINATED:
            await asyncio.sleep(max(0.0, next_check - loop.time()))
            next_check += interval
            if inst.state == TERMINATED:
                return
            healthy = await self._check(inst)
            self._record_check(inst, healthy)

    def _boot(self, inst: Instance) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind((HOST, 0))
            listener.listen(1024)
            inst.port = listener.getsockname()[1]
            env = {"CHAOSCHECK_INSTANCE_ID": inst.id}
            env.update(capacity.environment(self.config.instance_concurrency, self.config.service_time))
            process = spawn_python(
                "counter.instance_server",
                ["--fd", str(listener.fileno()), "--db", self.db_path],
                env=env,
                pass_fds=[listener.fileno()],
            )
        finally:
            listener.close()  # only the instance holds it now: when it dies, connections are refused
        self.reaper.track(process)
        inst.pid = process.pid
        inst.pool = UpstreamPool(HOST, inst.port, self.config.idle_timeout)
        log.info("group: %s booted: pid %d, port %d", inst.id, inst.pid, inst.port)

    async def _check(self, inst: Instance) -> bool:
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(self.config.health_timeout):
                reader, writer = await asyncio.open_connection(HOST, inst.port)
                writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                status_line = await reader.readline()
                return status_line.startswith((b"HTTP/1.1 200 ", b"HTTP/1.0 200 "))
        except (OSError, TimeoutError):
            return False
        finally:
            if writer is not None:
                writer.transport.abort()

    def _record_check(self, inst: Instance, healthy: bool) -> None:
        if healthy:
            inst.passes += 1
            inst.fails = 0
            if inst.state in (PENDING, UNHEALTHY) and inst.passes >= self.config.healthy_threshold:
                inst.state = IN_SERVICE
                inst.in_service_ns = time.time_ns()
                if inst.warm_ns is None:
                    inst.warm_ns = inst.in_service_ns + (0 if inst.initial else self.warmup_ns)
                self._update_rotation()
                if inst.launch_activity is not None and not inst.launch_activity.done:
                    inst.launch_activity.finish(SUCCESSFUL, inst.in_service_ns)
                    self._settle_parents()
                log.info("group: %s in service", inst.id)
        else:
            inst.fails += 1
            inst.passes = 0
            if inst.state == IN_SERVICE and inst.fails >= self.config.unhealthy_threshold:
                inst.state = UNHEALTHY
                inst.unhealthy_ns = time.time_ns()
                self._update_rotation()
                if inst.pool is not None:
                    inst.pool.close()
                    inst.pool = UpstreamPool(HOST, inst.port or 0, self.config.idle_timeout)
                log.info("group: %s unhealthy after %d failed checks", inst.id, inst.fails)

    def _terminate(
        self,
        inst: Instance,
        graceful: bool,
        cause: str,
        replace: bool = False,
        parent: Activity | None = None,
    ) -> None:
        alive = sum(1 for i in self.instances.values() if i.state != TERMINATED)
        inst.state = TERMINATED
        inst.terminated_ns = time.time_ns()
        self._update_rotation()
        if inst.pool is not None:
            inst.pool.close()
        launch = inst.launch_activity
        if launch is not None and not launch.done:  # it never got into service
            launch.finish(CANCELLED if parent is not None else FAILED, inst.terminated_ns)
        inst.terminate_activity = self.activities.start(
            "fleet",
            "terminate",
            cause,
            alive,
            alive - 1,
            subject=inst.id,
            parent=parent.activity_id if parent is not None else None,
            start_ns=inst.terminated_ns,
        )
        if parent is not None:
            self._children.setdefault(parent.activity_id, (parent, []))[1].append(inst.terminate_activity)
        if replace:
            self._replacing.append(inst.id)
        if inst.pid is not None:
            if graceful and self.reaper.signal(inst.pid, SIGNALS["TERM"]):
                inst.kill_at = time.monotonic() + self.config.upstream_timeout
            else:
                self.reaper.signal(inst.pid, SIGNALS["KILL"])
                inst.terminate_activity.finish()
        else:
            inst.terminate_activity.finish()
        self._settle_parents()

    # -- scaling activities ---------------------------------------------------------------------------

    def _settle_parents(self) -> None:
        """End the desired-capacity changes whose launches (or terminations) have all ended."""
        owed = {activity.activity_id for activity, left in self._scale_outs if left[0] > 0}
        if self._scale_in is not None:
            owed.add(self._scale_in.activity_id)  # its terminations are chosen at the next pass
        for parent_id, (parent, children) in list(self._children.items()):
            if parent_id in owed or any(not child.done for child in children):
                continue
            statuses = {child.status for child in children}
            if not statuses:  # a scale-out with no launch (a scale-in came first), a scale-in with none
                status = CANCELLED if parent.kind == "scale-out" else SUCCESSFUL
            elif statuses == {SUCCESSFUL}:
                status = SUCCESSFUL
            else:
                status = FAILED if FAILED in statuses else CANCELLED
            end = max((child.end_ns or 0 for child in children), default=0)
            parent.finish(status, end or None)
            del self._children[parent_id]

    def _record_desired(
        self, previous: int, desired: int, cause: str, metric: float | None
    ) -> Activity | None:
        if desired == previous:
            return None
        kind = "scale-out" if desired > previous else "scale-in"
        activity = self.activities.start("fleet", kind, cause, previous, desired, metric=metric)
        if kind == "scale-out":
            alive = sum(1 for i in self.instances.values() if i.state != TERMINATED)
            launches = max(0, min(desired, self.max) - max(alive, min(previous, self.max)))
            if launches:
                self._scale_outs.append((activity, [launches]))
                self._children[activity.activity_id] = (activity, [])
            else:
                activity.finish()
        else:
            for _, owed in self._scale_outs:  # launches not made yet are no longer wanted
                owed[0] = 0
            self._scale_outs.clear()
            if self._scale_in is not None:  # superseded before its pass: this one takes over
                self._children.pop(self._scale_in.activity_id, None)
                self._scale_in.finish(CANCELLED)
            self._scale_in = activity
            self._children[activity.activity_id] = (activity, [])
        self._settle_parents()
        return activity

    def _update_rotation(self) -> None:
        self.rotation = [i for i in self.instances.values() if i.state == IN_SERVICE]

    # -- the operator's side --------------------------------------------------------------------------

    def set_desired(
        self, desired: int, cause: str | None = None, metric: float | None = None
    ) -> Activity | None:
        """Change the desired capacity (``SetDesiredCapacity``, or the scaling policy with its ``cause``).

        Recorded as a ``scale-out`` or ``scale-in`` activity when it changes; returns it (None when
        the capacity was already ``desired``). ``ValueError`` outside min..max.
        """
        if not self.min <= desired <= self.max:
            raise ValueError(f"desired must be between min {self.min} and max {self.max}, got {desired}")
        previous, self.desired = self.desired, desired
        if cause is None:
            cause = f"desired capacity set from {previous} to {desired} through the control API"
        activity = self._record_desired(previous, desired, cause, metric)
        self._wake.set()
        return activity

    def terminate(self, instance_id: str, decrement_desired: bool = False) -> tuple[Instance, int]:
        """The group terminates an instance itself (``TerminateInstanceInAutoScalingGroup``).

        The instance is deregistered first (no new requests; those in flight finish), then stopped
        like a scale-in (SIGTERM, SIGKILL after ``upstream_timeout``). Without ``decrement_desired``
        the group launches a replacement at once; with it, the desired capacity drops by one instead,
        which is refused (``ValueError``) when it would go below the minimum. Returns the instance
        and the previous desired capacity. ``KeyError`` for an unknown id, ``ProcessLookupError`` for
        an instance already terminated.
        """
        inst = self.instances.get(instance_id)
        if inst is None:
            raise KeyError(instance_id)
        if inst.state == TERMINATED:
            raise ProcessLookupError(f"instance {instance_id} is already terminated")
        previous = self.desired
        if decrement_desired:
            if previous - 1 < self.min:
                raise ValueError(
                    f"expected desired capacity to stay at or above the minimum {self.min}, got "
                    f"{previous} - 1 = {previous - 1}: terminating {instance_id} without replacement "
                    "would break the group's minimum"
                )
            self.desired = previous - 1
        what = f"desired {previous} -> {self.desired}" if decrement_desired else "a replacement follows"
        log.info("group: terminating %s on request (%s)", inst.id, what)
        cause = f"instance {inst.id} terminated on request (TerminateInstanceInAutoScalingGroup): {what}"
        self._terminate(inst, graceful=True, cause=cause, replace=not decrement_desired)
        self._wake.set()  # the replacement (or nothing) at once, not at the next pass
        return inst, previous

    def signal(self, instance_id: str, signal_name: str) -> Instance:
        """Send a signal to an instance's process (KILL, STOP, CONT, TERM), as a fault would."""
        inst = self.instances.get(instance_id)
        if inst is None:
            raise KeyError(instance_id)
        sig = signal_by_name(signal_name)
        if inst.pid is None or inst.state == TERMINATED or not self.reaper.signal(inst.pid, sig):
            raise ProcessLookupError(f"instance {instance_id} has no running process (state {inst.state})")
        log.info("signal %s sent to instance %s (pid %d)", signal_name.upper(), inst.id, inst.pid)
        return inst

    def counts(self) -> dict[str, int]:
        counts = {PENDING: 0, IN_SERVICE: 0, UNHEALTHY: 0, TERMINATED: 0}
        for inst in self.instances.values():
            counts[inst.state] += 1
        return counts

    def snapshot(self) -> list[dict[str, Any]]:
        return [inst.to_json() for inst in self.instances.values()]

    def stop(self) -> None:
        """Stop health-checking and launching; the stack kills and reaps the processes."""
        if self._loop_task is not None:
            self._loop_task.cancel()
        for inst in self.instances.values():
            if inst.task is not None:
                inst.task.cancel()
            if inst.pool is not None:
                inst.pool.close()
        self.rotation = []
