"""How many labels one source, and how many fraud labels one counterparty, may bring before a human looks.

A label that passed its checks (txguard.enrichment.label_checks) is counted, over a sliding window of
`window_s` in one-minute buckets (txguard.enrichment.label_review), under two keys:

- its **source** (the analyst, the processor feed; a feed label without a source counts as the route's):
  every label it sends, whatever the verdict, since a legitimate verdict or a reversal erases a fraud
  as surely as a forged fraud label adds one. Limits per route: an analyst reviews a few items a
  minute (`analyst_source`, 120 an hour by default), a processor sends its chargebacks in batches
  (`feed_source`, 5,000 an hour);
- its **counterparty**, fraud labels only (`counterparty_fraud`, 50 an hour): the label features of a
  counterparty climb with them, and a burst is how a merchant is poisoned.

Beyond either limit the label is **held for review** instead of applied: kept whole in the review store
with the reason, logged (`status: held`, which a Pulumi alert watches), released or discarded with
`txguard labels held release|discard`. Nothing is lost and nothing held changes a counter. The count is
of labels *received*: once a source is over its limit, everything it sends in the window waits, so a
storm is held from its first label beyond the limit on. A limit of 0 turns that limit off.
Counting is at least once (a redelivery after a crash counts again): a limit can only bite early, never late.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from txguard.contract.models import LabelEvent
from txguard.contract.names import LabelRoute
from txguard.contract.settings import LabelSettings
from txguard.enrichment.label_review import LabelReviewStore
from txguard.features.counterparty import Entity, entity_key

HOLD_SOURCE = "source"
HOLD_COUNTERPARTY = "counterparty"


@dataclass(frozen=True)
class Limits:
    window_s: int = 3600
    analyst_source: int = 120
    feed_source: int = 5000
    counterparty_fraud: int = 50

    @classmethod
    def from_settings(cls, settings: LabelSettings) -> Limits:
        return cls(settings.limit_window_s, settings.analyst_source_limit, settings.feed_source_limit,
                   settings.counterparty_fraud_limit)

    @classmethod
    def off(cls) -> Limits:
        """No limit: replays of history (a month of labels in seconds) and tests of everything else."""
        return cls(3600, 0, 0, 0)

    def for_source(self, route: LabelRoute) -> int:
        return self.analyst_source if route.analyst_sources else self.feed_source

    @property
    def window_minutes(self) -> int:
        return max(1, self.window_s // 60)


@dataclass(frozen=True)
class Hold:
    """Why a label is held: which limits it went past (`kinds`: source, counterparty) and a sentence."""

    kinds: tuple[str, ...]
    reason: str


def source_of(label: LabelEvent, route: LabelRoute) -> str:
    return label.source or route.name


def source_key(label: LabelEvent, route: LabelRoute) -> str:
    who = hashlib.blake2b(source_of(label, route).encode(), digest_size=8).hexdigest()
    return f"s:{route.name}:{who}"


def counterparty_key(label: LabelEvent) -> str:
    return entity_key(Entity.COUNTERPARTY, label.counterparty_id)


def admit(label: LabelEvent, route: LabelRoute, store: LabelReviewStore, limits: Limits, now: float) -> Hold | None:
    """Count the label under its keys; None when it may be applied, else why it is held."""
    minute, window = int(now // 60), limits.window_minutes
    per = f"{limits.window_s // 60} min" if limits.window_s < 7200 else f"{limits.window_s / 3600:g} h"
    kinds, reasons = [], []
    source_limit = limits.for_source(route)
    if source_limit:
        sent = store.count(source_key(label, route), minute, window)
        if sent > source_limit:
            kinds.append(HOLD_SOURCE)
            reasons.append(f"source {source_of(label, route)} sent {sent} labels in {per}, above its limit of "
                           f"{source_limit}")
    if limits.counterparty_fraud and label.is_fraud:
        frauds = store.count(counterparty_key(label), minute, window)
        if frauds > limits.counterparty_fraud:
            kinds.append(HOLD_COUNTERPARTY)
            reasons.append(f"counterparty {label.counterparty_id} got {frauds} fraud labels in {per}, above its "
                           f"limit of {limits.counterparty_fraud}")
    return Hold(tuple(kinds), "; ".join(reasons)) if kinds else None
