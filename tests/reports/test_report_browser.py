"""The report in a real headless Chromium: it loads with no console error and no network request,
its charts are drawn, the `<script>` that a server error and the fault journal carried stays inert,
and a screenshot is taken.

Needs Debian's ``chromium`` (``.ci/run`` installs it); without it the test is skipped, except in CI
(``CI=true``). ``CHAOSCHECK_REPORT_SCREENSHOT=PATH`` keeps a copy of the screenshot.
"""

from __future__ import annotations

import json
import os
import shutil

from headless_chromium import chromium, chromium_page
from report_synthetic import scaling_rows, write_scaling
from test_html_report import figures, make

from analysis import analyze
from reports.html import write_report

# Closes a <script> element and opens one, and runs code from an attribute, if it is not escaped.
PAYLOAD = '</script><script>window.__pwned=1</script><!-- <img src=x onerror="window.__pwned=2">'


def test_the_report_in_headless_chromium(tmp_path):
    binary = chromium()
    run_dir = make(tmp_path / "run")
    # a server error in ops.parquet and an error in the journal carry the payload, as does a cause
    ops = run_dir / "ops.parquet"
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(ops)
    errors = pc.if_else(pc.is_null(table["error"]), table["error"], f"502 {PAYLOAD}")
    pq.write_table(table.set_column(table.schema.get_field_index("error"), "error", errors), ops)
    lines = [json.loads(line) for line in (run_dir / "faults.jsonl").read_text(encoding="utf-8").splitlines()]
    for line in lines:
        line["target"] = f"{line['target']} {PAYLOAD}"
        if line["event"] == "abort":
            line["error"] = f"failed {PAYLOAD}"
    (run_dir / "faults.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8"
    )
    write_scaling(run_dir, scaling_rows(5.0, cause=PAYLOAD))
    path = write_report(run_dir, analyze(run_dir))
    html = path.read_text(encoding="utf-8")
    assert PAYLOAD not in html and "window.__pwned=1</script>" not in html
    drawn = figures(html)

    with chromium_page(binary, tmp_path / "profile") as page:
        url = path.resolve().as_uri()
        page.open(url)
        assert page.wait("document.documentElement.dataset.charts", 30, "the charts") == "drawn"
        page.pump(0.5)  # anything late (a deferred request, an error) is recorded too

        assert page.errors() == []
        assert page.requests() == [url]  # the page itself, nothing else
        assert page.evaluate("typeof window.__pwned") == "undefined"
        text = page.evaluate("document.body.innerText")
        assert "window.__pwned=1" in text and 'onerror="window.__pwned=2"' in text  # shown as text

        # every figure is drawn: its SVG layers, one trace group per trace shown, the fault shading
        assert page.evaluate("document.querySelectorAll('.js-plotly-plot').length") == len(drawn) == 2
        assert page.evaluate("document.querySelectorAll('.js-plotly-plot svg.main-svg').length") >= 2 * len(
            drawn
        )
        timeline = drawn["cc-timeline"]
        shown = [t for t in timeline["data"] if t.get("visible", True) is True]
        traces = "document.querySelectorAll('#cc-timeline .scatterlayer .trace').length"
        assert page.evaluate(traces) == len(shown)
        rows = "document.querySelectorAll('#cc-timeline .cartesianlayer .subplot').length"
        assert page.evaluate(rows) == len([k for k in timeline["layout"] if k.startswith("xaxis")])
        shapes = "document.querySelectorAll('#cc-timeline .shapelayer path').length"
        assert page.evaluate(shapes) == len(timeline["layout"]["shapes"])
        labels = "[...document.querySelectorAll('#cc-timeline .annotation-text')].map(e => e.textContent)"
        assert "fault-3 aborted" in page.evaluate(labels)

        shot = tmp_path / "report-overview.png"
        page.screenshot(shot, height=1900)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
        if os.environ.get("CHAOSCHECK_REPORT_SCREENSHOT"):
            shutil.copyfile(shot, os.environ["CHAOSCHECK_REPORT_SCREENSHOT"])
