"""Metrics and thresholds on hand-made scores (no training)."""

from __future__ import annotations

import numpy as np

from txguard.features.wallet import DAY, FEATURE_NAMES
from txguard.training import baseline
from txguard.training.metrics import derive_thresholds, evaluate, recall_at_fpr, wallet_precision_at_k


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
