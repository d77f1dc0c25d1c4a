"""Pub/Sub topics and subscriptions, declared exactly as shared/txguard/contract/names.py specifies them.

Names, retention, ack deadlines, backoff, dead-letter topics and ordering all come from
`names.TOPICS` / `names.SUBSCRIPTIONS` (the local emulator stack reads the same specs); only the
enrichment push subscription's delivery policy can be tuned per stack (config.DeliveryConfig).
A push subscription (enrichment's, the label function's two) is authenticated with an OIDC token of
the push service account whose audience is the function URL (the Cloud Run service URL: the audience
Cloud Run checks); a label subscription posts to a path of its own under that URL (`push_path`),
which tells the label function which source published (txguard.contract.names.LabelRoute). See
docs/infra.md for why the push subscriptions are ours and not Eventarc's.

Topics come first (the functions publish to some of them, their grants are on them), the
subscriptions last (`subscribe`): a push subscription starts delivering the moment it exists, so
it waits for its function and for the grants a push to that function needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_gcp as gcp

from infra.config import StackConfig
from infra.services import child_options
from txguard.contract import names


def _duration(seconds: int) -> str:
    return f"{seconds}s"


class Messaging(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("txguard:infra:Messaging", name, None, opts)
        self.cfg = cfg
        child = child_options(self, depends_on)
        self.topics: dict[str, gcp.pubsub.Topic] = {
            spec.name: gcp.pubsub.Topic(
                spec.name,
                name=spec.name,
                project=cfg.project,
                message_retention_duration=_duration(spec.retention_seconds),
                labels=cfg.labels,
                opts=child,
            )
            for spec in names.TOPICS
        }
        self.subscriptions: dict[str, gcp.pubsub.Subscription] = {}

    def subscribe(
        self,
        push_endpoints: Mapping[str, pulumi.Input[str]],
        push_service_account: pulumi.Input[str],
        push_ready: Mapping[str, Sequence[pulumi.Resource]] | None = None,
    ) -> dict[str, gcp.pubsub.Subscription]:
        """Every subscription; a push one also waits for `push_ready[its function]` (the grants a push needs).

        `push_endpoints` and `push_ready` are keyed by function name (SubscriptionSpec.push_to).
        """
        push_ready = push_ready or {}
        for spec in names.SUBSCRIPTIONS:
            waits_for = push_ready.get(spec.push_to, ()) if spec.push_to is not None else ()
            self.subscriptions[spec.name] = self._subscription(
                self.cfg, spec, push_endpoints, push_service_account, waits_for)
        self.register_outputs({
            "topics": {key: topic.name for key, topic in self.topics.items()},
            "subscriptions": {key: sub.name for key, sub in self.subscriptions.items()},
        })
        return self.subscriptions

    def _subscription(
        self,
        cfg: StackConfig,
        spec: names.SubscriptionSpec,
        push_endpoints: Mapping[str, pulumi.Input[str]],
        push_service_account: pulumi.Input[str],
        waits_for: Sequence[pulumi.Resource],
    ) -> gcp.pubsub.Subscription:
        ack_deadline, min_backoff, max_backoff = (
            spec.ack_deadline_seconds, spec.min_backoff_seconds, spec.max_backoff_seconds)
        attempts = spec.max_delivery_attempts
        if spec.name == names.ENRICH_PUSH_SUBSCRIPTION:  # the one whose delivery is tunable per stack
            d = cfg.delivery
            ack_deadline, min_backoff, max_backoff, attempts = (
                d.ack_deadline_seconds, d.min_backoff_seconds, d.max_backoff_seconds, d.max_delivery_attempts)
        push_config = None
        if spec.push_to is not None:
            service_url = push_endpoints[spec.push_to]
            endpoint = pulumi.Output.concat(service_url, spec.push_path) if spec.push_path else service_url
            push_config = gcp.pubsub.SubscriptionPushConfigArgs(
                push_endpoint=endpoint,
                # The service URL, not the endpoint: Cloud Run compares the token's audience with it, and
                # left empty Pub/Sub would use the endpoint, path included.
                oidc_token=gcp.pubsub.SubscriptionPushConfigOidcTokenArgs(
                    service_account_email=push_service_account, audience=service_url),
            )
        dead_letter = None
        if spec.dead_letter_topic is not None:
            dead_letter = gcp.pubsub.SubscriptionDeadLetterPolicyArgs(
                dead_letter_topic=self.topics[spec.dead_letter_topic].id, max_delivery_attempts=attempts)
        return gcp.pubsub.Subscription(
            spec.name,
            name=spec.name,
            project=cfg.project,
            topic=self.topics[spec.topic].id,
            ack_deadline_seconds=ack_deadline,
            message_retention_duration=_duration(spec.retention_seconds),
            enable_message_ordering=spec.enable_message_ordering,
            retry_policy=gcp.pubsub.SubscriptionRetryPolicyArgs(
                minimum_backoff=_duration(min_backoff), maximum_backoff=_duration(max_backoff)),
            dead_letter_policy=dead_letter,
            push_config=push_config,
            # Default is to delete a subscription after 31 idle days: a quiet dead-letter inspection
            # subscription would silently vanish. Empty ttl = never expire.
            expiration_policy=gcp.pubsub.SubscriptionExpirationPolicyArgs(ttl=""),
            labels=cfg.labels,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(waits_for)),
        )
