"""What training stores with a version for its life in production, besides the artifact.

- the parity probe: held-out rows and their ONNX scores, which every scoring instance must
  reproduce before the version may answer (txguard.scoring.loading.smoke_test);
- the drift reference: quantile bins of each monitored feature and of the score on the held-out
  rows, which live traffic is compared with (txguard.scoring.drift, `txguard drift`);
- the pictures: PR/ROC curves, score histogram, per-scenario recall (txguard.training.pictures),
  stored next to the version.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from txguard.features.wallet import FEATURE_NAMES
from txguard.registry.metadata import DriftReference, ParityProbe, Thresholds
from txguard.scoring.psi import reference_of

PROBE_ROWS = 32
# Calendar features are left out of the drift reference: a window of minutes or hours holds one
# hour and one weekday, so its PSI against a reference spanning days would always be huge.
NOT_MONITORED = ("hour_of_day", "day_of_week")


def parity_probe(X32: np.ndarray, served: np.ndarray, thresholds: Thresholds, tolerance: float,
                 n: int = PROBE_ROWS) -> ParityProbe:
    """Held-out rows spread over the score range, with their ONNX scores. Rows within `tolerance`
    of a threshold are left out: a float32 last-bit difference there would be a false refusal."""
    clear = np.ones(len(served), dtype=bool)
    for t in (thresholds.review, thresholds.block):
        clear &= np.abs(served - t) > tolerance
    candidates = np.flatnonzero(clear)
    if len(candidates) == 0:
        candidates = np.arange(len(served))
    by_score = candidates[np.argsort(served[candidates], kind="stable")]
    picks = np.unique(by_score[np.linspace(0, len(by_score) - 1, min(n, len(by_score))).astype(int)])
    return ParityProbe(rows=X32[picks].astype(np.float64).tolist(), scores=served[picks].tolist(),
                       tolerance=tolerance)


def drift_reference(X: np.ndarray, served: np.ndarray, period: str, weight: np.ndarray | None = None,
                    seed: int = 0) -> DriftReference:
    """Bins of the monitored features (FEATURE_NAMES order, calendar ones left out) and of the score.

    Live traffic is unsampled, so a training sample's reference must be too: with weights, the rows
    are first drawn again in proportion to their weight (systematic resampling, as many rows as the
    sample has), which gives the traffic's distribution instead of the sample's fraud-rich one."""
    monitored = [j for j, name in enumerate(FEATURE_NAMES) if name not in NOT_MONITORED]
    if weight is not None and len(weight):
        rows = resample(np.asarray(weight, dtype=np.float64), len(weight), seed)
        X, served = X[rows], served[rows]
    return reference_of(X[:, monitored], [FEATURE_NAMES[j] for j in monitored], served, period=period)


def resample(weight: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """`n` row indices drawn in proportion to `weight` (systematic: one uniform offset, even steps)."""
    cumulative = np.cumsum(weight)
    offset = np.random.default_rng(seed).uniform()
    points = (offset + np.arange(n)) * (cumulative[-1] / n)
    return np.minimum(np.searchsorted(cumulative, points, side="right"), len(weight) - 1)


def attach_pictures(registry: Any, version: str, held_out: Any, pictures_dir: str | None,
                    log: Callable[[str], None]) -> list[str]:
    """PNG curves, histogram and per-scenario recall stored next to the version (and in `pictures_dir`)."""
    from txguard.training import pictures

    try:
        rendered = pictures.render(held_out)
    except ImportError as exc:  # matplotlib is in the `train` extra
        log(f"pictures skipped: {exc}")
        return []
    keys = []
    for name, data in rendered.items():
        keys.append(registry.attach(version, f"pictures/{name}", data))
        if pictures_dir:
            Path(pictures_dir).mkdir(parents=True, exist_ok=True)
            (Path(pictures_dir) / name).write_bytes(data)
    log(f"pictures: {', '.join(keys)}" + (f" (and in {pictures_dir})" if pictures_dir else ""))
    return keys
