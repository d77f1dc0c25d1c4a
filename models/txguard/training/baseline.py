"""A simple rules baseline, computed from the same features on the same held-out days.

What a fraud team writes before any model: points for a new counterparty with an unusual
amount, bursts, small-amount bursts (card testing), a top-up flowing straight out (mule), a new
device or country, a counterparty (or the wallet itself) with known frauds. The model has to
beat this to be worth its complexity.
"""

from __future__ import annotations

import numpy as np

from txguard.features.wallet import FEATURE_NAMES

_IDX = {name: i for i, name in enumerate(FEATURE_NAMES)}
MAX_POINTS = 19.0


def rule_scores(X: np.ndarray) -> np.ndarray:
    """Scores in [0, 1] (points / max points) for rows in FEATURE_NAMES order."""

    def col(name: str) -> np.ndarray:
        return X[:, _IDX[name]]

    points = np.zeros(len(X))
    new_cp = col("is_new_counterparty") > 0
    points += 3 * (new_cp & (col("amount_ratio_30d") > 3))
    points += 2 * (col("amount_zscore_30d") > 4)
    points += 1 * (col("tx_count_1h") >= 3) + 1 * (col("tx_count_1h") >= 5)
    points += 3 * ((col("small_tx_count_1h") >= 3) & (col("amount") < 5))
    points += 3 * ((col("is_transfer") > 0) & (col("inflow_sum_24h") > 500) & (col("outflow_to_inflow_24h") > 0.5)
                   & new_cp)
    points += 1 * (col("device_changed") > 0) + 1 * (col("country_changed") > 0)
    points += 3 * (col("cp_fraud_30d") >= 2) + 2 * (col("wallet_fraud_30d") > 0)
    return np.minimum(points / MAX_POINTS, 1.0)
