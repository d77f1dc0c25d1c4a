"""Decisions, reason codes and the hot-path vectorizer."""

from __future__ import annotations

import numpy as np
import pytest

from tests.scoring_fixtures import IX, enriched_transactions, synthetic_rows, tiny_metadata, tiny_model
from txguard.contract.models import Decision, Outcome
from txguard.features.wallet import FEATURE_NAMES, vectorize
from txguard.registry.metadata import Thresholds
from txguard.scoring.reasons import (
    MAX_REASONS,
    RULES,
    candidate_rows,
    fired_mask,
    reasons_for,
    reasons_matrix,
)
from txguard.scoring.runtime import ModelRuntime
from txguard.scoring.scorer import Scorer, outcome, outcomes
from txguard.scoring.vectorize import matrix_of, row_of

T = Thresholds(review=0.2, block=0.8)


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer(ModelRuntime(tiny_model()[1], tiny_metadata()))


def quiet_row() -> list[float]:
    """A row where no rule fires: an old wallet's ordinary payment."""
    row = [0.0] * len(FEATURE_NAMES)
    row[IX["amount"]] = 20.0
    row[IX["amount_ratio_30d"]] = 1.0
    row[IX["seconds_since_last"]] = 3600.0
    row[IX["seconds_since_last_inflow"]] = 5 * 86400.0
    row[IX["wallet_age_days"]] = 200.0
    row[IX["history_len"]] = 50.0
    return row


# Outcomes ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("score", "expected"),
    [(0.0, Outcome.ALLOW), (0.1999, Outcome.ALLOW), (0.2, Outcome.REVIEW), (0.7999, Outcome.REVIEW),
     (0.8, Outcome.BLOCK), (1.0, Outcome.BLOCK)],
)
def test_outcome_at_the_thresholds(score: float, expected: Outcome) -> None:
    assert outcome(score, T) is expected


def test_vectorised_outcomes_equal_the_scalar_rule() -> None:
    scores = np.concatenate([np.linspace(0, 1, 1001), [T.review, T.block]])
    assert outcomes(scores, T) == [outcome(s, T) for s in scores.tolist()]


# Reasons ---------------------------------------------------------------------------------------
def test_no_reason_for_an_ordinary_transaction() -> None:
    assert reasons_for(quiet_row()) == []


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        ({"amount_ratio_30d": 12.3}, "amount 12.3x the wallet's 30-day mean"),
        ({"new_counterparties_24h": 4.0}, "4 new counterparties in 24h"),
        ({"tx_count_1h": 7.0}, "7 transactions in the last hour"),
        ({"small_tx_count_1h": 5.0}, "5 transactions under 5 in the last hour"),
        ({"seconds_since_last_inflow": 300.0, "inflow_sum_24h": 500.0}, "money out within 5 min of a top-up"),
        ({"is_new_device": 1.0}, "device never used by this wallet before"),
        ({"device_new_wallets_1h": 4.0}, "device used by 4 new wallets in the last hour"),
        ({"in_new_payers_24h": 6.0}, "wallet paid by 6 new payers in 24h"),
        ({"in_fraud_30d": 2.0}, "wallet received 2 known frauds in 30 days"),
        ({"country_changed": 1.0}, "country differs from the previous transaction"),
        ({"wallet_age_days": 0.2}, "wallet less than a day old"),
    ],
)
def test_each_rule_fires_with_its_text(changes: dict[str, float], text: str) -> None:
    row = quiet_row()
    for name, value in changes.items():
        row[IX[name]] = value
    assert text in reasons_for(row)


def test_conditions_gate_rules() -> None:
    row = quiet_row()
    row[IX["seconds_since_last_inflow"]] = 60.0
    row[IX["inflow_sum_24h"]] = 100.0
    row[IX["is_top_up"]] = 1.0  # a top-up right after a top-up is not "money out"
    assert reasons_for(row) == []
    row = quiet_row()
    row[IX["amount_ratio_30d"]] = 50.0
    row[IX["history_len"]] = 1.0  # a ratio against one past transaction means little
    assert reasons_for(row) == []


