"""The Handbook recipe's features: hand-computed values, and point in time (labels known before T only)."""

from __future__ import annotations

import numpy as np
import pytest

from txguard.evaluation.recipe import DAY, RECIPE_FEATURES, check_label_delay, fit_predict, recipe_features

IDX = {name: i for i, name in enumerate(RECIPE_FEATURES)}
MONDAY = 1522627200.0  # 2018-04-02T00:00:00Z


def _features(rows: list[tuple[float, int, int, float, int]], delay_days: float = 7.0) -> np.ndarray:
    ts, cust, term, amount, fraud = (np.asarray(c) for c in zip(*rows, strict=True))
    return recipe_features(ts.astype(float), cust, term, amount.astype(float), fraud, ts + delay_days * DAY,
                           delay_days)


def test_hand_computed_customer_and_calendar_features() -> None:
    rows = [
        (MONDAY + 10 * 3600, 0, 0, 10.0, 0),  # Monday 10:00
        (MONDAY + 20 * 3600, 0, 1, 30.0, 0),  # Monday 20:00
        (MONDAY + 5 * DAY + 3 * 3600, 0, 0, 50.0, 0),  # Saturday 03:00
        (MONDAY + 5 * DAY + 3 * 3600, 1, 0, 7.0, 0),  # another customer, same second
    ]
    F = _features(rows)
    assert F[:, IDX["tx_during_weekend"]].tolist() == [0, 0, 1, 1]
    assert F[:, IDX["tx_during_night"]].tolist() == [0, 0, 1, 1]
    assert F[:, IDX["customer_nb_tx_1d"]].tolist() == [1, 2, 1, 1]
    assert F[:, IDX["customer_avg_amount_1d"]].tolist() == [10, 20, 50, 7]
    assert F[:, IDX["customer_nb_tx_7d"]].tolist() == [1, 2, 3, 1]
    assert F[:, IDX["customer_avg_amount_7d"]].tolist() == [10, 20, 30, 7]
    assert F[:, IDX["amount"]].tolist() == [10, 30, 50, 7]


def test_terminal_risk_reads_the_window_shifted_by_the_delay() -> None:
    # Terminal 5 takes a fraud on day 0 and a legit payment on day 2; customer ids differ.
    rows = [
        (MONDAY, 1, 5, 10.0, 1),
        (MONDAY + 2 * DAY, 2, 5, 10.0, 0),
        (MONDAY + 6 * DAY, 3, 5, 10.0, 0),  # day 6: nothing of the terminal is known yet
        (MONDAY + 7.5 * DAY, 4, 5, 10.0, 0),  # day 7.5: the day-0 fraud is known, day 2 not yet
        (MONDAY + 9.5 * DAY, 5, 5, 10.0, 0),  # day 9.5: days 0 and 2 known
        (MONDAY + 40 * DAY, 6, 5, 10.0, 0),  # day 40: [2, 33) holds days 2 and 6 and 7.5 (legit)
    ]
    F = _features(rows)
    risk7, n7, risk30, n30 = (F[:, IDX[k]] for k in ("terminal_risk_7d", "terminal_nb_tx_7d",
                                                        "terminal_risk_30d", "terminal_nb_tx_30d"))
    assert n7.tolist() == [0, 0, 0, 1, 2, 0]
    assert risk7.tolist() == [0, 0, 0, 1.0, 0.5, 0]
    assert n30.tolist() == [0, 0, 0, 1, 2, 3]
    assert risk30.tolist() == [0, 0, 0, 1.0, 0.5, 0.0]
    assert F[3, IDX["terminal_risk_1d"]] == 1.0 and F[4, IDX["terminal_risk_1d"]] == 0.0


def _random_rows(seed: int, n: int = 600) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    ts = np.sort(MONDAY + rng.uniform(0, 60 * DAY, n)).round()
    cust, term = rng.integers(0, 15, n), rng.integers(0, 6, n)
    amount = rng.uniform(1, 200, n).round(2)
    fraud = (rng.random(n) < 0.3).astype(np.int8)
    return ts, cust, term, amount, fraud, ts + 7 * DAY


def test_features_equal_a_brute_force_from_labels_known_before_t() -> None:
    ts, cust, term, amount, fraud, label_time = _random_rows(1)
    F = recipe_features(ts, cust, term, amount, fraud, label_time, 7.0)
    for r in range(0, len(ts), 7):
        t = ts[r]
        for w in (1, 7, 30):
            mine = (cust == cust[r]) & (ts > t - w * DAY) & ((ts < t) | (np.arange(len(ts)) <= r))
            assert F[r, IDX[f"customer_nb_tx_{w}d"]] == mine.sum()
            assert F[r, IDX[f"customer_avg_amount_{w}d"]] == pytest.approx(amount[mine].mean())
            seen = (term == term[r]) & (ts >= t - 7 * DAY - w * DAY) & (ts < t - 7 * DAY)
            assert np.all(label_time[seen] < t)
            assert F[r, IDX[f"terminal_nb_tx_{w}d"]] == seen.sum()
            expected = fraud[seen].mean() if seen.any() else 0.0
            assert F[r, IDX[f"terminal_risk_{w}d"]] == pytest.approx(expected)


def test_a_label_not_yet_known_at_t_cannot_change_the_features_at_t() -> None:
    """Flip every label that becomes known at or after T: the features at T must not move.

    Without the delay shift the terminal risk would read the labels of the last 7 days (known
    only later) and this would fail.
    """
    ts, cust, term, amount, fraud, label_time = _random_rows(2)
    F = recipe_features(ts, cust, term, amount, fraud, label_time, 7.0)
    for r in range(200, len(ts), 50):
        unknown = label_time >= ts[r]
        flipped = np.where(unknown, 1 - fraud, fraud)
        G = recipe_features(ts, cust, term, amount, flipped, label_time, 7.0)
        assert np.array_equal(F[r], G[r]), r
        # ...while flipping labels already known does move some row's risk (the test has teeth).
    known_flip = np.where(label_time < ts[-1], 1 - fraud, fraud)
    assert not np.array_equal(F, recipe_features(ts, cust, term, amount, known_flip, label_time, 7.0))


def test_labels_later_than_the_shift_are_refused() -> None:
    ts = np.array([MONDAY, MONDAY + DAY])
    with pytest.raises(ValueError, match="field 'label_time': row 1 is labelled 8.00 days"):
        check_label_delay(ts, ts + np.array([DAY, 8 * DAY]), 7.0)
    check_label_delay(ts, np.array([np.nan, ts[1] + 7 * DAY]), 7.0)  # NaN: known at once


def test_classifiers_fit_and_an_unknown_one_is_named() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] + 0.3 * rng.normal(size=400) > 1).astype(int)
    scores = fit_predict("logistic_regression", X[:300], y[:300], X[300:])
    assert scores.shape == (100,) and np.corrcoef(scores, X[300:, 0])[0, 1] > 0.5
    with pytest.raises(ValueError, match="unknown classifier 'xgb'"):
        fit_predict("xgb", X, y, X)
