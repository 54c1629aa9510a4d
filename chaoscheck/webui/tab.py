"""The Chaos tab of Locust's web UI: its routes, its table, and the script that draws the rest.

Locust's own mechanism makes the tab: ``extended_tabs`` and ``extended_tables`` in the index page's
template arguments, and the table's rows (the run's fault timeline, one row per journal line) added
to ``/stats/requests`` as ``extended_stats``, which the page polls while a test runs. The rest of the
tab (run status, live counters, fault injection, roll back, the report link) is drawn by
``static/chaos-tab.js``, which the index page loads and which reads ``chaos/state``.

Routes, all behind ``web_ui.auth_required_if_enabled``:

- ``GET chaos/state``: JSON, everything the tab shows;
- ``POST chaos/inject``: JSON ``{"action", "params", "duration"?, "settle"?}``, one fault now;
- ``POST chaos/rollback``: every open fault of the run restored;
- ``GET chaos/runs/<run id>/<file>``: a file of a run directory of this process (``report.html``...);
- ``GET chaos/static/<file>``: the tab's script and style sheet.

The two POSTs refuse a browser request from another origin (Locust allows any origin by CORS). Text
from runs is never markup: React escapes the table's cells and the script sets only ``textContent``.
Before ``/swarm`` starts a test, the run it describes is checked, and a problem is answered as the
start form's error message instead of starting the test.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, jsonify, request, send_file

from chaoscheck.webui.runs import Runs

TAB_KEY = "chaos"
TAB = {"title": "Chaos", "key": TAB_KEY}
TABLE = {
    "key": TAB_KEY,
    "structure": [
        {"key": "time", "title": "Time (UTC)"},
        {"key": "at", "title": "At (s)"},
        {"key": "event", "title": "Event"},
        {"key": "fault", "title": "Fault"},
        {"key": "origin", "title": "Origin"},
        {"key": "action", "title": "Action"},
        {"key": "target", "title": "Target"},
        {"key": "details", "title": "Details"},
    ],
}
STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"chaos-tab.js": "text/javascript", "chaos-tab.css": "text/css"}
RUN_FILE_TYPES = {
    ".html": "text/html",
    ".json": "application/json",
    ".jsonl": "text/plain",
    ".yaml": "text/plain",
    ".log": "text/plain",
}
PAGE_TAGS = (
    '<link rel="stylesheet" href="./chaos/static/chaos-tab.css">'
    '<script src="./chaos/static/chaos-tab.js" defer></script>'
)


def install(web_ui: Any, runs: Runs) -> None:
    """Add the tab to ``web_ui`` (Locust's ``WebUI``); call it at Locust's ``init``."""
    options = web_ui.environment.parsed_options
    base = (getattr(options, "web_base_path", "") or "") if options is not None else ""
    auth = web_ui.auth_required_if_enabled
    tab = Blueprint("chaoscheck", __name__, url_prefix=base or None)

    @tab.route("/chaos/state")
    @auth
    def chaos_state() -> Response:
        return _json(200, runs.state())

    @tab.route("/chaos/inject", methods=["POST"])
    @auth
    def chaos_inject() -> Response:
        if not _same_origin():
            return _json(403, {"ok": False, "error": "refused: the request came from another site"})
        return _json(*runs.inject(request.get_json(silent=True)))

    @tab.route("/chaos/rollback", methods=["POST"])
    @auth
    def chaos_rollback() -> Response:
        if not _same_origin():
            return _json(403, {"ok": False, "error": "refused: the request came from another site"})
        return _json(*runs.rollback())

    @tab.route("/chaos/runs/<run_id>/<name>")
    @auth
    def chaos_run_file(run_id: str, name: str) -> Response:
        run_dir = runs.run_dir_of(run_id)
        if run_dir is None or name not in _files_in(run_dir):
            abort(404)
        kind = RUN_FILE_TYPES.get(Path(name).suffix)
        response = send_file(
            run_dir.absolute() / name,  # Flask reads a relative path from its own package
            mimetype=kind or "application/octet-stream",
            as_attachment=kind is None,
            download_name=name,
            max_age=0,
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @tab.route("/chaos/static/<name>")
    @auth
    def chaos_static(name: str) -> Response:
        if name not in STATIC_FILES:
            abort(404)
        return send_file(STATIC_DIR / name, mimetype=STATIC_FILES[name], max_age=0)

    @web_ui.app.before_request
    def check_the_run_before_swarming() -> Response | None:
        if request.endpoint != "locust.swarm" or request.method != "POST" or not _signed_in(web_ui):
            return None
        problem = runs.check_start(request.form.to_dict())
        if problem is None:
            return None
        return jsonify({"success": False, "message": problem, "host": web_ui.environment.host})

    @web_ui.app.after_request
    def extend_locust_pages(response: Response) -> Response:
        if request.endpoint == "locust.request_stats" and response.is_json:
            data = response.get_json(silent=True)
            if isinstance(data, dict):
                data["extended_stats"] = [{"key": TAB_KEY, "data": runs.timeline()}]
                response.set_data(jsonify(data).get_data())
        elif request.endpoint == "locust.index" and response.mimetype == "text/html":
            page = response.get_data(as_text=True)
            if "chaos-tab.js" not in page and "</body>" in page:
                response.set_data(page.replace("</body>", PAGE_TAGS + "</body>", 1))
        return response

    web_ui.app.register_blueprint(tab)
    web_ui.template_args["extended_tabs"] = [TAB]
    web_ui.template_args["extended_tables"] = [TABLE]


def _json(status: int, data: dict[str, Any]) -> Response:
    response = jsonify(data)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _files_in(run_dir: Path) -> set[str]:
    """The regular files directly in ``run_dir``: the only names the run route serves."""
    try:
        with os.scandir(run_dir) as entries:
            return {entry.name for entry in entries if entry.is_file(follow_symlinks=False)}
    except OSError:
        return set()


def _same_origin() -> bool:
    """A browser names the page that sent a POST in ``Origin``; other clients (scripts) send none."""
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def _signed_in(web_ui: Any) -> bool:
    if not web_ui.web_login:
        return True
    from flask_login import current_user

    return bool(current_user.is_authenticated)
