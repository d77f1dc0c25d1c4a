"""Label function: a Pub/Sub push subscription delivers each `labels` message here.

functions-framework turns the raw push body into a `messagePublished` CloudEvent. Returning acks
the message (applied, duplicate, or parked on `invalid` with the reason). A failure that may pass
(counterparty store or publish unavailable) answers 503 without a traceback: Pub/Sub redelivers
it with backoff, then dead-letters it. Anything else raises (500 with a traceback) and is retried
the same way. What is acked, retried or parked is decided in shared/txguard/enrichment/label_applier.py.
"""

from __future__ import annotations

import functions_framework
from cloudevents.http.event import CloudEvent
from werkzeug.exceptions import ServiceUnavailable

from txguard.contract.errors import RetryableError
from txguard.enrichment.label_applier import default_applier


@functions_framework.cloud_event
def label(event: CloudEvent) -> None:
    # The store client and the publisher are built on the first event, in the worker.
    try:
        default_applier().handle(event.get_data())
    except RetryableError as exc:
        raise ServiceUnavailable(description=f"retry: {type(exc).__name__}") from exc
