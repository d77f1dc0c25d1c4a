"""Late counterparty, device and wallet-label updates: found where they are applied, logged, counted.

Per-wallet order holds under failures, but nothing orders the updates of *other* wallets at a
counterparty: a transaction held back by a failure (a killed worker, a store outage) is added to
its counterparty's aggregates after other wallets' later transactions have read them without it.
Scoring cannot wait for every other wallet, so the store records how far the reads of an entity have
gone and the update's own apply step compares:

- a read of an entity's aggregates at event time T (`read_before`) records T, to 5-minute precision
  (`features.counterparty.slot_start`: the features only read buckets that ended, the finest is a
  5-minute slot). `read_through` is the end of the latest slot in which an entity was read;
- an update is seen by a read at T iff T >= its `visible_from` (`features.counterparty.first_read`:
  its first bucket's end, and for a label never before it became known);
- so an update applied when `read_through` > `visible_from` is late: the reads with T in
  [visible_from, read_through) that came before it were computed without it. That window is on
  the log line; `txguard late-updates decisions` lists the decisions at the entity inside it.

The store checks after applying (the read marks of reads that began before the update landed are
then all there), so no late update goes unreported; a read that began in the few milliseconds
between the update landing and the check is reported too, although it saw the update. The state
itself stays exact: the update is added once, whatever its time (docs/enrichment.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from logging import Logger
from typing import Any

from txguard.contract.logs import EVENT_KEY, LATE_UPDATE_EVENT
from txguard.contract.models import LabelEvent, Transaction
from txguard.features.counterparty import FIVE_MIN, EntityKeys, Increment, first_read


class EntityKind(StrEnum):
    COUNTERPARTY = "counterparty"
    DEVICE = "device"
    WALLET = "wallet"  # its fraud labels (`wallet_fraud_30d`); its transactions live in the wallet history


@dataclass(frozen=True)
class Update:
    """One transaction's or label's increments, with the ids of the entities they go to."""

    transaction_id: str
    event_time: float  # the transaction's time, or when the label became known
    increments: tuple[Increment, ...]
    entities: Mapping[str, tuple[EntityKind, str]]  # entity key -> (kind, id as the events name it)
    label_id: str | None = None

    @classmethod
    def of_transaction(cls, tx: Transaction, increments: list[Increment] | tuple[Increment, ...]) -> Update:
        keys = EntityKeys.of(tx.wallet_id, tx.counterparty_id, tx.device_id)
        entities = {keys.counterparty: (EntityKind.COUNTERPARTY, tx.counterparty_id)}
        if keys.device and tx.device_id:
            entities[keys.device] = (EntityKind.DEVICE, tx.device_id)
        return cls(tx.transaction_id, tx.timestamp.timestamp(), tuple(increments), entities)

    @classmethod
    def of_label(cls, label: LabelEvent, increments: tuple[Increment, ...]) -> Update:
        keys = EntityKeys.of(label.wallet_id, label.counterparty_id, label.device_id)
        entities = {keys.counterparty: (EntityKind.COUNTERPARTY, label.counterparty_id),
                    keys.wallet: (EntityKind.WALLET, label.wallet_id)}
        if keys.device and label.device_id:
            entities[keys.device] = (EntityKind.DEVICE, label.device_id)
        return cls(label.transaction_id, label.known_at.timestamp(), increments, entities, label.label_id)

    def visible_from(self) -> dict[str, float]:
        """Per entity it changes, the earliest event time whose features include it."""
        return {e: t for e, t in first_read(self.increments, self.event_time).items() if e in self.entities}


@dataclass(frozen=True)
class LateUpdate:
    """An update applied after reads that should have included it (see the module docstring)."""

    kind: EntityKind
    entity_id: str
    entity: str  # the store's key of the entity (`c...`, `d...`, `w...`)
    transaction_id: str
    label_id: str | None
    event_time: float
    visible_from: float  # reads at or after this event time include it ...
    read_through: float  # ... and reads there had reached this one (end of their latest 5-minute slot)

    @property
    def lag_s(self) -> float:
        """How far past the update's own time the reads had gone when it was applied."""
        return round(self.read_through - self.event_time, 3)

    def log_fields(self) -> dict[str, Any]:
        return {
            EVENT_KEY: LATE_UPDATE_EVENT,
            "entity": self.kind.value,
            f"{self.kind.value}_id": self.entity_id,
            "entity_key": self.entity,
            "transaction_id": self.transaction_id,
            "label_id": self.label_id,
            "source": "label" if self.label_id else "transaction",
            "event_time": _iso(self.event_time),
            "visible_from": _iso(self.visible_from),
            "read_through": _iso(self.read_through),
            "lag_s": self.lag_s,
        }


def find_late(update: Update, read_slots: Mapping[str, float]) -> tuple[LateUpdate, ...]:
    """The late ones among an update's entities. `read_slots`: per entity key, the start of the
    latest 5-minute slot in which it was read by a transaction whose features could include the
    update (the store reads the marks of the days from `visible_from` on)."""
    out = []
    for entity, visible in sorted(update.visible_from().items()):
        slot = read_slots.get(entity)
        if slot is None or slot + FIVE_MIN <= visible:
            continue
        kind, ident = update.entities[entity]
        out.append(LateUpdate(kind, ident, entity, update.transaction_id, update.label_id, update.event_time,
                              visible, slot + FIVE_MIN))
    return tuple(out)


def log_late(log: Logger, updates: tuple[LateUpdate, ...]) -> None:
    """One JSON line per late update (WARNING: expected under failures, worth a look when it grows);
    the log-based metric `txguard_late_counterparty_updates` counts them (infra/monitoring.py)."""
    for update in updates:
        log.warning(f"late {update.kind.value} update {update.label_id or update.transaction_id}: "
                    f"read through {_iso(update.read_through)} without it", extra=update.log_fields())


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
