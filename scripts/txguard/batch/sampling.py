"""The training sample: every fraud, a seeded fraction of the rest, weighted.

A team's history outgrows one training machine long before its frauds do: at a fraud rate of ~0.2 %
the legitimate rows are nearly all of it, and nearly all alike. So the batch job keeps every fraud
(with its wallet's day) and a fraction of the others, and gives each kept row the weight that makes the sample
stand for the whole (the Horvitz-Thompson weight: one over the chance it had to be kept). Weighted
sums over the sample (losses, counts of alerts, false positive rates, calibration bins) are then
unbiased estimates of the same sums over the full history.

The unit drawn is a **wallet-day** (a wallet's rows of one UTC day), not a row:

- a wallet-day holding a fraud (`is_fraud` = 1, its label known yet or not) is kept whole, with
  weight 1: every fraud is there, and next to it the legitimate rows of the same wallet that day,
  the contrast a model learns most from. A legitimate row's `label_time` does not keep it: data whose
  every verdict arrives after a delay (the Handbook's: every row has one) would keep every row;
- any other wallet-day is kept with probability `fraction`, whole, with weight 1 / fraction: the
  draw is a hash of (seed, wallet, day), so it is the same on every worker and every rerun, and it
  is stratified by day (each day keeps its own ~fraction of the legitimate wallet-days, never a
  lucky week instead of another) and by wallet (a kept wallet-day has all its rows, so per-wallet
  per-day figures such as the wallet precision at 100 are measured on whole wallets).

**Hard negatives** are drawn more often. Nearly all legitimate rows are alike, and a uniform 5 %
misses the rare ones that look like fraud: the top of the ranking, where PR-AUC and the alert volume
are decided (on the Handbook data a uniform 5 % cost 0.011-0.025 PR-AUC over three sample seeds,
half of the full model's legitimate top 1 % changing; docs/evaluation.md). Given a `hard` mark per
row (in the Beam job, `hard_marks`: the production model scores the row at or above its review
threshold or, with a hard share, among the top share of its shard's rows), a
wallet-day holding a hard row and no fraud is a stratum of its own, kept with probability
`hard_fraction` (>= `fraction`, 1 by default), weight 1 / hard_fraction. Each kept row's weight is
still one over its own wallet-day's chance, so every weighted sum stays an unbiased estimate of the
full history's, exactly per stratum in expectation; only the variance moves (less where it counts).

Each sample row also carries the time span of the rows it was drawn from (`SPAN_COLUMNS`: the
first and last transaction of its shard's full history; over every shard, the history's). Training
splits a sample by that span, not by its own first and last kept rows, so the sample's cut, label-
maturity window and held-out period are the full table's to the microsecond.

The features are computed on the full history before any row is dropped (`txguard.batch.pipeline`
samples after the replay, in the scoring step), so a sampled row's features are those of the full
table, bit for bit (tests/unit/batch/test_batch_sample.py).
"""

from __future__ import annotations

import zlib

import numpy as np

DAY_SECONDS = 86400
WEIGHT_COLUMN = "weight"
SPAN_COLUMNS = ("history_start", "history_end")  # the full history's first and last transaction times
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
# The hard band recommended with `--sample-hard-share`: the production model's top 5 % of the traffic,
# wider than its review band (docs/batch.md, "Training on a sample as the history doubles").
HARD_SHARE = 0.05


def hard_marks(scores: np.ndarray, review: float, share: float | None = None) -> np.ndarray:
    """The rows a model marks hard: those it scores at or above its review threshold, or with `share`,
    the top `share` of `scores` (ties at the cut included). In the Beam job `scores` are one wallet
    shard's, so the cut is that shard's own quantile: a shard holds whole wallets drawn by a hash,
    thousands of rows at the least, so its quantile is the history's up to the draw's noise."""
    scores = np.asarray(scores)
    if share is None:
        return scores >= review
    if not len(scores):
        return np.zeros(0, dtype=bool)
    return scores >= np.quantile(scores, 1.0 - share, method="higher")


def check_hard_share(share: float | None) -> None:
    if share is not None and not 0.0 < share <= 1.0:
        raise ValueError(f"sample hard share must be in (0, 1], got {share}")


def check_sample(fraction: float, seed: int = 0, hard_fraction: float = 1.0) -> None:
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"sample fraction must be in (0, 1], got {fraction}")
    if seed < 0:
        raise ValueError(f"sample seed must be >= 0, got {seed}")
    if not fraction <= hard_fraction <= 1.0:
        raise ValueError(f"sample hard fraction must be in [fraction {fraction}, 1], got {hard_fraction}")


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves every output bit (uint64 in, uint64 out)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return (x ^ (x >> np.uint64(31))) & _MASK64


