"""The local X-Ray collector: real UDP datagrams in the daemon's protocol on 127.0.0.1, one segment
document per line out."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from counter.xray_collector import HEADER, XRayCollector, parse_datagram


def segment(i: int) -> dict:
    return {
        "name": "chaoscheck-counter-fleet",
        "id": f"{i:016x}",
        "trace_id": f"1-6a1b2c3d-{i:024x}",
        "start_time": 1_790_000_000.0 + i,
        "end_time": 1_790_000_000.5 + i,
        "annotations": {"note": "line\nbreak"},  # a newline inside a string stays escaped: one line
    }


def send(address: str, payload: bytes) -> None:
    host, port = address.rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(payload, (host, int(port)))


def datagram(document: dict) -> bytes:
    return HEADER + b"\n" + json.dumps(document, indent=2).encode()  # pretty JSON is still one document


def test_segments_from_several_senders_become_one_line_each(tmp_path: Path) -> None:
    path = tmp_path / "run" / "xray.jsonl"
    collector = XRayCollector(path).start()
    host, port = collector.address.split(":")
    assert host == "127.0.0.1" and int(port) > 0
    assert collector.environment() == {"AWS_XRAY_DAEMON_ADDRESS": collector.address, "CHAOSCHECK_XRAY": "1"}

    senders = [
        threading.Thread(
            target=lambda k=k: [send(collector.address, datagram(segment(k * 100 + i))) for i in range(25)]
        )
        for k in range(4)
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    send(collector.address, json.dumps(segment(999)).encode())  # no header line
    send(collector.address, b'{"format":"json","version":2}\n{}')  # another protocol version
    send(collector.address, HEADER + b"\n{not json")
    send(collector.address, HEADER + b"\n[1, 2]")
    collector.stop()
    collector.stop()  # idempotent

    lines = path.read_text().splitlines()
    documents = [json.loads(line) for line in lines]
    assert len(documents) == 100 == collector.segments
    assert collector.malformed == 4
    assert sorted(d["id"] for d in documents) == sorted(
        segment(k * 100 + i)["id"] for k in range(4) for i in range(25)
    )
    assert documents[0]["annotations"]["note"] == "line\nbreak"


def test_appends_to_an_existing_file_and_only_binds_loopback(tmp_path: Path) -> None:
    path = tmp_path / "xray.jsonl"
    path.write_text('{"id":"earlier"}\n')
    with XRayCollector(path) as collector:
        send(collector.address, datagram(segment(1)))
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["earlier", segment(1)["id"]]
    with pytest.raises(ValueError, match="loopback"):
        XRayCollector(path, host="0.0.0.0")
    with pytest.raises(ValueError, match="loopback"):
        XRayCollector(path, host="localhost.example")


def test_parse_datagram() -> None:
    assert parse_datagram(datagram({"id": "a"})) == {"id": "a"}
    assert parse_datagram(b"") is None
    assert parse_datagram(HEADER) is None


def test_as_a_process_it_prints_its_address_and_stops_on_sigterm(tmp_path: Path) -> None:
    path = tmp_path / "xray.jsonl"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "counter.xray_collector", "--out", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        address = process.stdout.readline().strip()
        assert address.startswith("127.0.0.1:")
        send(address, datagram(segment(7)))
        send(address, b"junk")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "1 segment(s), 1 malformed" in stderr
    assert json.loads(path.read_text())["id"] == segment(7)["id"]
