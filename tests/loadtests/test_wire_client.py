"""The lean HTTP client against a real loopback server that answers each way HTTP/1.1 allows."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from loadtests.outcome import outcome_of
from loadtests.wire import WireClient, supports

Answer = Callable[[bytes, socket.socket], bool]
"""Given the request head, write the answer on the socket; return False to close the connection."""


class Server:
    """A real TCP server on 127.0.0.1 that answers each request with the current ``answer``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        buf = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                self.requests.append(head)
                if not self.answer(head, conn):
                    return

    def close(self) -> None:
        self._stop = True
        self._listener.close()


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server(lambda head, conn: _send(conn, b'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{"value":1}'))
    yield srv
    srv.close()


def _send(conn: socket.socket, data: bytes, keep: bool = True) -> bool:
    conn.sendall(data)
    return keep


def test_keep_alive_reuses_one_connection_and_sends_the_headers(server: Server) -> None:
    client = WireClient(f"http://127.0.0.1:{server.port}", timeout=2)
    for _ in range(3):
        reply = client.request("POST", "/counters/c/increment", "Idempotency-Key: c:k1\r\n")
        assert (reply.status, reply.body, reply.error) == (200, b'{"value":1}', None)
    assert server.connections == 1
    head = server.requests[0].decode()
    assert head.startswith("POST /counters/c/increment HTTP/1.1\r\n")
    assert "Idempotency-Key: c:k1" in head and f"Host: 127.0.0.1:{server.port}" in head
    assert "Content-Length: 0" in head
    client.close()


def test_served_by_status_and_chunked_body(server: Server) -> None:
    server.answer = lambda head, conn: _send(
        conn,
        b"HTTP/1.1 502 Bad Gateway\r\nX-Served-By: i-3\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'4\r\n{"er\r\n9;ext=1\r\nror":"x"}\r\n0\r\n\r\n',
    )
    reply = WireClient(f"http://127.0.0.1:{server.port}", timeout=2).request("GET", "/counters/c")
    assert (reply.status, reply.served_by, reply.body) == (502, "i-3", b'{"error":"x"}')


def test_connection_close_and_body_until_close(server: Server) -> None:
    server.answer = lambda head, conn: _send(
        conn, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello", False
    )
    client = WireClient(f"http://127.0.0.1:{server.port}", timeout=2)
    assert client.request("GET", "/").body == b"hello"
    assert client.request("GET", "/").body == b"hello"
    assert server.connections == 2


def test_a_keep_alive_socket_closed_while_idle_is_reopened_and_the_request_sent_once_more(
    server: Server,
) -> None:
    answered = []

    def answer_then_close(head: bytes, conn: socket.socket) -> bool:
        answered.append(head)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return False  # closes without saying so, as an idle timeout would

    server.answer = answer_then_close
    client = WireClient(f"http://127.0.0.1:{server.port}", timeout=2)
    assert client.request("GET", "/").status == 200
    second = client.request("GET", "/")
    assert (second.status, second.error) == (200, None)
    assert server.connections == 2 and len(answered) == 2


def test_a_hung_server_times_out_as_an_info_outcome(server: Server) -> None:
    server.answer = lambda head, conn: True  # never answers
    reply = WireClient(f"http://127.0.0.1:{server.port}", timeout=0.3).request("POST", "/x")
    assert reply.status == 0 and isinstance(reply.error, TimeoutError)
    assert outcome_of(reply.status, reply.error) == "info"


def test_a_reset_mid_answer_is_info_and_a_refused_connection_is_fail(server: Server) -> None:
    server.answer = lambda head, conn: _send(
        conn, b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\npart", False
    )
    reply = WireClient(f"http://127.0.0.1:{server.port}", timeout=2).request("POST", "/x")
    assert reply.status == 0 and outcome_of(reply.status, reply.error) == "info"
    unused = socket.socket()
    unused.bind(("127.0.0.1", 0))
    port = unused.getsockname()[1]
    unused.close()  # bound then closed: nothing listens there
    refused = WireClient(f"http://127.0.0.1:{port}", timeout=2).request("POST", "/x")
    assert refused.status == 0 and outcome_of(refused.status, refused.error) == "fail"


def test_only_plain_http_urls_are_spoken() -> None:
    assert supports("http://127.0.0.1:8080") and supports("http://localhost/prefix")
    assert not supports("https://127.0.0.1:8443") and not supports("127.0.0.1:80")
    with pytest.raises(ValueError, match="expected an http:// URL"):
        WireClient("https://127.0.0.1", timeout=1)


def test_a_path_prefix_of_the_base_url_is_kept(server: Server) -> None:
    WireClient(f"http://127.0.0.1:{server.port}/prod/", timeout=2).request("GET", "/counters/c")
    assert server.requests[0].startswith(b"GET /prod/counters/c HTTP/1.1")
