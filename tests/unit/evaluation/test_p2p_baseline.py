"""The peer-to-peer baseline: its rolling features equal a brute-force count as of each transaction,
and no feature at T moves when a label unknown at T changes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from txguard.evaluation.p2p_baseline import BASELINE_FEATURES, baseline_features
from txguard.evaluation.p2p_data import P2PConfig, generate
from txguard.evaluation.p2p_fraud import FraudRates
from txguard.evaluation.p2p_world import TOP_UP

IX = {name: i for i, name in enumerate(BASELINE_FEATURES)}
DAY, HOUR = 86400.0, 3600.0


@pytest.fixture(scope="module")
def world():  # noqa: ANN201
    return generate(P2PConfig(users=300, days=25, seed=4, rates=FraudRates(takeover=1 / 300, scam=1 / 100,
                                                                           testing=1 / 1500)))


@pytest.fixture(scope="module")
def features(world):  # noqa: ANN001, ANN201
    return baseline_features(world)


def test_one_row_per_transaction_one_column_per_feature(world, features) -> None:  # noqa: ANN001
    assert features.shape == (len(world), len(BASELINE_FEATURES))
    assert np.isfinite(features).all()


def test_rolling_counts_equal_a_brute_force_count_strictly_before_t(world, features) -> None:  # noqa: ANN001
    rng = np.random.default_rng(0)
    t, wallet, payee, device = world.ts, world.wallet, world.counterparty, world.device
    out = world.tx_type != TOP_UP
    inflow_party = np.where(world.tx_type == TOP_UP, wallet, payee)
    known = (world.kind > 0) & np.isfinite(world.label_time)
    for r in rng.choice(len(world), 400, replace=False).tolist():
        before = t < t[r]
        assert features[r, IX["out_n_24h"]] == (out & before & (t >= t[r] - DAY) & (wallet == wallet[r])).sum()
        assert features[r, IX["in_n_24h"]] == (before & (t >= t[r] - DAY) & (inflow_party == wallet[r])).sum()
        assert features[r, IX["payee_in_n_7d"]] == (before & (t >= t[r] - 7 * DAY) & (inflow_party == payee[r])).sum()
        if device[r] >= 0:
            assert features[r, IX["device_n_1h"]] == (before & (t >= t[r] - HOUR) & (device == device[r])).sum()
        labelled = known & (world.label_time < t[r]) & (world.label_time >= t[r] - 30 * DAY)
        assert features[r, IX["payee_fraud_received_30d"]] == (labelled & (inflow_party == payee[r])).sum()
        assert features[r, IX["fraud_sent_30d"]] == (labelled & (wallet == wallet[r])).sum()
        first_pair = not ((wallet[:r] == wallet[r]) & (payee[:r] == payee[r])).any()
        assert features[r, IX["payee_is_new"]] == float(first_pair)


def test_a_label_unknown_at_t_changes_nothing_at_t(world, features) -> None:  # noqa: ANN001
    """Turn every label not known at T0 around (frauds not yet reported become legitimate, legitimate
    rows become frauds reported after T0): every feature of every row up to T0 stays. Withdraw the
    labels known before T0: the label counts of later rows move (they do read labels)."""
    t0 = float(np.quantile(world.ts, 0.7))
    fraud = world.kind > 0
    unknown = ~(fraud & (world.label_time < t0))
    kind = np.where(unknown & fraud, 0, np.where(unknown & ~fraud, 1, world.kind)).astype(np.int8)
    label_time = np.where(unknown & ~fraud, np.maximum(world.ts, t0) + DAY, np.where(kind > 0, world.label_time, np.nan))
    turned = baseline_features(replace(world, kind=kind, label_time=label_time))
    upto = world.ts <= t0
    assert np.array_equal(turned[upto], features[upto])
    assert not np.array_equal(turned[~upto], features[~upto])  # the turned labels count once known
    withdrawn = replace(world, kind=np.where(fraud & ~unknown, 0, world.kind).astype(np.int8))
    label_columns = [IX[n] for n in BASELINE_FEATURES if "fraud" in n]
    assert not np.array_equal(baseline_features(withdrawn)[np.ix_(upto, label_columns)],
                              features[np.ix_(upto, label_columns)])
