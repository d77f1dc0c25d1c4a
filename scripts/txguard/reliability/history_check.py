"""Double counting, measured: each wallet's stored history against the offline sequential replay.

The expected state of a wallet is what `txguard.features.wallet.apply` builds from its *distinct*
transactions, one after the other (the offline path training uses). The stored state is what the
enrichment function left in the history store. Both keep one entry per applied transaction, so
comparing them as multisets of entries counts exactly:
- `double_counted`: entries the store has more often than the replay (a transaction applied twice);
- `missing`: entries the replay has and the store does not (a transaction never applied, or an
  application the store lost).
`mismatched_wallets` also catches differences outside the entries (counterparties, first seen).

Per transaction, too (`check_features`): the features the enrichment function computed and stored
(the processed record) against the replay's point-in-time features of the same transaction.
They must be equal, except where the difference is explained: a transaction of the same wallet,
*earlier* in time, was flagged late (it arrived after this one was applied, so this one was
scored without it). Any other difference is training/serving skew nobody was told about.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from txguard.contract.models import Transaction
from txguard.features.wallet import TxPoint, WalletState, apply, replay


@dataclass(frozen=True)
class HistoryCheck:
    wallets: int
    transactions: int
    double_counted: int
    missing: int
    mismatched_wallets: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def expected_states(transactions: Iterable[Transaction]) -> dict[str, WalletState]:
    """Sequential replay of the distinct transactions (by id), in time order, per wallet."""
    distinct = {tx.transaction_id: tx for tx in transactions}
    states: dict[str, WalletState] = {}
    for tx in sorted(distinct.values(), key=lambda t: (t.timestamp, t.transaction_id)):
        apply(states.setdefault(tx.wallet_id, WalletState()), TxPoint.of(tx))
    return states


def _entries(state: WalletState) -> Counter[tuple[object, ...]]:
    return Counter(zip(state.ts, state.amount, state.cp, state.country, state.device, state.inflow, strict=True))


def compare(expected: WalletState, stored: WalletState) -> tuple[int, int, bool]:
    """(double_counted, missing, mismatched) for one wallet."""
    want, have = _entries(expected), _entries(stored)
    extra = sum((have - want).values())
    missing = sum((want - have).values())
    mismatched = extra > 0 or missing > 0 or expected.to_dict() != stored.to_dict()
    return extra, missing, mismatched


def check(transactions: Iterable[Transaction], stored_state: Callable[[str], WalletState]) -> HistoryCheck:
    """Compare every wallet of `transactions` with what `stored_state(wallet_id)` returns."""
    txs = list(transactions)
    expected = expected_states(txs)
    double = missing = mismatched = 0
    for wallet_id, want in expected.items():
        extra, gone, differs = compare(want, stored_state(wallet_id))
        double += extra
        missing += gone
        mismatched += int(differs)
    return HistoryCheck(len(expected), len({t.transaction_id for t in txs}), double, missing, mismatched)


@dataclass(frozen=True)
class FeatureCheck:
    compared: int  # transactions with a processed record
    unprocessed: int  # transactions without one (never enriched)
    late: int  # transactions whose record says late
    differing: int  # online features != offline replay
    explained: int  # ... of which an earlier transaction of the wallet was flagged late
    unexplained: int


def check_features(transactions: Iterable[Transaction], processed: Callable[[str], dict[str, Any] | None],
                   flagged_late: Iterable[str] = ()) -> FeatureCheck:
    """Online features (processed records) against the offline replay, transaction by transaction.

    `flagged_late`: transaction ids whose decision said late (merged with the records' own flag)."""
    distinct = list({tx.transaction_id: tx for tx in transactions}.values())
    records = {tx.transaction_id: processed(tx.transaction_id) for tx in distinct}
    late = set(flagged_late) | {tid for tid, rec in records.items() if rec and rec.get("late")}
    late_times: dict[str, list[float]] = {}
    for tx in distinct:
        if tx.transaction_id in late:
            late_times.setdefault(tx.wallet_id, []).append(tx.timestamp.timestamp())
    compared = differing = explained = 0
    for tx, features in replay(distinct):
        record = records[tx.transaction_id]
        if not record:
            continue
        compared += 1
        if record["features"] == features.model_dump(mode="json"):
            continue
        differing += 1
        ts = tx.timestamp.timestamp()
        explained += any(t < ts for t in late_times.get(tx.wallet_id, ()))
    return FeatureCheck(compared, len(distinct) - compared, len(late & set(records)), differing, explained,
                        differing - explained)
