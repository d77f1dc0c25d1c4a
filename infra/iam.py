"""Identities, one service account per role, and every IAM grant of the stack (least privilege).

| identity            | may do                                                              |
|---------------------|---------------------------------------------------------------------|
| scoring             | read objects of the models bucket                                   |
| enrichment          | Firestore (datastore.user); read and write the counterparty table;  |
|                     | publish to `decisions` and `invalid`; invoke the scoring service    |
|                     | (and the transaction index it records every transaction in)         |
| label               | read and write the counterparty table, read the transaction index;  |
|                     | publish to `invalid`                                                |
| push (Pub/Sub OIDC) | invoke the enrichment service and the label service                 |
| publisher           | publish to `transactions`, nothing else                             |
| chargebacks         | publish to `labels` (the processor feed's chargebacks, reversals)   |
| builder (optional)  | write build logs, push images to our repository, read sources       |
| Pub/Sub agent       | publish to each dead-letter topic, subscribe to each push           |
|                     | subscription (dead-lettering), mint OIDC tokens for the push SA     |

The analyst console's identity and grants live with it in infra/console.py (declared only with
`analystsGroup`): its verdicts go to `labels-analyst`, which only it may publish to. One identity
per label source, and one topic: the topic a label came on is the source that sent it (the label
function knows it from the push path: txguard.contract.names.LabelRoute), so whoever holds the
transaction feed's key cannot label anything.

Grants are bound on the resource (bucket, topic, subscription, service, Bigtable table)
wherever IAM allows, never on the project except `datastore.user` (Firestore has no
per-database IAM role binding: an IAM condition on the database narrows it to the stack's
database) and the build roles. No grant ever names allUsers or allAuthenticatedUsers.

Two things a first `pulumi up` on an empty project needs that a rerun would hide:
- A Google-managed service agent (Pub/Sub's, IAP's) exists only once something asks for it: a
  grant naming it fails with "does not exist" until then. `service_agent` creates it
  (`gcp.projects.ServiceIdentity`) and every grant to it waits for that.
- A grant is not in force the moment its API call returns: IAM changes take time to propagate
  (typically within 60 seconds, sometimes minutes). What uses a grant (a build, a push
  subscription, a service that reads at start) therefore waits for `settled(grants)`, a
  `pulumiverse_time.Sleep` of IAM_SETTLE created after the grants, as the provider's own Cloud
  Functions v2 example waits 60 s for the builder's permissions. Its `triggers` are the grants'
  ids: a replaced grant waits again; unchanged grants never wait twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_gcp as gcp
import pulumiverse_time

from infra.config import StackConfig
from infra.services import child_options
from txguard.contract import names

# Short names of the push targets in resource names (`push-invokes-enrich` existed before the label function).
_SHORT = {names.ENRICH_FUNCTION: "enrich", names.LABEL_FUNCTION: "label"}


def sa_member(account: gcp.serviceaccount.Account) -> pulumi.Output[str]:
    return account.email.apply(lambda email: f"serviceAccount:{email}")


# How long a new grant is given to propagate before what uses it starts (see the module docstring).
IAM_SETTLE = "60s"


def service_agent(name: str, cfg: StackConfig, api: str, opts: pulumi.ResourceOptions) -> gcp.projects.ServiceIdentity:
    """The service agent of `api` (`service-<number>@gcp-sa-<api>.iam.gserviceaccount.com`), created if
    it does not exist yet, so that grants naming it can wait for it."""
    return gcp.projects.ServiceIdentity(name, project=cfg.project, service=api, opts=opts)


def agent_member(agent: gcp.projects.ServiceIdentity) -> pulumi.Output[str]:
    return agent.email.apply(lambda email: f"serviceAccount:{email}")


def settled(name: str, grants: Sequence[pulumi.Resource], parent: pulumi.Resource) -> list[pulumi.Resource]:
    """A wait of IAM_SETTLE after `grants` (nothing to wait for without grants): depend on what this returns."""
    if not grants:
        return []
    ids = pulumi.Output.all(*[grant.id for grant in grants]).apply(lambda got: ",".join(sorted(map(str, got))))
    return [pulumiverse_time.Sleep(name, create_duration=IAM_SETTLE, triggers={"grants": ids},
                                   opts=pulumi.ResourceOptions(parent=parent, depends_on=list(grants)))]


def database_condition(cfg: StackConfig) -> dict[str, str]:
    """`roles/datastore.user` on the stack's Firestore database only (Firestore's documented IAM
    condition: `resource.name == "projects/P/databases/D"`)."""
    return {"title": "txguard-database-only",
            "description": f"Firestore database {cfg.firestore_database} of this stack only",
            "expression": f'resource.name == "projects/{cfg.project}/databases/{cfg.firestore_database}"'}


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
        self.label = account("label", "Runtime identity of the label function")
        self.push = account("push", "Identity of Pub/Sub push deliveries to the enrichment and label functions (OIDC)")
        self.publisher = account("publisher", "Publishers of transactions (and of nothing else)")
        self.chargebacks = account("chargebacks", "The chargeback / processor feed: publishes chargebacks and "
                                                  "reversals to the labels topic (and nothing else)")
        self.builder = (
            account("build", "Cloud Build identity for the function builds") if cfg.build_service_account else None
        )
        self.register_outputs({"scoring": self.scoring.email, "enrich": self.enrich.email, "label": self.label.email})


class AccessBindings(pulumi.ComponentResource):
    """Every grant, declared in the order its user needs it; each method returns its grants.

    A grant must exist before the resource that relies on it starts working, or a first
    `pulumi up` does not converge: scoring loads its model once at cold start (a 403 then is
    not retried), Pub/Sub starts pushing as soon as the push subscription exists (without the
    invoker and token-creator grants every attempt fails and burns a delivery), a build without
    its build grants fails. And it must have propagated, not only exist. So `__main__` makes each
    of those users depend on `settled(...)` of what the matching method returned: grant -> wait ->
    user (tests/infra/test_convergence.py asserts the edges).
    """

    def __init__(self, name: str, cfg: StackConfig, ids: Identities, depends_on: Sequence[pulumi.Resource] = (),
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("txguard:infra:AccessBindings", name, None, opts)
        self.cfg = cfg
        self.ids = ids
        self._child = pulumi.ResourceOptions(parent=self)
        # Pub/Sub's agent: dead-lettering and the push identity's OIDC tokens (grants below wait for it).
        self.pubsub_agent = service_agent("pubsub-agent", cfg, "pubsub.googleapis.com",
                                          child_options(self, depends_on))
        self.agent = agent_member(self.pubsub_agent)

    def settled(self, name: str, grants: Sequence[pulumi.Resource]) -> list[pulumi.Resource]:
        return settled(name, grants, self)

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

    def _on_table(self, label: str, table: gcp.bigtable.Table, member: pulumi.Input[str],
                  role: str = "roles/bigtable.user") -> pulumi.Resource:
        """Read and write (or only read: `roles/bigtable.reader`) of one table alone, bound on the table
        (a table-level binding; the instance's other tables, and its admin, stay out of reach)."""
        return gcp.bigtable.TableIamMember(label, project=self.cfg.project, instance_name=table.instance_name,
                                           table=table.name, role=role, member=member, opts=self._child)

    def enrich_runtime(self, topics: dict[str, gcp.pubsub.Topic], scoring_service: pulumi.Output[str],
                       counterparty_table: gcp.bigtable.Table,
                       index_table: gcp.bigtable.Table) -> list[pulumi.Resource]:
        """Enrichment: history and counterparty stores, the transaction index it writes, its two output
        topics, the scoring service (before it starts)."""
        enrich = sa_member(self.ids.enrich)
        return [
            self._on_table("enrich-transaction-index-user", index_table, enrich),
            gcp.projects.IAMMember("enrich-datastore-user", project=self.cfg.project, role="roles/datastore.user",
                                   member=enrich, condition=gcp.projects.IAMMemberConditionArgs(
                                       **database_condition(self.cfg)), opts=self._child),
            self._on_table("enrich-counterparty-user", counterparty_table, enrich),
            self._on_topic("enrich-decisions-publisher", topics[names.DECISIONS_TOPIC], "roles/pubsub.publisher",
                           enrich),
            self._on_topic("enrich-invalid-publisher", topics[names.INVALID_TOPIC], "roles/pubsub.publisher", enrich),
            self._invoker("enrich-invokes-score", scoring_service, enrich),
        ]

    def label_runtime(self, topics: dict[str, gcp.pubsub.Topic], counterparty_table: gcp.bigtable.Table,
                      index_table: gcp.bigtable.Table) -> list[pulumi.Resource]:
        """The label function: the counterparty table (ledgers, counters, limits, held labels), the
        transaction index read only, and `invalid` (malformed and refused labels); nothing else."""
        label = sa_member(self.ids.label)
        return [
            self._on_table("label-counterparty-user", counterparty_table, label),
            self._on_table("label-transaction-index-reader", index_table, label, "roles/bigtable.reader"),
            self._on_topic("label-invalid-publisher", topics[names.INVALID_TOPIC], "roles/pubsub.publisher", label),
        ]

    def push_delivery(self, services: Mapping[str, pulumi.Output[str]]) -> dict[str, list[pulumi.Resource]]:
        """What a push needs, per function it pushes to (names.SubscriptionSpec.push_to -> its service):
        the push identity may invoke that service, and Pub/Sub may mint the identity's OIDC token."""
        token = gcp.serviceaccount.IAMMember("pubsub-agent-push-token-creator", service_account_id=self.ids.push.name,
                                             role="roles/iam.serviceAccountTokenCreator", member=self.agent,
                                             opts=pulumi.ResourceOptions(parent=self, depends_on=[self.pubsub_agent]))
        return {function: [self._invoker(f"push-invokes-{_SHORT[function]}", service, sa_member(self.ids.push)), token]
                for function, service in services.items()}

    def dead_lettering(self, topics: dict[str, gcp.pubsub.Topic],
                       subscriptions: dict[str, gcp.pubsub.Subscription]) -> list[pulumi.Resource]:
        """For each subscription with a dead-letter policy: subscribe on it, and publish on its dead-letter
        topic (one grant per topic: both label subscriptions share `labels-dead-letter`, and two resources
        holding one binding would remove it for both when one goes), else Pub/Sub keeps retrying forever and
        nothing is dead-lettered. Bound on the subscription, so after it; needed only once a message has
        exhausted its attempts."""
        grants: list[pulumi.Resource] = []
        published: set[str] = set()
        after_agent = pulumi.ResourceOptions(parent=self, depends_on=[self.pubsub_agent])
        for spec in names.SUBSCRIPTIONS:
            if spec.dead_letter_topic is None:
                continue
            # The enrichment pair keeps the names it was first deployed with (a rename would replace it);
            # the first label subscription too, the analysts' is named after its own topic.
            prefix = "pubsub-agent" if spec.name == names.ENRICH_PUSH_SUBSCRIPTION else f"pubsub-agent-{spec.topic}"
            if spec.dead_letter_topic not in published:
                published.add(spec.dead_letter_topic)
                grants.append(gcp.pubsub.TopicIAMMember(
                    f"{prefix}-dead-letter-publisher", project=self.cfg.project,
                    topic=topics[spec.dead_letter_topic].name, role="roles/pubsub.publisher", member=self.agent,
                    opts=after_agent))
            grants.append(gcp.pubsub.SubscriptionIAMMember(
                f"{prefix}-push-subscriber", project=self.cfg.project, subscription=subscriptions[spec.name].name,
                role="roles/pubsub.subscriber", member=self.agent, opts=after_agent))
        return grants

    def publishers(self, topics: dict[str, gcp.pubsub.Topic]) -> list[pulumi.Resource]:
        """Each feed publishes to its own topic only: transactions, and the processor feed's labels. The
        console publishes its verdicts to `labels-analyst` (infra/console.py); nobody else labels."""
        return [self._on_topic("publisher-transactions", topics[names.TRANSACTIONS_TOPIC], "roles/pubsub.publisher",
                               sa_member(self.ids.publisher)),
                self._on_topic("chargebacks-labels", topics[names.LABELS_TOPIC], "roles/pubsub.publisher",
                               sa_member(self.ids.chargebacks))]

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
