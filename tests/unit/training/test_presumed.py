"""Presumed fraud (txguard.training.presumed): unreported training rows that a model fitted without
their wallet scores as fraud train as fraud; nothing else moves."""

from __future__ import annotations

import numpy as np
import pytest

from txguard.training.presumed import out_of_fold_scores, presumed_fraud, wallet_folds
from txguard.training.train import TrainConfig, fit_calibrated, fit_model

CONFIG = TrainConfig(max_iter=30, presume_fraud_at=0.2)
DAY = 86400.0


def fit(X: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> object:
    return fit_model(CONFIG, X, y, w)


def world(n_wallets: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows of wallets, a tenth of them fraudulent wallets whose rows sit apart in feature space; only
    half the fraudulent wallets were reported (their rows labelled 1), the rest look legitimate."""
    rng = np.random.default_rng(seed)
    wallets = np.repeat([f"w{i}" for i in range(n_wallets)], 10)
    bad_wallet = rng.random(n_wallets) < 0.1
    bad = np.repeat(bad_wallet, 10)
    X = rng.normal(size=(len(wallets), 4)).astype(np.float32)
    X[bad, :2] += 4.0
    reported = np.repeat(bad_wallet & (rng.random(n_wallets) < 0.5), 10)
    return X, reported.astype(np.int8), bad, wallets


def test_a_wallets_rows_share_a_fold_and_the_folds_are_seeded() -> None:
    wallets = np.array(["a", "b", "a", "c", "b"] * 40 + [f"x{i}" for i in range(200)])
    fold = wallet_folds(wallets, 3, seed=1)
    for w in set(wallets.tolist()):
        assert len(set(fold[wallets == w].tolist())) == 1
    assert set(fold.tolist()) == {0, 1, 2}
    assert np.array_equal(fold, wallet_folds(wallets, 3, seed=1))
    assert not np.array_equal(fold, wallet_folds(wallets, 3, seed=2))


def test_a_row_is_scored_by_a_model_that_never_saw_its_wallet() -> None:
    X, y, _bad, wallets = world()
    rows = np.ones(len(y), dtype=bool)
    rows[:50] = False
    scores = out_of_fold_scores(fit, X, y, rows, wallets, seed=3)
    assert np.isnan(scores[:50]).all() and not np.isnan(scores[50:]).any()
    # Relabelling a whole wallet moves no score of that wallet's own rows: its fold is left out of
    # the model that scores them.
    target = wallets == wallets[100]
    flipped = y.copy()
    flipped[target] = 1 - flipped[target]
    again = out_of_fold_scores(fit, X, flipped, rows, wallets, seed=3)
    assert np.array_equal(scores[target], again[target])
    assert not np.array_equal(scores[~target & rows], again[~target & rows])  # other folds' models learned it


def test_the_unreported_fraudulent_wallets_are_presumed_and_the_honest_ones_are_not() -> None:
    X, y, bad, wallets = world()
    rows = np.ones(len(y), dtype=bool)
    scores = out_of_fold_scores(fit, X, y, rows, wallets, seed=0)
    presumed = presumed_fraud(scores, y, rows, at=0.5)
    unreported = bad & (y == 0)
    assert unreported.sum() > 50
    assert presumed[unreported].mean() > 0.8 and presumed[~bad].mean() < 0.01
    assert not presumed[y == 1].any()  # a reported row is fraud already
    assert not presumed_fraud(scores, y, np.zeros(len(y), dtype=bool), at=0.5).any()
    assert presumed_fraud(scores, y, rows, at=0.2).sum() >= presumed.sum()
    with pytest.raises(ValueError, match="presumed-fraud score must be in"):
        presumed_fraud(scores, y, rows, at=0.0)


def test_fit_calibrated_trains_the_trees_on_presumed_rows_and_keeps_every_recorded_label() -> None:
    X, y, bad, wallets = world(600, seed=1)
    ts = np.arange(len(y), dtype=float) * 60.0
    label_time = np.where(y == 1, ts + DAY, np.nan)
    train = np.ones(len(y), dtype=bool)
    as_of = ts[-1] + 2 * DAY
    before = y.copy()
    fitted = fit_calibrated(CONFIG, X, y, ts, label_time, train, as_of, wallets=wallets)
    presumed = fitted.presumed
    assert np.array_equal(y, before)  # the caller's labels are not touched
    assert presumed.sum() > 0 and not (presumed & ~fitted.fit_rows).any()  # never in the calibration slice
    assert (bad[presumed]).mean() > 0.9
    # the same out-of-fold scores given: the same fit
    given = out_of_fold_scores(lambda X_, y_, w_: fit_model(CONFIG, X_, y_, w_), X, y, train, wallets, CONFIG.seed)
    again = fit_calibrated(CONFIG, X, y, ts, label_time, train, as_of, wallets=wallets, out_of_fold=given)
    assert np.array_equal(again.presumed, presumed) and again.artifact == fitted.artifact
    record = fitted.calibration_record(y)
    assert record.frauds == int(y[fitted.calibration_slice.rows].sum())  # the slice keeps the labels as known
    # Without the wallets, or with the setting off, nothing is presumed and the trees see the labels as known.
    for config, given in ((CONFIG, None), (TrainConfig(max_iter=30), wallets)):
        plain = fit_calibrated(config, X, y, ts, label_time, train, as_of, wallets=given)
        assert not plain.presumed.any()
