"""Counterparty, device and wallet-label state after a scenario, against the offline replay.

Two checks, both on the scenario's own entities (txguard.reliability.context gives every scenario
counterparties and devices of its own, so its replay is complete):

- **the state** (`check_aggregates`): every counter the store holds for those entities (all days,
  transactions and labels) equals the offline replay of the scenario's distinct transactions
  (marks from the sequential wallet replay) and its valid labels (`txguard.features.label_ledger`): the
  counterparty aggregates end exact, nothing added twice or lost, whatever failed meanwhile;
- **the reads** (`check_counterparty_features`): the counterparty features each transaction was
  scored on (its processed record) against the replay's point-in-time features
  (`txguard.features.timeline.replay`, training's path, labels at their `known_at`). Scoring does
  not wait for other wallets, so a transaction may have read a counterparty before an earlier
  update of another wallet, held back by a failure, was applied. Such a difference is *explained*
  when the functions logged that update as late (`late_update` lines, lateness.py) at one of the
  transaction's entities with a window of missed reads that contains its time; any other
  difference fails the scenario.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from txguard.contract.models import LabelEvent, Transaction
from txguard.features.counterparty import CounterpartyBook, EntityKeys, View, marks, transaction_increments
from txguard.features.label_ledger import apply_label
from txguard.features.timeline import enriched_of, replay
from txguard.features.wallet import TxPoint, WalletState, apply
from txguard.local.ledger import percentile
from txguard.ops.late_updates import LateLine, distinct


@dataclass(frozen=True)
class CounterpartyFeatureCheck:
    compared: int
    differing: int  # transactions scored on counterparty features that differ from the replay
    explained: int  # ... of which a logged late update explains the difference
    unexplained: int
    late_updates: int  # distinct (update, entity) logged late
    late_entities: int
    lag_s: dict[str, float | None]  # p50 / p90 / max of the late updates' lag (event time)

    def as_dict(self) -> dict[str, Any]:
        return {"cp_features_compared": self.compared, "cp_features_differing": self.differing,
                "cp_features_explained": self.explained, "cp_features_unexplained": self.unexplained,
                "late_updates": self.late_updates, "late_update_entities": self.late_entities,
                "late_update_lag_s": self.lag_s}


def _pcts(values: list[float]) -> dict[str, float | None]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 1)

    return {"p50": r(percentile(values, 50)), "p90": r(percentile(values, 90)), "max": r(max(values) if values else None)}


def check_counterparty_features(transactions: Iterable[Transaction], labels: Iterable[LabelEvent],
                                processed: Callable[[str], dict[str, Any] | None],
                                late: Iterable[LateLine]) -> CounterpartyFeatureCheck:
    """Each transaction's stored counterparty features against the replay; differences explained by `late`."""
    txs = sorted({tx.transaction_id: tx for tx in transactions}.values(), key=lambda t: (t.timestamp, t.transaction_id))
    lines = distinct(late)
    compared = differing = explained = 0
    for tx, row in replay(txs, labels):
        record = processed(tx.transaction_id)
        stored = ((record or {}).get("counterparty") or {}).get("features")
        if not stored:
            continue
        compared += 1
        if stored == enriched_of(tx, row).counterparty.model_dump(mode="json"):
            continue
        differing += 1
        t = tx.timestamp.timestamp()
        entities = (("counterparty", tx.counterparty_id), ("device", tx.device_id), ("wallet", tx.wallet_id))
        explained += any(line.explains(kind, ident, t) for line in lines for kind, ident in entities if ident)
    return CounterpartyFeatureCheck(compared, differing, explained, differing - explained, len(lines),
                                    len({(line.kind, line.entity_id) for line in lines}),
                                    _pcts([line.lag_s for line in lines]))


def expected_book(transactions: Iterable[Transaction], labels: Iterable[LabelEvent]) -> CounterpartyBook:
    """The offline state: the distinct transactions in time order (first-time marks from the wallet
    replay), then every label (the final counters depend on the set of labels, not their order)."""
    book = CounterpartyBook()
    wallets: dict[str, WalletState] = {}
    for tx in sorted({t.transaction_id: t for t in transactions}.values(), key=lambda t: (t.timestamp, t.transaction_id)):
        state = wallets.setdefault(tx.wallet_id, WalletState())
        point = TxPoint.of(tx)
        new_cp, new_device = marks(state, point)
        apply(state, point)
        book.add(transaction_increments(tx, new_cp, new_device))
    for label in sorted(labels, key=lambda lb: (lb.known_at, lb.label_id)):
        apply_label(book, label)
    return book


@dataclass(frozen=True)
class AggregateCheck:
    entities: int
    cells: int  # non-zero counters, in the store or the replay
    cells_differing: int  # counters whose value differs (an update added twice, lost, or partly applied)
    entities_differing: int

    def as_dict(self) -> dict[str, int]:
        return {"aggregate_entities": self.entities, "aggregate_cells": self.cells,
                "aggregate_cells_differing": self.cells_differing,
                "aggregate_entities_differing": self.entities_differing}


def _nonzero(view: View) -> dict[tuple[int, str], int]:
    return {(day, col): v for day, cells in view.items() for col, v in cells.items() if v}


def entities_of(transactions: Iterable[Transaction], labels: Iterable[LabelEvent]) -> set[str]:
    keys = [EntityKeys.of(t.wallet_id, t.counterparty_id, t.device_id) for t in transactions]
    keys += [EntityKeys.of(lb.wallet_id, lb.counterparty_id, lb.device_id) for lb in labels]
    return {e for k in keys for e in (k.counterparty, k.device) if e} | {k.wallet for k in keys}


def check_aggregates(transactions: Iterable[Transaction], labels: Iterable[LabelEvent],
                     entity_cells: Callable[[str], View]) -> AggregateCheck:
    """Every counter of the scenario's counterparties, devices and wallets (labels), store vs replay."""
    txs, lbs = list(transactions), list(labels)
    book = expected_book(txs, lbs)
    entities = sorted(entities_of(txs, lbs))
    cells = differing_cells = differing_entities = 0
    for entity in entities:
        want, got = _nonzero(book.cells.get(entity, {})), _nonzero(entity_cells(entity))
        keys = set(want) | set(got)
        wrong = sum(1 for key in keys if got.get(key, 0) != want.get(key, 0))
        cells += len(keys)
        differing_cells += wrong
        differing_entities += wrong > 0
    return AggregateCheck(len(entities), cells, differing_cells, differing_entities)


def open_leases(records: Iterable[dict[str, Any] | None]) -> int:
    """Processed records whose counterparty update is still leased, not applied (a stuck update)."""
    return sum(1 for r in records if r and (r.get("counterparty") or {}).get("applied") is False)
