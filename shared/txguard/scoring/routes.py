"""The scoring function's routes: path and method -> handler, and the handlers themselves.

A handler takes the service (the loaded model and settings), the request body and a per-request
context it may fill for the log line, and returns an `HttpResponse`; errors are raised as
`ScoringError`s and rendered by the transport.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from txguard.contract.errors import MethodNotAllowedError, NotFoundError, ValidationFailedError
from txguard.contract.models import BATCH_ADAPTER, DECISION_ADAPTER, ENRICHED_ADAPTER, BatchResponse
from txguard.scoring.http import HttpResponse, json_response, parse

if TYPE_CHECKING:
    from txguard.scoring.service import ScoringService

Handler = Callable[["ScoringService", bytes, dict[str, Any]], HttpResponse]


def score(service: ScoringService, data: bytes, ctx: dict[str, Any]) -> HttpResponse:
    scorer = service.require_scorer()
    tx = parse(ENRICHED_ADAPTER, data)
    ctx["transaction_id"], ctx["wallet_id"], ctx["tx"] = tx.transaction_id, tx.wallet_id, tx
    decision = scorer.score(tx, started_ns=ctx["started_ns"])
    ctx["decision"] = decision
    return HttpResponse(200, DECISION_ADAPTER.dump_json(decision))


def score_batch(service: ScoringService, data: bytes, ctx: dict[str, Any]) -> HttpResponse:
    scorer = service.require_scorer()
    batch = parse(BATCH_ADAPTER, data)
    max_batch = service.settings.max_batch
    if len(batch.transactions) > max_batch:
        raise ValidationFailedError(
            f"batch of {len(batch.transactions)} exceeds MAX_BATCH={max_batch}",
            [{"loc": ["transactions"], "msg": f"at most {max_batch} items", "type": "too_long"}],
        )
    decisions = scorer.score_batch(batch.transactions, started_ns=ctx["started_ns"])
    ctx["batch"], ctx["txs"] = decisions, batch.transactions
    out = BatchResponse.model_construct(decisions=decisions, model_version=scorer.version)
    return HttpResponse(200, out.model_dump_json().encode())


def health(service: ScoringService, _data: bytes, _ctx: dict[str, Any]) -> HttpResponse:
    return json_response(*service.health())


def model(service: ScoringService, _data: bytes, _ctx: dict[str, Any]) -> HttpResponse:
    meta = service.require_scorer().runtime.metadata
    return json_response(200, {
        "version": meta.version, "model_uri": service.settings.model_uri, "sha256": meta.sha256,
        "created_at": meta.created_at.isoformat(), "model_type": meta.model_type,
        "features": list(meta.features), "thresholds": meta.thresholds.model_dump(),
        "metrics": meta.metrics,
        "calibration": None if meta.calibration is None else meta.calibration.model_dump(),
    })


def openapi(_service: ScoringService, _data: bytes, _ctx: dict[str, Any]) -> HttpResponse:
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
