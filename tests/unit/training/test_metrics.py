"""Metrics and thresholds on hand-made scores (no training)."""

from __future__ import annotations

import numpy as np

from txguard.features.wallet import DAY, FEATURE_NAMES
from txguard.training import baseline
from txguard.training.metrics import (
    derive_thresholds,
    evaluate,
    recall_at_fpr,
    recall_by_scenario,
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
