"""The time split, as of the cut: train on what was known when the test period starts, nothing later.

A model is trained at the cut (the start of the test period) and used afterwards. At that moment a
transaction before the cut is known as fraud only if its label had arrived; a fraud whose label
arrives after the cut looked legitimate then. So:

- **training labels are the labels known at the cut** (`label_time <= cut`; a row without a
  `label_time` is known at once, a fraud labelled `never` is never known): a fraud still
  unreported at the cut is a legitimate row in training, as it would have been in production;
- **the rows of a label-maturity window before the cut are left out of training, all of them**
  (`maturity`): their labels had had little time to arrive, so most of their frauds would be
  legitimate rows. Which rows leave depends only on their time, never on their future label;
- **the test period is graded on the ground truth** (`is_fraud`), reported or not.

The split that was used before this one dropped the training rows whose fraud label arrived after
the cut: it chose rows by their future label, so the held-out figures (and the gate) were a little
optimistic. docs/evaluation.md has the protocol and its figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DAY = 86400.0


@dataclass(frozen=True)
class Split:
    """Boolean masks over the rows, the labels training may use, and the split's times."""

    train: np.ndarray
    test: np.ndarray
    y_train: np.ndarray  # the labels of the training rows as known at the cut (int8, len(train rows))
    train_start: float
    train_end: float  # cut - maturity: rows from here to the cut are left out
    cut: float  # the test period starts; training labels are those known by then
    test_end: float
    unknown_at_cut: int  # training rows that are fraud but were not known as fraud at the cut

    @property
    def maturity_days(self) -> float:
        return (self.cut - self.train_end) / DAY


def known_by(label_time: np.ndarray, at: float) -> np.ndarray:
    """Whether each row's label was known by `at`: NaN means known at once, inf never."""
    return np.isnan(label_time) | (label_time <= at)


def as_of_cut(ts: np.ndarray, y: np.ndarray, label_time: np.ndarray, cut: float, maturity_days: float = 0.0,
              train_start: float = -np.inf, test_end: float = np.inf) -> Split:
    """Train on [train_start, cut - maturity) with the labels known at `cut`; test on [cut, test_end)."""
    if maturity_days < 0:
        raise ValueError(f"label maturity must be >= 0 days, got {maturity_days}")
    train_end = cut - maturity_days * DAY
    train = (ts >= train_start) & (ts < train_end)
    test = (ts >= cut) & (ts < test_end)
    truth = y[train].astype(np.int8)
    y_train = (truth & known_by(label_time[train], cut)).astype(np.int8)
    return Split(train, test, y_train, float(train_start), float(train_end), float(cut), float(test_end),
                 int(truth.sum() - y_train.sum()))


def fraction_split(ts: np.ndarray, y: np.ndarray, label_time: np.ndarray, test_fraction: float,
                   maturity_days: float = 0.0) -> Split:
    """`txguard train`'s split: the last `test_fraction` of the time span is the test period."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test fraction must be in (0, 1), got {test_fraction}")
    lo, hi = float(ts.min()), float(ts.max())
    cut = lo + (1.0 - test_fraction) * (hi - lo)
    if cut - maturity_days * DAY <= lo:
        raise ValueError(f"a {maturity_days:g}-day label maturity leaves no training rows before the cut "
                         f"({(cut - lo) / DAY:.1f} days of data before it)")
    return as_of_cut(ts, y, label_time, cut, maturity_days)