def uniform_of(wallet_ids: np.ndarray, days: np.ndarray, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per row, a pure function of (seed, wallet id, day)."""
    names, codes = np.unique(np.asarray(wallet_ids, dtype=object), return_inverse=True)
    crc = np.fromiter((zlib.crc32(str(w).encode()) for w in names), dtype=np.uint64, count=len(names))
    with np.errstate(over="ignore"):
        key = (crc[codes.reshape(-1)] << np.uint64(32)) ^ (np.asarray(days).astype(np.int64).astype(np.uint64)
                                                * np.uint64(0x9E3779B97F4A7C15))
        key = _mix(key ^ _mix(np.full(len(key), seed, dtype=np.uint64)))
    return (key >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def utc_days(ts: np.ndarray) -> np.ndarray:
    """Each epoch-seconds time's UTC day number: the day of its wallet-day."""
    return np.floor_divide(np.asarray(ts, dtype=np.float64), DAY_SECONDS).astype(np.int64)


def keep_probability(wallet_ids: np.ndarray, ts: np.ndarray, is_fraud: np.ndarray, fraction: float,
                     hard: np.ndarray | None = None, hard_fraction: float = 1.0,
                     days: np.ndarray | None = None) -> np.ndarray:
    """Each row's chance to be kept, its wallet-day's: 1 with a fraud, `hard_fraction` with a hard row
    (and no fraud), `fraction` otherwise. `ts` in epoch seconds (`days`: their `utc_days`, if at hand)."""
    days = utc_days(ts) if days is None else days
    _, wallet_codes = np.unique(np.asarray(wallet_ids, dtype=object), return_inverse=True)
    offset = days - days.min()
    _, block = np.unique(wallet_codes.reshape(-1).astype(np.int64) * (int(offset.max()) + 1) + offset,
                         return_inverse=True)
    block = block.reshape(-1)
    row = np.where(np.asarray(is_fraud) == 1, 1.0, fraction)
    if hard is not None:
        row = np.where(np.asarray(hard, dtype=bool), np.maximum(row, hard_fraction), row)
    chance = np.zeros(int(block.max()) + 1)
    np.maximum.at(chance, block, row)
    return chance[block]


def sample_weights(wallet_ids: np.ndarray, ts: np.ndarray, is_fraud: np.ndarray, fraction: float,
                   seed: int = 0, hard: np.ndarray | None = None, hard_fraction: float = 1.0) -> np.ndarray:
    """Each row's weight in the sample: 1 / its wallet-day's chance (`keep_probability`) when drawn,
    0 (dropped) otherwise; a wallet-day holding a fraud is always kept, whether or not its label was
    known by any given time. `hard`: rows that look like fraud (None: none)."""
    check_sample(fraction, seed, hard_fraction)
    n = len(ts)
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    days = utc_days(ts)
    chance = keep_probability(wallet_ids, ts, is_fraud, fraction, hard, hard_fraction, days)
    drawn = uniform_of(wallet_ids, days, seed) < chance
    return np.where(drawn, 1.0 / chance, 0.0)


def resample_weights(wallet_ids: np.ndarray, ts: np.ndarray, is_fraud: np.ndarray, weights: np.ndarray,
                     fraction: float, hard_fraction: float, to_fraction: float, to_hard_fraction: float,
                     seed: int) -> np.ndarray:
    """The weights of a sample drawn at (`fraction`, `hard_fraction`) with `seed`, redrawn at smaller
    chances (`to_fraction`, `to_hard_fraction`): 0 for a row the smaller sample drops.

    The draw keeps a wallet-day when `uniform_of(seed, wallet, day)` is below its chance, and no chance
    grows as the fractions shrink; so the smaller sample is a subset of this one, and a kept wallet-day
    stays exactly when its number is below its new chance. The result is, row for row, what
    `sample_weights` draws from the full table at the smaller fractions, with the same hard marks (a
    test proves it): a team with a 5 % sample gets its 1 % sample without recomputing a feature. A
    wallet-day's stratum is read from the sample itself: a fraud in it, else its weight (1 / its chance)."""
    check_sample(to_fraction, seed, to_hard_fraction)
    check_sample(fraction, seed, hard_fraction)
    if not (to_fraction <= fraction and to_hard_fraction <= hard_fraction):
        raise ValueError(f"a sample redrawn at ({to_fraction}, {to_hard_fraction}) must be at chances no larger than "
                         f"its own ({fraction}, {hard_fraction})")
    weights = np.asarray(weights, dtype=np.float64)
    if len(weights) == 0:
        return np.zeros(0, dtype=np.float64)
    if np.any(weights <= 0):
        raise ValueError("a sample's weights are > 0 (every row of it was drawn)")
    if hard_fraction == fraction and to_hard_fraction != to_fraction:
        raise ValueError("this sample's hard stratum was drawn at its plain chance: it cannot be told apart")
    days = utc_days(ts)
    chance = 1.0 / weights
    # a wallet-day with a fraud has chance 1 at any fraction below 1 (to_fraction < 1 tells them apart)
    with_fraud = keep_probability(wallet_ids, ts, is_fraud, 0.5, days=days) == 1.0
    hard = ~with_fraud & np.isclose(chance, hard_fraction, rtol=1e-9, atol=0.0)
    if not np.all(with_fraud | hard | np.isclose(chance, fraction, rtol=1e-9, atol=0.0)):
        raise ValueError(f"a weight matches none of the sample's chances (1, {hard_fraction}, {fraction})")
    to_chance = np.where(with_fraud, 1.0, np.where(hard, to_hard_fraction, to_fraction))
    drawn = uniform_of(wallet_ids, days, seed) < to_chance
    return np.where(drawn, 1.0 / to_chance, 0.0)
