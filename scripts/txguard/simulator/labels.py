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
from collections.abc import Iterator, Sequence
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


def label_events(events: Sequence[tuple], prefix: str, seed: int, until: datetime | None = None) -> Iterator[LabelEvent]:
    """Labels of the simulation's events (core.Event tuples, transaction ids `{prefix}-{n:09d}`),
    in the order they become known."""
    rng = random.Random(f"{seed}:labels")
    limit = (until or datetime.now(UTC)).timestamp()
    out: list[LabelEvent] = []
    for n, event in enumerate(events):
        ts, fraud = event[0], event[9]
        tx_id = f"{prefix}-{n:09d}"
        if fraud:
            if rng.random() < ANALYST_SHARE:
                known = ts + rng.uniform(*ANALYST_HOURS) * _HOUR
                if known <= limit:
                    out.append(_label(tx_id, event, "an", known, LabelKind.ANALYST, is_fraud=True, source="analyst"))
            else:
                known = ts + _chargeback_delay(rng)
                if known <= limit:
                    out.append(_label(tx_id, event, "cb", known, LabelKind.CHARGEBACK, is_fraud=True, source="issuer"))
        elif rng.random() < FALSE_DISPUTE_RATE:
            known = ts + _chargeback_delay(rng)
            if known <= limit:
                out.append(_label(tx_id, event, "cb", known, LabelKind.CHARGEBACK, is_fraud=True, source="issuer"))
                won = known + rng.uniform(3.0, 20.0) * _DAY
                if rng.random() < DISPUTE_WON_SHARE and won <= limit:
                    out.append(_label(tx_id, event, "rv", won, LabelKind.REVERSAL, reverses=f"{tx_id}:cb",
                                      source="issuer", note="dispute won by the merchant"))
    out.sort(key=lambda lb: (lb.known_at, lb.label_id))
    return iter(out)


def _label(tx_id: str, event: tuple, suffix: str, known: float, kind: LabelKind, **extra: object) -> LabelEvent:
    ts, wallet, cp, device = event[0], event[1], event[2], event[8]
    return LabelEvent(label_id=f"{tx_id}:{suffix}", transaction_id=tx_id, wallet_id=wallet, counterparty_id=cp,
                      device_id=device, transaction_time=datetime.fromtimestamp(round(ts, 3), UTC),
                      known_at=datetime.fromtimestamp(round(known, 3), UTC), kind=kind, **extra)


def _chargeback_delay(rng: random.Random) -> float:
    days = math.exp(rng.gauss(math.log(CHARGEBACK_MEDIAN_DAYS), CHARGEBACK_SIGMA))
    return min(max(days, CHARGEBACK_DAYS[0]), CHARGEBACK_DAYS[1]) * _DAY
