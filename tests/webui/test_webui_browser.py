"""The Chaos tab in a real headless Chromium: it renders live data, and its buttons work.

Chromium is driven through the DevTools protocol (a websocket on 127.0.0.1): open the tab and check
what it shows, type a parameter and press Inject as a user would, take a screenshot, press Roll back
everything, stop the test and follow the report link; the local stack is checked after each press.
Needs Debian's ``chromium`` (``apt-get install -y chromium``). Without it the test is skipped, except
in CI (``CI=true``), where a missing browser is a failure. ``CHAOSCHECK_WEBUI_SCREENSHOT=PATH``
keeps a copy of the screenshot (docs/img/webui-chaos-tab.png was made so).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect
from webui_helpers import (
    NO_PROXY,
    RESERVED,
    LocustUI,
    free_port,
    require_load_plugin,
    reserved_concurrency,
    wait_for,
)

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-proxy-server", "--window-size=1400,1000", "--hide-scrollbars",
]  # fmt: skip


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("chromium is not installed; CI needs 'apt-get install -y chromium'")
    pytest.skip("chromium is not installed (apt-get install -y chromium)")


class Page:
    """One page of a headless Chromium, driven through the DevTools protocol."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self._next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        self.ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=30))
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` in the page (awaited when it is a Promise)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, expression: str, timeout: float, what: str) -> Any:
        return wait_for(lambda: self.evaluate(expression), timeout, what, interval=0.1)

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))


@contextmanager
def chromium_page(binary: str, profile: Path) -> Iterator[Page]:
    """A headless Chromium with its DevTools on a free port of 127.0.0.1; stopped on the way out."""
    port = free_port()
    proc = subprocess.Popen(
        [binary, *CHROMIUM_FLAGS, f"--remote-debugging-port={port}", f"--user-data-dir={profile}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def pages() -> list[dict] | None:
        if proc.poll() is not None:
            raise AssertionError(f"chromium exited with {proc.returncode}")
        try:
            with NO_PROXY.open(f"http://127.0.0.1:{port}/json/list", timeout=2) as resp:
                return [t for t in json.loads(resp.read()) if t.get("type") == "page"] or None
        except OSError:
            return None

    try:
        url = wait_for(pages, 30, "Chromium's DevTools endpoint")[0]["webSocketDebuggerUrl"]
        with connect(url, proxy=None, max_size=None, open_timeout=10) as ws:
            yield Page(ws)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
        browser.screenshot(shot)
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
