"""Enrichment function: a Pub/Sub push subscription delivers each `transactions` message here.

functions-framework turns the raw push body (`{"message": ..., "subscription": ...}`) into a
`google.cloud.pubsub.topic.v1.messagePublished` CloudEvent. Returning acks the message (it was
decided, or parked on `invalid`); an exception makes the framework answer 500 and Pub/Sub
redeliver it with backoff, then dead-letter it. All of that is decided in shared/enrichment.py.
"""

from __future__ import annotations

import functions_framework
from cloudevents.http.event import CloudEvent

from shared.enrichment import default_enricher


@functions_framework.cloud_event
def enrich(event: CloudEvent) -> None:
    # Clients (store, publisher, scoring session) are built on the first event, in the worker.
    default_enricher().handle(event.get_data())
