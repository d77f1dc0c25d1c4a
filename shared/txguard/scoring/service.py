"""The scoring service: the model loaded at cold start, request dispatch and one log line per request.

Knows nothing of the model format (that is `runtime.py`) and little of the web framework:
`ScoringService.handle` takes a method, a path, headers and a body reader and returns an
`HttpResponse` (`http.py`); `routes.py` holds the handlers; `handle_werkzeug` adapts the
Flask/werkzeug request functions-framework passes.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from txguard.contract.errors import ModelUnavailableError, ScoringError
from txguard.contract.logs import EVENT_KEY, MODEL_LOADED_EVENT, get_logger
from txguard.contract.models import Decision
from txguard.contract.settings import ScoringSettings
from txguard.contract.trace import from_headers
from txguard.registry import STAGING
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

if TYPE_CHECKING:
    from txguard.scoring.follower import ModelFollower
    from txguard.scoring.observer import Observer


class ScoringService:
    """Built once at cold start; `handle` is thread-safe: the model is one reference, swapped whole.

    `scorer` (the champion) and `challenger` are replaced by the follower thread
    (txguard.scoring.follower) when an alias moves; a request reads `scorer` once and uses that
    object to the end, so its decision and log line name the version that made them.
    """

    def __init__(self, settings: ScoringSettings, scorer: Scorer | None, load_error: str | None = None) -> None:
        self.settings = settings
        self.scorer = scorer
        self.challenger: Scorer | None = None
        self.load_error = load_error
        self.log = get_logger("score", settings.log_level)
        self.request_log = RequestLog(settings.log_level)
        self.follower: ModelFollower | None = None
        self.observer: Observer | None = None
        self._background_started = False
        self._background_lock = threading.Lock()

    @property
    def version(self) -> str | None:
        scorer = self.scorer
        return scorer.version if scorer else None

    @classmethod
    def load(cls, settings: ScoringSettings) -> ScoringService:
        """Load MODEL_URI, retrying an unreachable registry with backoff; never raises (503 with the reason).

        Then the follower keeps the instance on its alias (and retries for as long as there is no
        model), and the observer watches drift and shadow-scores; both start in the process that
        serves (each gunicorn worker), see `start_background`.
        """
        from txguard.scoring.follower import ModelFollower
        from txguard.scoring.loading import Target, is_transient, load_scorer, resolve, split_uri
        from txguard.scoring.observer import Observer

        log = get_logger("score", settings.log_level)
        t0 = time.perf_counter()
        registry, ref = split_uri(settings.model_uri)
        scorer, reason, target = None, None, Target("", None)
        for attempt in range(1, settings.model_load_attempts + 1):
            try:
                target = resolve(registry, ref)
                scorer = load_scorer(registry, target.version, settings.inference_threads)
                break
            except Exception as exc:  # any failure: serve 503 with the reason rather than crash-loop
                reason = f"{type(exc).__name__}: {exc}"
                if not is_transient(exc) or attempt == settings.model_load_attempts:
                    break
                wait = 0.5 * 2 ** (attempt - 1)
                log.warning("model load attempt %d failed: %s; retrying in %.1f s", attempt, reason, wait,
                            extra={"model_uri": settings.model_uri})
                time.sleep(wait)
        service = cls(settings, scorer, reason if scorer is None else None)
        if scorer is None:
            log.critical("model not loaded: %s", reason, extra={
                "model_uri": settings.model_uri, "retrying": settings.model_poll_s > 0})
        else:
            log.info("model %s loaded", scorer.version, extra={
                EVENT_KEY: MODEL_LOADED_EVENT, "role": "champion", "model_uri": settings.model_uri,
                "model_version": scorer.version, "load_ms": round((time.perf_counter() - t0) * 1000, 1)})
        if settings.model_poll_s > 0:
            challenger = STAGING if settings.shadow_enabled else None
            service.follower = ModelFollower(service, registry, ref, settings.model_poll_s, challenger,
                                             settings.inference_threads)
            service.follower.champion.generation = target.generation
        observer = Observer(service)
        service.observer = observer if observer.enabled else None
        _restart_in_forked_children(service)
        return service

    # Background threads ------------------------------------------------------------------------
    def start_background(self, first_check_s: float | None = None) -> None:
        """Start the follower and observer threads in this process (idempotent).

        Called on the first request, and right after a fork: gunicorn forks its workers from the
        process that imported the function, and threads do not survive a fork, so each worker
        starts its own (and follows the alias on its own).
        """
        with self._background_lock:
            if self._background_started:
                return
            self._background_started = True
            if self.follower is not None:
                first = 0.0 if self.follower.challenger is not None else first_check_s
                self.follower.start(initial_wait=first)
            if self.observer is not None:
                self.observer.start()

    def _after_fork(self) -> None:
        # Check the alias at once: a worker forked later (gunicorn replacing a dead one) holds the
        # version of the parent's cold start, which may be several promotes old.
        self._background_lock = threading.Lock()
        self._background_started = False
        self.start_background(first_check_s=0.0)

    def close(self) -> None:
        """Stop the threads; the observer processes what is queued and emits its last window."""
        if self.follower is not None:
            self.follower.stop()
        if self.observer is not None:
            self.observer.close()

    def health(self) -> tuple[int, dict[str, Any]]:
        scorer, challenger = self.scorer, self.challenger
        body: dict[str, Any] = {
            "status": "ok" if scorer else "unavailable",
            "model_version": scorer.version if scorer else None,
            "reason": None if scorer else self.load_error,
            "challenger_version": challenger.version if challenger and self.settings.shadow_enabled else None,
            "refused": self.follower.refused() if self.follower else {},
        }
        return (200 if scorer else 503), body

    # Dispatch ----------------------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: Headers, body: BodyReader) -> HttpResponse:
        started = time.perf_counter_ns()
        if not self._background_started:
            self.start_background()
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
                         outcome=decision.outcome.value, score=decision.score, model_version=decision.model_version,
                         inference_us=decision.timings.get("inference_us"))
            emit("INFO", f"scored {decision.transaction_id}: {decision.outcome.value}", entry)
            if self.observer is not None:  # a queue append: drift and shadow work run in the background
                self.observer.observe(ctx["tx"], decision)
            return
        batch: list[Decision] | None = ctx.get("batch")
        if batch is not None:
            if batch:
                entry["model_version"] = batch[0].model_version
                if self.observer is not None:
                    self.observer.observe_many(ctx["txs"], batch)
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


def _restart_in_forked_children(service: ScoringService) -> None:
    """Each forked child (a gunicorn worker) starts its own threads; a weak reference, so a service
    dropped by its owner (tests import the function many times) is not kept alive by the hook."""
    ref = weakref.ref(service)

    def after_in_child() -> None:
        alive = ref()
        if alive is not None:
            alive._after_fork()

    os.register_at_fork(after_in_child=after_in_child)


def handle_werkzeug(service: ScoringService, request: Any) -> HttpResponse:
    return service.handle(request.method, request.path, WsgiHeaders(request.environ), WerkzeugBody(request))
