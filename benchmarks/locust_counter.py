"""A tiny Locust file for ``stack_throughput.py``: idempotent increments on both tiers at full speed.

The stack's URLs come from the environment (``BENCH_FLEET_URL``, ``BENCH_LAMBDA_URL``, both
http://127.0.0.1:PORT), as do the user counts (``BENCH_FLEET_USERS``, ``BENCH_LAMBDA_USERS``).
"""

from __future__ import annotations

import os
import uuid

from locust import FastHttpUser, constant, task

COUNTER = os.environ.get("BENCH_COUNTER", "bench")


class FleetUser(FastHttpUser):
    host = os.environ.get("BENCH_FLEET_URL", "http://127.0.0.1:1")
    fixed_count = int(os.environ.get("BENCH_FLEET_USERS", "10"))
    wait_time = constant(0)

    @task
    def increment(self) -> None:
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        self.client.post(f"/counters/{COUNTER}-fleet/increment", headers=headers, name="fleet")


class LambdaUser(FastHttpUser):
    host = os.environ.get("BENCH_LAMBDA_URL", "http://127.0.0.1:1")
    fixed_count = int(os.environ.get("BENCH_LAMBDA_USERS", "10"))
    wait_time = constant(0)

    @task
    def increment(self) -> None:
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        self.client.post(f"/counters/{COUNTER}-lambda/increment", headers=headers, name="lambda")
