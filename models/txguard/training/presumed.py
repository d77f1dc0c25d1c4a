"""Presumed fraud: training rows nobody reported that a model fitted without them scores as fraud.

At the cut, a fraud whose label has not arrived yet, or never will (a mule ring never found, a scam
its victim never reported, a credential-testing campaign never traced), is a legitimate row in
training, with the very features of the frauds that were reported. The trees then learn to tell
reported campaigns from unreported ones by their particulars (their hour, their victims) instead of
learning what fraud looks like, and the unreported kind is ranked below where it belongs
(docs/evaluation.md, "What the top of the ranking gets wrong").

So before the trees are fitted, each training row is scored by a model fitted **without it**:
the training rows (the calibration slice's included) are cut into `FOLDS` folds by wallet (a wallet's rows stay together, so a mule's
other unreported rows cannot vouch for it), a model of the same kind is fitted on the other folds
and scores this one. An unlabelled row the trees are fitted on, scored at or above `at`, trains
as fraud ("presumed"). Only
the labels known at the cut and the training rows' own features are read: no label from after the
cut, no held-out row. The rows keep their recorded label everywhere else (the calibration slice,
the held-out figures, the reports); the count is reported (`n_train_presumed_fraud`).

`at` is on the trees' own scale (fitted with the fraud weight, not calibrated). Chosen on
txguard's simulator, never on an evaluation design (docs/evaluation.md).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

FOLDS = 3
Fit = Callable[[np.ndarray, np.ndarray, np.ndarray | None], Any]  # (X, y, weight) -> a fitted classifier


def wallet_folds(groups: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each row's fold, the same for every row of a wallet: a seeded hash of the wallet id."""
    names, inverse = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    salt = f"{seed}:".encode()
    of_name = np.fromiter((zlib.crc32(salt + n.encode()) % folds for n in names), dtype=np.int64, count=len(names))
    return of_name[inverse]


def out_of_fold_scores(fit: Fit, X: np.ndarray, y: np.ndarray, rows: np.ndarray, groups: np.ndarray, seed: int,
                       weight: np.ndarray | None = None, folds: int = FOLDS) -> np.ndarray:
    """Each of `rows` (a boolean mask) scored by a model fitted on the other folds' rows; NaN elsewhere,
    and where the other folds hold no fraud (nothing to learn from)."""
    idx = np.flatnonzero(rows)
    fold = wallet_folds(groups[idx], folds, seed)
    scores = np.full(len(y), np.nan)
    for k in range(folds):
        inside, outside = idx[fold != k], idx[fold == k]
        if not len(outside) or y[inside].sum() == 0:
            continue
        model = fit(X[inside], y[inside], None if weight is None else weight[inside])
        scores[outside] = model.predict_proba(X[outside])[:, 1]
    return scores


def presumed_fraud(scores: np.ndarray, y: np.ndarray, rows: np.ndarray, at: float) -> np.ndarray:
    """The rows of `rows` labelled legitimate (0) whose out-of-fold score is at least `at` (a mask)."""
    if not 0.0 < at <= 1.0:
        raise ValueError(f"the presumed-fraud score must be in (0, 1], got {at}")
    with np.errstate(invalid="ignore"):
        return rows & (y == 0) & (scores >= at)
