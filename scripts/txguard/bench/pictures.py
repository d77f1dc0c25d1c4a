"""Latency histograms of the benchmarks (PNG, matplotlib's Agg backend, log-scaled latency axis).

`txguard bench score` has no raw latencies from wrk, only its full percentile table (printed by
the Lua `done` hook, 1st to 99.99th, from wrk's own microsecond histogram): the share of requests
between two consecutive percentiles is known exactly, so the histogram is rebuilt from that
piecewise-linear distribution on common log-spaced bins, averaged over the rounds. `txguard bench
e2e` has every transaction's end-to-end latency and is binned directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

Percentiles = Sequence[tuple[float, float]]  # (percentile 0..100, latency ms)


def _pyplot():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def shares_from_percentiles(points: Percentiles, edges: np.ndarray) -> np.ndarray:
    """Share of requests in each bin of `edges`, from a percentile table (linear between points)."""
    ordered = sorted(points, key=lambda pv: (pv[1], pv[0]))
    values, cdf = [], []
    for p, v in ordered:  # equal latencies: keep the highest percentile (np.interp needs increasing x)
        if values and v == values[-1]:
            cdf[-1] = max(cdf[-1], p / 100.0)
        else:
            values.append(v)
            cdf.append(p / 100.0)
    cdf_at = np.interp(edges, values, cdf, left=0.0, right=1.0)
    return np.diff(cdf_at)


def _edges(lo: float, hi: float, bins: int = 60) -> np.ndarray:
    lo, hi = max(lo, 1e-3), max(hi, lo * 1.01)
    return np.logspace(np.log10(lo * 0.9), np.log10(hi * 1.1), bins + 1)


def percentile_histogram(series: Mapping[str, Sequence[Percentiles]], title: str, path: Path) -> Path:
    """One curve per target: its rounds' percentile tables turned into a histogram (averaged)."""
    everything = [v for rounds in series.values() for points in rounds for _, v in points]
    if not everything:
        raise ValueError("no percentile tables to draw")
    edges = _edges(min(everything), max(everything))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for label, rounds in series.items():
        shares = np.mean([shares_from_percentiles(points, edges) for points in rounds if points], axis=0)
        curve = ax.stairs(shares * 100, edges, label=label, linewidth=1.6)
        p99 = float(np.median([_at(points, 99.0) for points in rounds if points]))
        ax.axvline(p99, linestyle=":", linewidth=1.2, color=curve.get_edgecolor())
    _finish(ax, title)
    return _save(fig, path)


def _at(points: Percentiles, p: float) -> float:
    return min(points, key=lambda pv: abs(pv[0] - p))[1]


def samples_histogram(series: Mapping[str, Sequence[float]], title: str, path: Path) -> Path:
    """One curve per stage from raw latencies (ms), the p99 of each dotted."""
    everything = [v for values in series.values() for v in values]
    if not everything:
        raise ValueError("no latencies to draw")
    edges = _edges(min(everything), max(everything), bins=int(np.clip(len(everything) / 20, 10, 60)))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for label, values in series.items():
        if not values:
            continue
        counts, _ = np.histogram(values, bins=edges)
        curve = ax.stairs(100 * counts / len(values), edges, label=f"{label} ({len(values):,})", linewidth=1.6)
        ax.axvline(float(np.percentile(values, 99)), linestyle=":", linewidth=1.2, color=curve.get_edgecolor())
    _finish(ax, title)
    return _save(fig, path)


def _finish(ax, title: str) -> None:  # noqa: ANN001
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.set(xscale="log", xlabel="latency (ms, log scale); dotted: p99", ylabel="% of requests per bin", title=title)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))  # 2, 5, 10 ms, not 2x10^0
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda _v, _pos: ""))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)


def _save(fig, path: Path) -> Path:  # noqa: ANN001
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    _pyplot().close(fig)
    return path
