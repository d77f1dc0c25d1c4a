"""The offline path: transactions at their time and labels at the time they became known, one stream.

Training (and every parity test) replays history through this generator. It calls exactly what the
functions call per message: `history_values` / `apply` on the wallet state (enrichment), the
counterparty snapshot / `counterparty_values` / `transaction_increments` (enrichment), and the
label `transition` (the label function). Labels are applied when they became known (`known_at`),
never earlier, so a feature can only use what was known before its transaction; labels that
become known after the last transaction change nothing and are simply not replayed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TypeVar

from txguard.contract.models import (
    CounterpartyFeatures,
    EnrichedTransaction,
    HistoryFeatures,
    LabelEvent,
    LabelKind,
    Transaction,
)
from txguard.features.counterparty import (
    WINDOW_DAYS,
    CounterpartyBook,
    Snapshot,
    day_of,
    marks,
    transaction_increments,
)
from txguard.features.counterparty_windows import counterparty_features, counterparty_values
from txguard.features.label_ledger import apply_label
from txguard.features.wallet import (
    COUNTERPARTY_FEATURES,
    HISTORY_FEATURES,
    TRANSACTION_FEATURES,
    TxPoint,
    WalletState,
    apply,
    history_features,
    history_values,
    transaction_values,
)

T = TypeVar("T")
Row = tuple[float, ...]

_H0 = len(TRANSACTION_FEATURES)
_C0 = _H0 + len(HISTORY_FEATURES)


def _identity(item: T) -> T:
    return item


def replay(
    items: Iterable[T],
    labels: Iterable[LabelEvent] = (),
    tx_of: Callable[[T], Transaction] = _identity,  # type: ignore[assignment]
) -> Iterator[tuple[T, Row]]:
    """Yield each item with its model input row (FEATURE_NAMES order), in the items' order.

    `items` must be in transaction time order (training sorts its files; the simulator emits in
    order); `tx_of` gets the transaction out of an item (training passes tuples with labels).
    """
    pending = sorted(labels, key=lambda lb: (lb.known_at, lb.label_id))
    next_label = 0
    wallets: dict[str, WalletState] = {}
    book = CounterpartyBook()
    last_ts = -math.inf
    pruned_day = None
    for item in items:
        tx = tx_of(item)
        p = TxPoint.of(tx)
        if p.ts < last_ts:
            raise ValueError(f"transactions must be in time order ({tx.transaction_id} goes back in time)")
        last_ts = p.ts
        while next_label < len(pending) and pending[next_label].known_at.timestamp() <= p.ts:
            apply_label(book, pending[next_label])
            next_label += 1
        day = day_of(p.ts)
        if day != pruned_day:
            book.prune(day - WINDOW_DAYS - 1)
            pruned_day = day
        state = wallets.get(tx.wallet_id)
        if state is None:
            state = wallets[tx.wallet_id] = WalletState()
        row = (transaction_values(tx.amount, tx.type, tx.channel, p.ts, tx.device_id is not None)
               + history_values(state, p)
               + counterparty_values(book.snapshot(tx), p.amount, p.ts))
        new_cp, new_device = marks(state, p)
        yield item, row
        apply(state, p)
        book.add(transaction_increments(tx, new_cp, new_device))


def enrich(tx: Transaction, state: WalletState | None = None, snapshot: Snapshot | None = None) -> EnrichedTransaction:
    """`tx` enriched from a wallet state and a counterparty snapshot (neither is modified); by
    default a wallet and a counterparty never seen before."""
    return EnrichedTransaction.model_construct(
        **dict(tx), features=history_features(state or WalletState(), tx),
        counterparty=counterparty_features(snapshot or Snapshot(), tx))


def enriched_of(tx: Transaction, row: Row) -> EnrichedTransaction:
    """The EnrichedTransaction whose model row is `row` (tests, fixtures, benchmarks)."""
    features = HistoryFeatures.model_construct(**dict(zip(HISTORY_FEATURES, row[_H0:_C0], strict=True)))
    counterparty = CounterpartyFeatures.model_construct(**dict(zip(COUNTERPARTY_FEATURES, row[_C0:], strict=True)))
    return EnrichedTransaction.model_construct(**dict(tx), features=features, counterparty=counterparty)


def replay_enriched(transactions: Iterable[Transaction], labels: Iterable[LabelEvent] = ()) -> Iterator[EnrichedTransaction]:
    """Every transaction enriched as the functions would have enriched it, sorted by time first."""
    for tx, row in replay(sorted(transactions, key=lambda t: t.timestamp), labels):
        yield enriched_of(tx, row)


def row_label_id(transaction_id: str) -> str:
    """The label id of a fraud row's `label_time` in a training file (training and `txguard batch`
    replay the same label under the same id)."""
    return f"row-{transaction_id}"[:64]


def row_label_event(tx: Transaction, label_time: float) -> LabelEvent:
    """A fraud row's `label_time` as the label event it stands for (a chargeback known then)."""
    return LabelEvent(
        label_id=row_label_id(tx.transaction_id), transaction_id=tx.transaction_id, wallet_id=tx.wallet_id,
        counterparty_id=tx.counterparty_id, device_id=tx.device_id, transaction_time=tx.timestamp,
        known_at=datetime.fromtimestamp(label_time, UTC), kind=LabelKind.CHARGEBACK, is_fraud=True,
    )
