"""Label function: one push subscription per label source delivers each message here, on its own path.

functions-framework turns the raw push body into a `messagePublished` CloudEvent; the request path
names the route (`/sources/chargeback`, `/sources/analyst`: txguard.contract.names.LABEL_ROUTES), which
says who published the label, since only that route's subscription posts there. A path that names no
route answers 404 (never acked: retried, then dead-lettered where the alert sees it). Returning acks the
message (applied, duplicate, held for review, or parked on `invalid` with the reason). A failure that may
pass (store or publish unavailable, a transaction not in the index yet) answers 503 without a traceback:
Pub/Sub redelivers it with backoff, then dead-letters it. Anything else raises (500 with a traceback) and
is retried the same way. What is acked, retried or parked is decided in
shared/txguard/enrichment/label_applier.py.
"""

from __future__ import annotations

import flask
import functions_framework
from cloudevents.http.event import CloudEvent
from werkzeug.exceptions import NotFound, ServiceUnavailable

from txguard.contract.errors import RetryableError
from txguard.contract.names import label_route_of_path
from txguard.enrichment.label_applier import default_applier


@functions_framework.cloud_event
def label(event: CloudEvent) -> None:
    route = label_route_of_path(flask.request.path)
    if route is None:
        raise NotFound(description=f"no label route at {flask.request.path}")
    # The store clients and the publisher are built on the first event, in the worker.
    try:
        default_applier().handle(event.get_data(), route)
    except RetryableError as exc:
        raise ServiceUnavailable(description=f"retry: {type(exc).__name__}") from exc
