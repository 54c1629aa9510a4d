"""A headless Chromium for the browser tests (tests/reports, tests/webui), driven through the DevTools
protocol: Debian's ``chromium``, its DevTools on a websocket of 127.0.0.1 on a port it picks itself.

Every event is kept, so a test can list the network requests the page made
(``Network.requestWillBeSent``) and its console errors (``Runtime.consoleAPICalled``,
``Runtime.exceptionThrown``, ``Log.entryAdded``). Without Chromium the tests are skipped, except in CI
(``CI=true``), where a missing browser is a failure.

The folders that use it put this directory on ``sys.path`` in their conftest.py.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-proxy-server", "--window-size=1400,1000", "--hide-scrollbars", "--disable-extensions",
    "--disable-default-apps", "--mute-audio", "--remote-debugging-address=127.0.0.1",
]  # fmt: skip
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_LISTENING = re.compile(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/")


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("chromium is not installed; CI needs 'apt-get install -y chromium'")
    pytest.skip("chromium is not installed (apt-get install -y chromium)")


class Page:
    """One page of a headless Chromium; every event received is kept in :attr:`events`."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.events: list[dict] = []
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
            if "method" in message:
                self.events.append(message)

    def pump(self, seconds: float) -> None:
        """Receive (and keep) events for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = json.loads(self.ws.recv(timeout=left))
            except TimeoutError:
                return
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` in the page (awaited when it is a Promise)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, expression: str, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            self.pump(0.1)

    def open(self, url: str) -> None:
        """Enable the domains that report requests and errors, then navigate and wait for the load."""
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call("Page.navigate", url=url)
        self.wait("document.readyState === 'complete'", 30, "the page to load")

    def requests(self) -> list[str]:
        return [
            e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"
        ]

    def errors(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and error log entries (CSP, network)."""
        out = []
        for e in self.events:
            p = e["params"]
            if e["method"] == "Runtime.consoleAPICalled" and p["type"] in ("error", "warning", "assert"):
                out.append(
                    f"console.{p['type']}: {[a.get('value', a.get('description')) for a in p['args']]}"
                )
            elif e["method"] == "Runtime.exceptionThrown":
                out.append(f"exception: {p['exceptionDetails']}")
            elif e["method"] == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
                out.append(f"log {p['entry']['level']}: {p['entry']['text']}")
        return out

    def screenshot(self, path: Path, height: int | None = None, *, viewport: bool = False) -> None:
        """A PNG of the page from its top, ``height`` CSS pixels tall (the whole page by default), or
        of the window as it shows (``viewport``)."""
        if viewport:
            shot = self.call("Page.captureScreenshot", format="png")
            path.write_bytes(base64.b64decode(shot["data"]))
            return
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {
            "x": 0,
            "y": 0,
            "width": size["width"],
            "height": min(height or 1e9, size["height"]),
            "scale": 1,
        }
        shot = self.call("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))


@contextmanager
def chromium_page(binary: str, profile: Path) -> Iterator[Page]:
    """A headless Chromium with its DevTools on a port of 127.0.0.1 it picks; stopped on the way out."""
    proc = subprocess.Popen(
        [binary, *CHROMIUM_FLAGS, "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        port = None
        deadline = time.monotonic() + 30
        while port is None:
            line = proc.stderr.readline()  # type: ignore[union-attr]
            if not line and proc.poll() is not None:
                raise AssertionError(f"chromium exited with {proc.returncode}")
            if found := _LISTENING.search(line):
                port = int(found.group(1))
            if time.monotonic() > deadline:
                raise AssertionError("chromium did not report its DevTools port within 30 s")
        # keep reading stderr so that Chromium never blocks on a full pipe
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # type: ignore[union-attr]
        url = None
        while url is None and time.monotonic() < deadline:
            with NO_PROXY.open(f"http://127.0.0.1:{port}/json/list", timeout=5) as resp:
                pages = [t for t in json.loads(resp.read()) if t.get("type") == "page"]
            url = pages[0]["webSocketDebuggerUrl"] if pages else None
            if url is None:
                time.sleep(0.1)
        assert url, "no page in Chromium's DevTools list"
        with connect(url, proxy=None, max_size=None, open_timeout=10) as ws:
            yield Page(ws)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
