"""The Chaos tab in a real headless Chromium: it renders live data, and its buttons work.

Chromium is driven through the DevTools protocol (a websocket on 127.0.0.1, by the shared driver
``tests/helpers/headless_chromium.py``): open the tab and check what it shows, type a parameter and
press Inject as a user would, take a screenshot, press Roll back everything, stop the test and follow
the report link; the local stack is checked after each press.
Needs Debian's ``chromium`` (``apt-get install -y chromium``). Without it the test is skipped, except
in CI (``CI=true``), where a missing browser is a failure. ``CHAOSCHECK_WEBUI_SCREENSHOT=PATH``
keeps a copy of the screenshot (docs/img/webui-chaos-tab.png was made so).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from headless_chromium import chromium, chromium_page
from webui_helpers import RESERVED, LocustUI, require_load_plugin, reserved_concurrency

pytestmark = pytest.mark.slow


PANEL = "document.getElementById('chaoscheck-panel')"


def text(selector: str) -> str:
    return f"({PANEL}?.querySelector({json.dumps(selector)})?.textContent || '')"


def test_the_chaos_tab_shows_the_run_and_its_buttons_work(webui_stack, workdir: Path, start_locust) -> None:
    binary = chromium()
    require_load_plugin()
    ui: LocustUI = start_locust(
        "--scenario", "small.yaml", "--target", "local", "--stack-state", str(webui_stack.state_file)
    )
    form = {"scenario": "small.yaml", "target": "local", "stack_state": str(webui_stack.state_file)}
    assert ui.swarm(**form).json()["success"] is True
    ui.wait_run(lambda r: len(r["timeline"]) == 2, 15, "the scenario's throttle to come and go")
    run = ui.wait_run(lambda r: r["counts"]["ok"] > 100, 15, "some load")

    with chromium_page(binary, workdir / "chromium-profile") as browser:
        browser.call("Page.enable")
        browser.call("Page.navigate", url=f"{ui.base}/?tab=chaos")
        browser.wait(f"{text('.cc-run')}.includes({json.dumps(run['id'])})", 20, "the panel with the run")
        assert browser.evaluate(text(".cc-run")) == f"run {run['id']} · scenario webui-test · target local"
        assert browser.evaluate(text(".cc-status")) == "running"
        ok = browser.wait(f"parseInt({text('[data-count=ok]')}.replace(/,/g, ''))", 10, "live counts")
        assert ok > 0
        cells = "[...document.querySelectorAll('td')].map(td => td.textContent)"
        browser.wait(f"{cells}.includes('rollback')", 10, "Locust's table with the fault timeline")
        assert browser.evaluate(f"{cells}.filter(c => c === 'scheduled').length") == 2

        # Inject by hand: type the parameter, press Inject, as a user would.
        browser.evaluate(f"{PANEL}.querySelector('input[name=reserved_concurrency]').value = '3'")
        browser.evaluate(f"{PANEL}.querySelector('button.cc-inject').click()")
        browser.wait(f"{text('.cc-message')}.includes('injected')", 10, "the injection's answer")
        assert browser.evaluate(text(".cc-message")) == "fault 1: throttle-lambda on lambda injected"
        assert reserved_concurrency(webui_stack) == 3
        browser.wait(f"{text('.cc-open-list')} !== 'none'", 5, "the open fault")
        assert browser.evaluate(text(".cc-open-list")) == "fault 1 throttle-lambda on lambda"
        browser.wait(f"{cells}.includes('manual')", 10, "the manual fault in the timeline")

        shot = workdir / "webui-chaos-tab.png"
        browser.screenshot(shot, viewport=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
        if os.environ.get("CHAOSCHECK_WEBUI_SCREENSHOT"):
            shutil.copyfile(shot, os.environ["CHAOSCHECK_WEBUI_SCREENSHOT"])

        browser.evaluate(f"{PANEL}.querySelector('button.cc-rollback').click()")
        browser.wait(f"{text('.cc-message')}.includes('rolled back')", 10, "the roll back's answer")
        assert browser.evaluate(text(".cc-message")).startswith("1 fault(s) rolled back")
        assert reserved_concurrency(webui_stack) == RESERVED

        ui.post_form("/stop", {})
        browser.wait(f"{text('.cc-report')} === 'open the report'", 60, "the link to the report")
        href = browser.evaluate(f"{PANEL}.querySelector('.cc-report').getAttribute('href')")
        assert href == f"chaos/runs/{run['id']}/report.html"
        assert browser.evaluate(text(".cc-status")) == "finished: PASS"
        assert browser.evaluate(f"{PANEL}.querySelector('button.cc-inject').disabled") is True
        report = browser.evaluate(
            f"fetch({json.dumps(href)}).then(r => r.status + ' ' + r.headers.get('content-type'))"
        )
        assert report.startswith("200 text/html")
