"""Locust entry point for chaoscheck.

    locust -f loadtests/locustfile.py --fleet-url URL --lambda-url URL [--scenario FILE]

``chaoscheck run`` starts Locust with this file too. Importing the plugin registers chaoscheck's
options and its ledger recorder on Locust's events; the two user classes are the tiers.
"""

import chaoscheck.webui.plugin  # noqa: F401  (first: its test_start sets the run's options, see its docstring)
import loadtests.plugin  # noqa: F401  (registers the event listeners)
from loadtests.users import FleetUser, LambdaUser

__all__ = ["FleetUser", "LambdaUser"]
