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

Weights: every function takes the rows' weights when the rows are a training sample
(`txguard.batch.sampling`: a kept legitimate row stands for 1 / fraction rows of the full traffic,
a fraud for itself). Rates, curves, thresholds and alert counts are then weighted sums, i.e.
estimates of the same figures on the full traffic: a threshold that flags 1 % of the sample's
weighted legitimate rows flags ~1 % of all legitimate traffic. Without weights every row weighs 1
and each function computes exactly what it did before.
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


def threshold_at_fpr(y: np.ndarray, scores: np.ndarray, fpr: float = 0.01, weight: np.ndarray | None = None) -> float:
    """The lowest threshold t that flags (score >= t) at most `fpr` of the (weighted) legitimate rows."""
    from sklearn.metrics import roc_curve

    fprs, _, thresholds = roc_curve(y, scores, sample_weight=weight, drop_intermediate=False)
    ok = np.nonzero(fprs <= fpr)[0]
    return float(thresholds[ok[-1]])  # fprs[0] == 0 at threshold +inf: always one


def recall_at_fpr(y: np.ndarray, scores: np.ndarray, fpr: float = 0.01, weight: np.ndarray | None = None) -> float:
    if not (y == 1).any():
        return 0.0
    caught = scores[y == 1] >= threshold_at_fpr(y, scores, fpr, weight)
    return float(np.average(caught, weights=None if weight is None else weight[y == 1]))


def wallet_precision_at_k(
    y: np.ndarray, scores: np.ndarray, ts: np.ndarray, wallets: np.ndarray, k: int = 100,
    weight: np.ndarray | None = None,
) -> float:
    return _wallet_precision(y, scores, ts, wallets, k, weight)[0]


def _wallet_precision(
    y: np.ndarray, scores: np.ndarray, ts: np.ndarray, wallets: np.ndarray, k: int, weight: np.ndarray | None = None,
) -> tuple[float, float]:
    """(precision at k, best achievable precision at k: fewer than k wallets have fraud on a day).

    Weighted, a wallet-day of the sample stands for `weight` wallet-days (a sample keeps or drops a
    wallet's day whole): the day's top k are the highest-scoring wallets until their weights reach k."""
    days = np.floor(ts / DAY).astype(np.int64)
    w_all = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)
    precisions, ceilings = [], []
    for day in np.unique(days):
        mask = days == day
        best: dict[str, tuple[float, int, float]] = {}
        for w, s, label, ww in zip(wallets[mask], scores[mask], y[mask], w_all[mask], strict=True):
            prev = best.get(w)
            best[w] = (max(prev[0], s), max(prev[1], int(label)), ww) if prev else (float(s), int(label), float(ww))
        ranked = sorted(best.values(), key=lambda v: -v[0])
        taken = found = 0.0
        for _, label, ww in ranked:
            share = min(ww, k - taken)
            if share <= 0:
                break
            taken += share
            found += share * label
        precisions.append(found / k)
        ceilings.append(min(k, sum(ww * label for _, label, ww in best.values())) / k)
    if not precisions:
        return 0.0, 0.0
    return float(np.mean(precisions)), float(np.mean(ceilings))


