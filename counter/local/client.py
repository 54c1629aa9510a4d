"""Start, drive and stop a local stack from Python (stdlib ``http.client`` only).

Only the standard library, so it also works inside a gevent-patched Locust process. Typical use::

    with LocalStack.start(StackConfig(), run_dir / "counter.db", log_path=run_dir / "stack.log") as stack:
        stack.fleet_url, stack.lambda_url             # http://127.0.0.1:PORT
        stack.control.signal_instance(instance_id, "KILL")
        stack.control.timeline()

``LocalStack.start`` spawns ``python -m counter.local`` in a new session (a Ctrl-C in the terminal does
not reach it), with a fresh random control token passed through the environment and never printed,
waits for its ready line and then until ``desired`` instances are in service, so a run's baseline is
clean. The Lambda pool is not pre-warmed. The stack dies with the process (strictly: the thread) that
started it, even on SIGKILL; ``stop()`` is idempotent and leaves no process behind.

Another process can find a running stack through its state file (``state_file=``, mode 0600, holding
the token) with :meth:`LocalStack.from_state_file`, or with :meth:`LocalStack.attach` given the control
URL and token, and stop it from there.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlsplit

from counter.local.config import StackConfig
from counter.local.lifeline import child_environment

TOKEN_ENV = "CHAOSCHECK_CONTROL_TOKEN"
State = dict[str, Any]


class StackError(RuntimeError):
    """The local stack did not start, or did not stop, as asked."""


class ControlError(RuntimeError):
    """The control API refused a call (``status`` is its HTTP status; 0 when it could not be reached)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"control API answered {status}: {message}" if status else message)
        self.status = status


