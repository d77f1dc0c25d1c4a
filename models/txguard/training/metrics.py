"""Held-out metrics and the review/block thresholds derived from held-out scores.

`wallet_precision_at_100` adapts the Fraud Detection Handbook's "card precision top-k": each
test day, rank wallets by their highest score that day, take the 100 a fraud team could check,
and count how many really had fraud that day; averaged over test days. It reflects a
fixed-capacity investigation team better than any transaction-level curve. When fewer than 100
wallets have fraud on a day the value is capped, so `wallet_precision_at_100_ceiling` (a perfect
ranking's value) is reported next to it.

Calibration (`calibration`): a score is read as a probability (an analyst's "0.93", a rule's
`score > 0.8`, a review budget), so training reports how far it is from one on the held-out rows:
the Brier score, the expected calibration error over 10 equal-width bins, the largest gap of any
bin holding at least 100 rows (the error-weighted ECE is dominated by the mass near 0 and would hide
the decision region), and the mean score against the fraud rate.
"""

from __future__ import annotations

import numpy as np

from txguard.features.wallet import DAY
from txguard.registry.metadata import Thresholds

REVIEW_FPR = 0.01  # review queue: 1% of legitimate traffic at most
BLOCK_FPR = 0.001  # blocking: 0.1% of legitimate traffic at most...
BLOCK_PRECISION = 0.9  # ...and at least 90% of blocked transactions fraudulent when reachable
CALIBRATION_BINS = 10  # equal-width score bins of the expected calibration error
CALIBRATION_MIN_ROWS = 100  # a bin this full is judged on its own (`ece_max_gap`)


def threshold_at_fpr(y: np.ndarray, scores: np.ndarray, fpr: float = 0.01) -> float:
    """The lowest threshold t that flags (score >= t) at most `fpr` of the legitimate rows."""
    from sklearn.metrics import roc_curve

    fprs, _, thresholds = roc_curve(y, scores, drop_intermediate=False)
    ok = np.nonzero(fprs <= fpr)[0]
    return float(thresholds[ok[-1]])  # fprs[0] == 0 at threshold +inf: always one


def recall_at_fpr(y: np.ndarray, scores: np.ndarray, fpr: float = 0.01) -> float:
    return float(np.mean(scores[y == 1] >= threshold_at_fpr(y, scores, fpr))) if (y == 1).any() else 0.0


def wallet_precision_at_k(
    y: np.ndarray, scores: np.ndarray, ts: np.ndarray, wallets: np.ndarray, k: int = 100
) -> float:
    return _wallet_precision(y, scores, ts, wallets, k)[0]


def _wallet_precision(
    y: np.ndarray, scores: np.ndarray, ts: np.ndarray, wallets: np.ndarray, k: int
) -> tuple[float, float]:
    """(precision at k, best achievable precision at k: fewer than k wallets have fraud on a day)."""
    days = np.floor(ts / DAY).astype(np.int64)
    precisions, ceilings = [], []
    for day in np.unique(days):
        mask = days == day
        best: dict[str, tuple[float, int]] = {}
        for w, s, label in zip(wallets[mask], scores[mask], y[mask], strict=True):
            prev = best.get(w)
            best[w] = (max(prev[0], s), max(prev[1], int(label))) if prev else (float(s), int(label))
        ranked = sorted(best.values(), key=lambda v: -v[0])[:k]
        precisions.append(sum(label for _, label in ranked) / k)
        ceilings.append(min(k, sum(label for _, label in best.values())) / k)
    if not precisions:
        return 0.0, 0.0
    return float(np.mean(precisions)), float(np.mean(ceilings))


def pr_auc(y: np.ndarray, scores: np.ndarray) -> float:
    """Average precision (the PR-AUC every report quotes)."""
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, scores))


