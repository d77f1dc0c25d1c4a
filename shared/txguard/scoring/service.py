"""HTTP transport of the scoring function: routes, body limits, validation, one error handler.

Knows nothing of the model format (that is shared/txguard/scoring/runtime.py) and little of the web framework:
`ScoringService.handle` takes a method, a path, headers and a body reader and returns an
`HttpResponse`; `handle_werkzeug` adapts the Flask/werkzeug request functions-framework passes.

Bad input never becomes a 5xx: every failure is a `ScoringError` subclass carrying its status
and `render_error` is the one place that turns it into a response.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from txguard.contract.errors import (
    BadRequestError,
    MethodNotAllowedError,
    ModelUnavailableError,
    NotFoundError,
    PayloadTooLargeError,
    ScoringError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from txguard.contract.logs import get_logger, trace_field
from txguard.contract.models import BATCH_ADAPTER, DECISION_ADAPTER, ENRICHED_ADAPTER, BatchResponse, Decision
from txguard.contract.settings import ScoringSettings
from txguard.scoring.request_log import RequestLog
from txguard.scoring.scorer import Scorer

JSON = "application/json"
_JSON_HEADERS = {"Content-Type": JSON}
TRACE_HEADER = "X-Cloud-Trace-Context"


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: dict(_JSON_HEADERS))


class BodyReader(Protocol):
    content_length: int | None

    def read(self, limit: int) -> bytes:
        """Up to `limit` bytes of the body (fewer only at its end)."""

    def discard(self) -> None:
        """Consume the rest of the body without keeping it."""


def _json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> HttpResponse:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return HttpResponse(status, body, {**_JSON_HEADERS, **(headers or {})})


def render_error(exc: ScoringError) -> HttpResponse:
    """The one error handler: `{"error": {"status", "message", "errors": [{loc, msg, type}]}}`."""
    info: dict[str, Any] = {"status": exc.status, "message": exc.message}
    info["errors"] = exc.details if isinstance(exc.details, list) else []
    extra = {"Allow": exc.details["allow"]} if isinstance(exc.details, dict) and "allow" in exc.details else None
    return _json_response(exc.status, {"error": info}, extra)


def field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def parse(adapter: Any, body: bytes) -> Any:
    """Validate JSON bytes: malformed JSON -> 400, schema errors -> 422 with field-level errors."""
    try:
        return adapter.validate_json(body)
    except ValidationError as exc:
        errors = field_errors(exc)
        if any(e["type"] == "json_invalid" for e in errors):
            raise BadRequestError("request body is not valid JSON", errors) from None
        raise ValidationFailedError(f"{len(errors)} validation error(s) in the request body", errors) from None


Handler = Callable[[bytes, dict[str, Any]], HttpResponse]


class ScoringService:
    """Built once at cold start; `handle` is thread-safe (no mutable shared state)."""

    def __init__(self, settings: ScoringSettings, scorer: Scorer | None, load_error: str | None = None) -> None:
        self.settings = settings
        self.scorer = scorer
        self.load_error = load_error
        self.log = get_logger("score", settings.log_level)
        self.request_log = RequestLog(settings.log_level)
        self.version = scorer.version if scorer else None
        self.routes: dict[str, dict[str, tuple[Handler, bool]]] = {
            "/score": {"POST": (self._score, True)},
            "/score/batch": {"POST": (self._score_batch, True)},
            "/health": {"GET": (self._health, False)},
            "/model": {"GET": (self._model, False)},
            "/openapi.json": {"GET": (self._openapi, False)},
        }

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
    def handle(self, method: str, path: str, headers: Mapping[str, str], body: BodyReader) -> HttpResponse:
        started = time.perf_counter_ns()
        ctx: dict[str, Any] = {"started_ns": started, "headers": headers}
        try:
            handler, wants_body = self._route(method, path)
            data = self._read_body(headers, body) if wants_body else b""
            response = handler(data, ctx)
        except ScoringError as exc:
            response = render_error(exc)
            ctx["error"] = exc.message
        except Exception:  # a bug, not bad input: log the stack, answer a plain 500
            self.log.exception("unhandled error", extra={"path": path, "method": method})
            response = _json_response(500, {"error": {"status": 500, "message": "internal error", "errors": []}})
            ctx["error"] = "internal error"
        body.discard()  # whatever was not read (413, 404...), so the connection stays usable
        self._log(method, path, response.status, ctx, headers)
        return response

    def _route(self, method: str, path: str) -> tuple[Handler, bool]:
        path = path.rstrip("/") or "/"
        methods = self.routes.get(path)
        if methods is None:
            raise NotFoundError(f"no route {path}; see /openapi.json")
        method = "GET" if method == "HEAD" else method
        if method not in methods:
            allow = ", ".join(methods)
            raise MethodNotAllowedError(f"{method} not allowed on {path} (allowed: {allow})", {"allow": allow})
        return methods[method]

    def _read_body(self, headers: Mapping[str, str], body: BodyReader) -> bytes:
        ctype = (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if ctype != JSON and not (ctype.startswith("application/") and ctype.endswith("+json")):
            raise UnsupportedMediaTypeError(f"Content-Type must be {JSON}, got {ctype or 'none'!r}")
        limit = self.settings.max_body_bytes
        if body.content_length is not None and body.content_length > limit:
            raise PayloadTooLargeError(f"body of {body.content_length} bytes exceeds {limit} bytes")
        data = body.read(limit + 1)  # one byte more tells "too large" when no Content-Length
        if len(data) > limit:
            raise PayloadTooLargeError(f"body exceeds {limit} bytes")
        return data

    def _scorer(self) -> Scorer:
        if self.scorer is None:
            raise ModelUnavailableError(f"model not loaded: {self.load_error}")
        return self.scorer

    # Routes ------------------------------------------------------------------------------------
    def _score(self, data: bytes, ctx: dict[str, Any]) -> HttpResponse:
        scorer = self._scorer()
        tx = parse(ENRICHED_ADAPTER, data)
        ctx["transaction_id"], ctx["wallet_id"] = tx.transaction_id, tx.wallet_id
        decision = scorer.score(tx, started_ns=ctx["started_ns"])
        ctx["decision"] = decision
        return HttpResponse(200, DECISION_ADAPTER.dump_json(decision))

    def _score_batch(self, data: bytes, ctx: dict[str, Any]) -> HttpResponse:
        scorer = self._scorer()
        batch = parse(BATCH_ADAPTER, data)
        if len(batch.transactions) > self.settings.max_batch:
            raise ValidationFailedError(
                f"batch of {len(batch.transactions)} exceeds MAX_BATCH={self.settings.max_batch}",
                [{"loc": ["transactions"], "msg": f"at most {self.settings.max_batch} items", "type": "too_long"}],
            )
        decisions = scorer.score_batch(batch.transactions, started_ns=ctx["started_ns"])
        ctx["batch"] = decisions
        out = BatchResponse.model_construct(decisions=decisions, model_version=scorer.version)
        return HttpResponse(200, out.model_dump_json().encode())

    def _health(self, _data: bytes, _ctx: dict[str, Any]) -> HttpResponse:
        if self.scorer is None:
            return _json_response(503, {"status": "unavailable", "model_version": None, "reason": self.load_error})
        return _json_response(200, {"status": "ok", "model_version": self.version, "reason": None})

    def _model(self, _data: bytes, _ctx: dict[str, Any]) -> HttpResponse:
        meta = self._scorer().runtime.metadata
        return _json_response(200, {
            "version": meta.version, "model_uri": self.settings.model_uri, "sha256": meta.sha256,
            "created_at": meta.created_at.isoformat(), "model_type": meta.model_type,
            "features": list(meta.features), "thresholds": meta.thresholds.model_dump(),
            "metrics": meta.metrics,
        })

    def _openapi(self, _data: bytes, _ctx: dict[str, Any]) -> HttpResponse:
        from txguard.scoring.openapi import openapi_document  # built on first use, not at cold start

        return _json_response(200, openapi_document())

    # Logging -----------------------------------------------------------------------------------
    def _log(self, method: str, path: str, status: int, ctx: dict[str, Any], headers: Mapping[str, str]) -> None:
        """One structured line per request (Cloud Logging: severity, message, trace)."""
        entry: dict[str, Any] = {
            "http_method": method, "path": path, "status": status, "model_version": self.version,
            "latency_ms": round((time.perf_counter_ns() - ctx["started_ns"]) / 1e6, 3),
        }
        entry.update(trace_field(headers.get(TRACE_HEADER), self.settings.google_cloud_project))
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


# werkzeug / Flask adapter (what functions-framework passes) -------------------------------------
class WerkzeugBody:
    """The body of a werkzeug request, read at most once and never beyond the limit."""

    __slots__ = ("_request", "content_length")

    def __init__(self, request: Any) -> None:
        self._request = request
        self.content_length = request.content_length

    def read(self, limit: int) -> bytes:
        if self.content_length is not None and self.content_length <= limit:
            return self._request.get_data()  # cached: functions-framework reads it again afterwards
        stream, chunks, size = self._request.stream, [], 0
        while size < limit:  # chunked upload: stop one byte past the limit
            chunk = stream.read(min(limit - size, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)

    def discard(self) -> None:
        stream = self._request.stream
        while stream.read(65536):
            pass


def handle_werkzeug(service: ScoringService, request: Any) -> HttpResponse:
    return service.handle(request.method, request.path, request.headers, WerkzeugBody(request))