class ControlClient:
    """The local stack's control API. Each call is one short HTTP request on 127.0.0.1."""

    def __init__(self, url: str, token: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.hostname != "127.0.0.1" or parts.port is None:
            raise ValueError(f"the control API must be http://127.0.0.1:PORT, got {url!r}")
        self.url = url
        self._port = parts.port
        self._token = token
        self.timeout = timeout

    def __repr__(self) -> str:  # never show the token
        return f"ControlClient({self.url!r})"

    def _call(
        self, method: str, path: str, body: Any = None, timeout: float | None = None, send_null: bool = False
    ) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=timeout or self.timeout)
        headers = {"Authorization": f"Bearer {self._token}"}
        payload = None
        if body is not None or send_null:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise ControlError(0, f"control API at {self.url} unreachable: {exc}") from exc
        finally:
            conn.close()
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = {"error": raw.decode(errors="replace")}
        if response.status >= 400:
            message = data.get("error") if isinstance(data, dict) else data
            raise ControlError(response.status, str(message))
        return data

    def state(self) -> State:
        """``{"fleet": {...}, "lambda": {...}}``: see counter/local/README.md."""
        return self._call("GET", "/state")

    def info(self) -> dict[str, Any]:
        """``{"pid", "fleet_url", "lambda_url", "control_url"}``."""
        return self._call("GET", "/info")

    def signal_instance(self, instance_id: str, sig: str = "KILL") -> dict[str, Any]:
        """Send KILL, STOP, CONT or TERM to an instance's process; answers ``{"id", "pid", "signal"}``."""
        return self._call("POST", f"/fleet/instances/{quote(instance_id, safe='')}/signal", {"signal": sig})

    def terminate_instance(self, instance_id: str, decrement_desired: bool = False) -> dict[str, Any]:
        """The group terminates an instance (deregistered first, then stopped): replaced, or with
        ``decrement_desired`` not replaced and desired lowered by one (400 below the minimum).

        Answers ``{"id", "pid", "state", "decrement_desired", "desired", "previous_desired"}``.
        """
        return self._call(
            "POST",
            f"/fleet/instances/{quote(instance_id, safe='')}/terminate",
            {"decrement_desired": decrement_desired},
        )

    def signal_environment(self, environment_id: str, sig: str = "KILL") -> dict[str, Any]:
        """Send a signal to a Lambda execution environment's process (KILL crashes it)."""
        return self._call(
            "POST", f"/lambda/environments/{quote(environment_id, safe='')}/signal", {"signal": sig}
        )

    def set_reserved_concurrency(self, value: int | None) -> int | None:
        """Set the function's reserved concurrency (None: unreserved); returns the previous value."""
        return self._call("PUT", "/lambda/concurrency", {"reserved_concurrency": value})["previous"]

    def set_lambda_fault(self, kind: str, setting: dict[str, Any] | None) -> dict[str, Any] | None:
        """Set the function's injected ``latency`` or ``errors`` fault; returns the previous setting.

        ``latency``: ``{"delay_s": seconds, "percent": p}``; ``errors``: ``{"status": 4xx|5xx,
        "percent": p}``; ``None`` turns it off. Each is independent of the other.
        """
        if kind not in ("latency", "errors"):
            raise ValueError(f"expected the fault kind latency or errors, got {kind!r}")
        return self._call("PUT", f"/lambda/faults/{kind}", setting, send_null=True)["previous"]

    def set_desired_capacity(self, desired: int) -> int:
        """Set the group's desired capacity (min <= desired <= max); returns the previous value."""
        return self._call("PUT", "/fleet/capacity", {"desired": desired})["previous"]

    def timeline(self, since_ns: int | None = None) -> list[dict[str, Any]]:
        """The timeline samples (columns of ``TIMELINE_SCHEMA``), all or those after ``since_ns``."""
        return self._call("GET", "/timeline" if since_ns is None else f"/timeline?since_ns={since_ns}")

    def activities(self, since_ns: int | None = None) -> list[dict[str, Any]]:
        """The scaling activities (columns of ``SCALING_SCHEMA``), all or those not ended by ``since_ns``."""
        return self._call("GET", "/activities" if since_ns is None else f"/activities?since_ns={since_ns}")

    def shutdown(self) -> None:
        """Ask the stack to stop (it answers first, then stops its children and exits)."""
        self._call("POST", "/shutdown", {}, timeout=5.0)

    def wait_until(self, predicate: Callable[[State], bool], timeout: float, interval: float = 0.05) -> State:
        """Poll ``state()`` until ``predicate(state)`` holds; returns that state, or raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if predicate(state):
                return state
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout:g}s; last state: {_summary(state)}")
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def in_service(state: State) -> list[str]:
    """Ids of the instances in service in a ``/state`` answer."""
    return [i["id"] for i in state["fleet"]["instances"] if i["state"] == "in_service"]


def _summary(state: State) -> str:
    fleet = ", ".join(
        f"{i['id']}={i['state']}" for i in state["fleet"]["instances"] if i["state"] != "terminated"
    )
    lam = state["lambda"]
    return f"fleet desired {state['fleet']['desired']} [{fleet}]; lambda active {lam['active']}"


class LocalStack:
    """A running local stack: its URLs, its control API, and how to stop it."""

    def __init__(
        self,
        fleet_url: str,
        lambda_url: str,
        control: ControlClient,
        pid: int,
        process: subprocess.Popen[bytes] | None = None,
        log_file: IO[bytes] | None = None,
        state_file: Path | None = None,
    ) -> None:
        self.fleet_url = fleet_url
        self.lambda_url = lambda_url
        self.control = control
        self.control_url = control.url
        self.pid = pid
        self.state_file = state_file
        self._process = process  # None when attached to a stack some other process started
        self._log_file = log_file
        self._stopped = False

    def __repr__(self) -> str:
        return f"LocalStack(pid={self.pid}, fleet_url={self.fleet_url!r}, lambda_url={self.lambda_url!r})"

    @classmethod
    def start(
        cls,
        config: StackConfig,
        db_path: Path,
        log_path: Path | None = None,
        ready_timeout: float = 30.0,
        state_file: Path | None = None,
        die_with_parent: bool = True,
        env: dict[str, str] | None = None,
    ) -> LocalStack:
        """Start a stack process and return once it is ready and ``desired`` instances are in service.

        ``log_path`` receives the stack's log (appended); without it the log is kept in a temporary
        file, shown in the error if the stack fails to start. ``state_file`` gets the pid, URLs and
        token (mode 0600) for :meth:`from_state_file`. ``die_with_parent=False`` lets the stack outlive
        this process (for a detached ``stack up``); stop it then through its state file. ``env`` is
        added to the environment of the stack and so of every instance and Lambda environment (the
        X-Ray collector's address, for one).
        """
        token = secrets.token_urlsafe(32)
        extra = dict(env or {})
        env = child_environment() if die_with_parent else dict(os.environ)
        env.update(extra)
        if not die_with_parent:
            env.pop("CHAOSCHECK_PARENT_PID", None)
        env[TOKEN_ENV] = token
        env.setdefault("PYTHONUNBUFFERED", "1")
        args = [
            sys.executable,
            "-m",
            "counter.local",
            "--config-json",
            config.model_dump_json(by_alias=True),
            "--db",
            str(Path(db_path).resolve()),
        ]
        if state_file is not None:
            args += ["--state-file", str(Path(state_file).resolve())]
        log_file: IO[bytes] = open(log_path, "ab") if log_path is not None else tempfile.TemporaryFile()  # noqa: SIM115
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_file,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + ready_timeout
        try:
            ready = _read_ready_line(process, deadline)
            control = ControlClient(ready["control_url"], token)
            stack = cls(
                ready["fleet_url"], ready["lambda_url"], control, process.pid, process, log_file, state_file
            )
        except BaseException as exc:
            _kill(process)
            tail = _log_tail(log_file, log_path)
            log_file.close()
            if isinstance(exc, StackError):
                raise StackError(f"{exc}; the end of its log:\n{tail}") from None
            raise
        try:
            desired = config.fleet.desired
            stack.control.wait_until(
                lambda s: len(in_service(s)) >= desired, timeout=max(0.1, deadline - time.monotonic())
            )
        except BaseException as exc:
            stack.stop()
            if isinstance(exc, TimeoutError | ControlError):
                raise StackError(
                    f"the local stack started but its fleet did not come into service: {exc}"
                ) from None
            raise
        return stack

    @classmethod
    def attach(cls, control_url: str, token: str) -> LocalStack:
        """A handle on a stack started by another process (``stop()`` then shuts it down)."""
        control = ControlClient(control_url, token)
        info = control.info()
        return cls(info["fleet_url"], info["lambda_url"], control, int(info["pid"]))

    @classmethod
    def from_state_file(cls, path: Path) -> LocalStack:
        """Attach to the stack whose state file (written with ``state_file=``) is at ``path``."""
        try:
            content = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise StackError(f"no running local stack described by {path}: {exc}") from None
        stack = cls.attach(content["control_url"], content["token"])
        stack.state_file = Path(path)
        return stack

    @property
    def running(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        return _pid_alive(self.pid)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the stack and every process it started; idempotent. SIGKILLs it if it does not stop."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.running:
                with contextlib.suppress(ControlError):
                    self.control.shutdown()
            if self._process is not None:
                try:
                    self._process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    _kill(self._process)  # its children die with it (PR_SET_PDEATHSIG)
            else:
                deadline = time.monotonic() + timeout
                while _pid_alive(self.pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if _pid_alive(self.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.pid, signal.SIGKILL)
        finally:
            if self._process is not None and self._process.stdout is not None:
                self._process.stdout.close()
            if self._log_file is not None:
                self._log_file.close()
            if self.state_file is not None:
                Path(self.state_file).unlink(missing_ok=True)

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _read_ready_line(process: subprocess.Popen[bytes], deadline: float) -> dict[str, Any]:
    assert process.stdout is not None
    fd = process.stdout.fileno()
    buf = b""
    while b"\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise StackError("the local stack did not report ready in time")
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            code = process.wait(timeout=5)
            raise StackError(f"the local stack exited with code {code} before it was ready")
        buf += chunk
    try:
        ready = json.loads(buf.split(b"\n", 1)[0])
    except ValueError:
        raise StackError(f"the local stack printed an unexpected first line: {buf[:200]!r}") from None
    if not isinstance(ready, dict) or not ready.get("ready"):
        raise StackError(f"the local stack printed an unexpected first line: {buf[:200]!r}")
    return ready


def _log_tail(log_file: IO[bytes], log_path: Path | None, size: int = 3000) -> str:
    try:
        if log_path is not None:
            log_file.flush()
            data = Path(log_path).read_bytes()
        else:
            log_file.seek(0)
            data = log_file.read()
    except OSError as exc:
        return f"(log unreadable: {exc})"
    return data[-size:].decode(errors="replace")


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped by its parent, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
