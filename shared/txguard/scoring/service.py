"""The scoring service: the model loaded at cold start, request dispatch and one log line per request.

Knows nothing of the model format (that is `runtime.py`) and little of the web framework:
`ScoringService.handle` takes a method, a path, headers and a body reader and returns an
`HttpResponse` (`http.py`); `routes.py` holds the handlers; `handle_werkzeug` adapts the
Flask/werkzeug request functions-framework passes. What the process serves (champion, challenger,
load error) is one `ServingState` (`state.py`) that the service, the routes, the follower and the
observer share; a request's facts travel in a typed `RequestContext` (`context.py`).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import Any

from txguard.contract.errors import RuleSetNotFoundError, ScoringError
from txguard.contract.logs import (
    EVENT_KEY,
    MODEL_LOADED_EVENT,
    RULES_LOADED_EVENT,
    RULES_REFUSED_EVENT,
    get_logger,
)
from txguard.contract.settings import ScoringSettings
from txguard.contract.trace import from_headers
from txguard.registry import STAGING, Registry
from txguard.scoring import routes
from txguard.scoring.context import RequestContext
from txguard.scoring.follower import ModelFollower
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
from txguard.scoring.loading import Target, is_transient, load_rules, load_scorer, resolve, split_uri
from txguard.scoring.observer import Observer
from txguard.scoring.request_log import ERROR, INFO, WARNING, RequestLog
from txguard.scoring.state import CHAMPION, RULES, STAGING_RULES, ServingState


class ScoringService:
    """Built once at cold start; `handle` is thread-safe: the model is one reference, swapped whole.

    The follower thread (txguard.scoring.follower) replaces the champion and the challenger in
    `state` when an alias moves; a request reads the champion once and uses that object to the
    end, so its decision and log line name the version that made them.
    """

    def __init__(self, settings: ScoringSettings, state: ServingState, follower: ModelFollower | None = None,
                 observer: Observer | None = None) -> None:
        self.settings = settings
        self.state = state
        self.log = get_logger("score", settings.log_level)
        self.request_log = RequestLog(settings.log_level)
        self.follower = follower
        self.observer = observer
        self._background_started = False
        self._background_lock = threading.Lock()

    @classmethod
    def load(cls, settings: ScoringSettings) -> ScoringService:
        """Load MODEL_URI, retrying an unreachable registry with backoff; never raises (503 with the reason).

        Then the follower keeps the instance on its alias (and retries for as long as there is no
        model), and the observer watches drift and shadow-scores; both start in the process that
        serves (each gunicorn worker), see `start_background`.
        """
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
        state = ServingState(scorer, reason if scorer is None else None)
        rules_refs = rules_aliases(settings)
        if scorer is not None:
            load_rule_sets(state, registry, rules_refs, log)
        if scorer is None:
            log.critical("model not loaded: %s", reason, extra={
                "model_uri": settings.model_uri, "retrying": settings.model_poll_s > 0})
        else:
            log.info("model %s loaded", scorer.version, extra={
                EVENT_KEY: MODEL_LOADED_EVENT, "role": CHAMPION, "model_uri": settings.model_uri,
                "model_version": scorer.version, "load_ms": round((time.perf_counter() - t0) * 1000, 1)})
        follower = None
        if settings.model_poll_s > 0:
            follower = ModelFollower(state, settings, registry, ref, STAGING if settings.shadow_enabled else None,
                                     rules_refs)
            follower.champion.generation = target.generation
        observer = Observer(state, settings)
        service = cls(settings, state, follower, observer if observer.enabled else None)
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

    # Dispatch ----------------------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: Headers, body: BodyReader) -> HttpResponse:
        started = time.perf_counter_ns()
        if not self._background_started:
            self.start_background()
        ctx = RequestContext(started)
        try:
            handler, wants_body = routes.route(method, path)
            data = read_json_body(headers, body, self.settings.max_body_bytes) if wants_body else b""
            response = handler(self.state, self.settings, ctx, data)
        except ScoringError as exc:
            response = render_error(exc)
            ctx.error = exc.message
        except Exception:  # a bug, not bad input: log the stack, answer a plain 500
            trace = from_headers(headers.get)
            self.log.exception("unhandled error", extra={
                "path": path, "method": method,
                **(trace.log_fields(self.settings.google_cloud_project) if trace else {})})
            response = json_response(500, {"error": {"status": 500, "message": "internal error", "errors": []}})
            ctx.error = "internal error"
        body.discard()  # whatever was not read (413, 404...), so the connection stays usable
        self._log(method, path, response.status, ctx, headers)
        return response

    # Logging -----------------------------------------------------------------------------------
    def _log(self, method: str, path: str, status: int, ctx: RequestContext, headers: Headers) -> None:
        """One structured line per request (Cloud Logging: severity, message, and the caller's trace).

        A scored transaction's line is built in one dict, in the order of the fields' meaning
        (request, trace, decision), and only when INFO is logged; its decision goes to the observer
        either way."""
        tx, decision = ctx.tx, ctx.decision
        if tx is not None and decision is not None:
            outcome = decision.outcome.value
            entry = self.request_log.entry(INFO, f"scored {decision.transaction_id}: {outcome}")
            if entry is not None:
                self._request_fields(entry, method, path, status, decision.model_version, ctx, headers)
                entry["transaction_id"] = decision.transaction_id
                entry["wallet_id"] = decision.wallet_id
                entry["outcome"] = outcome
                entry["score"] = decision.score
                entry["inference_us"] = decision.timings.get("inference_us")
                entry["rule_set"] = decision.rule_set
                if decision.rules:
                    entry["rules"] = [hit.rule for hit in decision.rules]
                self.request_log.write(entry)
            if self.observer is not None:  # a draw, and for a sampled one a queue append: work runs later
                self.observer.observe(tx, decision)
            return
        fields: dict[str, Any] = {}
        txs, decisions = ctx.batch, ctx.decisions
        if txs is not None and decisions is not None:
            version = decisions[0].model_version if decisions else self.state.version
            self._request_fields(fields, method, path, status, version, ctx, headers)
            if decisions and self.observer is not None:
                self.observer.observe_many(txs, decisions)
            counts: dict[str, int] = {}
            fired: dict[str, int] = {}
            for d in decisions:
                counts[d.outcome.value] = counts.get(d.outcome.value, 0) + 1
                for hit in d.rules:
                    fired[hit.rule] = fired.get(hit.rule, 0) + 1
            if decisions:
                fields["rule_set"] = decisions[0].rule_set
            if fired:
                fields["rules"] = fired
            fields.update(batch_size=len(decisions), decisions=counts,
                          inference_us=decisions[0].timings.get("inference_us") if decisions else None)
            self.request_log.emit(INFO, f"scored batch of {len(decisions)}", fields)
            return
        self._request_fields(fields, method, path, status, self.state.version, ctx, headers)
        if tx is not None:  # validated, then failed
            fields.update(transaction_id=tx.transaction_id, wallet_id=tx.wallet_id)
        severity = ERROR if status >= 500 else WARNING if status >= 400 else INFO
        detail = f": {ctx.error}" if ctx.error is not None else ""
        self.request_log.emit(severity, f"{method} {path} -> {status}{detail}", fields)

    def _request_fields(self, entry: dict[str, Any], method: str, path: str, status: int, version: str | None,
                        ctx: RequestContext, headers: Headers) -> None:
        """What every request line says: the request, the version that answered, latency, the caller's trace."""
        entry["http_method"] = method
        entry["path"] = path
        entry["status"] = status
        entry["model_version"] = version
        entry["latency_ms"] = round((time.perf_counter_ns() - ctx.started_ns) / 1e6, 3)
        trace = from_headers(headers.get)
        if trace is not None:
            entry.update(trace.log_fields(self.settings.google_cloud_project))


def rules_aliases(settings: ScoringSettings) -> tuple[tuple[str, str], ...]:
    """(role, alias) of the rule sets this process applies and shadows (docs/rules.md)."""
    if not settings.rules_alias:
        return ()
    refs = [(RULES, settings.rules_alias)]
    if settings.rules_shadow_rate > 0 and settings.rules_alias != STAGING:
        refs.append((STAGING_RULES, STAGING))
    return tuple(refs)


def load_rule_sets(state: ServingState, registry: Registry, refs: tuple[tuple[str, str], ...], log: Any) -> None:
    """The rule sets at cold start; a missing alias is no rules, any other failure is logged and left to
    the follower (the model answers meanwhile, as it would without rules)."""
    for role, alias in refs:
        try:
            rules = load_rules(registry, alias)
        except RuleSetNotFoundError:
            continue
        except Exception as exc:  # noqa: BLE001 - never fail a cold start on rules
            state.refuse(role, alias, f"{type(exc).__name__}: {exc}")
            log.error("rule set %s not applied: %s", alias, exc, extra={
                EVENT_KEY: RULES_REFUSED_EVENT, "alias": alias, "role": role, "model_version": state.version})
            continue
        state.apply_rules(role, rules)
        log.info("rule set %s applied as %s", rules.version, role, extra={
            EVENT_KEY: RULES_LOADED_EVENT, "rule_set": rules.version, "role": role, "alias": alias,
            "rules": len(rules), "pid": os.getpid(), "model_version": state.version})


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
