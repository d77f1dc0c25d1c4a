"""Scoring function (Cloud Run functions, HTTP): enriched transaction in, decision out.

Cold start (module import) loads MODEL_URI from the registry, verifies its SHA-256 and prepares
the ONNX fast path. If that fails the module still imports: /health and /score answer 503 with
the reason (logged as CRITICAL). The service and its log line live in shared/txguard/scoring/service.py,
the routes in routes.py, validation and the error handler in http.py; wsgi.py answers the two hot
routes at the WSGI layer of the app functions-framework builds, everything else comes through
`score` below.
"""

from __future__ import annotations

import gc
import os

# Cold start (figures in docs/scoring.md): no garbage collection while the imports and the model
# build objects that all live as long as the process (a third of this module's CPU time went to
# collections finding nothing to free), and one OpenBLAS thread: numpy starts one per CPU at import
# for linear algebra the scoring path never does.
gc.disable()
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
try:
    import functions_framework

    from txguard.contract.settings import scoring_settings
    from txguard.scoring import wsgi
    from txguard.scoring.service import ScoringService, handle_werkzeug

    SERVICE = ScoringService.load(scoring_settings())
    # POST /score and /score/batch answered before Flask's per-request machinery (same bytes out).
    wsgi.install(SERVICE, SERVICE.settings.fast_routes)
finally:
    # Everything built so far lives as long as the process: keep it out of the garbage collector's
    # scans (a full collection over the imported modules and the model took tens of ms at p99) and
    # out of copy-on-write faults in gunicorn's forked workers.
    gc.freeze()
    gc.enable()


@functions_framework.http
def score(request):  # noqa: ANN001, ANN201 - flask.Request -> (body, status, headers)
    response = handle_werkzeug(SERVICE, request)
    return response.body, response.status, response.headers
