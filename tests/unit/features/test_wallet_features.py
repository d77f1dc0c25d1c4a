"""History features: point-in-time semantics, bounds, and order independence."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from txguard.contract.models import Transaction
from txguard.features.wallet import (
    CAP_SECONDS,
    FEATURE_NAMES,
    HISTORY_FEATURES,
    MAX_COUNTERPARTIES,
    RING_SIZE,
    TxPoint,
    WalletState,
    applied_after,
    apply,
    history_values,
    replay,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def tx(i: int, minutes: float, amount: float = 20.0, cp: str = "cp1", type_: str = "payment", **kw) -> Transaction:
    return Transaction(
        transaction_id=f"t{i}",
        wallet_id=kw.pop("wallet", "w1"),
        counterparty_id=cp,
        amount=amount,
        currency="EUR",
        type=type_,
        channel="app",
        country=kw.pop("country", "FR"),
        device_id=kw.pop("device", "d1"),
        timestamp=T0 + timedelta(minutes=minutes),
    )


def feats(state: WalletState, t: Transaction) -> dict[str, float]:
    return dict(zip(HISTORY_FEATURES, history_values(state, TxPoint.of(t)), strict=True))


def test_empty_history_has_neutral_values() -> None:
    f = feats(WalletState(), tx(1, 0))
    assert f["tx_count_24h"] == 0 and f["history_len"] == 0
    assert f["seconds_since_last"] == CAP_SECONDS
    assert f["is_new_counterparty"] == 1.0
    assert f["amount_ratio_30d"] == 1.0


def test_windows_count_only_strictly_earlier_transactions() -> None:
    state = WalletState()
    for i, m in enumerate([-60 * 24 * 8, -60 * 30, -90, -30, -1]):
        apply(state, TxPoint.of(tx(i, m, amount=10.0 * (i + 1))))
    current = tx(99, 0, amount=100.0)
    f = feats(state, current)
    assert f["tx_count_1h"] == 2  # -30, -1 min
    assert f["amount_sum_1h"] == 40.0 + 50.0
    assert f["tx_count_24h"] == 3  # -90, -30, -1
    assert f["tx_count_7d"] == 4  # + -30 h
    assert f["seconds_since_last"] == 60.0
    # A transaction at the same instant as an existing one does not see it.
    apply(state, TxPoint.of(current))
    assert feats(state, tx(100, 0))["tx_count_1h"] == 2


def test_new_counterparty_country_and_device_changes() -> None:
    state = WalletState()
    apply(state, TxPoint.of(tx(1, -10, cp="alice", country="FR", device="d1")))
    f = feats(state, tx(2, 0, cp="bob", country="DE", device="d2"))
    assert f["is_new_counterparty"] == 1.0 and f["new_counterparties_24h"] == 1.0
    assert f["country_changed"] == 1.0 and f["device_changed"] == 1.0
    f = feats(state, tx(3, 0, cp="alice", country="FR", device="d1"))
    assert f["is_new_counterparty"] == 0.0 and f["country_changed"] == 0.0 and f["device_changed"] == 0.0


def test_counterparty_known_days_since_the_first_payment_before_t() -> None:
    """How long the wallet has paid this counterparty, from its first payment strictly before T: a
    payment delivered late (earlier than the latest) moves the first back; the same instant does not count."""
    state = WalletState()
    day = 24 * 60
    apply(state, TxPoint.of(tx(1, -10 * day, cp="alice")))
    apply(state, TxPoint.of(tx(2, -1 * day, cp="alice")))
    assert feats(state, tx(3, 0, cp="alice"))["counterparty_known_days"] == 10.0
    assert feats(state, tx(4, 0, cp="bob"))["counterparty_known_days"] == 0.0  # never paid
    assert feats(state, tx(5, -10 * day, cp="alice"))["counterparty_known_days"] == 0.0  # its first, at T
    apply(state, TxPoint.of(tx(6, -20 * day, cp="alice")))  # delivered late
    assert feats(state, tx(7, 0, cp="alice"))["counterparty_known_days"] == 20.0
    assert feats(state, tx(8, -15 * day, cp="alice"))["counterparty_known_days"] == 5.0
    # A counterparty the state no longer keeps (more recent ones pushed it out) counts as never paid.
    for k in range(MAX_COUNTERPARTIES):
        apply(state, TxPoint.of(tx(100 + k, -day / 2 + k, cp=f"c{k}")))
    f = feats(state, tx(9, 0, cp="alice"))
    assert f["counterparty_known_days"] == 0.0 and f["is_new_counterparty"] == 1.0


def test_mule_pattern_outflow_after_inflow() -> None:
    state = WalletState()
    apply(state, TxPoint.of(tx(1, -20, amount=900.0, type_="top_up", cp="src")))
    f = feats(state, tx(2, 0, amount=880.0, type_="transfer", cp="mule"))
    assert f["inflow_sum_24h"] == 900.0
    assert f["seconds_since_last_inflow"] == 20 * 60
    assert abs(f["outflow_to_inflow_24h"] - 880.0 / 900.0) < 1e-12


def test_state_stays_bounded() -> None:
    state = WalletState()
    for i in range(RING_SIZE * 3):
        apply(state, TxPoint.of(tx(i, i, cp=f"cp{i}")))
    assert len(state.ts) == RING_SIZE
    assert len(state.counterparties) == MAX_COUNTERPARTIES
    assert len(json.dumps(state.to_dict())) < 64_000  # far below Firestore's 1 MiB document limit


def test_state_survives_serialisation_exactly() -> None:
    state = WalletState()
    for i in range(50):
        apply(state, TxPoint.of(tx(i, i * 7.3, amount=1.1 * (i + 1))))
    again = WalletState.from_dict(json.loads(json.dumps(state.to_dict())))
    probe = tx(999, 400, amount=33.3)
    assert history_values(again, TxPoint.of(probe)) == history_values(state, TxPoint.of(probe))


def test_features_do_not_depend_on_arrival_order() -> None:
    rng = random.Random(7)
    txs = [tx(i, rng.uniform(0, 3000), amount=rng.uniform(1, 500), cp=f"cp{rng.randrange(10)}") for i in range(60)]
    in_order, shuffled = WalletState(), WalletState()
    for t in sorted(txs, key=lambda t: t.timestamp):
        apply(in_order, TxPoint.of(t))
    for t in rng.sample(txs, len(txs)):
        apply(shuffled, TxPoint.of(t))
    assert in_order.ts == shuffled.ts
    probe = tx(1000, 1500)
    assert history_values(in_order, TxPoint.of(probe))[:13] == history_values(shuffled, TxPoint.of(probe))[:13]


def test_replay_yields_point_in_time_features_in_time_order() -> None:
    txs = [tx(3, 30), tx(1, 10), tx(2, 20)]
    out = list(replay(txs))
    assert [t.transaction_id for t, _ in out] == ["t1", "t2", "t3"]
    assert [f.tx_count_1h for _, f in out] == [0, 1, 2]
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES))


def test_applied_after_counts_later_transactions_already_applied() -> None:
    state = WalletState()
    for i, minutes in enumerate((10, 20, 30)):
        apply(state, TxPoint.of(tx(i, minutes)))
    assert applied_after(state, TxPoint.of(tx(9, 40)).ts) == 0  # in order
    assert applied_after(state, TxPoint.of(tx(9, 30)).ts) == 0  # same instant: neither sees the other
    assert applied_after(state, TxPoint.of(tx(9, 15)).ts) == 2  # late: 20 and 30 were scored without it
    assert applied_after(WalletState(), TxPoint.of(tx(9, 15)).ts) == 0
