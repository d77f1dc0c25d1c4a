"""The emulator topology matches shared/txguard/contract/names.py field by field (what Pulumi declares in the cloud)."""

from __future__ import annotations

import pytest

from txguard.contract import names
from txguard.local import emulators, topology

pytestmark = pytest.mark.emulators

# A project of its own: other tests share the session emulator with their own topologies.
PROJECT = "txguard-topology-test"
ENDPOINTS = {names.ENRICH_FUNCTION: "http://127.0.0.1:9/enrich-under-test",
             names.LABEL_FUNCTION: "http://127.0.0.1:9/label-under-test"}


@pytest.fixture
def pubsub_env(pubsub_emulator: emulators.Emulator, monkeypatch: pytest.MonkeyPatch) -> emulators.Emulator:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator.env_value)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    return pubsub_emulator


def test_every_spec_exists_with_its_settings(pubsub_env: emulators.Emulator) -> None:
    from google.cloud import pubsub_v1

    topology.ensure_topology(PROJECT, ENDPOINTS)
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    try:
        topics = {t.name.rsplit("/", 1)[-1] for t in publisher.list_topics(request={"project": f"projects/{PROJECT}"})}
        assert topics >= {t.name for t in names.TOPICS}
        for spec in names.SUBSCRIPTIONS:
            sub = subscriber.get_subscription(request={"subscription": subscriber.subscription_path(PROJECT, spec.name)})
            assert sub.topic == publisher.topic_path(PROJECT, spec.topic)
            assert sub.ack_deadline_seconds == spec.ack_deadline_seconds
            assert sub.message_retention_duration.total_seconds() == topology.effective_retention(spec, emulator=True)
            # Ordering is dropped where the emulator would lose dead letters (the bridge orders instead).
            assert sub.enable_message_ordering is (spec.enable_message_ordering and not spec.dead_letter_topic)
            assert sub.retry_policy.minimum_backoff.total_seconds() == spec.min_backoff_seconds
            assert sub.retry_policy.maximum_backoff.total_seconds() == spec.max_backoff_seconds
            if spec.push_to:
                # A label route's subscription posts to its own path (the source it vouches for).
                assert sub.push_config.push_endpoint == ENDPOINTS[spec.push_to] + spec.push_path
            else:
                assert sub.push_config.push_endpoint == ""
            if spec.dead_letter_topic:
                assert sub.dead_letter_policy.dead_letter_topic == publisher.topic_path(PROJECT, spec.dead_letter_topic)
                assert sub.dead_letter_policy.max_delivery_attempts == spec.max_delivery_attempts
            else:
                assert sub.dead_letter_policy.dead_letter_topic == ""
    finally:
        subscriber.close()


def test_ensure_topology_is_idempotent(pubsub_env: emulators.Emulator) -> None:
    topology.ensure_topology(PROJECT, ENDPOINTS)
    again = topology.ensure_topology(PROJECT, ENDPOINTS)
    assert again == {"topics": [], "subscriptions": []}

