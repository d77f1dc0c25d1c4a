"""Dead-letter redrive: messages parked on the dead-letter topic go back to `transactions`.

After an outage longer than the push subscription's delivery attempts, Pub/Sub moves the
messages it could not deliver to `transactions-dead-letter`; nothing is lost, but nothing is
decided either until someone sends them back. `redrive` pulls the inspection subscription,
republishes each message's data with its attributes (minus the `CloudPubSubDeadLetter*` ones
Pub/Sub added when it parked it) and acknowledges it only once the publish is confirmed: a crash
in between republishes it again, which the enrichment pipeline's idempotency absorbs.
Used by `txguard dead-letter redrive` and by `txguard reliability`'s outage scenarios.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from txguard.contract import names

DEAD_LETTER_ATTRIBUTE_PREFIX = "CloudPubSubDeadLetter"


def redrive_attributes(attributes: dict[str, str]) -> dict[str, str]:
    """The attributes to republish with: the producer's, not the ones Pub/Sub added on parking."""
    return {k: v for k, v in attributes.items() if not k.startswith(DEAD_LETTER_ATTRIBUTE_PREFIX)}


SOURCE_SUBSCRIPTION_ATTRIBUTE = "CloudPubSubDeadLetterSourceSubscription"  # set by Pub/Sub on dead-lettering


def label_topic_of(attributes: dict[str, str]) -> str:
    """Where a dead-lettered label goes back to: the topic of the route it was dead-lettered from (Pub/Sub
    names the source subscription), so a label is redriven only to the route it came by, never promoted
    to another (an analyst's route from the processor feed's, by what the label says of itself).
    Unknown: the processor feed's topic, where an analyst label is refused (`source`)."""
    source = attributes.get(SOURCE_SUBSCRIPTION_ATTRIBUTE, "").rsplit("/", 1)[-1]
    return next((r.topic for r in names.LABEL_ROUTES if r.subscription == source), names.LABELS_TOPIC)


@dataclass
class RedriveStats:
    pulled: int = 0
    republished: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"pulled": self.pulled, "republished": self.republished, "failed": self.failed,
                "errors": dict(self.errors)}


def redrive(
    project: str,
    subscription: str = names.DEAD_LETTER_SUBSCRIPTION,
    topic: str = names.TRANSACTIONS_TOPIC,
    max_messages: int | None = None,
    batch: int = 100,
    pull_timeout_s: float = 5.0,
    on_message: Callable[[bytes, dict[str, str]], None] | None = None,
    topic_of: Callable[[dict[str, str]], str] | None = None,
) -> RedriveStats:
    """Move messages from `subscription` to `topic` until it is empty (or `max_messages`); with `topic_of`,
    each to the topic it names from the message's attributes (dead-lettered labels: `label_topic_of`)."""
    from google.api_core import exceptions as gexc
    from google.cloud import pubsub_v1

    stats = RedriveStats()
    subscriber = pubsub_v1.SubscriberClient()
    publisher = pubsub_v1.PublisherClient()
    sub_path = subscriber.subscription_path(project, subscription)
    topic_path = publisher.topic_path(project, topic)
    try:
        while max_messages is None or stats.pulled < max_messages:
            want = batch if max_messages is None else min(batch, max_messages - stats.pulled)
            try:
                resp = subscriber.pull(request={"subscription": sub_path, "max_messages": want},
                                       timeout=pull_timeout_s)
            except gexc.DeadlineExceeded:
                break  # nothing left
            received = list(resp.received_messages)
            if not received:
                break
            stats.pulled += len(received)
            futures = [(rm, publisher.publish(
                topic_path if topic_of is None else publisher.topic_path(project, topic_of(dict(rm.message.attributes))),
                rm.message.data, **redrive_attributes(dict(rm.message.attributes))))
                for rm in received]
            done, nack = [], []
            for rm, future in futures:
                try:
                    future.result(timeout=60)
                except (concurrent.futures.TimeoutError, gexc.GoogleAPICallError) as exc:
                    stats.failed += 1
                    stats.errors[type(exc).__name__] = stats.errors.get(type(exc).__name__, 0) + 1
                    nack.append(rm.ack_id)
                    continue
                stats.republished += 1
                done.append(rm.ack_id)
                if on_message is not None:
                    on_message(rm.message.data, dict(rm.message.attributes))
            if done:
                subscriber.acknowledge(request={"subscription": sub_path, "ack_ids": done})
            if nack:  # back on the dead-letter subscription at once, for the next redrive
                subscriber.modify_ack_deadline(request={"subscription": sub_path, "ack_ids": nack,
                                                        "ack_deadline_seconds": 0})
                break
    finally:
        subscriber.close()
        publisher.stop()
    return stats
