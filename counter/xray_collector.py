"""A stand-in for the X-Ray daemon on 127.0.0.1: receives segments over UDP and appends them to a file.

The X-Ray SDKs send each segment (or streamed subsegment) as one UDP datagram: the header line
``{"format":"json","version":1}``, a newline, then the document's JSON. The collector checks the
header, parses the document, and appends it to ``path`` as one line of compact JSON (``xray.jsonl``
in a run directory: one segment document per line, the same lines the AWS target writes from
``BatchGetTraces``). Anything else (no header, another format, bad JSON) is counted in ``malformed``
and dropped, as the daemon drops it.

Use::

    collector = XRayCollector(run_dir / "xray.jsonl").start()
    env = collector.environment()   # {"AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:PORT", "CHAOSCHECK_XRAY": "1"}
    ...                             # start instance servers and Lambda environments with env
    collector.stop()                # drains what has arrived, closes the file

or as a process: ``python -m counter.xray_collector --out FILE [--port N]`` prints its address on
stdout and runs until SIGTERM or SIGINT. It binds loopback addresses only.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

HEADER = b'{"format":"json","version":1}'
MAX_DATAGRAM = 65_535
FLUSH_INTERVAL_S = 0.2
FILE_NAME = "xray.jsonl"


def _loopback(host: str) -> str:
    try:
        is_loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        is_loopback = False
    if not is_loopback:
        raise ValueError(f"expected a loopback address such as 127.0.0.1, got {host!r}")
    return host


def parse_datagram(data: bytes) -> dict | None:
    """The segment document of one daemon-protocol datagram, or None when it is not one."""
    head, sep, body = data.partition(b"\n")
    if not sep:
        return None
    try:
        if json.loads(head) != {"format": "json", "version": 1}:
            return None
        document = json.loads(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


class XRayCollector:
    """UDP receiver of X-Ray segments on ``host:port`` (port 0: a free one), appending to ``path``."""

    def __init__(self, path: str | Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.path = Path(path)
        self.host = _loopback(host)
        self._port = port
        self._socket: socket.socket | None = None
        self._file: IO[str] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.segments = 0
        """Documents written."""
        self.malformed = 0
        """Datagrams dropped (not the daemon's protocol)."""

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("the collector is not started")
        return int(self._socket.getsockname()[1])

    @property
    def address(self) -> str:
        """``host:port``, the value of ``AWS_XRAY_DAEMON_ADDRESS`` for the processes that send to it."""
        return f"{self.host}:{self.port}"

    def environment(self) -> dict[str, str]:
        """The environment a process needs to trace to this collector (see ``counter.xray``)."""
        return {"AWS_XRAY_DAEMON_ADDRESS": self.address, "CHAOSCHECK_XRAY": "1"}

    def start(self) -> XRayCollector:
        if self._thread is not None:
            raise RuntimeError("the collector was already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            sock.bind((self.host, self._port))
            sock.settimeout(FLUSH_INTERVAL_S)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        except BaseException:
            sock.close()
            raise
        self._socket = sock
        self._thread = threading.Thread(target=self._run, name="xray-collector", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Write what has arrived, close the file and the socket. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
            if self._socket is not None:
                self._socket.close()

    def __enter__(self) -> XRayCollector:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        assert self._socket is not None
        sock = self._socket
        last_flush = time.monotonic()
        while not self._stop.is_set():
            try:
                self._write(sock.recv(MAX_DATAGRAM))
            except TimeoutError:
                pass
            except OSError:
                return
            if time.monotonic() - last_flush >= FLUSH_INTERVAL_S:
                with self._lock:
                    if self._file is not None:
                        self._file.flush()
                last_flush = time.monotonic()
        self._drain(sock)  # what arrived before stop() is written too

    def _drain(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        while True:
            try:
                data = sock.recv(MAX_DATAGRAM)
            except (BlockingIOError, OSError):
                break
            self._write(data)
        with self._lock:
            if self._file is not None:
                self._file.flush()

    def _write(self, data: bytes) -> None:
        document = parse_datagram(data)
        with self._lock:
            if document is None:
                self.malformed += 1
                return
            if self._file is None:
                return
            self._file.write(json.dumps(document, separators=(",", ":")) + "\n")
            self.segments += 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Collect X-Ray segments sent over UDP into a JSON-lines file."
    )
    parser.add_argument("--out", required=True, type=Path, help="the file to append segments to")
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="UDP port (default: a free one)")
    args = parser.parse_args(argv)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    collector = XRayCollector(args.out, args.host, args.port).start()
    print(collector.address, flush=True)
    try:
        stopping.wait()
    finally:
        collector.stop()
        print(f"{collector.segments} segment(s), {collector.malformed} malformed", file=sys.stderr)


if __name__ == "__main__":
    main()
