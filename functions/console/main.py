"""The analyst console (a Cloud Run service built like a function; docs/console.md).

functions-framework serves `console` for every path and this hands the request to the console's
Flask app, built on the first request: gunicorn imports this module in its arbiter and forks the
worker afterwards, so clients and threads wait for the worker (Cloud Run's startup probe on
/healthz is that first request; it also starts the subscription readers).
"""

from __future__ import annotations

import functions_framework
from werkzeug.wrappers import Response

from txguard.console.app import default_app


@functions_framework.http
def console(request):  # noqa: ANN001, ANN201 - flask.Request -> werkzeug Response
    return Response.from_app(default_app().wsgi_app, request.environ)
