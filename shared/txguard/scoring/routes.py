"""The scoring function's routes: path and method -> handler, and the handlers themselves.

A handler takes what the process serves (`ServingState`: the champion, the challenger, why none
answers), the settings, the request's typed context (which it fills for the log line and the
observer) and the request body, and returns an `HttpResponse`; errors are raised as `ScoringError`s
and rendered by the transport. A handler reads the champion once and decides with that scorer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from txguard.contract.errors import MethodNotAllowedError, NotFoundError, ValidationFailedError
from txguard.contract.models import BATCH_ADAPTER, DECISION_ADAPTER, ENRICHED_ADAPTER, BatchResponse
from txguard.contract.settings import ScoringSettings
from txguard.scoring.context import RequestContext
from txguard.scoring.http import HttpResponse, json_response, parse
from txguard.scoring.state import ServingState

Handler = Callable[[ServingState, ScoringSettings, RequestContext, bytes], HttpResponse]


# The decision's serializer called directly (the same bytes as `DECISION_ADAPTER.dump_json`, without
# the wrapper's keyword handling: a third of its cost).
_decision_json = DECISION_ADAPTER.serializer.to_json


def score(state: ServingState, _settings: ScoringSettings, ctx: RequestContext, data: bytes) -> HttpResponse:
    scorer = state.require_champion()
    rules = state.rules  # read once, like the champion: the decision names the set that made it
    tx = ctx.tx = parse(ENRICHED_ADAPTER, data)
    decision = ctx.decision = scorer.score(tx, started_ns=ctx.started_ns, rules=rules)
    return HttpResponse(200, _decision_json(decision))


def score_batch(state: ServingState, settings: ScoringSettings, ctx: RequestContext, data: bytes) -> HttpResponse:
    scorer = state.require_champion()
    rules = state.rules
    batch = parse(BATCH_ADAPTER, data)
    max_batch = settings.max_batch
    if len(batch.transactions) > max_batch:
        raise ValidationFailedError(
            f"batch of {len(batch.transactions)} exceeds MAX_BATCH={max_batch}",
            [{"loc": ["transactions"], "msg": f"at most {max_batch} items", "type": "too_long"}],
        )
    decisions = scorer.score_batch(batch.transactions, started_ns=ctx.started_ns, rules=rules)
    ctx.batch, ctx.decisions = batch.transactions, decisions
    out = BatchResponse.model_construct(decisions=decisions, model_version=scorer.version)
    return HttpResponse(200, out.model_dump_json().encode())


def health(state: ServingState, settings: ScoringSettings, _ctx: RequestContext, _data: bytes) -> HttpResponse:
    champion, challenger = state.champion, state.challenger
    body: dict[str, Any] = {
        "status": "ok" if champion else "unavailable",
        "model_version": champion.version if champion else None,
        "reason": None if champion else state.load_error,
        "challenger_version": challenger.version if challenger and settings.shadow_enabled else None,
        "rule_set": state.rules.version if state.rules else None,
        "staging_rule_set": state.staging_rules.version if state.staging_rules else None,
        "refused": state.refusals(),
    }
    return json_response(200 if champion else 503, body)


def model(state: ServingState, settings: ScoringSettings, _ctx: RequestContext, _data: bytes) -> HttpResponse:
    meta = state.require_champion().runtime.metadata
    return json_response(200, {
        "version": meta.version, "model_uri": settings.model_uri, "sha256": meta.sha256,
        "created_at": meta.created_at.isoformat(), "model_type": meta.model_type,
        "features": list(meta.features), "thresholds": meta.thresholds.model_dump(),
        "metrics": meta.metrics,
        "calibration": None if meta.calibration is None else meta.calibration.model_dump(),
    })


def openapi(_state: ServingState, _settings: ScoringSettings, _ctx: RequestContext, _data: bytes) -> HttpResponse:
    from txguard.scoring.openapi import openapi_document  # built on first use, not at cold start

    return json_response(200, openapi_document())


# path -> method -> (handler, reads a JSON body)
ROUTES: dict[str, dict[str, tuple[Handler, bool]]] = {
    "/score": {"POST": (score, True)},
    "/score/batch": {"POST": (score_batch, True)},
    "/health": {"GET": (health, False)},
    "/model": {"GET": (model, False)},
    "/openapi.json": {"GET": (openapi, False)},
}


def route(method: str, path: str) -> tuple[Handler, bool]:
    """The handler of a request, or 404 / 405 (with the allowed methods)."""
    path = path.rstrip("/") or "/"
    methods = ROUTES.get(path)
    if methods is None:
        raise NotFoundError(f"no route {path}; see /openapi.json")
    method = "GET" if method == "HEAD" else method
    if method not in methods:
        allow = ", ".join(methods)
        raise MethodNotAllowedError(f"{method} not allowed on {path} (allowed: {allow})", {"allow": allow})
    return methods[method]
