"""The pictures `txguard train` stores next to each version (PNG, matplotlib's Agg backend).

- `curves.png`: precision-recall and ROC curves of the model against the rules baseline on the
  held-out rows, with the review and block operating points marked;
- `scores.png`: the held-out score histogram, legitimate and fraud apart (log scale), with the
  two thresholds;
- `scenarios.png`: recall per fraud scenario at the review and block thresholds, model against
  baseline (the baseline at thresholds derived from its own scores the same way);
- `reliability.png`: the reliability diagram, mean score against fraud rate per score bin, of the
  served (calibrated) scores and of the trees' own: the 10 equal-width bins the calibration error
  is computed on, and quantile bins on log axes, where nearly every transaction's score lies.

A reviewer sees at a glance what a table of metrics hides: where the thresholds sit and which
fraud the model misses. Training-time only (matplotlib is in the `train` extra, never in serving).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from txguard.registry.metadata import Thresholds

NAMES = ("curves.png", "scores.png", "scenarios.png", "reliability.png")
_MODEL, _BASE = "#1f5fa8", "#c0504d"
_SCORE_FLOOR = 1e-6


@dataclass(frozen=True)
class HeldOut:
    """What the pictures are drawn from: held-out labels, both score sets, thresholds, scenarios."""

    y: np.ndarray
    scores: np.ndarray
    baseline: np.ndarray
    thresholds: Thresholds
    baseline_thresholds: Thresholds
    scenarios: Sequence[str]
    title: str  # e.g. "v3 (held-out 2026-01-23..2026-01-31)"
    uncalibrated: np.ndarray | None = None  # the trees' own scores, before calibration


def _pyplot():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")  # no display, deterministic output
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:  # noqa: ANN001
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    _pyplot().close(fig)
    return buf.getvalue()


def _operating_point(y: np.ndarray, s: np.ndarray, t: float) -> tuple[float, float, float]:
    """(recall, precision, false positive rate) of `score >= t`."""
    flagged = s >= t
    tp = int(np.sum(flagged & (y == 1)))
    fp = int(np.sum(flagged & (y == 0)))
    recall = tp / max(1, int(np.sum(y == 1)))
    precision = tp / max(1, tp + fp)
    return recall, precision, fp / max(1, int(np.sum(y == 0)))


def curves(h: HeldOut) -> bytes:
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    plt = _pyplot()
    fig, (pr, roc) = plt.subplots(1, 2, figsize=(11, 4.6))
    for label, s, t, color in (("model", h.scores, h.thresholds, _MODEL),
                               ("rules baseline", h.baseline, h.baseline_thresholds, _BASE)):
        p, r, _ = precision_recall_curve(h.y, s)
        pr.plot(r, p, color=color, label=f"{label} (PR-AUC {average_precision_score(h.y, s):.3f})")
        fpr, tpr, _ = roc_curve(h.y, s)
        roc.plot(fpr, tpr, color=color, label=f"{label} (ROC-AUC {roc_auc_score(h.y, s):.3f})")
        for name, th, marker in (("review", t.review, "o"), ("block", t.block, "s")):
            rec, prec, fp_rate = _operating_point(h.y, s, th)
            pr.plot([rec], [prec], marker, color=color, markersize=7, label=f"{label} {name} >= {th:.3g}")
            roc.plot([fp_rate], [rec], marker, color=color, markersize=7)
    pr.set(xlabel="recall", ylabel="precision", title="Precision-recall", xlim=(0, 1.02), ylim=(0, 1.02))
    roc.set(xlabel="false positive rate (log)", ylabel="recall (true positive rate)", title="ROC", xscale="log",
            xlim=(1e-5, 1), ylim=(0, 1.02))
    pr.legend(fontsize=7, loc="lower left")
    roc.legend(fontsize=7, loc="lower right")
    for ax in (pr, roc):
        ax.grid(alpha=0.3)
    fig.suptitle(f"Held-out curves, {h.title}", fontsize=11)
    return _png(fig)


def scores(h: HeldOut) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    # Log-spaced: nearly all legitimate scores sit below 1e-2, where the review threshold usually is.
    bins = np.logspace(np.log10(_SCORE_FLOOR), 0, 61)
    clipped = np.clip(h.scores, _SCORE_FLOOR, 1.0)
    ax.hist(clipped[h.y == 0], bins=bins, color="#7f7f7f", alpha=0.7, label=f"legitimate ({int(np.sum(h.y == 0)):,})")
    ax.hist(clipped[h.y == 1], bins=bins, color=_BASE, alpha=0.8, label=f"fraud ({int(np.sum(h.y == 1)):,})")
    for name, th, style in (("review", h.thresholds.review, "--"), ("block", h.thresholds.block, "-")):
        ax.axvline(th, color="black", linestyle=style, linewidth=1.2, label=f"{name} >= {th:.3g}")
    ax.set(xscale="log", yscale="log", xlabel=f"score (P(fraud), log; below {_SCORE_FLOOR:g} counted at it)",
           ylabel="transactions (log)",
           title=f"Held-out score distribution, {h.title}")
    ax.legend(fontsize=8, loc="upper center")
    ax.grid(alpha=0.3)
    return _png(fig)


def scenario_recall(y: np.ndarray, s: np.ndarray, scenarios: Sequence[str], t: float) -> dict[str, float]:
    """Recall of `score >= t` among the fraud rows of each scenario (unnamed fraud: 'fraud')."""
    names = np.asarray([sc or "fraud" for sc in scenarios], dtype=object)
    out = {}
    for name in sorted(set(names[y == 1].tolist())):
        rows = (y == 1) & (names == name)
        out[name] = float(np.mean(s[rows] >= t))
    return out


def scenarios(h: HeldOut) -> bytes:
    plt = _pyplot()
    series = [
        ("model, review", scenario_recall(h.y, h.scores, h.scenarios, h.thresholds.review), _MODEL, 1.0),
        ("model, block", scenario_recall(h.y, h.scores, h.scenarios, h.thresholds.block), _MODEL, 0.5),
        ("baseline, review", scenario_recall(h.y, h.baseline, h.scenarios, h.baseline_thresholds.review), _BASE, 1.0),
        ("baseline, block", scenario_recall(h.y, h.baseline, h.scenarios, h.baseline_thresholds.block), _BASE, 0.5),
    ]
    names = list(series[0][1])
    counts = {n: int(np.sum((h.y == 1) & (np.asarray([sc or "fraud" for sc in h.scenarios]) == n))) for n in names}
    fig, ax = plt.subplots(figsize=(max(7.0, 1.8 * len(names) + 2), 4.2))
    width = 0.8 / len(series)
    x = np.arange(len(names))
    for k, (label, recall, color, alpha) in enumerate(series):
        values = [recall.get(n, 0.0) for n in names]
        bars = ax.bar(x + (k - 1.5) * width, values, width, color=color, alpha=alpha, label=label,
                      hatch="" if alpha == 1.0 else "//", edgecolor=color)
        ax.bar_label(bars, fmt="%.2f", fontsize=6)
    ax.set_xticks(x, [f"{n}\n({counts[n]} frauds)" for n in names], fontsize=8)
    ax.set(ylim=(0, 1.3), ylabel="recall", title=f"Recall per fraud scenario at the thresholds, {h.title}")
    ax.legend(fontsize=7, ncol=4, loc="upper center")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def _decade_points(y: np.ndarray, s: np.ndarray) -> list[tuple[float, float, int, int]]:
    """(mean score, fraud rate, rows, frauds) of the score decades [1e-6, 1e-5), ..., [0.1, 1] holding
    a fraud (below 1e-6 counted in the first): a fraud rate of 0 has no place on a log axis."""
    edges = np.logspace(np.log10(_SCORE_FLOOR), 0, 7)
    index = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, len(edges) - 2)
    out = []
    for b in range(len(edges) - 1):
        rows = index == b
        if rows.any() and y[rows].any():
            out.append((float(s[rows].mean()), float(y[rows].mean()), int(rows.sum()), int(y[rows].sum())))
    return out


def reliability(h: HeldOut) -> bytes:
    from txguard.training.metrics import CALIBRATION_MIN_ROWS, calibration
    from txguard.training.metrics import reliability as bins_of

    plt = _pyplot()
    fig, (wide, low) = plt.subplots(1, 2, figsize=(12, 5.2))
    series = [("served (calibrated)", h.scores, _MODEL, "o")]
    if h.uncalibrated is not None:
        series.append(("trees alone (uncalibrated)", h.uncalibrated, "#7f7f7f", "s"))
    for label, s, color, marker in series:
        c = calibration(h.y, s)
        bins = bins_of(h.y, s)
        x = np.array([b["mean_score"] for b in bins])
        rate = np.array([b["fraud_rate"] for b in bins])
        n = np.array([b["rows"] for b in bins])
        # 95 % binomial interval of each bin's fraud rate: a bin of a few rows says little.
        err = 1.96 * np.sqrt(np.clip(rate * (1 - rate), 1e-12, None) / n)
        wide.errorbar(x, rate, yerr=err, fmt=marker + "-", color=color, markersize=5, capsize=2, linewidth=1,
                      label=f"{label}: ECE {c['ece']:.4f}, gap {c['ece_max_gap']:.3f}, Brier {c['brier']:.5f}")
        for xi, ri, ni in zip(x, rate, n, strict=True):
            wide.annotate(f"{ni:,}", (xi, ri), textcoords="offset points", xytext=(4, -9), fontsize=6, color=color)
        points = _decade_points(h.y, s)
        low.plot([max(p[0], _SCORE_FLOOR) for p in points], [p[1] for p in points], marker + "-", color=color,
                 markersize=5, linewidth=1, label=f"{label}: mean score {s.mean():.4f}, fraud rate {h.y.mean():.4f}")
        for mean, rate_b, rows, frauds in points:
            low.annotate(f"{frauds:,}/{rows:,}", (max(mean, _SCORE_FLOOR), rate_b), textcoords="offset points",
                         xytext=(4, -9), fontsize=6, color=color)
    for ax, where in ((wide, "lower right"), (low, "upper left")):
        ax.plot([_SCORE_FLOOR, 1], [_SCORE_FLOOR, 1], color="black", linestyle=":", linewidth=1, label="perfect")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc=where)
    wide.set(xlabel="mean score in the bin", ylabel="fraud rate in the bin (95 % interval)", xlim=(0, 1.02),
             ylim=(-0.02, 1.1), title="the 10 equal-width bins of the ECE (rows per bin)")
    low.set(xscale="log", yscale="log", xlabel=f"mean score (log; below {_SCORE_FLOOR:g} drawn at it)",
            ylabel="fraud rate (log)", title="score decades holding a fraud (frauds/rows)")
    fig.suptitle(f"Reliability on the held-out rows, {h.title}\n"
                 f"gap: the largest |mean score - fraud rate| of a bin holding >= {CALIBRATION_MIN_ROWS} rows",
                 fontsize=10, y=1.04)
    return _png(fig)


def render(h: HeldOut) -> dict[str, bytes]:
    """Every picture of a version, by file name."""
    return {"curves.png": curves(h), "scores.png": scores(h), "scenarios.png": scenarios(h),
            "reliability.png": reliability(h)}
