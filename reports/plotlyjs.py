"""The JavaScript the report inlines, and JSON made safe to inline next to it.

The report is one file that fetches nothing, so plotly.js is inlined: the vendored basic bundle
(``reports/vendor/plotly-basic.min.js``, see ``reports/vendor/README.md``), 1.2 MB instead of the
4.8 MB of the full bundle. Data goes into ``<script type="application/json">`` blocks that the page
parses; :func:`script_json` escapes what could end such a block early.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

VERSION = "4.1.1"
"""plotly.js version of the vendored bundle."""
BUNDLE = "plotly-basic.min.js"

_CLOSES_SCRIPT = re.compile(r"</script|<!--", re.IGNORECASE)


@cache
def plotly_js() -> str:
    """The vendored plotly.js bundle, checked to be safe inside a ``<script>`` element."""
    text = (resources.files("reports") / "vendor" / BUNDLE).read_text(encoding="utf-8")
    if _CLOSES_SCRIPT.search(text):  # would end the inline <script> early
        raise ValueError(f"reports/vendor/{BUNDLE}: holds '</script' or '<!--': it cannot be inlined")
    return text


def inline_js(text: str) -> str:
    """Our own JavaScript (a template of this package), with the same check as the bundle."""
    if _CLOSES_SCRIPT.search(text):
        raise ValueError("inline JavaScript must not hold '</script' or '<!--'")
    return text


_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_ESCAPED = re.compile("[<>&\u2028\u2029]")


def script_json(value: Any) -> str:
    """``value`` as JSON that can sit inside ``<script type="application/json">`` as it is.

    ``<``, ``>`` and ``&`` become ``\\u003c``, ``\\u003e``, ``\\u0026`` (so no ``</script>``, no
    ``<!--`` and no entity can appear in the element), and U+2028/U+2029 are escaped too; the page
    reads the element's text back with ``JSON.parse``, which restores every character. NaN and
    infinities are not JSON: they must be turned into ``null`` before.
    """
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return _ESCAPED.sub(lambda m: _ESCAPES[m.group(0)], text)
