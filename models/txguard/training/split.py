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


MATURITY_QUANTILE = 0.95
MAX_MATURITY_SHARE = 0.5  # an estimated maturity window never takes more of the data before the cut


def label_delay_quantile(ts: np.ndarray, y: np.ndarray, label_time: np.ndarray, as_of: float,
                         quantile: float = MATURITY_QUANTILE) -> float:
    """Seconds within which `quantile` of the fraud labels arrive, estimated from those known at `as_of`
    (0 if none).

    The delays known at `as_of` are truncated by it: a fraud of age `a` shows its label only if its
    delay is <= `a`, so recent rows show only their fast labels and the plain quantile of the known
    delays is too short (on the simulator 11.1 days where the labels' own is 17.6). This is the
    product-limit estimate for right-truncated delays (Lynden-Bell's, in reverse time): going down
    from the longest delay seen, P(D <= d-) = P(D <= d) x (1 - n(d) / r(d)), where n(d) labels came
    after exactly d and r(d) known frauds could have shown a delay of d (delay <= d <= their age).
    It reads only labels known at `as_of`; it says nothing of delays longer than the oldest row's age.
    A fraud known at once (NaN) or never (inf) has no delay to count.
    """
    known = (y == 1) & (ts < as_of) & (label_time <= as_of)  # NaN compares False
    delays = np.sort(label_time[known] - ts[known])
    if not len(delays):
        return 0.0
    ages = np.sort(as_of - ts[known])
    points = np.unique(delays)[::-1]  # longest first
    at = np.searchsorted(delays, points, side="right")
    n = at - np.searchsorted(delays, points, side="left")
    r = at - np.searchsorted(ages, points, side="left")  # delay <= d minus age < d (a delay is <= its age)
    below = np.cumprod(np.concatenate([[1.0], 1.0 - n / r]))[:-1]  # P(D <= point), longest first
    return float(points[below >= quantile].min())


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


def estimated_maturity_days(ts: np.ndarray, y: np.ndarray, label_time: np.ndarray, cut: float,
                            start: float | None = None) -> float:
    """The label-maturity window `txguard train` leaves out when none is given: the time within which
    MATURITY_QUANTILE of the fraud labels arrive, estimated from the labels known at the cut
    (`label_delay_quantile`), never more than MAX_MATURITY_SHARE of the data before the cut.

    Why a window at all: trees fitted on the last days before the cut read most of their frauds as
    legitimate (not reported yet), and learn that what was recent looked legitimate. On the simulator,
    whose wallets and counterparties age with its clock, that taught the trees that older histories
    are legitimate: the frauds of the test period scored 0.20 on average against 0.76 for those of the
    calibration slice, and the served scores were 0.20 of the fraud rate (docs/evaluation.md).
    Which rows leave depends only on their time. The cap keeps a world shorter than its labels'
    delays trainable (its report says how many training frauds were not known at the cut). `start`:
    when the data begins (default: its first row; a sample's, its history's first)."""
    lo = float(ts.min()) if start is None else start
    estimate = label_delay_quantile(ts, y & known_by(label_time, cut), label_time, cut) / DAY
    return round(min(estimate, MAX_MATURITY_SHARE * (cut - lo) / DAY), 3)


def fraction_split(ts: np.ndarray, y: np.ndarray, label_time: np.ndarray, test_fraction: float,
                   maturity_days: float | None = None, span: tuple[float, float] | None = None) -> Split:
    """`txguard train`'s split: the last `test_fraction` of the time span is the test period; the
    maturity window is estimated from the labels known at the cut when not given (None). `span`: the
    first and last times of the history the rows were sampled from (default: the rows' own), so that a
    sample is split where its full history is."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test fraction must be in (0, 1), got {test_fraction}")
    lo, hi = span if span is not None else (float(ts.min()), float(ts.max()))
    if lo > float(ts.min()) or hi < float(ts.max()):
        raise ValueError(f"the span {lo}..{hi} does not hold every row ({float(ts.min())}..{float(ts.max())})")
    cut = lo + (1.0 - test_fraction) * (hi - lo)
    if maturity_days is None:
        maturity_days = estimated_maturity_days(ts, y, label_time, cut, lo)
    if cut - maturity_days * DAY <= lo:
        raise ValueError(f"a {maturity_days:g}-day label maturity leaves no training rows before the cut "
                         f"({(cut - lo) / DAY:.1f} days of data before it)")
    return as_of_cut(ts, y, label_time, cut, maturity_days)
