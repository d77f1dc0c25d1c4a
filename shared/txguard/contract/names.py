"""Single source of truth for resource names and delivery settings.

Read by the functions (settings defaults), by the Pulumi program (infra/) and by the local
emulator stack (scripts/), so a topic or subscription is never retyped anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

# Topics -------------------------------------------------------------------------------------
TRANSACTIONS_TOPIC = "transactions"
DECISIONS_TOPIC = "decisions"
INVALID_TOPIC = "invalid"
DEAD_LETTER_TOPIC = "transactions-dead-letter"
# Labels come in on one topic per source, so that IAM says who may publish each (docs/counterparty.md,
# "Who may label"): the chargeback / processor feed publishes `labels`, the analyst console
# `labels-analyst`; each topic's push subscription reaches the label function on a path of its own.
LABELS_TOPIC = "labels"
ANALYST_LABELS_TOPIC = "labels-analyst"
LABELS_DEAD_LETTER_TOPIC = "labels-dead-letter"

# Subscriptions --------------------------------------------------------------------------------
ENRICH_PUSH_SUBSCRIPTION = "transactions-enrich-push"
DEAD_LETTER_SUBSCRIPTION = "transactions-dead-letter-inspect"
DECISIONS_SUBSCRIPTION = "decisions-tail"
INVALID_SUBSCRIPTION = "invalid-inspect"
LABELS_PUSH_SUBSCRIPTION = "labels-label-push"
ANALYST_LABELS_PUSH_SUBSCRIPTION = "labels-analyst-push"
LABELS_DEAD_LETTER_SUBSCRIPTION = "labels-dead-letter-inspect"
# The analyst console's own subscriptions (docs/console.md): its review queue and live view read
# these, so it never takes messages from the tail, inspection or redrive subscriptions.
DECISIONS_CONSOLE_SUBSCRIPTION = "decisions-console"
INVALID_CONSOLE_SUBSCRIPTION = "invalid-console"
DEAD_LETTER_CONSOLE_SUBSCRIPTION = "transactions-dead-letter-console"
CONSOLE_SUBSCRIPTIONS = (DECISIONS_CONSOLE_SUBSCRIPTION, INVALID_CONSOLE_SUBSCRIPTION, DEAD_LETTER_CONSOLE_SUBSCRIPTION)

# Functions ------------------------------------------------------------------------------------
SCORING_FUNCTION = "txguard-score"
ENRICH_FUNCTION = "txguard-enrich"
SCORING_ENTRY_POINT = "score"
ENRICH_ENTRY_POINT = "enrich"
LABEL_FUNCTION = "txguard-label"
LABEL_ENTRY_POINT = "label"
# The analyst console: a Cloud Run service (built from functions/console like a function).
CONSOLE_SERVICE = "txguard-console"
CONSOLE_ENTRY_POINT = "console"

# Firestore collections --------------------------------------------------------------------------
WALLETS_COLLECTION = "wallets"
PROCESSED_COLLECTION = "processed_transactions"
REVIEW_QUEUE_COLLECTION = "review_queue"  # the console's review items, one per reviewed/blocked transaction

# Counterparty store (Bigtable; docs/counterparty.md) -----------------------------------------------
BIGTABLE_INSTANCE = "txguard"
COUNTERPARTY_TABLE = "counterparty"
COUNTERPARTY_COUNTERS_FAMILY = "a"  # aggregate family: Sum of int64 (AddToCell)
COUNTERPARTY_MARKERS_FAMILY = "m"  # one cell per transaction / label being applied: exactly once
COUNTERPARTY_LEDGER_FAMILY = "l"  # per-transaction label ledger (the verdict and what it counted)
LABEL_RATES_FAMILY = "q"  # labels per source and fraud labels per counterparty, per minute (label limits)
LABEL_HELD_FAMILY = "h"  # labels held for review (over a limit), until released or discarded
COUNTERPARTY_READS_FAMILY = "r"  # read marks: the latest 5-minute slot read per row (late updates)
# Garbage collection (max age of a cell, stamped with its day): the features read 30 days back.
COUNTERPARTY_RETENTION_DAYS = 35
LABEL_LEDGER_RETENTION_DAYS = 180  # a reversal may come months after its chargeback
LABEL_RATES_RETENTION_DAYS = 2  # the limits look one window (an hour by default) back
LABEL_HELD_RETENTION_DAYS = LABEL_LEDGER_RETENTION_DAYS  # a held label is reviewed long before; kept as long as its ledger

# The transaction index (docs/capacity.md, "Transaction index"): what every label is checked against.
# Enrichment writes one row per transaction it applies; the label function reads it. Kept as long as a
# label of the transaction may come (a reversal months after its chargeback, like the ledger), while the
# processed records expire after PROCESSED_TTL_DAYS (7).
TRANSACTION_INDEX_TABLE = "transaction_index"
TRANSACTION_INDEX_FAMILY = "x"
TRANSACTION_INDEX_RETENTION_DAYS = LABEL_LEDGER_RETENTION_DAYS

# Message attributes -----------------------------------------------------------------------------
ATTR_REASON = "reason"
ATTR_ERROR_KIND = "error_kind"
ATTR_OUTCOME = "outcome"  # allow | review | block
ATTR_MODEL_VERSION = "model_version"
ATTR_TRANSACTION_ID = "transaction_id"
ATTR_PUBLISHED_AT = "published_at"  # epoch ms set by the publisher, for end-to-end latency
ATTR_TRACEPARENT = "traceparent"  # on decisions and `invalid`: the W3C trace of the delivery that made it
ATTR_SOURCE_MESSAGE_ID = "source_message_id"  # on `invalid`: the message id it came in as
ATTR_SOURCE_SUBSCRIPTION = "source_subscription"  # on `invalid`: the subscription it came from


@dataclass(frozen=True)
class TopicSpec:
    name: str
    retention_seconds: int = 7 * 24 * 3600


@dataclass(frozen=True)
class SubscriptionSpec:
    """A subscription as production declares it; `push_to` names the function it pushes to."""

    name: str
    topic: str
    ack_deadline_seconds: int = 60
    retention_seconds: int = 7 * 24 * 3600
    push_to: str | None = None
    push_path: str = ""  # appended to the function's URL (the label function learns the source from it)
    dead_letter_topic: str | None = None
    max_delivery_attempts: int = 5
    min_backoff_seconds: int = 1
    max_backoff_seconds: int = 60
    # Ordered delivery by the message's ordering key (the publisher sets the wallet id): one message
    # of a key at a time, the next once it is acked or dead-lettered (docs/enrichment.md).
    enable_message_ordering: bool = False


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(TRANSACTIONS_TOPIC),
    TopicSpec(DECISIONS_TOPIC),
    TopicSpec(INVALID_TOPIC, retention_seconds=31 * 24 * 3600),
    TopicSpec(DEAD_LETTER_TOPIC, retention_seconds=31 * 24 * 3600),
    TopicSpec(LABELS_TOPIC),
    TopicSpec(ANALYST_LABELS_TOPIC),
    TopicSpec(LABELS_DEAD_LETTER_TOPIC, retention_seconds=31 * 24 * 3600),
)

SUBSCRIPTIONS: tuple[SubscriptionSpec, ...] = (
    SubscriptionSpec(
        ENRICH_PUSH_SUBSCRIPTION,
        TRANSACTIONS_TOPIC,
        push_to=ENRICH_FUNCTION,
        dead_letter_topic=DEAD_LETTER_TOPIC,
        max_delivery_attempts=10,
        min_backoff_seconds=1,
        max_backoff_seconds=60,
        # A wallet's transactions reach enrichment in publish order even when one fails and is
        # retried: its features are computed on the complete history (docs/enrichment.md).
        enable_message_ordering=True,
    ),
    SubscriptionSpec(DEAD_LETTER_SUBSCRIPTION, DEAD_LETTER_TOPIC, retention_seconds=31 * 24 * 3600),
    SubscriptionSpec(DECISIONS_SUBSCRIPTION, DECISIONS_TOPIC, enable_message_ordering=True),
    SubscriptionSpec(INVALID_SUBSCRIPTION, INVALID_TOPIC, retention_seconds=31 * 24 * 3600),
    # The console's: decisions kept a week (a review item must survive a console outage); the
    # invalid and dead-letter copies only feed live counts, a day is plenty.
    SubscriptionSpec(DECISIONS_CONSOLE_SUBSCRIPTION, DECISIONS_TOPIC),
    SubscriptionSpec(INVALID_CONSOLE_SUBSCRIPTION, INVALID_TOPIC, retention_seconds=24 * 3600),
    SubscriptionSpec(DEAD_LETTER_CONSOLE_SUBSCRIPTION, DEAD_LETTER_TOPIC, retention_seconds=24 * 3600),
    # The label function's push subscriptions, one per source topic, each on its own path: the enrichment
    # one's delivery policy, unordered (labels of one transaction commute: features.label_ledger makes the
    # result depend on the set, not the order). Both dead-letter to `labels-dead-letter`.
    SubscriptionSpec(
        LABELS_PUSH_SUBSCRIPTION,
        LABELS_TOPIC,
        push_to=LABEL_FUNCTION,
        push_path="/sources/chargeback",
        dead_letter_topic=LABELS_DEAD_LETTER_TOPIC,
        max_delivery_attempts=10,
        min_backoff_seconds=1,
        max_backoff_seconds=60,
    ),
    SubscriptionSpec(
        ANALYST_LABELS_PUSH_SUBSCRIPTION,
        ANALYST_LABELS_TOPIC,
        push_to=LABEL_FUNCTION,
        push_path="/sources/analyst",
        dead_letter_topic=LABELS_DEAD_LETTER_TOPIC,
        max_delivery_attempts=10,
        min_backoff_seconds=1,
        max_backoff_seconds=60,
    ),
    SubscriptionSpec(LABELS_DEAD_LETTER_SUBSCRIPTION, LABELS_DEAD_LETTER_TOPIC, retention_seconds=31 * 24 * 3600),
)


def subscription(name: str) -> SubscriptionSpec:
    for spec in SUBSCRIPTIONS:
        if spec.name == name:
            return spec
    raise KeyError(name)


@dataclass(frozen=True)
class LabelRoute:
    """One way labels reach the label function, and what may come that way.

    Pub/Sub does not tell a push endpoint who published a message: the route does. Only the source's
    identity may publish to the route's topic (IAM, infra/iam.py), only the route's push subscription
    posts to its path (and only Pulumi, acting as the push identity, can create one), so a delivery on
    the path came from that source. The label function checks that each label's `kind` is one the route
    carries and that its `source` is in the route's namespace (txguard.enrichment.label_checks).
    """

    name: str
    topic: str
    subscription: str
    kinds: tuple[str, ...]  # LabelKind values
    analyst_sources: bool  # True: `source` must be an analyst ("analyst" or "analyst:<id>"); False: must not be

    @property
    def path(self) -> str:
        return subscription(self.subscription).push_path


LABEL_ROUTES: tuple[LabelRoute, ...] = (
    LabelRoute("chargeback", LABELS_TOPIC, LABELS_PUSH_SUBSCRIPTION, ("chargeback", "reversal"), analyst_sources=False),
    LabelRoute("analyst", ANALYST_LABELS_TOPIC, ANALYST_LABELS_PUSH_SUBSCRIPTION, ("analyst",), analyst_sources=True),
)


def label_route(name: str) -> LabelRoute:
    for route in LABEL_ROUTES:
        if route.name == name:
            return route
    raise KeyError(name)


def label_route_of_path(path: str) -> LabelRoute | None:
    """The route a push request's path names (None: no route: a misconfigured subscription)."""
    wanted = "/" + path.strip("/")
    return next((r for r in LABEL_ROUTES if r.path == wanted), None)


def label_route_of_kind(kind: str) -> LabelRoute:
    """Where a label of `kind` is published (each kind travels one route)."""
    for route in LABEL_ROUTES:
        if kind in route.kinds:
            return route
    raise KeyError(kind)
