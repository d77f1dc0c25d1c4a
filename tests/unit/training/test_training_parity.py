"""Training/serving parity: the online path (state through a JSON store) equals the offline replay."""

from __future__ import annotations

import json

from txguard.features.wallet import TxPoint, WalletState, apply, enrich, replay, vectorize
from txguard.simulator.core import simulate
from txguard.training.dataset import feature_rows


def test_online_path_equals_offline_replay_exactly() -> None:
    txs = [r.tx for r in simulate(days=10, wallets=500, seed=11)]
    assert len(txs) >= 10_000

    # Online: what the enrichment function does per message, state stored as JSON between messages.
    store: dict[str, str] = {}
    online: list[list[float]] = []
    for tx in txs:
        raw = store.get(tx.wallet_id)
        state = WalletState.from_dict(json.loads(raw) if raw else None)
        online.append(vectorize(enrich(tx, state)))
        apply(state, TxPoint.of(tx))
        store[tx.wallet_id] = json.dumps(state.to_dict())

    # Offline: the training code path, and the features module's own replay.
    training = [list(row) for row, *_ in feature_rows((tx, 0, float("nan"), "") for tx in txs)]
    replayed = [vectorize(enrich_from(tx, f)) for tx, f in replay(txs)]
    assert len(online) == len(training) == len(replayed)
    mismatches = [i for i, (a, b) in enumerate(zip(online, training, strict=True)) if a != b]
    assert not mismatches, f"{len(mismatches)} rows differ, first at {mismatches[0]}"
    assert online == replayed


def enrich_from(tx, features):  # noqa: ANN001, ANN201
    from txguard.contract.models import EnrichedTransaction

    return EnrichedTransaction.model_construct(**dict(tx), features=features)
