"""Metrics and thresholds on hand-made scores (no training)."""

from __future__ import annotations

import numpy as np

from txguard.features.wallet import DAY, FEATURE_NAMES
from txguard.registry.metadata import Thresholds
from txguard.training import baseline
from txguard.training.metrics import (
    alerts,
    calibration,
    derive_thresholds,
    evaluate,
    recall_at_fpr,
    recall_by_scenario,
    reliability,
    threshold_at_fpr,
    wallet_precision_at_k,
)


def test_wallet_precision_counts_top_wallets_per_day() -> None:
    # Day 0: wallets a (fraud, score .9), b (legit, .8), c (legit, .1); day 1: d fraud ranked 2nd of 2.
    wallets = np.array(["a", "a", "b", "c", "d", "e"], dtype=object)
    y = np.array([1, 0, 0, 0, 1, 0])
    scores = np.array([0.9, 0.2, 0.8, 0.1, 0.3, 0.7])
    ts = np.array([0, 10, 20, 30, DAY + 5, DAY + 6], dtype=float)
    assert wallet_precision_at_k(y, scores, ts, wallets, k=1) == 0.5  # day 0 hit, day 1 miss
    assert wallet_precision_at_k(y, scores, ts, wallets, k=2) == 0.5  # 1/2 each day
    m = evaluate(y, scores, ts, wallets)
    assert m["wallet_precision_at_100_ceiling"] == 0.01


def test_recall_at_fpr_and_thresholds() -> None:
    rng = np.random.default_rng(0)
    legit = rng.uniform(0, 0.5, 10_000)
    fraud = rng.uniform(0.4, 1.0, 100)
    y = np.r_[np.zeros(len(legit)), np.ones(len(fraud))].astype(int)
    s = np.r_[legit, fraud]
    t = derive_thresholds(y, s)
    assert 0 < t.review <= t.block <= 1
    assert np.mean(legit >= t.review) <= 0.01
    assert np.mean(legit >= t.block) <= 0.001
    blocked = s >= t.block
    assert y[blocked].mean() >= 0.9
    assert 0 < recall_at_fpr(y, s, 0.01) <= 1


def test_baseline_scores_are_bounded_and_flag_card_testing() -> None:
    X = np.zeros((2, len(FEATURE_NAMES)))
    idx = {n: i for i, n in enumerate(FEATURE_NAMES)}
    X[1, idx["small_tx_count_1h"]] = 4
    X[1, idx["amount"]] = 1.0
    X[1, idx["tx_count_1h"]] = 5
    s = baseline.rule_scores(X)
    assert s[0] == 0 and 0 < s[1] <= 1


def test_recall_by_scenario_at_the_1pct_fpr_threshold_by_hand() -> None:
    # 200 legit scores 0.000 .. 0.199 (1 % FPR allows 2 of them: threshold 0.198); six frauds.
    legit = np.arange(200) / 1000
    fraud = np.array([0.9, 0.5, 0.19, 0.95, 0.1, 0.05])
    scenarios = np.array(["legit"] * 200 + ["terminal", "terminal", "terminal", "customer", "customer", "card"],
                         dtype=object)
    y = np.r_[np.zeros(200), np.ones(6)].astype(int)
    s = np.r_[legit, fraud]
    assert threshold_at_fpr(y, s, 0.01) == 0.198
    assert recall_at_fpr(y, s, 0.01) == 3 / 6  # 0.9, 0.5, 0.95
    full = recall_by_scenario(y, s, list(scenarios), threshold_at_fpr(y, s, 0.01))
    assert full["terminal"] == {"frauds": 3, "caught": 2, "recall": 0.6667}
    by = {name: v["caught"] / v["frauds"] for name, v in full.items()}
    assert by == {"card": 0.0, "customer": 0.5, "terminal": 2 / 3}
    # Weighted by fraud counts, the scenarios add up to the overall recall.
    assert (1 * by["card"] + 2 * by["customer"] + 3 * by["terminal"]) / 6 == recall_at_fpr(y, s, 0.01)
    # Nothing below FPR 0: only the +inf threshold, no recall.
    assert recall_at_fpr(np.array([0, 1]), np.array([0.9, 0.1]), 0.0) == 0.0


def test_calibration_by_hand() -> None:
    # 1,000 rows scored 0.01 with 20 frauds (rate 0.02), 50 rows scored 0.9 with 30 frauds (rate 0.6),
    # one fraud scored exactly 1.0 (the last bin).
    s = np.r_[np.full(1000, 0.01), np.full(50, 0.9), [1.0]]
    y = np.r_[np.ones(20), np.zeros(980), np.ones(30), np.zeros(20), [1]].astype(int)
    bins = reliability(y, s)
    assert [(b["lo"], b["rows"]) for b in bins] == [(0.0, 1000), (0.9, 51)]
    assert bins[1]["fraud_rate"] == 31 / 51 and abs(bins[1]["mean_score"] - (45.0 + 1.0) / 51) < 1e-12
    c = calibration(y, s)
    gap0, gap9 = 0.01, abs((45.0 + 1.0) / 51 - 31 / 51)
    assert abs(c["ece"] - (1000 * gap0 + 51 * gap9) / 1051) < 1e-12
    # Only the bin holding >= 100 rows is judged on its own: the 0.9 bin's larger gap is in the ECE alone.
    assert abs(c["ece_max_gap"] - gap0) < 1e-12 and gap9 > gap0
    assert abs(c["brier"] - np.mean((s - y) ** 2)) < 1e-12
    assert abs(c["score_to_fraud_rate"] - s.mean() / y.mean()) < 1e-12
    perfect = calibration(np.r_[np.zeros(900), np.ones(100)].astype(int), np.full(1000, 0.1))
    assert perfect["ece"] < 1e-12 and perfect["ece_max_gap"] < 1e-12 and abs(perfect["score_to_fraud_rate"] - 1) < 1e-12


def test_alerts_count_rows_at_each_threshold() -> None:
    s = np.array([0.01, 0.2, 0.5, 0.5, 0.95])
    assert alerts(s, Thresholds(review=0.5, block=0.9)) == {"review": 3, "block": 1}
