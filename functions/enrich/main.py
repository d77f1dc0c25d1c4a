"""Enrichment function: a Pub/Sub push subscription delivers each `transactions` message here.

functions-framework turns the raw push body (`{"message": ..., "subscription": ...}`) into a
`google.cloud.pubsub.topic.v1.messagePublished` CloudEvent. Returning acks the message (it was
decided, or parked on `invalid`). A failure that may pass (store, scoring or publish unavailable)
answers 503: Pub/Sub redelivers it with backoff (and slows its pushes), then dead-letters it. The
enricher has already logged it as one structured line, so no traceback is added; anything else
raises, the framework answers 500 with a traceback, and Pub/Sub retries it the same way. What is
acked, retried or parked is decided in shared/txguard/enrichment/pipeline.py. The push request's
trace (Cloud Run's `traceparent` / `X-Cloud-Trace-Context`) follows the transaction from here.
"""

from __future__ import annotations

import flask
import functions_framework
from cloudevents.http.event import CloudEvent
from werkzeug.exceptions import ServiceUnavailable

from txguard.contract.errors import RetryableError
from txguard.contract.trace import from_headers
from txguard.enrichment.pipeline import default_enricher


@functions_framework.cloud_event
def enrich(event: CloudEvent) -> None:
    # Clients (store, publisher, scoring session) are built on the first event, in the worker.
    trace = from_headers(flask.request.headers.get) if flask.has_request_context() else None
    try:
        default_enricher().handle(event.get_data(), trace)
    except RetryableError as exc:
        raise ServiceUnavailable(description=f"retry: {type(exc).__name__}") from exc
