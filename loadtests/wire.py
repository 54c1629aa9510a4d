"""A lean HTTP/1.1 keep-alive client for the counter user: one pooled socket per user, nothing else.

Why not only Locust's ``FastHttpSession``: profiled against one loopback instance, most of a Locust
process's CPU per request goes to the general-purpose client (request and response objects, header
dictionaries, the response context manager), not to the network. The counter protocol needs none of
that: a request line, four headers, and from the answer the status, the body and ``X-Served-By``. This
client writes the request as one ``sendall`` and parses the head with ``bytes.find``, so one process
pushes about as hard as ``wrk`` (``benchmarks/generator_ceiling.py``). The user still reports every
exchange through Locust's ``request`` event, so Locust's statistics, the web UI and the ledger see
exactly what they saw before, and the outcome rule (``loadtests.outcome``) is unchanged.

What it speaks: plain ``http://`` only (the users fall back to ``FastHttpSession`` for ``https://``),
``Content-Length`` and chunked bodies, ``Connection: close`` from the server, a body delimited by
close. A reused socket that the server closed while idle (EOF or reset before any byte of the answer)
is reconnected and the request sent once more, as geventhttpclient does; increments carry their
idempotency key, so the server applies a resent increment at most once.
"""

from __future__ import annotations

import errno
import time
from typing import NamedTuple
from urllib.parse import urlsplit

from gevent import socket

_MAX_HEAD = 64 * 1024
_RECV = 65536


class Reply(NamedTuple):
    """What came back: ``status`` 0 with ``error`` when no complete answer did."""

    status: int
    body: bytes
    served_by: str | None
    error: BaseException | None


class WireError(OSError):
    """The server broke the protocol or the connection mid-answer (an info outcome: it may have run)."""


class _StaleConnection(Exception):
    """The reused socket was closed by the server before any byte of the answer came back."""


def supports(base_url: str) -> bool:
    """Whether this client can speak to ``base_url`` (plain HTTP with a host)."""
    parts = urlsplit(base_url)
    return parts.scheme == "http" and bool(parts.hostname)


class WireClient:
    """One keep-alive connection to ``base_url``, used by one user (greenlet) at a time."""

    def __init__(self, base_url: str, timeout: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"expected an http:// URL with a host, got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        host_header = parts.netloc.rsplit("@", 1)[-1]
        self.timeout = timeout
        self._head_tail = f"Host: {host_header}\r\nUser-Agent: chaoscheck\r\nAccept: */*\r\n".encode()
        self._sock: socket.socket | None = None

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def request(self, method: str, path: str, headers: str = "") -> Reply:
        """Send one request and read the answer; ``headers`` are ready ``"Name: value\\r\\n"`` lines."""
        payload = (f"{method} {self.prefix}{path} HTTP/1.1\r\n{headers}").encode() + self._head_tail
        if method == "POST":
            payload += b"Content-Length: 0\r\n"
        payload += b"\r\n"
        deadline = time.monotonic() + self.timeout
        for fresh_only in (False, True):
            reused = self._sock is not None and not fresh_only
            try:
                if not reused:
                    self.close()
                    self._connect(deadline)
                return self._exchange(payload, deadline, reused)
            except _StaleConnection:
                self.close()
                continue
            except (OSError, ValueError) as exc:
                self.close()
                return Reply(0, b"", None, exc)
        return Reply(0, b"", None, WireError("the server closed the connection before answering, twice"))

    # -- internals -------------------------------------------------------------------------------------

    def _connect(self, deadline: float) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=_remaining(deadline))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock

    def _exchange(self, payload: bytes, deadline: float, reused: bool) -> Reply:
        sock = self._sock
        assert sock is not None
        try:
            sock.settimeout(_remaining(deadline))
            sock.sendall(payload)
            buf = sock.recv(_RECV)
        except OSError as exc:
            if reused and _is_stale(exc):
                raise _StaleConnection from exc
            raise
        if not buf:
            if reused:
                raise _StaleConnection
            raise WireError("the server closed the connection without answering")
        end = buf.find(b"\r\n\r\n")
        while end < 0:
            if len(buf) > _MAX_HEAD:
                raise WireError(f"response head longer than {_MAX_HEAD} bytes")
            buf += self._recv_more(sock, deadline)
            end = buf.find(b"\r\n\r\n")
        head, body = buf[: end + 2], buf[end + 4 :]
        if not head.startswith(b"HTTP/1.") or len(head) < 12:
            raise WireError(f"expected an HTTP/1.x status line, got {head[:40]!r}")
        status = int(head[9:12])
        lower = head.lower()
        length = _header(lower, head, b"content-length")
        close = (_header(lower, lower, b"connection") or "") == "close" or head.startswith(b"HTTP/1.0")
        if length is not None:
            size = int(length)
            while len(body) < size:
                body += self._recv_more(sock, deadline)
            body = body[:size]
        elif "chunked" in (_header(lower, lower, b"transfer-encoding") or ""):
            body = self._read_chunked(sock, body, deadline)
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:
            body += self._read_to_close(sock, deadline)
            close = True
        if close:
            self.close()
        return Reply(status, body, _header(lower, head, b"x-served-by"), None)

    def _recv_more(self, sock: socket.socket, deadline: float) -> bytes:
        sock.settimeout(_remaining(deadline))
        data = sock.recv(_RECV)
        if not data:
            raise WireError("the server closed the connection mid-answer")
        return data

    def _read_to_close(self, sock: socket.socket, deadline: float) -> bytes:
        chunks = []
        while True:
            sock.settimeout(_remaining(deadline))
            data = sock.recv(_RECV)
            if not data:
                return b"".join(chunks)
            chunks.append(data)

    def _read_chunked(self, sock: socket.socket, buf: bytes, deadline: float) -> bytes:
        body = []
        while True:
            line_end = buf.find(b"\r\n")
            while line_end < 0:
                buf += self._recv_more(sock, deadline)
                line_end = buf.find(b"\r\n")
            size = int(buf[:line_end].split(b";", 1)[0], 16)
            buf = buf[line_end + 2 :]
            if size == 0:
                while buf.find(b"\r\n") < 0:  # trailers end with an empty line; counter servers send none
                    buf += self._recv_more(sock, deadline)
                return b"".join(body)
            while len(buf) < size + 2:
                buf += self._recv_more(sock, deadline)
            body.append(buf[:size])
            buf = buf[size + 2 :]


def _header(lower: bytes, source: bytes, name: bytes) -> str | None:
    """The value of header ``name`` (lower-case) from the head, taken from ``source`` (same offsets)."""
    at = lower.find(b"\r\n" + name + b":")
    if at < 0:
        return None
    start = at + len(name) + 3
    end = lower.find(b"\r\n", start)
    return source[start:end].strip().decode("latin-1")


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out")
    return left


def _is_stale(exc: OSError) -> bool:
    return exc.errno in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED)