def evaluate(y: np.ndarray, scores: np.ndarray, ts: np.ndarray, wallets: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    if y.min() == y.max():
        raise ValueError("the held-out period has a single class: cannot evaluate (more data needed)")
    wallet_p, wallet_ceiling = _wallet_precision(y, scores, ts, wallets, 100)
    return {
        "pr_auc": pr_auc(y, scores),
        "roc_auc": float(roc_auc_score(y, scores)),
        "recall_at_1pct_fpr": recall_at_fpr(y, scores, 0.01),
        "wallet_precision_at_100": wallet_p,
        "wallet_precision_at_100_ceiling": wallet_ceiling,
    }


def recall_by_scenario(y: np.ndarray, scores: np.ndarray, scenarios: list[str], threshold: float) -> dict[str, dict[str, float]]:
    """Per fraud scenario named in the data: frauds, how many score at or above `threshold` (the
    review threshold), and that recall. Empty when the data names no scenario."""
    named = np.asarray(scenarios, dtype=object)
    out: dict[str, dict[str, float]] = {}
    for name in sorted({s for s, label in zip(scenarios, y, strict=True) if label == 1 and s}):
        mask = (named == name) & (y == 1)
        caught = int((scores[mask] >= threshold).sum())
        out[name] = {"frauds": int(mask.sum()), "caught": caught, "recall": round(caught / int(mask.sum()), 4)}
    return out


def _fpr_threshold(legit_scores: np.ndarray, fpr: float) -> float:
    """A threshold t with at most `fpr` of legitimate scores >= t, in the middle of a score gap.

    Placing it mid-gap (not just above a score) leaves a margin so the float32 (ONNX) and float64
    (scikit-learn) scores of the same row never fall on different sides of it.
    """
    s = np.sort(legit_scores.astype(np.float64))[::-1]
    allowed = int(np.floor(fpr * len(s)))
    if allowed >= len(s):
        return 0.0
    below = s[allowed]
    above = s[allowed - 1] if allowed > 0 else min(1.0, below + 2e-4)
    return float((below + above) / 2) if above > below else float(below + 1e-7)


def derive_thresholds(y: np.ndarray, scores: np.ndarray) -> Thresholds:
    """review: FPR 1% on held-out legit; block: the stricter of FPR 0.1% and precision >= 0.9."""
    legit = scores[y == 0]
    review = _fpr_threshold(legit, REVIEW_FPR)
    block = _fpr_threshold(legit, BLOCK_FPR)
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(y[order] == 1)
    precision = tp / np.arange(1, len(order) + 1)
    reach = np.nonzero(precision >= BLOCK_PRECISION)[0]
    if len(reach):
        # Just below the lowest score whose top set is still >= 90% precise (mid-gap, as above).
        i = reach[-1]
        lowest = float(scores[order][i])
        nxt = float(scores[order][i + 1]) if i + 1 < len(order) else 0.0
        block = max(block, (lowest + nxt) / 2 if lowest > nxt else lowest)
    review = min(max(review, 1e-6), 1.0)
    block = min(max(block, review), 1.0)
    return Thresholds(review=round(review, 6), block=round(block, 6))


def reliability(y: np.ndarray, scores: np.ndarray, bins: int = CALIBRATION_BINS) -> list[dict[str, float]]:
    """The non-empty equal-width score bins: bounds, rows, mean score and fraud rate of each
    (the reliability diagram's points; a score of exactly 1 falls in the last bin)."""
    index = np.minimum((np.asarray(scores, dtype=np.float64) * bins).astype(np.int64), bins - 1)
    out = []
    for b in range(bins):
        rows = index == b
        n = int(rows.sum())
        if n:
            out.append({"lo": b / bins, "hi": (b + 1) / bins, "rows": n, "mean_score": float(scores[rows].mean()),
                        "fraud_rate": float(y[rows].mean())})
    return out


def calibration(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Brier score, ECE (10 equal-width bins), the largest |mean score - fraud rate| of a bin holding
    at least CALIBRATION_MIN_ROWS rows, and the mean score divided by the fraud rate (1 is exact)."""
    y64, s64 = np.asarray(y, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    bins = reliability(y64, s64)
    gaps = [(b["rows"], abs(b["mean_score"] - b["fraud_rate"])) for b in bins]
    return {
        "brier": float(np.mean((s64 - y64) ** 2)),
        "ece": float(sum(n * gap for n, gap in gaps) / len(y64)),
        "ece_max_gap": float(max((gap for n, gap in gaps if n >= CALIBRATION_MIN_ROWS), default=0.0)),
        "score_to_fraud_rate": float(s64.mean() / y64.mean()) if y64.any() else float("nan"),
    }


def alerts(scores: np.ndarray, thresholds: Thresholds) -> dict[str, int]:
    """How many rows the thresholds send to review or block (>= review) and to block alone."""
    return {"review": int(np.sum(scores >= thresholds.review)), "block": int(np.sum(scores >= thresholds.block))}
