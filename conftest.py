"""The repository's pytest setup: chaoscheck's pytest plugin, loaded here when it is not installed.

The options (``--target``, ``--scenario``, ``--runs-dir``, ...), the fixtures (``run_scenario``,
``scenario_run``, ``summary``, ``chaoscheck_target``, ``runs_dir``) and the markers live in
``chaoscheck/pytest_plugin.py`` (``docs/verification.md``). An installed chaoscheck registers the plugin
through its ``pytest11`` entry point, which pytest loads before this file; loading it again here
would add its options twice, so it is loaded here only when the entry point did not (chaoscheck not
installed, or ``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` set).
"""

from __future__ import annotations

import sys

PLUGIN = "chaoscheck.pytest_plugin"

pytest_plugins = [] if PLUGIN in sys.modules else [PLUGIN]
