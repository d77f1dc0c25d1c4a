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

Grants are bound on the resource (bucket, topic, subscription, service) wherever IAM allows,
never on the project except `datastore.user` (Firestore has no per-database IAM) and the build
roles. No grant ever names allUsers or allAuthenticatedUsers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class GrantTargets:
    """What the grants bind to (built by the other components)."""

    models_bucket: gcp.storage.Bucket
    sources_bucket: gcp.storage.Bucket
    images_repository: gcp.artifactregistry.Repository
    topics: dict[str, gcp.pubsub.Topic]
    subscriptions: dict[str, gcp.pubsub.Subscription]
    scoring_service: pulumi.Output[str]  # Cloud Run service name of the scoring function
    enrich_service: pulumi.Output[str]
    project_number: pulumi.Input[str]


class AccessBindings(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: StackConfig, ids: Identities, targets: GrantTargets,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("txguard:infra:AccessBindings", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        project = cfg.project
        agent = pubsub_service_agent(targets.project_number)

        def on_topic(label: str, topic: str, role: str, member: pulumi.Input[str]) -> None:
            gcp.pubsub.TopicIAMMember(label, project=project, topic=targets.topics[topic].name,
                                      role=role, member=member, opts=child)

        def invoker(label: str, service: pulumi.Output[str], member: pulumi.Input[str]) -> None:
            gcp.cloudrunv2.ServiceIamMember(label, project=project, location=cfg.region, name=service,
                                            role="roles/run.invoker", member=member, opts=child)

        # Scoring: read the registry, nothing else.
        gcp.storage.BucketIAMMember("score-models-viewer", bucket=targets.models_bucket.name,
                                    role="roles/storage.objectViewer", member=sa_member(ids.scoring), opts=child)
        # Enrichment: history store, its two output topics, the scoring service.
        gcp.projects.IAMMember("enrich-datastore-user", project=project, role="roles/datastore.user",
                               member=sa_member(ids.enrich), opts=child)
        on_topic("enrich-decisions-publisher", names.DECISIONS_TOPIC, "roles/pubsub.publisher", sa_member(ids.enrich))
        on_topic("enrich-invalid-publisher", names.INVALID_TOPIC, "roles/pubsub.publisher", sa_member(ids.enrich))
        invoker("enrich-invokes-score", targets.scoring_service, sa_member(ids.enrich))
        # Push deliveries: invoke the enrichment service only.
        invoker("push-invokes-enrich", targets.enrich_service, sa_member(ids.push))
        # Publishers: the transactions topic only.
        on_topic("publisher-transactions", names.TRANSACTIONS_TOPIC, "roles/pubsub.publisher",
                 sa_member(ids.publisher))
        # Pub/Sub service agent: dead-lettering needs publish on the dead-letter topic and subscribe on
        # the source subscription, else Pub/Sub keeps retrying forever and nothing is dead-lettered.
        on_topic("pubsub-agent-dead-letter-publisher", names.DEAD_LETTER_TOPIC, "roles/pubsub.publisher", agent)
        gcp.pubsub.SubscriptionIAMMember(
            "pubsub-agent-push-subscriber", project=project,
            subscription=targets.subscriptions[names.ENRICH_PUSH_SUBSCRIPTION].name,
            role="roles/pubsub.subscriber", member=agent, opts=child)
        gcp.serviceaccount.IAMMember("pubsub-agent-push-token-creator", service_account_id=ids.push.name,
                                     role="roles/iam.serviceAccountTokenCreator", member=agent, opts=child)
        if ids.builder is not None:
            builder = sa_member(ids.builder)
            gcp.projects.IAMMember("build-log-writer", project=project, role="roles/logging.logWriter",
                                   member=builder, opts=child)
            gcp.artifactregistry.RepositoryIamMember(
                "build-images-writer", project=project, location=cfg.region,
                repository=targets.images_repository.name, role="roles/artifactregistry.writer",
                member=builder, opts=child)
            gcp.storage.BucketIAMMember("build-sources-viewer", bucket=targets.sources_bucket.name,
                                        role="roles/storage.objectViewer", member=builder, opts=child)
            # Cloud Run functions stages the source in its own gcf-v2-sources-* bucket (not ours).
            gcp.projects.IAMMember(
                "build-staged-sources-admin", project=project, role="roles/storage.objectAdmin", member=builder,
                condition=gcp.projects.IAMMemberConditionArgs(
                    title="gcf-staged-sources-only",
                    description="Only the buckets Cloud Run functions stages sources in",
                    expression='resource.name.startsWith("projects/_/buckets/gcf-v2-sources-")',
                ),
                opts=child)
        self.register_outputs({})
