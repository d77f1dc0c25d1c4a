"""The hot routes answered at the WSGI layer of the app functions-framework serves.

functions-framework serves an HTTP function as a Flask app under gunicorn. Per request, Flask
pushes an app and a request context, binds and matches the URL map, runs the framework's
execution-id wrapper and its after-request hook, turns the returned tuple into a `Response` and
tears the contexts down. A profile of the scoring function under load (docs/scoring.md) put that
machinery at more CPU than everything the function does for a transaction, model included.

`FastRoutes` is a WSGI middleware on that same app (Flask's documented way to add one:
`app.wsgi_app = Middleware(app.wsgi_app)`, which is also how functions-framework installs its
execution-id middleware). It answers `POST /score` and `POST /score/batch` from
`ScoringService.handle` straight from the WSGI environ and passes every other request, unchanged,
to the app: health, model, OpenAPI, 404s, other methods, `OPTIONS` and `HEAD` keep Flask's
handling. The process, the server (gunicorn, `WORKERS` / `THREADS`), the entry point and the
deployment stay functions-framework's; the answers are the same bytes either way (status line,
headers, body: `tests/functional/test_scoring_corpus.py`, and raw HTTP against gunicorn in
`tests/integration/test_score_serving.py`).

Not installed (every request through Flask, as before) when `FAST_ROUTES=false`, when
functions-framework's `LOG_EXECUTION_ID` is on (its per-request execution id lives in the Flask
path), or when the module is not imported by functions-framework (no Flask app being built).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from txguard.scoring.http import WsgiBody, WsgiHeaders, status_line

# Paths answered here, with the one method each takes (anything else goes to the Flask app).
HOT_ROUTES = frozenset({"/score", "/score/batch"})
_TRUTHY = ("y", "yes", "t", "true", "on", "1")  # functions-framework's own reading of LOG_EXECUTION_ID

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class FastRoutes:
    def __init__(self, service: Any, app: WsgiApp) -> None:
        self.service = service  # txguard.scoring.service.ScoringService (not imported: no cycle)
        self.app = app  # the app's previous wsgi_app: every other request

    def __call__(self, wsgi_env: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = wsgi_env.get("PATH_INFO", "")
        if path not in HOT_ROUTES or wsgi_env.get("REQUEST_METHOD") != "POST":
            return self.app(wsgi_env, start_response)
        response = self.service.handle("POST", path, WsgiHeaders(wsgi_env), WsgiBody(wsgi_env))
        headers = [*response.headers.items(), ("Content-Length", str(len(response.body)))]
        start_response(status_line(response.status), headers)
        return [response.body]


def execution_id_logging() -> bool:
    return os.environ.get("LOG_EXECUTION_ID") in _TRUTHY


def install(service: Any, enabled: bool = True) -> bool:
    """Put `FastRoutes` in front of the Flask app functions-framework is building (the function's
    module is executed inside that app's context); True if installed."""
    if not enabled or execution_id_logging():
        return False
    import flask

    if not flask.has_app_context():  # imported outside functions-framework: nothing to wrap
        return False
    app = flask.current_app._get_current_object()  # type: ignore[attr-defined]
    if isinstance(app.wsgi_app, FastRoutes):  # the module executed again for the same app: wrap once
        app.wsgi_app.service = service
    else:
        app.wsgi_app = FastRoutes(service, app.wsgi_app)
    return True
