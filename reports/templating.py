"""The Jinja2 settings every page of ``reports`` is rendered with (the run report, the trend page).

Autoescaping is on for every template: text from the network (error bodies, journal lines, scaling
causes) reaches the pages only escaped. ``StrictUndefined`` makes a missing field an error instead of
an empty cell.
"""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined


def environment() -> Environment:
    """A new environment over ``reports/templates``; each page adds its own filters to it."""
    return Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
