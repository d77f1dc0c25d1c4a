"""Label events as they arrive in real life: late, sometimes wrong, sometimes withdrawn.

- an analyst reviews some frauds (those a model flagged) and says so within hours;
- the others come back as chargebacks after days to weeks (log-normal, median 7 days);
- a few legitimate transactions are disputed too (friendly fraud): a chargeback that the merchant
  often wins later, which arrives as a reversal of that chargeback.

Labels that would only become known after `until` (default: now) are not emitted: nobody knows
them yet, and the contract refuses a `known_at` in the future.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from txguard.contract.models import LabelEvent, LabelKind

ANALYST_SHARE = 0.3
ANALYST_HOURS = (0.5, 12.0)
CHARGEBACK_MEDIAN_DAYS = 7.0
CHARGEBACK_SIGMA = 0.6
CHARGEBACK_DAYS = (2.0, 45.0)
FALSE_DISPUTE_RATE = 0.001
DISPUTE_WON_SHARE = 0.6
_HOUR, _DAY = 3600.0, 86400.0


@dataclass(frozen=True, slots=True)
class Labelled:
    """What a label names of its transaction, and the truth the simulator knows about it."""

    transaction_id: str
    wallet_id: str
    counterparty_id: str
    device_id: str | None
    ts: float  # the transaction's epoch seconds
    is_fraud: bool


def label_events(events: Sequence[tuple], prefix: str, seed: int, until: datetime | None = None) -> Iterator[LabelEvent]:
    """Labels of the simulation's events (core.Event tuples, transaction ids `{prefix}-{n:09d}`),
    in the order they become known."""
    return labels_of((Labelled(f"{prefix}-{n:09d}", e[1], e[2], e[8], e[0], bool(e[9])) for n, e in enumerate(events)),
                     seed, until)


@dataclass(frozen=True, slots=True)
class LabelDraft:
    """A label before anyone knows it: its transaction, its kind, and when it becomes known."""

    item: Labelled
    suffix: str
    known: float  # epoch seconds
    kind: LabelKind
    extra: tuple[tuple[str, object], ...] = ()

    @property
    def label_id(self) -> str:
        return f"{self.item.transaction_id}:{self.suffix}"

    @property
    def delay_s(self) -> float:
        return self.known - self.item.ts

    def event(self, known_at: datetime | None = None) -> LabelEvent:
        """The LabelEvent, known at its simulated time or at `known_at` (a replay on another clock)."""
        item = self.item
        return LabelEvent(label_id=self.label_id, transaction_id=item.transaction_id, wallet_id=item.wallet_id,
                          counterparty_id=item.counterparty_id, device_id=item.device_id,
                          transaction_time=datetime.fromtimestamp(round(item.ts, 3), UTC),
                          known_at=known_at or datetime.fromtimestamp(round(self.known, 3), UTC), kind=self.kind,
                          **dict(self.extra))




def labels_of(items: Iterable[Labelled], seed: int, until: datetime | None = None) -> Iterator[LabelEvent]:
    """Labels of any labelled transactions, in the order they become known; those known after
    `until` (default now) are left out."""
    return iter([draft.event() for draft in drafts_of(items, seed, (until or datetime.now(UTC)).timestamp())])


def drafts_of(items: Iterable[Labelled], seed: int, limit: float = math.inf) -> list[LabelDraft]:
    """The labels of `items` known by `limit` (epoch seconds; all by default), in the order they
    become known. The draws depend only on the items, their order and `seed`."""
    rng = random.Random(f"{seed}:labels")
    out: list[LabelDraft] = []
    for item in items:
        ts = item.ts
        if item.is_fraud:
            if rng.random() < ANALYST_SHARE:
                known = ts + rng.uniform(*ANALYST_HOURS) * _HOUR
                if known <= limit:
                    out.append(LabelDraft(item, "an", known, LabelKind.ANALYST, (("is_fraud", True),
                                                                                 ("source", "analyst"))))
            else:
                known = ts + _chargeback_delay(rng)
                if known <= limit:
                    out.append(LabelDraft(item, "cb", known, LabelKind.CHARGEBACK, (("is_fraud", True),
                                                                                    ("source", "issuer"))))
        elif rng.random() < FALSE_DISPUTE_RATE:
            known = ts + _chargeback_delay(rng)
            if known <= limit:
                out.append(LabelDraft(item, "cb", known, LabelKind.CHARGEBACK, (("is_fraud", True),
                                                                                ("source", "issuer"))))
                won = known + rng.uniform(3.0, 20.0) * _DAY
                if rng.random() < DISPUTE_WON_SHARE and won <= limit:
                    out.append(LabelDraft(item, "rv", won, LabelKind.REVERSAL, (
                        ("reverses", f"{item.transaction_id}:cb"), ("source", "issuer"),
                        ("note", "dispute won by the merchant"))))
    out.sort(key=lambda d: (round(d.known, 3), d.label_id))
    return out


def _chargeback_delay(rng: random.Random) -> float:
    days = math.exp(rng.gauss(math.log(CHARGEBACK_MEDIAN_DAYS), CHARGEBACK_SIGMA))
    return min(max(days, CHARGEBACK_DAYS[0]), CHARGEBACK_DAYS[1]) * _DAY
