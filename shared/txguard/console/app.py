"""The console's web app (Flask): server-rendered pages, a small JSON API, live updates over SSE.

Pages render with Jinja templates and one vendored script (static/console.js, no CDN); the API
takes and answers JSON, and every error has one shape, `{"error": {"status", "message",
"errors": [{"loc", "msg"}]}}`, so a form can name the field to fix. Changes (claim, verdict,
scoring, alias moves) are POSTs with a JSON body only: a cross-site form cannot send one without a
CORS preflight, which the console never answers. Beyond that, two walls a page on another site
cannot climb, even one that rebinds its DNS name to the console's address:
- the Host header must be one of `CONSOLE_TRUSTED_HOSTS` (Flask's TRUSTED_HOSTS; 400 otherwise);
- a POST that says where it comes from (`Origin`, or a browser's `Sec-Fetch-Site`) must come from the
  console's own origin (403 otherwise). Clients that are not browsers send neither and pass.

Each page is a blueprint of txguard.console.pages; this module assembles them on one app and owns
what they share: the analyst of every request, the error shapes, `/healthz`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, g, jsonify, redirect, render_template, request
from werkzeug.exceptions import HTTPException, SecurityError

from txguard.console import present
from txguard.console.identity import ANALYST_COOKIE
from txguard.console.pages import labels, live, models, queue, rules, score
from txguard.console.wiring import ConsoleParts, current_parts
from txguard.contract.errors import ConsoleError, ConsoleForbiddenError, ConsoleNotFoundError
from txguard.contract.process import ProcessWide

# The pages, in the navigation's order (txguard.console.pages: one module and one blueprint each).
BLUEPRINTS: tuple[Blueprint, ...] = (queue.blueprint, live.blueprint, score.blueprint, models.blueprint,
                                     labels.blueprint, rules.blueprint)


def error_body(exc: ConsoleError) -> dict[str, Any]:
    return {"error": {"status": exc.status, "message": exc.message, "errors": exc.errors}}


def create_app(parts: ConsoleParts) -> Flask:
    """The console's app on `parts`: the pages' blueprints and what they share (the analyst, errors)."""
    # Not /static: functions-framework's own Flask app answers that path before ours is reached.
    app = Flask(__name__, static_url_path="/assets")
    app.json.sort_keys = False  # features in the contract's order, as the model reads them
    app.config["parts"] = parts
    app.config["TRUSTED_HOSTS"] = parts.settings.trusted_host_list()
    app.before_request(_who)
    app.context_processor(_template_globals)
    present.register(app)  # human names, numbers and UTC times in every template
    app.register_error_handler(SecurityError, _untrusted_host)
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
    if request.method in STATE_CHANGING:
        _same_origin()
    if request.method == "POST" and not request.is_json:
        raise ConsoleError("send JSON (Content-Type: application/json)")
    return None


STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")


def _same_origin() -> None:
    """A state-changing request from a browser must come from this console's own origin."""
    origin = request.headers.get("Origin")
    if origin is not None:
        if origin == "null" or urlsplit(origin).netloc.lower() != request.host.lower():
            raise ConsoleForbiddenError(f"cross-origin request refused: Origin {origin} is not this console "
                                        f"({request.host})")
        return
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        raise ConsoleForbiddenError(f"cross-origin request refused (Sec-Fetch-Site: {site})")


def _template_globals() -> dict[str, Any]:
    return {"analyst": g.get("analyst"), "iap": current_parts().identity.requires_iap,
            "analyst_cookie": ANALYST_COOKIE}


def _healthz() -> Any:
    parts = current_parts()
    parts.start_ingest()
    health = parts.health()
    return jsonify(health), 200 if health["status"] == "ok" else 503


def _home() -> Any:
    return redirect("/queue")


# Errors: one JSON shape for the API and POSTs, an error page otherwise ---------------------------
def _console_error(exc: ConsoleError) -> Any:
    if request.path.startswith("/api/") or request.method == "POST":
        return jsonify(error_body(exc)), exc.status
    return render_template("error.html", error=exc, analyst=g.get("analyst")), exc.status


def _untrusted_host(exc: SecurityError) -> Any:
    """A Host header outside CONSOLE_TRUSTED_HOSTS: no page (no URL can be built for it), one JSON line."""
    error = ConsoleError(f"{exc.description} (CONSOLE_TRUSTED_HOSTS)")
    return Response(json.dumps(error_body(error)), status=400, mimetype="application/json")


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
