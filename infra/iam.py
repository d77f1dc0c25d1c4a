"""Identities, one service account per role, and every IAM grant of the stack (least privilege).

| identity            | may do                                                              |
|---------------------|---------------------------------------------------------------------|
| scoring             | read objects of the models bucket                                   |
| enrichment          | Firestore (datastore.user); publish to `decisions` and `invalid`;   |
|                     | invoke the scoring service                                          |
| push (Pub/Sub OIDC) | invoke the enrichment service                                       |
| publishers          | publish to `transactions`                                           |
| builder (optional)  | write build logs, push images to our repository, read sources       |
| Pub/Sub agent       | publish to the dead-letter topic, subscribe to the push             |
|                     | subscription (dead-lettering), mint OIDC tokens for the push SA     |

The analyst console's identity and grants live with it in infra/console.py (declared only with
`analystsGroup`).

Grants are bound on the resource (bucket, topic, subscription, service) wherever IAM allows,
never on the project except `datastore.user` (Firestore has no per-database IAM) and the build
roles. No grant ever names allUsers or allAuthenticatedUsers.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp

from infra.config import StackConfig
from infra.services import child_options
from txguard.contract import names


def sa_member(account: gcp.serviceaccount.Account) -> pulumi.Output[str]:
    return account.email.apply(lambda email: f"serviceAccount:{email}")


def pubsub_service_agent(project_number: pulumi.Input[str]) -> pulumi.Output[str]:
    """The Google-managed identity Pub/Sub uses for dead-lettering and OIDC push tokens."""
    return pulumi.Output.from_input(project_number).apply(
        lambda number: f"serviceAccount:service-{number}@gcp-sa-pubsub.iam.gserviceaccount.com"
    )


class Identities(pulumi.ComponentResource):
    """The service accounts (no grants here: those need the resources they are bound to)."""

    def __init__(self, name: str, cfg: StackConfig, depends_on: Sequence[pulumi.Resource] = (),
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("txguard:infra:Identities", name, None, opts)
        child = child_options(self, depends_on)

        def account(role: str, purpose: str) -> gcp.serviceaccount.Account:
            return gcp.serviceaccount.Account(
                f"{role}-sa",
                account_id=f"{cfg.prefix}-{role}",
                display_name=f"txguard {role}",
                description=purpose,
                project=cfg.project,
                opts=child,
            )

        self.scoring = account("score", "Runtime identity of the scoring function: reads the model registry")
        self.enrich = account("enrich", "Runtime identity of the enrichment function")
        self.push = account("push", "Identity of Pub/Sub push deliveries to the enrichment function (OIDC)")
        self.publisher = account("publisher", "Publishers of transactions")
        self.builder = (
            account("build", "Cloud Build identity for the function builds") if cfg.build_service_account else None
        )
        self.register_outputs({"scoring": self.scoring.email, "enrich": self.enrich.email})


class AccessBindings(pulumi.ComponentResource):
    """Every grant, declared in the order its user needs it; each method returns its grants.

    A grant must exist before the resource that relies on it starts working, or a first
    `pulumi up` does not converge: scoring loads its model once at cold start (a 403 then is
    not retried), Pub/Sub starts pushing as soon as the push subscription exists (without the
    invoker and token-creator grants every attempt fails and burns a delivery), a build without
    its build grants fails. So `__main__` makes each of those users depend on what the matching
    method returned (tests/infra asserts the edges).
    """

    def __init__(self, name: str, cfg: StackConfig, ids: Identities, project_number: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("txguard:infra:AccessBindings", name, None, opts)
        self.cfg = cfg
        self.ids = ids
        self.agent = pubsub_service_agent(project_number)
        self._child = pulumi.ResourceOptions(parent=self)

    def _on_topic(self, label: str, topic: gcp.pubsub.Topic, role: str, member: pulumi.Input[str]) -> pulumi.Resource:
        return gcp.pubsub.TopicIAMMember(label, project=self.cfg.project, topic=topic.name, role=role,
                                         member=member, opts=self._child)

    def _invoker(self, label: str, service: pulumi.Output[str], member: pulumi.Input[str]) -> pulumi.Resource:
        return gcp.cloudrunv2.ServiceIamMember(label, project=self.cfg.project, location=self.cfg.region,
                                               name=service, role="roles/run.invoker", member=member,
                                               opts=self._child)

    def scoring_runtime(self, models_bucket: gcp.storage.Bucket) -> list[pulumi.Resource]:
        """Scoring reads the registry, nothing else: before the scoring function starts."""
        return [gcp.storage.BucketIAMMember("score-models-viewer", bucket=models_bucket.name,
                                            role="roles/storage.objectViewer", member=sa_member(self.ids.scoring),
                                            opts=self._child)]

    def enrich_runtime(self, topics: dict[str, gcp.pubsub.Topic],
                       scoring_service: pulumi.Output[str]) -> list[pulumi.Resource]:
        """Enrichment: history store, its two output topics, the scoring service (before it starts)."""
        enrich = sa_member(self.ids.enrich)
        return [
            gcp.projects.IAMMember("enrich-datastore-user", project=self.cfg.project, role="roles/datastore.user",
                                   member=enrich, opts=self._child),
            self._on_topic("enrich-decisions-publisher", topics[names.DECISIONS_TOPIC], "roles/pubsub.publisher",
                           enrich),
            self._on_topic("enrich-invalid-publisher", topics[names.INVALID_TOPIC], "roles/pubsub.publisher", enrich),
            self._invoker("enrich-invokes-score", scoring_service, enrich),
        ]

    def push_delivery(self, enrich_service: pulumi.Output[str]) -> list[pulumi.Resource]:
        """What a push needs: the push identity may invoke enrichment, Pub/Sub may mint its OIDC token."""
        return [
            self._invoker("push-invokes-enrich", enrich_service, sa_member(self.ids.push)),
            gcp.serviceaccount.IAMMember("pubsub-agent-push-token-creator", service_account_id=self.ids.push.name,
                                         role="roles/iam.serviceAccountTokenCreator", member=self.agent,
                                         opts=self._child),
        ]

    def dead_lettering(self, topics: dict[str, gcp.pubsub.Topic],
                       subscriptions: dict[str, gcp.pubsub.Subscription]) -> list[pulumi.Resource]:
        """Publish on the dead-letter topic and subscribe on the source subscription, else Pub/Sub
        keeps retrying forever and nothing is dead-lettered. Bound on the subscription, so after it;
        needed only once a message has exhausted its attempts."""
        return [
            self._on_topic("pubsub-agent-dead-letter-publisher", topics[names.DEAD_LETTER_TOPIC],
                           "roles/pubsub.publisher", self.agent),
            gcp.pubsub.SubscriptionIAMMember(
                "pubsub-agent-push-subscriber", project=self.cfg.project,
                subscription=subscriptions[names.ENRICH_PUSH_SUBSCRIPTION].name,
                role="roles/pubsub.subscriber", member=self.agent, opts=self._child),
        ]

    def publishers(self, topics: dict[str, gcp.pubsub.Topic]) -> list[pulumi.Resource]:
        """Publishers: the transactions topic only."""
        return [self._on_topic("publisher-transactions", topics[names.TRANSACTIONS_TOPIC], "roles/pubsub.publisher",
                               sa_member(self.ids.publisher))]

    def build(self, sources_bucket: gcp.storage.Bucket,
              images_repository: gcp.artifactregistry.Repository) -> list[pulumi.Resource]:
        """The build identity's roles (none with the project's default build identity): before a build."""
        if self.ids.builder is None:
            return []
        project, builder = self.cfg.project, sa_member(self.ids.builder)
        return [
            gcp.projects.IAMMember("build-log-writer", project=project, role="roles/logging.logWriter",
                                   member=builder, opts=self._child),
            gcp.artifactregistry.RepositoryIamMember(
                "build-images-writer", project=project, location=self.cfg.region,
                repository=images_repository.name, role="roles/artifactregistry.writer",
                member=builder, opts=self._child),
            gcp.storage.BucketIAMMember("build-sources-viewer", bucket=sources_bucket.name,
                                        role="roles/storage.objectViewer", member=builder, opts=self._child),
            # Cloud Run functions stages the source in its own gcf-v2-sources-* bucket (not ours).
            gcp.projects.IAMMember(
                "build-staged-sources-admin", project=project, role="roles/storage.objectAdmin", member=builder,
                condition=gcp.projects.IAMMemberConditionArgs(
                    title="gcf-staged-sources-only",
                    description="Only the buckets Cloud Run functions stages sources in",
                    expression='resource.name.startsWith("projects/_/buckets/gcf-v2-sources-")',
                ),
                opts=self._child),
        ]

    def done(self) -> None:
        self.register_outputs({})
