"""The peer-to-peer mobile-money world: deterministic, in time order, every fraud kind with the honest
behaviour that resembles it, labels days to weeks late or never, found mules frozen, and the file
`txguard train --data` reads is the same rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from txguard.evaluation.p2p_data import P2PConfig, describe, generate, online_inputs, write_jsonl
from txguard.evaluation.p2p_fraud import KINDS, MULE, SCAM, TAKEOVER, TESTING, FraudRates
from txguard.evaluation.p2p_world import PATTERNS, TOP_UP, TRANSFER, WITHDRAWAL
from txguard.training.dataset import from_file

DAY = 86400
SMALL = P2PConfig(users=800, days=40, seed=5, rates=FraudRates(takeover=1 / 1000, scam=1 / 300, testing=1 / 4000))


@pytest.fixture(scope="module")
def world():  # noqa: ANN201
    return generate(SMALL)


def test_same_config_same_rows_and_another_seed_other_rows(world) -> None:  # noqa: ANN001
    again = generate(SMALL)
    for column in ("ts", "wallet", "counterparty", "amount", "tx_type", "device", "kind", "label_time"):
        assert np.array_equal(getattr(world, column), getattr(again, column), equal_nan=True), column
    other = generate(P2PConfig(users=800, days=40, seed=6, rates=SMALL.rates))
    assert len(other) != len(world) or not np.array_equal(other.amount, world.amount)


def test_rows_are_in_time_order_within_the_period(world) -> None:  # noqa: ANN001
    assert np.all(np.diff(world.ts) >= 0)
    assert world.ts.min() >= SMALL.start_epoch and world.ts.max() < SMALL.start_epoch + SMALL.days * DAY
    assert np.all(world.ts == np.floor(world.ts))


def test_every_kind_of_fraud_and_its_honest_look_alike_are_there(world) -> None:  # noqa: ANN001
    counts = world.counts()
    assert all(counts[kind] > 10 for kind in KINDS), counts
    assert 0.001 < world.is_fraud.mean() < 0.05
    patterns = {PATTERNS[p]: int((world.pattern == p).sum()) for p in range(len(PATTERNS))}
    for look_alike in ("assisted_payment", "cash_in", "onboarding", "trader_sale", "trader_cash_out",
                       "group_contribution", "new_payee_large", "sale_cash_out", "salary_cash_out"):
        assert patterns[look_alike] > 0, look_alike
    assert np.all(world.pattern[world.kind > 0] == -1) and np.all(world.pattern[world.kind == 0] >= 0)


def test_the_kinds_behave_as_described(world) -> None:  # noqa: ANN001
    ids = np.asarray(world.devices + [""], dtype=object)[world.device]
    # Credential testing: one device, many wallets, minutes apart, small amounts.
    testing = world.kind == TESTING
    per_device = {d: len(set(world.wallet[testing & (ids == d)].tolist())) for d in set(ids[testing].tolist())}
    assert max(per_device.values()) >= 5 and float(np.median(world.amount[testing])) <= 100
    # An agent's device serves many wallets too (cash-ins, assisted payments): the honest look-alike.
    agent_device = np.char.startswith(ids.astype(str), "D")
    assert agent_device.sum() > 100 and np.all(world.kind[agent_device & (world.tx_type == TOP_UP)] == 0)
    # Takeovers and scams pay other wallets (mules); mules move money on: transfers and cash-outs.
    assert set(world.tx_type[world.kind == SCAM].tolist()) == {TRANSFER}
    assert set(world.tx_type[world.kind == MULE].tolist()) <= {TRANSFER, WITHDRAWAL}
    assert (world.tx_type[world.kind == MULE] == WITHDRAWAL).mean() > 0.5
    paid = set(world.counterparty[(world.kind == SCAM) | (world.kind == TAKEOVER)].tolist())
    assert set(world.wallet[world.kind == MULE].tolist()) & paid, "mules are the wallets victims paid"


def test_labels_are_late_and_some_never_come(world) -> None:  # noqa: ANN001
    fraud = world.kind > 0
    assert np.all(np.isnan(world.label_time[~fraud]))
    known = fraud & np.isfinite(world.label_time)
    assert np.all(world.label_time[known] >= world.ts[known])
    delay = (world.label_time - world.ts)[known] / DAY
    assert 1.0 < float(np.median(delay)) < 21.0 and delay.max() > 7
    never = describe(world)["never_reported"]
    assert all(never[k] > 0 for k in ("push_payment_scam", "mule_ring", "credential_testing")), never


def test_a_found_mule_is_frozen(world) -> None:  # noqa: ANN001
    mule = world.kind == MULE
    found = mule & np.isfinite(world.label_time)
    assert found.any()
    for wallet in set(world.wallet[found].tolist()):
        frozen_at = world.label_time[found & (world.wallet == wallet)].min()
        involved = (world.wallet == wallet) | (world.counterparty == wallet)
        assert not (involved & (world.ts >= frozen_at)).any(), wallet


def test_the_file_is_the_same_rows_and_never_reads_as_never(world, tmp_path: Path) -> None:  # noqa: ANN001
    path = write_jsonl(world, tmp_path / "p2p.jsonl")
    lines = path.read_text().splitlines()
    assert len(lines) == len(world)
    first = json.loads(lines[0])
    assert first["currency"] == "KES" and first["country"] == "KE" and "label_time" not in first
    dataset = from_file(path)
    assert np.array_equal(dataset.ts, world.ts) and np.array_equal(dataset.y, world.is_fraud)
    assert np.array_equal(dataset.wallets, world.wallet_ids())
    never = world.is_fraud.astype(bool) & np.isinf(world.label_time)
    assert never.any() and np.all(np.isinf(dataset.label_time[never]))
    reported = world.is_fraud.astype(bool) & np.isfinite(world.label_time)
    # Whole seconds in the file: the label times read back to the second.
    assert np.all(np.abs(dataset.label_time[reported] - np.floor(world.label_time[reported])) < 1)


def test_online_inputs_are_the_rows_and_the_labels_known_by_the_end(world) -> None:  # noqa: ANN001
    txs, labels = online_inputs(world)
    assert len(txs) == len(world) and txs[0].timestamp.timestamp() == world.ts[0]
    assert [lb.known_at for lb in labels] == sorted(lb.known_at for lb in labels)
    assert all(lb.known_at.timestamp() <= world.ts[-1] and lb.is_fraud for lb in labels)
    reported = int((np.isfinite(world.label_time) & (world.label_time <= world.ts[-1])).sum())
    assert len(labels) == reported


def test_the_config_is_checked() -> None:
    with pytest.raises(ValueError, match="users"):
        P2PConfig(users=10)
    with pytest.raises(ValueError, match="timezone"):
        P2PConfig(start="2024-01-01T00:00:00")
    tiny = generate(P2PConfig(users=60, days=3))
    assert len(tiny) > 0 and describe(tiny)["transactions"] == len(tiny)
