"""The scoring service: the model loaded at cold start, request dispatch and one log line per request.

Knows nothing of the model format (that is `runtime.py`) and little of the web framework:
`ScoringService.handle` takes a method, a path, headers and a body reader and returns an
`HttpResponse` (`http.py`); `routes.py` holds the handlers; `handle_werkzeug` adapts the
Flask/werkzeug request functions-framework passes.
"""

from __future__ import annotations

import time
from typing import Any

from txguard.contract.errors import ModelUnavailableError, ScoringError
from txguard.contract.logs import get_logger
from txguard.contract.models import Decision
from txguard.contract.settings import ScoringSettings
from txguard.contract.trace import from_headers
from txguard.scoring import routes
from txguard.scoring.http import (
    BodyReader,
    Headers,
    HttpResponse,
    WerkzeugBody,
    WsgiHeaders,
    json_response,
    read_json_body,
    render_error,
)
from txguard.scoring.request_log import RequestLog
from txguard.scoring.scorer import Scorer


class ScoringService:
    """Built once at cold start; `handle` is thread-safe (no mutable shared state)."""

    def __init__(self, settings: ScoringSettings, scorer: Scorer | None, load_error: str | None = None) -> None:
        self.settings = settings
        self.scorer = scorer
        self.load_error = load_error
        self.log = get_logger("score", settings.log_level)
        self.request_log = RequestLog(settings.log_level)
        self.version = scorer.version if scorer else None

    @classmethod
    def load(cls, settings: ScoringSettings) -> ScoringService:
        """Load MODEL_URI and prepare the fast path; never raises (a failure is served as 503)."""
        from txguard.scoring.runtime import ModelRuntime

        log = get_logger("score", settings.log_level)
        t0 = time.perf_counter()
        try:
            runtime = ModelRuntime.from_uri(settings.model_uri, threads=settings.inference_threads)
            runtime.warm_up()
        except Exception as exc:  # any failure: serve 503 with the reason rather than crash-loop
            reason = f"{type(exc).__name__}: {exc}"
            log.critical("model not loaded: %s", reason, extra={"model_uri": settings.model_uri})
            return cls(settings, None, reason)
        log.info(
            "model %s loaded", runtime.version,
            extra={"model_uri": settings.model_uri, "model_version": runtime.version,
                   "load_ms": round((time.perf_counter() - t0) * 1000, 1)},
        )
        return cls(settings, Scorer(runtime))

    # Dispatch ----------------------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: Headers, body: BodyReader) -> HttpResponse:
        started = time.perf_counter_ns()
        ctx: dict[str, Any] = {"started_ns": started, "headers": headers}
        try:
            handler, wants_body = routes.route(method, path)
            data = read_json_body(headers, body, self.settings.max_body_bytes) if wants_body else b""
            response = handler(self, data, ctx)
        except ScoringError as exc:
            response = render_error(exc)
            ctx["error"] = exc.message
        except Exception:  # a bug, not bad input: log the stack, answer a plain 500
            trace = from_headers(headers.get)
            self.log.exception("unhandled error", extra={
                "path": path, "method": method,
                **(trace.log_fields(self.settings.google_cloud_project) if trace else {})})
            response = json_response(500, {"error": {"status": 500, "message": "internal error", "errors": []}})
            ctx["error"] = "internal error"
        body.discard()  # whatever was not read (413, 404...), so the connection stays usable
        self._log(method, path, response.status, ctx, headers)
        return response

    def require_scorer(self) -> Scorer:
        if self.scorer is None:
            raise ModelUnavailableError(f"model not loaded: {self.load_error}")
        return self.scorer

    # Logging -----------------------------------------------------------------------------------
    def _log(self, method: str, path: str, status: int, ctx: dict[str, Any], headers: Headers) -> None:
        """One structured line per request (Cloud Logging: severity, message, and the caller's trace)."""
        entry: dict[str, Any] = {
            "http_method": method, "path": path, "status": status, "model_version": self.version,
            "latency_ms": round((time.perf_counter_ns() - ctx["started_ns"]) / 1e6, 3),
        }
        trace = from_headers(headers.get)
        if trace is not None:
            entry.update(trace.log_fields(self.settings.google_cloud_project))
        emit = self.request_log.emit
        decision: Decision | None = ctx.get("decision")
        if decision is not None:
            entry.update(transaction_id=decision.transaction_id, wallet_id=decision.wallet_id,
                         outcome=decision.outcome.value, score=decision.score,
                         inference_us=decision.timings.get("inference_us"))
            emit("INFO", f"scored {decision.transaction_id}: {decision.outcome.value}", entry)
            return
        batch: list[Decision] | None = ctx.get("batch")
        if batch is not None:
            counts: dict[str, int] = {}
            for d in batch:
                counts[d.outcome.value] = counts.get(d.outcome.value, 0) + 1
            entry.update(batch_size=len(batch), decisions=counts,
                         inference_us=batch[0].timings.get("inference_us") if batch else None)
            emit("INFO", f"scored batch of {len(batch)}", entry)
            return
        if "transaction_id" in ctx:
            entry.update(transaction_id=ctx["transaction_id"], wallet_id=ctx["wallet_id"])
        severity = "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO"
        detail = f": {ctx['error']}" if "error" in ctx else ""
        emit(severity, f"{method} {path} -> {status}{detail}", entry)


def handle_werkzeug(service: ScoringService, request: Any) -> HttpResponse:
    return service.handle(request.method, request.path, WsgiHeaders(request.environ), WerkzeugBody(request))
