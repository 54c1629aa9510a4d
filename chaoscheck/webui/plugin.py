"""Attaches chaoscheck's runs and the Chaos tab to Locust through its events.

The locustfile imports this module *before* ``loadtests.plugin``, because Locust calls an event's
listeners in the order they were added (and ``quitting``'s in reverse):

- ``test_start``: this module's listener starts the run (run directory, faults on the test's clock)
  and sets ``run_dir``, ``counter``, ``fleet_url`` and ``lambda_url`` in the parsed options, which the
  load plugin's listener reads next (and Locust sends to the workers with the spawn message);
- ``test_stop``: every fault is rolled back before the load plugin closes the ledger; the run
  directory is then finished in a greenlet, after ``loadtests.plugin.wait_ledger_closed``;
- ``quitting``: the listener added at ``init`` runs first (faults rolled back, the load stopped); the
  one added here runs after the load plugin's and waits until the report is written.

In orchestrator mode (``chaoscheck run`` passes ``--run-dir``) this module does nothing at all.
"""

from __future__ import annotations

import atexit
from typing import Any

import gevent
from locust import events
from locust.runners import WorkerRunner

from chaoscheck.active_runs import HALT_SIGNAL
from chaoscheck.webui.options import add_own_options, show_plugin_options
from chaoscheck.webui.runs import Runs

runs = Runs()
"""The runs of this Locust process."""


@events.init_command_line_parser.add_listener
def _add_options(parser: Any, **_: Any) -> None:
    add_own_options(parser)


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    options = environment.parsed_options
    if options is None or isinstance(environment.runner, WorkerRunner):
        return
    if getattr(options, "run_dir", ""):
        return  # chaoscheck run owns this run
    runs.enable(environment)
    # Added now, so after the load plugin's: the start form shows its scenario and URL fields.
    environment.events.init_command_line_parser.add_listener(show_plugin_options)
    # Added last, so called first when Locust quits (quitting fires in reverse order).
    environment.events.quitting.add_listener(_on_quitting_first)
    atexit.register(runs.roll_back_at_exit)
    # ``chaoscheck halt`` asks with SIGUSR1; the halt runs in a greenlet, never in the handler.
    gevent.signal_handler(HALT_SIGNAL, lambda: gevent.spawn(runs.halt_current, "halted by chaoscheck halt"))
    if environment.web_ui is not None:
        from chaoscheck.webui.tab import install

        install(environment.web_ui, runs)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    runs.on_test_start(environment)


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **_: Any) -> None:
    runs.on_test_stop(environment)


def _on_quitting_first(environment: Any, **_: Any) -> None:
    runs.on_quitting_first(environment)


@events.quitting.add_listener
def _on_quitting_last(environment: Any, **_: Any) -> None:
    if runs.enabled:
        runs.on_quitting_last(environment)
