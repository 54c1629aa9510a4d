"""The chaoscheck locustfile with Locust's own pacing: ``soak_memory.py``'s fallback to a steady rate.

Used only when the load side does not honour the scenario's open-model ``rate`` key: every counter
user then waits ``constant_throughput(SOAK_USER_RATE)`` between operations (Locust's closed-model
pacing: one operation per user per 1/SOAK_USER_RATE seconds, a missed slot is not made up). The rest
(options, ledger recorder, users) is ``loadtests/locustfile.py`` unchanged.
"""

import os

from locust import constant_throughput

import loadtests.plugin  # noqa: F401  (registers chaoscheck's options and the ledger recorder)
from loadtests.users import FleetUser, LambdaUser

FleetUser.wait_time = LambdaUser.wait_time = constant_throughput(
    float(os.environ.get("SOAK_USER_RATE", "20"))
)

__all__ = ["FleetUser", "LambdaUser"]
