"""The console's web app (Flask): server-rendered pages, a small JSON API, live updates over SSE.

Pages render with Jinja templates and one vendored script (static/console.js, no CDN); the API
takes and answers JSON, and every error has one shape, `{"error": {"status", "message",
"errors": [{"loc", "msg"}]}}`, so a form can name the field to fix. Changes (claim, verdict,
scoring, alias moves) are POSTs with a JSON body only: a cross-site form cannot send one without a
CORS preflight, which the console never answers.

Each page is a blueprint of txguard.console.pages; this module assembles them on one app and owns
what they share: the analyst of every request, the error shapes, `/healthz`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, g, jsonify, redirect, render_template, request
from werkzeug.exceptions import HTTPException

from txguard.console.identity import ANALYST_COOKIE
from txguard.console.pages import live, models, queue, rules, score
from txguard.console.wiring import ConsoleParts, current_parts
from txguard.contract.errors import ConsoleError, ConsoleNotFoundError
from txguard.contract.process import ProcessWide

# The pages, in the navigation's order (txguard.console.pages: one module and one blueprint each).
BLUEPRINTS: tuple[Blueprint, ...] = (queue.blueprint, live.blueprint, score.blueprint, models.blueprint,
                                     rules.blueprint)


def error_body(exc: ConsoleError) -> dict[str, Any]:
    return {"error": {"status": exc.status, "message": exc.message, "errors": exc.errors}}


def create_app(parts: ConsoleParts) -> Flask:
    """The console's app on `parts`: the pages' blueprints and what they share (the analyst, errors)."""
    # Not /static: functions-framework's own Flask app answers that path before ours is reached.
    app = Flask(__name__, static_url_path="/assets")
    app.json.sort_keys = False  # features in the contract's order, as the model reads them
    app.config["parts"] = parts
    app.before_request(_who)
    app.context_processor(_template_globals)
    app.register_error_handler(ConsoleError, _console_error)
    app.register_error_handler(404, _not_found)
    app.register_error_handler(405, _not_allowed)
    app.register_error_handler(Exception, _bug)
    app.add_url_rule("/healthz", view_func=_healthz, methods=["GET"])
    app.add_url_rule("/", view_func=_home, methods=["GET"])
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    return app


def _who() -> Any:
    """Every page but /healthz: start the intake, name the analyst, refuse a POST that is not JSON."""
    if request.path == "/healthz":
        return None
    parts = current_parts()
    parts.start_ingest()
    g.analyst = parts.identity.analyst(request.headers, request.cookies)
    if request.method == "POST" and not request.is_json:
        raise ConsoleError("send JSON (Content-Type: application/json)")
    return None


def _template_globals() -> dict[str, Any]:
    return {"analyst": g.get("analyst"), "iap": current_parts().identity.requires_iap,
            "analyst_cookie": ANALYST_COOKIE}


def _healthz() -> Any:
    parts = current_parts()
    parts.start_ingest()
    return jsonify(parts.health())


def _home() -> Any:
    return redirect("/queue")


# Errors: one JSON shape for the API and POSTs, an error page otherwise ---------------------------
def _console_error(exc: ConsoleError) -> Any:
    if request.path.startswith("/api/") or request.method == "POST":
        return jsonify(error_body(exc)), exc.status
    return render_template("error.html", error=exc, analyst=g.get("analyst")), exc.status


def _not_found(_exc: Exception) -> Any:
    return _console_error(ConsoleNotFoundError(f"no page {request.path}"))


def _not_allowed(_exc: Exception) -> Any:
    exc = ConsoleError(f"{request.method} is not allowed on {request.path}")
    exc.status = 405
    return _console_error(exc)


def _bug(exc: Exception) -> Any:
    if isinstance(exc, HTTPException):  # werkzeug's own 4xx (a malformed request line or body)
        error = ConsoleError(exc.description or exc.name)
        error.status = exc.code or 400
        return _console_error(error)
    # A bug, not bad input: the stack goes to the log, the page gets a plain 500.
    current_parts().log.exception("unhandled error", extra={"path": request.path, "method": request.method})
    error = ConsoleError("internal error (logged)")
    error.status = 500
    return _console_error(error)


def _build_default() -> Flask:
    from txguard.console.wiring import build_console
    from txguard.contract.settings import console_settings

    return create_app(build_console(console_settings()))


# Built on first use: after gunicorn forks its worker, so the gRPC clients (Pub/Sub, Firestore)
# are created in the process that uses them.
_app: ProcessWide[Flask] = ProcessWide(_build_default)


def default_app() -> Flask:
    return _app.get()
