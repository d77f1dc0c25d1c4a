"""The split as of the cut: training labels are those known when the test starts, the rows of the
label-maturity window leave whatever their label, the test is graded on the truth, and which rows
train never depends on a label that arrives after the cut."""

from __future__ import annotations

import math

import numpy as np
import pytest

from txguard.training.split import DAY, MAX_MATURITY_SHARE, as_of_cut, fraction_split, known_by

NAN, NEVER = math.nan, math.inf


def _rows(spec: list[tuple[float, int, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(day, is_fraud, label day: NaN at once, inf never) -> ts, y, label_time in seconds."""
    day, y, label = (np.asarray(c, dtype=np.float64) for c in zip(*spec, strict=True))
    return day * DAY, y.astype(np.int8), label * DAY


def test_training_labels_are_those_known_at_the_cut() -> None:
    ts, y, label_time = _rows([
        (1.0, 0, NAN),    # legitimate
        (2.0, 1, 3.0),    # fraud known on day 3: fraud in training
        (3.0, 1, 12.0),   # fraud known after the cut (day 10): looked legitimate then
        (4.0, 1, NEVER),  # never reported: never fraud in training
        (5.0, 1, NAN),    # no label time: known at once
        (6.0, 1, 10.0),   # known exactly at the cut
        (10.0, 1, 30.0),  # test: graded on the truth
        (11.0, 0, NAN),   # test
    ])
    split = as_of_cut(ts, y, label_time, cut=10 * DAY)
    assert np.flatnonzero(split.train).tolist() == [0, 1, 2, 3, 4, 5]
    assert split.y_train.tolist() == [0, 1, 0, 0, 1, 1]
    assert split.unknown_at_cut == 2
    assert np.flatnonzero(split.test).tolist() == [6, 7]
    assert y[split.test].tolist() == [1, 0]


def test_the_maturity_window_leaves_every_row_whatever_its_label() -> None:
    ts, y, label_time = _rows([(2.0, 1, 3.0), (4.0, 0, NAN), (7.5, 1, 8.0), (8.0, 0, NAN), (9.0, 1, 20.0),
                               (10.0, 0, NAN)])
    split = as_of_cut(ts, y, label_time, cut=10 * DAY, maturity_days=3)
    assert np.flatnonzero(split.train).tolist() == [0, 1]  # [7, 10) is left out, known or not
    assert (split.train_end, split.maturity_days) == (7 * DAY, 3.0)
    with pytest.raises(ValueError, match="maturity"):
        as_of_cut(ts, y, label_time, cut=10 * DAY, maturity_days=-1)


def test_which_rows_train_never_depends_on_a_future_label() -> None:
    """Flip every label that arrives after the cut (and move its arrival): the training rows and
    their training labels stay the same. The split this one replaces dropped such rows."""
    rng = np.random.default_rng(4)
    ts = np.sort(rng.uniform(0, 40 * DAY, 3000))
    y = (rng.random(3000) < 0.05).astype(np.int8)
    label_time = np.where(y == 1, ts + rng.uniform(0, 20 * DAY, 3000), np.nan)
    cut = 30 * DAY
    before = as_of_cut(ts, y, label_time, cut, maturity_days=2)
    late = (y == 1) & (label_time > cut)
    assert late[ts < cut].sum() > 10
    flipped = y.copy()
    flipped[late] = 0
    moved = np.where(late, label_time + 5 * DAY, label_time)
    after = as_of_cut(ts, flipped, moved, cut, maturity_days=2)
    assert np.array_equal(before.train, after.train) and np.array_equal(before.y_train, after.y_train)


def test_known_by_reads_nan_as_at_once_and_inf_as_never() -> None:
    assert known_by(np.array([NAN, NEVER, 5.0, 6.0]), 5.0).tolist() == [True, False, True, False]


def test_fraction_split_cuts_the_time_span() -> None:
    ts, y, label_time = _rows([(0.0, 0, NAN), (5.0, 1, 9.0), (8.0, 0, NAN), (12.0, 1, 13.0), (16.0, 0, NAN)])
    split = fraction_split(ts, y, label_time, test_fraction=0.25, maturity_days=0)  # cut at day 12
    assert split.cut == 12 * DAY
    assert np.flatnonzero(split.train).tolist() == [0, 1, 2] and split.y_train.tolist() == [0, 1, 0]
    assert np.flatnonzero(split.test).tolist() == [3, 4]
    with pytest.raises(ValueError, match="no training rows"):
        fraction_split(ts, y, label_time, test_fraction=0.25, maturity_days=12)
    with pytest.raises(ValueError, match="test fraction"):
        fraction_split(ts, y, label_time, test_fraction=1.0)


def test_fraction_split_reads_a_samples_span_instead_of_its_own_rows() -> None:
    """A sample drawn from days 0-16 whose kept rows run from day 5 to 12 is cut where the history is."""
    ts, y, label_time = _rows([(5.0, 1, 9.0), (8.0, 0, NAN), (12.0, 1, 13.0)])
    split = fraction_split(ts, y, label_time, test_fraction=0.25, maturity_days=0, span=(0.0, 16 * DAY))
    assert split.cut == 12 * DAY and np.flatnonzero(split.test).tolist() == [2]
    assert fraction_split(ts, y, label_time, test_fraction=0.25, maturity_days=0).cut == 10.25 * DAY  # its own rows
    # the cap on the estimated window is half the data before the cut, counted from the history's start
    ts, y, label_time = _rows([(0.5, 1, 11.0), (8.0, 0, NAN), (12.0, 1, 13.0)])  # one known delay: 10.5 days
    capped = fraction_split(ts, y, label_time, test_fraction=0.25, span=(0.0, 16 * DAY))
    assert capped.maturity_days == pytest.approx(MAX_MATURITY_SHARE * 12) and MAX_MATURITY_SHARE * 12 < 10.5
    with pytest.raises(ValueError, match="does not hold every row"):
        fraction_split(ts, y, label_time, test_fraction=0.25, span=(1.0 * DAY, 16 * DAY))


def test_fraction_split_estimates_the_maturity_window_from_the_labels_known_at_the_cut() -> None:
    """Not given, the window is the time within which 95 % of the fraud labels arrive (here every
    known one took 3 days), read from the labels known at the cut only, at most half the data before it."""
    days = np.arange(0.0, 40.0, 0.25)
    y = (np.arange(len(days)) % 4 == 0).astype(int)
    ts, y, label_time = _rows([(d, f, d + 3.0 if f else NAN) for d, f in zip(days, y, strict=True)])
    split = fraction_split(ts, y, label_time, test_fraction=0.25)  # cut at day 29.8
    assert split.maturity_days == pytest.approx(3.0)
    assert ts[split.train].max() < split.cut - 3 * DAY and split.unknown_at_cut == 0
    # Labels known after the cut are not read: making them later or never changes nothing.
    late = label_time > split.cut
    never = fraction_split(ts, y, np.where(late, NEVER, label_time), test_fraction=0.25)
    assert never.maturity_days == split.maturity_days
    # Delays longer than half the data before the cut: the window stops there.
    slow = np.where(y == 1, ts + 25 * DAY, NAN)
    capped = fraction_split(ts, y, slow, test_fraction=0.25)
    assert capped.maturity_days == pytest.approx(MAX_MATURITY_SHARE * (capped.cut - ts.min()) / DAY, abs=1e-3)