def pr_auc(y: np.ndarray, scores: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Average precision (the PR-AUC every report quotes)."""
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, scores, sample_weight=weight))


def evaluate(y: np.ndarray, scores: np.ndarray, ts: np.ndarray, wallets: np.ndarray,
             weight: np.ndarray | None = None) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    if y.min() == y.max():
        raise ValueError("the held-out period has a single class: cannot evaluate (more data needed)")
    wallet_p, wallet_ceiling = _wallet_precision(y, scores, ts, wallets, 100, weight)
    return {
        "pr_auc": pr_auc(y, scores, weight),
        "roc_auc": float(roc_auc_score(y, scores, sample_weight=weight)),
        "recall_at_1pct_fpr": recall_at_fpr(y, scores, 0.01, weight),
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


def _fpr_threshold(legit_scores: np.ndarray, fpr: float, weight: np.ndarray | None = None) -> float:
    """A threshold t with at most `fpr` of legitimate scores >= t (of their weight), in the middle of
    a score gap.

    Placing it mid-gap (not just above a score) leaves a margin so the float32 (ONNX) and float64
    (scikit-learn) scores of the same row never fall on different sides of it.
    """
    if weight is not None:
        order = np.argsort(-legit_scores.astype(np.float64), kind="stable")
        s = legit_scores.astype(np.float64)[order]
        cumulative = np.cumsum(np.asarray(weight, dtype=np.float64)[order])
        # the top rows whose weights stay within the allowed share of the legitimate traffic
        allowed = int(np.searchsorted(cumulative, fpr * cumulative[-1] * (1 + 1e-12), side="right")) if len(s) else 0
    else:
        s = np.sort(legit_scores.astype(np.float64))[::-1]
        allowed = int(np.floor(fpr * len(s)))
    if allowed >= len(s):
        return 0.0
    below = s[allowed]
    above = s[allowed - 1] if allowed > 0 else min(1.0, below + 2e-4)
    return float((below + above) / 2) if above > below else float(below + 1e-7)


def derive_thresholds(y: np.ndarray, scores: np.ndarray, weight: np.ndarray | None = None) -> Thresholds:
    """review: FPR 1% on held-out legit; block: the stricter of FPR 0.1% and precision >= 0.9
    (weighted: of the legitimate traffic and the flagged traffic the sample stands for)."""
    legit = scores[y == 0]
    legit_weight = None if weight is None else weight[y == 0]
    review = _fpr_threshold(legit, REVIEW_FPR, legit_weight)
    block = _fpr_threshold(legit, BLOCK_FPR, legit_weight)
    order = np.argsort(-scores, kind="stable")
    if weight is None:
        tp = np.cumsum(y[order] == 1)
        precision = tp / np.arange(1, len(order) + 1)
    else:
        w = np.asarray(weight, dtype=np.float64)[order]
        precision = np.cumsum(w * (y[order] == 1)) / np.cumsum(w)
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


def reliability(y: np.ndarray, scores: np.ndarray, bins: int = CALIBRATION_BINS,
                weight: np.ndarray | None = None) -> list[dict[str, float]]:
    """The non-empty equal-width score bins: bounds, rows, mean score and fraud rate of each
    (the reliability diagram's points; a score of exactly 1 falls in the last bin). Weighted, the
    mean and the rate are weighted and `weight` is the bin's weight; `rows` counts the rows measured."""
    index = np.minimum((np.asarray(scores, dtype=np.float64) * bins).astype(np.int64), bins - 1)
    out = []
    for b in range(bins):
        rows = index == b
        n = int(rows.sum())
        if n:
            w = None if weight is None else np.asarray(weight, dtype=np.float64)[rows]
            out.append({"lo": b / bins, "hi": (b + 1) / bins, "rows": n, "weight": float(n if w is None else w.sum()),
                        "mean_score": float(np.average(scores[rows], weights=w)),
                        "fraud_rate": float(np.average(y[rows], weights=w))})
    return out


def calibration(y: np.ndarray, scores: np.ndarray, weight: np.ndarray | None = None) -> dict[str, float]:
    """Brier score, ECE (10 equal-width bins), the largest |mean score - fraud rate| of a bin holding
    at least CALIBRATION_MIN_ROWS rows, and the mean score divided by the fraud rate (1 is exact).
    Weighted: weighted means; a bin is judged on its own when it holds CALIBRATION_MIN_ROWS rows
    measured (its noise is that of the rows measured, not of the traffic they stand for)."""
    y64, s64 = np.asarray(y, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    w = None if weight is None else np.asarray(weight, dtype=np.float64)
    bins = reliability(y64, s64, weight=weight)
    gaps = [(b["rows"], b["weight"], abs(b["mean_score"] - b["fraud_rate"])) for b in bins]
    rate = float(np.average(y64, weights=w))
    return {
        "brier": float(np.average((s64 - y64) ** 2, weights=w)),
        "ece": float(sum(bw * gap for _n, bw, gap in gaps) / (len(y64) if w is None else w.sum())),
        "ece_max_gap": float(max((gap for n, _bw, gap in gaps if n >= CALIBRATION_MIN_ROWS), default=0.0)),
        "score_to_fraud_rate": float(np.average(s64, weights=w) / rate) if rate else float("nan"),
    }


def alerts(scores: np.ndarray, thresholds: Thresholds, weight: np.ndarray | None = None) -> dict[str, int]:
    """How many rows the thresholds send to review or block (>= review) and to block alone;
    weighted, how many of the traffic the rows stand for (rounded)."""
    if weight is None:
        return {"review": int(np.sum(scores >= thresholds.review)), "block": int(np.sum(scores >= thresholds.block))}
    w = np.asarray(weight, dtype=np.float64)
    return {"review": round(float(w[scores >= thresholds.review].sum())),
            "block": round(float(w[scores >= thresholds.block].sum()))}
