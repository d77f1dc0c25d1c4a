"""Population stability index (PSI) against a model version's training reference.

Training stores, for every input feature and for the score, quantile bins of its held-out rows
and the share of rows in each bin (`registry.metadata.DriftReference`). Live traffic is counted
into the same bins and compared:

    PSI = sum over bins of (actual - expected) * ln(actual / expected)

Usual reading: < 0.1 stable, 0.1-0.2 moderate shift, > 0.2 a shift worth acting on. Shares are
floored at `SHARE_FLOOR` so an empty bin does not make the index infinite. Everything here is
generic over feature names (metadata.features), so a model with more inputs needs no change.
Numpy only: the scoring function runs it (txguard.scoring.drift), training builds the reference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from txguard.registry.metadata import Bins, DriftReference

N_BINS = 10
SHARE_FLOOR = 1e-4
SCORE = "score"  # the score's entry next to the features' in PSI reports


def quantile_bins(values: np.ndarray, n_bins: int = N_BINS) -> Bins:
    """Deciles (by default) of `values` as unique edges, and the share of `values` in each bin."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("cannot build bins from no values")
    # Edges are observed values (no interpolation): a flag gets the edge 0 and two bins, not a 0.1 edge.
    qs = np.quantile(values, np.linspace(0, 1, n_bins + 1)[1:-1], method="inverted_cdf")
    edges = np.unique(qs)
    counts = bin_counts(values, edges)
    return Bins(edges=[float(e) for e in edges], expected=(counts / counts.sum()).tolist())


def bin_counts(values: np.ndarray, edges: np.ndarray | Sequence[float]) -> np.ndarray:
    """How many `values` fall in each bin `(-inf, e0], (e0, e1], ..., (e_last, inf)`."""
    edges = np.asarray(edges, dtype=np.float64)
    index = np.searchsorted(edges, np.asarray(values, dtype=np.float64), side="left")
    return np.bincount(index, minlength=len(edges) + 1)


def psi(expected: Sequence[float] | np.ndarray, counts: Sequence[int] | np.ndarray) -> float:
    """PSI of observed `counts` against `expected` shares (same bins); 0.0 for no observations."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        return 0.0
    actual = np.maximum(counts / total, SHARE_FLOOR)
    exp = np.maximum(np.asarray(expected, dtype=np.float64), SHARE_FLOOR)
    return float(np.sum((actual - exp) * np.log(actual / exp)))


def reference_of(x: np.ndarray, feature_names: Sequence[str], scores: np.ndarray, period: str = "") -> DriftReference:
    """The training reference of a model: bins of each column of `x` (named) and of its scores."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(feature_names):
        raise ValueError(f"expected an (n, {len(feature_names)}) matrix, got {x.shape}")
    return DriftReference(
        rows=int(x.shape[0]),
        period=period,
        features={name: quantile_bins(x[:, j]) for j, name in enumerate(feature_names)},
        score=quantile_bins(scores),
    )


def psi_report(reference: DriftReference, counts: Mapping[str, Sequence[int]]) -> dict[str, float]:
    """PSI per feature (and `score`) for counts keyed like the reference; names absent are skipped."""
    out: dict[str, float] = {}
    for name, bins in reference.features.items():
        if name in counts:
            out[name] = psi(bins.expected, counts[name])
    if SCORE in counts:
        out[SCORE] = psi(reference.score.expected, counts[SCORE])
    return out


def worst(report: Mapping[str, float]) -> tuple[float, str | None]:
    """(largest PSI, its feature name), or (0.0, None) for an empty report."""
    if not report:
        return 0.0, None
    name = max(report, key=lambda k: report[k])
    return report[name], name
