"""A Lambda execution environment: one OS process that runs the real handler, one invocation at a time.

Started by the function URL's pool (``python -m counter.local.runtime``). Its life, like on AWS:
init (process start, then importing the handler module, whose module-level code opens the store),
plus the configured ``cold_start`` delay; a ``ready`` frame; then invocations, each an event frame in on
stdin and a result frame out on stdout (see ``framing``). The handler's own prints and logs go to
stderr, the stack's log: the frame channel is moved off file descriptors 0 and 1 before the handler
is imported, so nothing it writes can corrupt a frame.

An event frame may carry ``fault`` (the pool's injected faults, chosen per invocation): ``delay_s``
is slept here before the handler runs, so the environment stays busy and the function's timeout
keeps running; ``status`` answers that HTTP status with a JSON error body instead of running the
handler, so the store is not touched (as the FIS Lambda extension and failure-lambda do). An event
frame may carry ``service_s`` (the function's ``service_time``): slept before the handler runs, as the
handler's own I/O wait would be, so that concurrency follows rate x duration.

The environment's init window (``LambdaContext.init_window``: epoch seconds from the start of ``main``,
before the handler is imported, to the ``ready`` frame, the ``cold_start`` delay included) is handed to
the handler with the first invocation that runs it, and never again: with tracing on, the handler
records it as that invocation's ``Initialization`` subsegment, as Lambda does on AWS (``counter.xray``).

Environment: ``AWS_LAMBDA_LOG_STREAM_NAME`` (this environment's id), ``CHAOSCHECK_COLD_START``
(seconds), ``CHAOSCHECK_HANDLER`` (``module.function``, default ``counter.lambda_handler.handler``),
plus whatever the handler needs (``CHAOSCHECK_DB``).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback

from counter.local.framing import encode, read_frame
from counter.local.lifeline import die_with_parent

FUNCTION_NAME = "chaoscheck-counter"
MEMORY_MB = 512


class LambdaContext:
    """The subset of the AWS Lambda context object that handlers use."""

    function_name = FUNCTION_NAME
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{FUNCTION_NAME}"
    memory_limit_in_mb = MEMORY_MB
    log_group_name = f"/aws/lambda/{FUNCTION_NAME}"

    def __init__(self, log_stream_name: str) -> None:
        self.log_stream_name = log_stream_name
        self.aws_request_id = ""
        self._deadline_ms = 0
        self.init_window: tuple[float, float] | None = None
        """(start, end) of this environment's init in epoch seconds, on the first invocation the
        handler serves only; None on every other (the local stack's own: AWS's context has none)."""

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def injected_error(status: int, context: LambdaContext) -> dict[str, object]:
    """The function URL response of an invocation failed by the ``errors`` fault."""
    body = {"error": "injected fault", "fault": "lambda-errors", "status": status}
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "X-Served-By": context.log_stream_name},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def main() -> None:
    die_with_parent()
    # Keep the frame channel on private descriptors; point fd 0 at /dev/null and fd 1 at stderr.
    frames_in = os.fdopen(os.dup(0), "rb", buffering=65536)
    frames_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)

    started, started_wall = time.monotonic(), time.time()
    module_name, _, function_name = os.environ.get(
        "CHAOSCHECK_HANDLER", "counter.lambda_handler.handler"
    ).rpartition(".")
    handler = getattr(importlib.import_module(module_name), function_name)  # the real module init
    time.sleep(float(os.environ.get("CHAOSCHECK_COLD_START", "0")))
    context = LambdaContext(os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", f"local-{os.getpid()}"))
    init_s = time.monotonic() - started
    init_window: tuple[float, float] | None = (started_wall, started_wall + init_s)
    frames_out.write(encode({"ready": round(init_s * 1000, 3)}))
    frames_out.flush()

    while True:
        message = read_frame(frames_in)
        if message is None:
            return  # the stack closed our stdin: shut down
        context.aws_request_id = message.get("request_id", "")
        context._deadline_ms = message.get("deadline_ms", 0)
        fault = message.get("fault") or {}
        frame: bytes
        try:
            if fault.get("delay_s"):
                time.sleep(fault["delay_s"])
            if fault.get("status"):
                frame = encode({"result": injected_error(int(fault["status"]), context)})
            else:
                if message.get("service_s"):
                    time.sleep(message["service_s"])
                context.init_window, init_window = init_window, None  # handed over once
                frame = encode({"result": handler(message["event"], context)})
        except Exception as exc:  # a function error: reported, and the environment lives on
            traceback.print_exc(file=sys.stderr)
            frame = encode({"error": {"errorType": type(exc).__name__, "errorMessage": str(exc)}})
        frames_out.write(frame)
        frames_out.flush()


if __name__ == "__main__":
    main()