def test_reasons_are_ranked_by_deviation_and_capped() -> None:
    row = quiet_row()
    row[IX["amount_ratio_30d"]] = 40.0  # 10x its threshold
    row[IX["tx_count_1h"]] = 6.0  # 1.2x
    row[IX["new_counterparties_24h"]] = 8.0  # 2x
    row[IX["is_new_device"]] = 1.0  # weight 1.3
    got = reasons_for(row)
    assert len(got) == MAX_REASONS
    assert got[0].startswith("amount 40.0x")
    assert got[1] == "8 new counterparties in 24h"
    assert got[2] == "device never used by this wallet before"


def test_matrix_reasons_equal_row_reasons() -> None:
    x = synthetic_rows(5000, seed=4)
    x[:, IX["wallet_age_days"]] *= 30
    x[::50, IX["seconds_since_last_inflow"]] = np.linspace(0, 1200, 100)  # around the 10-min trigger
    fired = fired_mask(x)
    assert fired.any(axis=0).all(), "every rule should fire somewhere in the test data"
    assert not fired.any(axis=1).all(), "some rows should have no reason"
    rows = x.tolist()
    assert reasons_matrix(x) == [reasons_for(r) for r in rows]
    assert set(candidate_rows(x).tolist()) == {i for i, r in enumerate(rows) if reasons_for(r)}


def test_rule_codes_are_unique() -> None:
    assert len({r.code for r in RULES}) == len(RULES)


# Vectorizer ----------------------------------------------------------------------------------
def test_hot_path_rows_equal_the_training_vectorizer() -> None:
    txs = enriched_transactions(days=3, wallets=200, seed=5)
    assert len(txs) > 1000
    assert [row_of(tx) for tx in txs] == [vectorize(tx) for tx in txs]
    assert np.array_equal(matrix_of(txs), np.array([vectorize(tx) for tx in txs]))


def test_hot_path_rows_equal_the_training_vectorizer_whatever_the_offset() -> None:
    """UTC timestamps validated from JSON share pydantic's one UTC tzinfo (the fields are read as they
    are); any other offset, and a UTC-equivalent one written +00:00 or -00:00, give the same row too."""
    from txguard.contract.models import ENRICHED_ADAPTER

    tx = enriched_transactions(days=1, wallets=20, seed=6)[7]
    body = tx.model_dump(mode="json")
    for stamp in ("2026-12-04T23:30:00Z", "2026-12-04T23:30:00+00:00", "2026-12-05T01:30:00+02:00",
                  "2026-12-04T20:00:00-03:30", "2026-12-06T23:59:59.999-00:00"):
        parsed = ENRICHED_ADAPTER.validate_python({**body, "timestamp": stamp})
        assert row_of(parsed) == vectorize(parsed), stamp


# Scorer --------------------------------------------------------------------------------------
def test_single_and_batch_give_the_same_decisions(scorer: Scorer) -> None:
    txs = enriched_transactions()
    batch = scorer.score_batch(txs)
    assert [d.transaction_id for d in batch] == [tx.transaction_id for tx in txs]
    for tx, b in zip(txs, batch, strict=True):
        one = scorer.score(tx)
        assert (one.score, one.outcome, one.reasons) == (b.score, b.outcome, b.reasons)
        assert one.wallet_id == tx.wallet_id and one.model_version == "v1"
        assert set(one.timings) == {"inference_us", "total_us"}
        assert 0 < one.timings["inference_us"] <= one.timings["total_us"]


def test_decisions_are_valid_contract_objects(scorer: Scorer) -> None:
    decisions = scorer.score_batch(enriched_transactions())
    assert {d.outcome for d in decisions} >= {Outcome.ALLOW}
    for d in decisions[:50]:
        again = Decision.model_validate_json(d.model_dump_json())  # model_construct skipped validation
        assert again == d
