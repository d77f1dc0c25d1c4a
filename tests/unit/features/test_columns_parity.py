"""The columnar replay (`timeline_columns.replay_columns`, what training and batch use) equals the
reference replay (`timeline.replay`, the functions the enrichment and label functions call),
bit for bit, on every feature of every row.

The data is chosen to exercise every path of the twin: the simulator (devices, top-ups, countries,
analyst verdicts, chargebacks, reversals), Handbook-shaped data (terminals with many known frauds,
labels from `label_time`), a peer-to-peer world (devices shared by many wallets within minutes,
wallets paid by others, known frauds on the wallets they were paid to), and adversarial tables
(timestamp ties longer than the wallet's ring, wallets paying more counterparties than their state
keeps, labels that withdraw or move a count).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from txguard.contract.models import LabelEvent, LabelKind, Transaction
from txguard.evaluation.handbook_data import HandbookConfig, generate
from txguard.evaluation.p2p_data import P2PConfig, online_inputs
from txguard.evaluation.p2p_data import generate as generate_p2p
from txguard.evaluation.p2p_fraud import FraudRates
from txguard.features import counterparty_columns
from txguard.features.timeline import replay, row_label_event
from txguard.features.timeline_columns import TxColumns, replay_columns
from txguard.features.wallet import FEATURE_NAMES, MAX_COUNTERPARTIES, RING_SIZE
from txguard.simulator.core import Simulation

IX = {name: i for i, name in enumerate(FEATURE_NAMES)}
T0 = datetime(2025, 1, 6, tzinfo=UTC)


def assert_same(txs: list[Transaction], labels: list[LabelEvent]) -> np.ndarray:
    txs = sorted(txs, key=lambda t: t.timestamp)
    reference = np.array([row for _, row in replay(txs, labels)])
    twin = replay_columns(TxColumns.of(txs), labels)
    assert twin.shape == reference.shape == (len(txs), len(FEATURE_NAMES))
    differ = np.argwhere(twin != reference)
    if len(differ):
        i, j = differ[0]
        pytest.fail(f"{len(differ)} cells differ; first: row {i} {FEATURE_NAMES[j]} reference {reference[i, j]!r} "
                    f"twin {twin[i, j]!r}")
    return reference


def _tx(i: int, wallet: str, counterparty: str, at: datetime, amount: float, **extra) -> Transaction:  # noqa: ANN003
    fields = {"transaction_id": f"x{i}", "wallet_id": wallet, "counterparty_id": counterparty, "amount": amount,
              "currency": "EUR", "type": "payment", "channel": "app", "country": "FR", "timestamp": at}
    return Transaction(**{**fields, **extra})


def _label(label_id: str, tx: Transaction, known: datetime, kind: LabelKind, is_fraud: bool | None,
           reverses: str | None = None) -> LabelEvent:
    return LabelEvent(label_id=label_id, transaction_id=tx.transaction_id, wallet_id=tx.wallet_id,
                      counterparty_id=tx.counterparty_id, device_id=tx.device_id, transaction_time=tx.timestamp,
                      known_at=known, kind=kind, is_fraud=is_fraud, reverses=reverses)


def test_simulated_data_with_analyst_verdicts_chargebacks_and_reversals() -> None:
    sim = Simulation(days=20, wallets=400, seed=7)
    txs = [r.tx for r in sim]
    labels = list(sim.label_events())
    assert {lb.kind for lb in labels} == set(LabelKind)
    rows = assert_same(txs, labels)
    assert (rows[:, IX["cp_fraud_30d"]] > 0).sum() > 100
    assert (rows[:, IX["device_fraud_30d"]] > 0).sum() > 10
    assert (rows[:, IX["inflow_sum_24h"]] > 0).sum() > 100
    assert (rows[:, IX["device_changed"]] > 0).sum() > 10


def test_handbook_shaped_data_with_labels_known_a_week_later() -> None:
    data = generate(HandbookConfig(days=45, customers=700, terminals=1400, seed=5))
    txs = [_tx(i, f"C{c}", f"T{t}", datetime.fromtimestamp(ts, UTC), float(a), channel="pos")
           for i, (c, t, a, ts) in enumerate(zip(data.customer.tolist(), data.terminal.tolist(), data.amount.tolist(),
                                                 data.ts.tolist(), strict=True))]
    labels = [row_label_event(tx, lt) for tx, y, lt in zip(txs, data.is_fraud, data.label_time, strict=True) if y]
    rows = assert_same(txs, labels)
    assert (rows[:, IX["cp_fraud_wallets_7d"]] > 1).sum() > 20
    assert (rows[:, IX["tx_count_7d"]] > 5).sum() > 1000


# A small world with fraud often enough that labels reach devices and the wallets mules are paid to.
BUSY = FraudRates(takeover=1 / 500, scam=1 / 150, testing=1 / 2000)


def test_peer_to_peer_world_device_bursts_and_inflows() -> None:
    txs, labels = online_inputs(generate_p2p(P2PConfig(users=600, days=25, seed=8, rates=BUSY)))
    assert len(labels) > 50
    rows = assert_same(txs, labels)
    nonzero = {name: int((rows[:, IX[name]] > 0).sum()) for name in (
        "device_tx_1h", "device_new_wallets_1h", "device_age_days", "is_new_device", "in_tx_1h", "in_tx_24h",
        "in_amount_24h", "in_new_payers_24h", "in_fraud_30d", "device_fraud_30d", "counterparty_known_days",
        "cp_wallet_fraud_30d")}
    assert min(nonzero.values()) >= 20, nonzero
    assert (rows[:, IX["device_new_wallets_1h"]] >= 3).sum() >= 20, "no device burst across wallets"
    assert (rows[:, IX["in_minutes_since_last"]] < 60).sum() >= 20, "no wallet paid within the hour"


def test_ties_longer_than_the_ring_and_wallets_with_more_counterparties_than_kept() -> None:
    rng = random.Random(3)
    txs = []
    for i in range(9000):
        wallet = f"w{rng.randrange(8)}"
        crowded = wallet in ("w0", "w1")  # these pay many more counterparties than the state keeps
        cp = f"c{rng.randrange(3 * MAX_COUNTERPARTIES if crowded else 60)}"
        at = T0 + (timedelta(days=3) if rng.random() < 0.3 else timedelta(seconds=rng.randrange(20 * 86400)))
        txs.append(_tx(i, wallet, cp, at, round(rng.choice([rng.uniform(0.01, 4.99), rng.uniform(5, 3000)]), 2),
                       type=rng.choice(["payment", "top_up", "transfer", "withdrawal"]),
                       country=rng.choice(["FR", "DE"]), device_id=rng.choice([None, "d1", "d2", "d3"])))
    same_time = sum(tx.timestamp == T0 + timedelta(days=3) for tx in txs) / 8
    assert same_time > RING_SIZE  # per wallet, more rows at one instant than its ring holds
    rows = assert_same(txs, [])
    assert (rows[:, IX["history_len"]] == RING_SIZE).sum() > 100
    # Counterparties the crowded wallets paid before and the state no longer keeps: never paid again.
    crowded = np.array([tx.wallet_id in ("w0", "w1") for tx in txs])
    known = rows[:, IX["counterparty_known_days"]] > 0
    assert known[crowded].sum() > 100 and known[~crowded].sum() > 100


def test_labels_that_withdraw_or_move_a_count(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(9)
    txs = [_tx(i, f"w{rng.randrange(40)}", f"c{rng.randrange(6)}", T0 + timedelta(seconds=rng.randrange(25 * 86400)),
               round(rng.uniform(1, 500), 2), device_id=rng.choice([None, "dA", "dB"])) for i in range(6000)]
    txs.sort(key=lambda t: t.timestamp)
    labels: list[LabelEvent] = []
    for k, tx in enumerate(rng.sample(txs, 200)):
        first = tx.timestamp + timedelta(hours=rng.uniform(0, 100))
        labels.append(_label(f"a{k}", tx, first, LabelKind.ANALYST, rng.random() < 0.8))
        later = first + timedelta(hours=rng.uniform(0, 200))
        if k % 4 == 0:  # a chargeback after the verdict
            labels.append(_label(f"c{k}", tx, later, LabelKind.CHARGEBACK, True))
        if k % 5 == 0:  # a reversal withdraws the verdict
            labels.append(_label(f"r{k}", tx, later + timedelta(hours=1), LabelKind.REVERSAL, None, f"a{k}"))
        if k % 7 == 0:  # the same label delivered twice
            labels.append(labels[-1])
    # Counterparties whose only complication is a fraud withdrawn within the hour it was counted in.
    quick = [_tx(10_000 + i, f"w{rng.randrange(40)}", f"q{rng.randrange(8)}",
                 T0 + timedelta(seconds=rng.randrange(25 * 86400)), 20.0) for i in range(3000)]
    for k, tx in enumerate(rng.sample(quick, 150)):
        known = tx.timestamp.replace(minute=0, second=0) + timedelta(hours=rng.randrange(1, 48), minutes=10)
        labels.append(_label(f"qa{k}", tx, known, LabelKind.ANALYST, True))
        if k % 3 == 0:
            labels.append(_label(f"qr{k}", tx, known + timedelta(minutes=5), LabelKind.REVERSAL, None, f"qa{k}"))
        elif k % 3 == 1:  # a chargeback naming another counterparty, then the verdict withdrawn: the count
            # moves there, in the chargeback's hour, hours after it (the only fraud those counterparties get)
            moved = tx.model_copy(update={"counterparty_id": f"m{k % 4}"})
            labels.append(_label(f"qc{k}", moved, known + timedelta(hours=2), LabelKind.CHARGEBACK, True))
            labels.append(_label(f"qm{k}", tx, known + timedelta(hours=5), LabelKind.REVERSAL, None, f"qa{k}"))
    txs += [_tx(20_000 + i, f"w{i % 40}", f"m{i % 4}", T0 + timedelta(seconds=rng.randrange(25 * 86400)), 9.0)
            for i in range(800)]
    txs += quick
    labels.append(_label("unknown", txs[0].model_copy(update={"transaction_id": "never-seen",
                                                               "counterparty_id": "elsewhere"}),
                         txs[10].timestamp, LabelKind.CHARGEBACK, True))
    slow: list[int] = []
    reference_path = counterparty_columns._reference_entities
    monkeypatch.setattr(counterparty_columns, "_reference_entities",
                        lambda cols, entities, roles: (slow.append(len(entities)),
                                                       reference_path(cols, entities, roles)))
    rows = assert_same(txs, labels)
    assert slow and slow[0] > 0  # some entities went through the reference path
    assert (rows[:, IX["cp_fraud_30d"]] > 0).sum() > 1000


def test_edges() -> None:
    assert replay_columns(TxColumns.of([])).shape == (0, len(FEATURE_NAMES))
    one = _tx(0, "w", "c", T0, 12.5)
    assert_same([one], [_label("L", one, T0, LabelKind.CHARGEBACK, True)])
    later = _tx(1, "w", "c", T0 + timedelta(hours=2), 3.0)
    with pytest.raises(ValueError, match="time order"):
        replay_columns(TxColumns.of([later, one]))
