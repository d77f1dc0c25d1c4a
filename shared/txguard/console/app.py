"""The console's web app (Flask): server-rendered pages, a small JSON API, live updates over SSE.

Pages render with Jinja templates and one vendored script (static/console.js, no CDN); the API
takes and answers JSON, and every error has one shape, `{"error": {"status", "message",
"errors": [{"loc", "msg"}]}}`, so a form can name the field to fix. Changes (claim, verdict,
scoring, alias moves) are POSTs with a JSON body only: a cross-site form cannot send one without a
CORS preflight, which the console never answers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, g, jsonify, redirect, render_template, request
from werkzeug.exceptions import HTTPException

from txguard.console import drift, manual, registry_view
from txguard.console.identity import ANALYST_COOKIE
from txguard.console.items import QUEUED_OUTCOMES, utcnow
from txguard.console.wiring import ConsoleParts
from txguard.contract.errors import ConsoleError, ConsoleNotFoundError
from txguard.contract.models import Channel, Outcome, TxType, Verdict
from txguard.contract.process import ProcessWide

SSE_INTERVAL_S = 1.0
SSE_MAX_S = 300.0  # a stream ends after this long; EventSource reconnects by itself
QUEUE_LIMIT = 100
OUTCOME_FILTERS = {"all": QUEUED_OUTCOMES, "review": (Outcome.REVIEW,), "block": (Outcome.BLOCK,)}


def error_body(exc: ConsoleError) -> dict[str, Any]:
    return {"error": {"status": exc.status, "message": exc.message, "errors": exc.errors}}


def create_app(parts: ConsoleParts) -> Flask:
    # Not /static: functions-framework's own Flask app answers that path before ours is reached.
    app = Flask(__name__, static_url_path="/assets")
    app.json.sort_keys = False  # features in the contract's order, as the model reads them
    app.config["parts"] = parts

    @app.before_request
    def who() -> Any:
        if request.path == "/healthz":
            return None
        parts.start_ingest()
        g.analyst = parts.identity.analyst(request.headers, request.cookies)
        if request.method == "POST" and not request.is_json:
            raise ConsoleError("send JSON (Content-Type: application/json)")
        return None

    @app.errorhandler(ConsoleError)
    def console_error(exc: ConsoleError) -> Any:
        if request.path.startswith("/api/") or request.method == "POST":
            return jsonify(error_body(exc)), exc.status
        return render_template("error.html", error=exc, analyst=g.get("analyst")), exc.status

    @app.context_processor
    def globals_() -> dict[str, Any]:
        return {"analyst": g.get("analyst"), "iap": parts.identity.requires_iap,
                "analyst_cookie": ANALYST_COOKIE}

    @app.get("/healthz")
    def healthz() -> Any:
        parts.start_ingest()
        return jsonify(parts.health())

    @app.get("/")
    def home() -> Any:
        return redirect("/queue")

    # Review queue ----------------------------------------------------------------------------
    def _filter() -> str:
        chosen = request.args.get("outcome", "all")
        if chosen not in OUTCOME_FILTERS:
            raise ConsoleError(f"outcome must be one of {', '.join(OUTCOME_FILTERS)}",
                               [{"loc": ["outcome"], "msg": "unknown filter"}])
        return chosen

    @app.get("/queue")
    def queue_page() -> Any:
        chosen = _filter()
        items = parts.queue.open_items(OUTCOME_FILTERS[chosen], QUEUE_LIMIT)
        return render_template("queue.html", items=items, chosen=chosen, filters=list(OUTCOME_FILTERS),
                               counts=parts.queue.open_counts(), now=utcnow())

    @app.get("/api/queue")
    def queue_api() -> Any:
        items = parts.queue.open_items(OUTCOME_FILTERS[_filter()], QUEUE_LIMIT)
        return jsonify({"items": [i.model_dump(mode="json") for i in items], "counts": parts.queue.open_counts()})

    def _item(transaction_id: str) -> Any:
        item = parts.queue.get(transaction_id)
        if item is None:
            raise ConsoleNotFoundError(f"no review item for transaction {transaction_id!r}")
        return item

    @app.get("/queue/<transaction_id>")
    def item_page(transaction_id: str) -> Any:
        item = _item(transaction_id)
        return render_template("item.html", item=item, verdicts=[v.value for v in Verdict],
                               holder=item.claim_holder(utcnow()),
                               score_meaning=registry_view.score_meaning(parts.registry, item.model_version))

    @app.get("/api/queue/<transaction_id>")
    def item_api(transaction_id: str) -> Any:
        return jsonify(_item(transaction_id).model_dump(mode="json"))

    @app.post("/api/queue/<transaction_id>/claim")
    def claim(transaction_id: str) -> Any:
        return jsonify(parts.reviews.claim(transaction_id, g.analyst).model_dump(mode="json"))

    @app.post("/api/queue/<transaction_id>/release")
    def release(transaction_id: str) -> Any:
        return jsonify(parts.reviews.release(transaction_id, g.analyst).model_dump(mode="json"))

    @app.post("/api/queue/<transaction_id>/review")
    def review(transaction_id: str) -> Any:
        return jsonify(parts.reviews.review(transaction_id, g.analyst, request.get_data()))

    # Live view -------------------------------------------------------------------------------
    @app.get("/live")
    def live_page() -> Any:
        return render_template("live.html", snapshot=parts.stats.snapshot())

    @app.get("/api/live")
    def live_api() -> Any:
        return jsonify(parts.stats.snapshot())

    @app.get("/api/live/stream")
    def live_stream() -> Response:
        def events() -> Iterator[str]:
            started = time.monotonic()
            while time.monotonic() - started < SSE_MAX_S:
                yield f"data: {json.dumps(parts.stats.snapshot())}\n\n"
                time.sleep(SSE_INTERVAL_S)

        return Response(events(), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # Manual scoring --------------------------------------------------------------------------
    @app.get("/score")
    def score_page() -> Any:
        return render_template("score.html", types=[t.value for t in TxType], channels=[c.value for c in Channel])

    @app.post("/api/score")
    def score_api() -> Any:
        return jsonify(manual.score_manually(parts.history, parts.counterparties, parts.scorer, request.get_data()))

    # Models ----------------------------------------------------------------------------------
    def _drift() -> dict[str, Any]:
        """Drift per version, or why it cannot be shown (the rest of the page works without it)."""
        try:
            return {"versions": drift.drift_view(parts.drift.recent(), parts.settings.drift_psi_threshold),
                    "source": parts.settings.drift_source, "error": None}
        except ConsoleError as exc:
            return {"versions": {}, "source": parts.settings.drift_source, "error": exc.message}

    @app.get("/models")
    def models_page() -> Any:
        return render_template("models.html", registry=registry_view.overview(parts.registry), drift=_drift())

    @app.get("/api/models")
    def models_api() -> Any:
        return jsonify({**registry_view.overview(parts.registry), "drift": _drift()})

    @app.post("/api/models/alias")
    def alias_api() -> Any:
        result = registry_view.change_alias(parts.registry, request.get_data())
        parts.log.info("alias %s %s -> %s", result["alias"], result["action"], result["version"],
                       extra={"analyst": g.analyst, **result})
        return jsonify(result)

    @app.get("/models/<version>/pictures/<name>")
    def picture(version: str, name: str) -> Any:
        data, content_type = registry_view.picture(parts.registry, version, name)
        return Response(data, mimetype=content_type, headers={"Cache-Control": "private, max-age=3600"})

    # Anything else: one JSON/HTML error shape -----------------------------------------------
    @app.errorhandler(404)
    def not_found(_exc: Exception) -> Any:
        return console_error(ConsoleNotFoundError(f"no page {request.path}"))

    @app.errorhandler(405)
    def not_allowed(_exc: Exception) -> Any:
        exc = ConsoleError(f"{request.method} is not allowed on {request.path}")
        exc.status = 405
        return console_error(exc)

    @app.errorhandler(Exception)
    def bug(exc: Exception) -> Any:
        if isinstance(exc, HTTPException):  # werkzeug's own 4xx (a malformed request line or body)
            error = ConsoleError(exc.description or exc.name)
            error.status = exc.code or 400
            return console_error(error)
        # A bug, not bad input: the stack goes to the log, the page gets a plain 500.
        parts.log.exception("unhandled error", extra={"path": request.path, "method": request.method})
        error = ConsoleError("internal error (logged)")
        error.status = 500
        return console_error(error)

    return app


def _build_default() -> Flask:
    from txguard.console.wiring import build_console
    from txguard.contract.settings import console_settings

    return create_app(build_console(console_settings()))


# Built on first use: after gunicorn forks its worker, so the gRPC clients (Pub/Sub, Firestore)
# are created in the process that uses them.
_app: ProcessWide[Flask] = ProcessWide(_build_default)


def default_app() -> Flask:
    return _app.get()
