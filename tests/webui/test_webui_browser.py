"""The Chaos tab in a real headless Chromium: it renders, with live data, and links to the report.

Needs Debian's ``chromium`` (``apt-get install -y chromium``). Without it the test is skipped, except
in CI (``CI=true``), where a missing browser is a failure. Set ``CHAOSCHECK_WEBUI_SCREENSHOT=PATH`` to
keep a copy of the screenshot (docs/img/webui-chaos-tab.png was made so).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from webui_helpers import LocustUI, require_load_plugin

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1400,1000", "--virtual-time-budget=5000", "--hide-scrollbars",
]  # fmt: skip


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("chromium is not installed; CI needs 'apt-get install -y chromium'")
    pytest.skip("chromium is not installed (apt-get install -y chromium)")


def browse(browser: str, profile: Path, url: str, *output: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *output, url],
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
    )


def test_the_chaos_tab_renders_live_data_in_chromium(webui_stack, workdir: Path, start_locust) -> None:
    browser = chromium()
    require_load_plugin()
    ui: LocustUI = start_locust(
        "--scenario", "small.yaml", "--target", "local", "--stack-state", str(webui_stack.state_file)
    )
    form = {"scenario": "small.yaml", "target": "local", "stack_state": str(webui_stack.state_file)}
    assert ui.swarm(**form).json()["success"] is True
    ui.wait_run(lambda r: len(r["timeline"]) == 2, 15, "the scenario's throttle to come and go")
    injected = ui.inject("throttle-lambda", reserved_concurrency=2)
    assert injected.json()["ok"], injected.body
    run = ui.wait_run(lambda r: r["counts"]["ok"] > 100, 15, "some load")

    url = f"{ui.base}/?tab=chaos"
    shot = workdir / "webui-chaos-tab.png"
    profile = workdir / "chromium-profile"
    taken = browse(browser, profile, url, f"--screenshot={shot}")
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", taken.stderr[-2000:]
    assert shot.stat().st_size > 20_000  # a page, not a blank
    keep = os.environ.get("CHAOSCHECK_WEBUI_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)

    dom = browse(browser, profile, url, "--dump-dom").stdout
    assert 'id="chaoscheck-panel"' in dom, dom[-3000:]
    assert f"run {run['id']} · scenario webui-test · target local" in dom
    ok = re.search(r'data-count="ok">([\d,]+)<', dom)
    assert ok and int(ok.group(1).replace(",", "")) > 0
    assert "fault 1 throttle-lambda on lambda" in dom  # open faults
    assert "Roll back everything" in dom and '<option value="throttle-lambda">' in dom
    assert 'name="reserved_concurrency"' in dom and 'placeholder="until rolled back"' in dom
    cells = re.findall(r"<td[^>]*>(.*?)</td>", dom)  # Locust's own table: the fault timeline
    assert cells.count("throttle-lambda") == 3 and "manual" in cells and "scheduled" in cells

    ui.post_form("/stop", {})
    run = ui.wait_run(lambda r: r["status"] != "running" and r["report"], 60, "the report")
    dom = browse(browser, profile, url, "--dump-dom").stdout
    assert f'href="chaos/runs/{run["id"]}/report.html"' in dom and "open the report" in dom
    assert "finished: PASS" in dom
