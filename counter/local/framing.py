"""The channel between the function URL and an execution environment: length-prefixed JSON frames.

The stack writes one frame to the environment's stdin per invocation and reads one frame back from its
stdout: a 4-byte big-endian length, then that many bytes of JSON. That is cheap per invocation (one
write and one read each way, no HTTP) and needs no port per environment.

Frames from an environment: ``{"ready": init_ms}`` once after its init, then per invocation either
``{"result": <the handler's return value>}`` or ``{"error": {"errorType", "errorMessage"}}``.
Frames to it: ``{"event": <payload 2.0 event>, "request_id": str, "deadline_ms": epoch ms}``.
"""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

_LENGTH = struct.Struct(">I")
MAX_FRAME = 8 * 1024 * 1024


def encode(message: Any) -> bytes:
    payload = json.dumps(message, separators=(",", ":")).encode()
    return _LENGTH.pack(len(payload)) + payload


def read_frame(stream: BinaryIO) -> Any | None:
    """Read one frame from a blocking stream; None at end of stream."""
    prefix = stream.read(4)
    if len(prefix) < 4:
        return None
    (length,) = _LENGTH.unpack(prefix)
    payload = stream.read(length)
    if len(payload) < length:
        return None
    return json.loads(payload)


class FrameBuffer:
    """Splits a byte stream (as it arrives from a pipe) into decoded frames."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[Any]:
        buf = self._buf + data if self._buf else data
        frames = []
        while len(buf) >= 4:
            (length,) = _LENGTH.unpack_from(buf)
            if length > MAX_FRAME:
                raise ValueError(f"frame of {length} bytes is larger than {MAX_FRAME}")
            if len(buf) < 4 + length:
                break
            frames.append(json.loads(buf[4 : 4 + length]))
            buf = buf[4 + length :]
        self._buf = buf
        return frames
