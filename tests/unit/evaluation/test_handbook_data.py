"""The Handbook-style generator: deterministic, its four fraud scenarios and its label delay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from txguard.evaluation.handbook_data import (
    CUSTOMER_COMPROMISE_DAYS,
    DAY,
    LARGE_AMOUNT,
    SCENARIOS,
    TERMINAL_COMPROMISE_DAYS,
    HandbookConfig,
    generate,
    write_jsonl,
)
from txguard.training.dataset import from_file

SMALL = HandbookConfig(customers=1000, terminals=2000, days=60, seed=7)


@pytest.fixture(scope="module")
def data():  # noqa: ANN201
    return generate(SMALL)


def _scenario(data, name: str) -> np.ndarray:  # noqa: ANN001
    return data.scenario == SCENARIOS.index(name)


def test_same_seed_same_rows_other_seed_other_rows(data) -> None:  # noqa: ANN001
    again = generate(SMALL)
    for column in ("ts", "customer", "terminal", "amount", "is_fraud", "scenario", "label_time"):
        assert np.array_equal(getattr(data, column), getattr(again, column)), column
    other = generate(HandbookConfig(customers=1000, terminals=2000, days=60, seed=8))
    assert len(other) != len(data) or not np.array_equal(other.amount, data.amount)


def test_rows_are_in_time_order_within_the_period(data) -> None:  # noqa: ANN001
    assert np.all(np.diff(data.ts) >= 0)
    start = SMALL.start_epoch
    assert data.ts.min() >= start and data.ts.max() < start + SMALL.days * DAY
    # Handbook profiles: about 2 transactions per customer a day (mean uniform in [0, 4]), a few
    # customers without any terminal within reach never pay.
    per_customer_day = len(data) / SMALL.customers / SMALL.days
    assert 1.6 < per_customer_day < 2.2


def test_every_label_is_known_seven_days_after_its_transaction(data) -> None:  # noqa: ANN001
    assert np.all(data.label_time - data.ts == 7 * DAY)


def test_fraud_share_and_every_scenario_present(data) -> None:  # noqa: ANN001
    counts = data.counts()
    assert set(counts) == set(SCENARIOS)
    assert all(n > 0 for n in counts.values()), counts
    assert 0.004 < data.is_fraud.mean() < 0.02  # the Handbook's data has about 0.8 %
    assert np.array_equal(data.is_fraud == 1, data.scenario > 0)


def test_amounts_over_220_are_fraud(data) -> None:  # noqa: ANN001
    assert np.all(data.is_fraud[data.amount > LARGE_AMOUNT] == 1)
    assert np.all(data.amount[_scenario(data, "large_amount")] > LARGE_AMOUNT)


def test_a_compromised_terminal_takes_only_fraud_while_compromised(data) -> None:  # noqa: ANN001
    hit = _scenario(data, "compromised_terminal")
    terminals = np.unique(data.terminal[hit])
    # About rate x terminals x days compromises (2 a day per 10,000 terminals).
    expected = SMALL.terminal_compromise_rate * SMALL.terminals * SMALL.days
    assert 0.5 * expected < len(terminals) < 1.5 * expected
    for t in terminals:
        at = data.terminal == t
        first, last = data.ts[at & hit].min(), data.ts[at & hit].max()
        during = at & (data.ts >= first) & (data.ts <= last) & ~_scenario(data, "card_testing")
        # Overlapping compromises of one terminal can chain; a single one lasts at most 28 days.
        assert np.all(data.is_fraud[during] == 1), t
    spans = [(data.ts[(data.terminal == t) & hit].max() - data.ts[(data.terminal == t) & hit].min()) / DAY
             for t in terminals]
    assert np.median(spans) <= TERMINAL_COMPROMISE_DAYS


def test_a_compromised_customer_loses_a_third_at_five_times_the_amount(data) -> None:  # noqa: ANN001
    hit = _scenario(data, "compromised_customer")
    ratios, shares = [], []
    for c in np.unique(data.customer[hit]):
        mine = data.customer == c
        legit = mine & (data.is_fraud == 0)
        ratios.append(data.amount[mine & hit].mean() / data.amount[legit].mean())
        first = data.ts[mine & hit].min()
        window = mine & (data.ts >= first) & (data.ts < first + CUSTOMER_COMPROMISE_DAYS * DAY)
        window &= ~_scenario(data, "card_testing")
        shares.append((hit & window).sum() / window.sum())
    assert 3.5 < np.median(ratios) < 6.5
    # The first stolen transaction opens the window, so the share runs a little above one third.
    assert 0.3 < np.mean(shares) < 0.55


def test_card_testing_is_a_burst_of_tiny_probes(data) -> None:  # noqa: ANN001
    hit = _scenario(data, "card_testing")
    probes = hit & (data.amount <= 3.0)
    assert probes.sum() >= 3 * len(np.unique(data.customer[hit]))
    for c in np.unique(data.customer[probes])[:20]:
        ts = data.ts[probes & (data.customer == c)]
        day_of = (ts - SMALL.start_epoch) // DAY
        for d in np.unique(day_of):
            burst = ts[day_of == d]
            assert len(burst) >= 3 and burst.max() - burst.min() <= 8 * 300
    legit_small = (data.is_fraud == 0) & (data.amount <= 3.0)
    assert legit_small.any()  # tiny amounts alone do not give card testing away


def test_written_file_is_what_txguard_train_reads_row_for_row(tmp_path: Path) -> None:
    small = generate(HandbookConfig(customers=80, terminals=160, days=10, seed=3))
    path = write_jsonl(small, tmp_path / "hb.jsonl")
    dataset = from_file(path)
    assert len(dataset) == len(small)
    assert np.array_equal(dataset.ts, small.ts)
    assert np.array_equal(dataset.y, small.is_fraud)
    assert np.array_equal(dataset.label_time, small.label_time)
    assert np.array_equal(dataset.wallets, small.wallet_ids())
    assert dataset.scenarios == small.scenario_names().tolist()


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="customers"):
        HandbookConfig(customers=0)
    with pytest.raises(ValueError, match="timezone"):
        HandbookConfig(start="2018-04-01T00:00:00")
