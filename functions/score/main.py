"""Scoring function (Cloud Run functions, HTTP): enriched transaction in, decision out.

Cold start (module import) loads MODEL_URI from the registry, verifies its SHA-256 and prepares
the ONNX fast path. If that fails the module still imports: /health and /score answer 503 with
the reason (logged as CRITICAL). Routes, validation and errors live in shared/txguard/scoring/service.py.
"""

from __future__ import annotations

import gc

import functions_framework

from txguard.contract.settings import scoring_settings
from txguard.scoring.service import ScoringService, handle_werkzeug

SERVICE = ScoringService.load(scoring_settings())
# Everything built so far lives as long as the process: keep it out of the garbage collector's
# scans (a full collection over the imported modules and the model took tens of ms at p99) and
# out of copy-on-write faults in gunicorn's forked workers.
gc.freeze()


@functions_framework.http
def score(request):  # noqa: ANN001, ANN201 - flask.Request -> (body, status, headers)
    response = handle_werkzeug(SERVICE, request)
    return response.body, response.status, response.headers
