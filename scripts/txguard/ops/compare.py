"""Champion against challenger on labelled traffic, from the scoring function's `shadow_score` lines.

Each line holds both versions' score and outcome for one transaction; labels (which arrive days
later in production) are joined by transaction id. Reported per version: PR-AUC, recall and the
share of legitimate traffic flagged at its own review and block thresholds (the outcomes it would
have given), how far its scores are from the probabilities they claim to be (Brier score, expected
calibration error over 10 equal-width bins, the largest gap of a bin holding >= 100 rows, mean score
against the fraud rate: `txguard.training.metrics.calibration`, as `txguard train` reports them),
and the decision flips between the two: how many transactions would change outcome, and which
way, if the challenger were promoted.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from txguard.training.metrics import calibration

FLAGGED = ("review", "block")


def _side(y: np.ndarray, scores: np.ndarray, outs: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import average_precision_score

    fraud, legit = y == 1, y == 0
    flagged, blocked = np.isin(outs, FLAGGED), outs == "block"
    calibrated = {k: round(v, 5) for k, v in calibration(y, scores).items()} if fraud.any() else {}
    return {
        "pr_auc": round(float(average_precision_score(y, scores)), 4) if fraud.any() and legit.any() else None,
        "recall_review": round(float(flagged[fraud].mean()), 4) if fraud.any() else None,
        "recall_block": round(float(blocked[fraud].mean()), 4) if fraud.any() else None,
        "legit_flagged_rate": round(float(flagged[legit].mean()), 5) if legit.any() else None,
        "legit_blocked_rate": round(float(blocked[legit].mean()), 5) if legit.any() else None,
        "outcomes": dict(sorted(Counter(outs.tolist()).items())),
        "calibration": calibrated,
    }


def compare(shadow: list[dict[str, Any]], labels: dict[str, int]) -> dict[str, Any]:
    """The report; raises ValueError when no shadow line has a label."""
    rows = [s for s in shadow if s.get("transaction_id") in labels]
    if not rows:
        raise ValueError(f"none of the {len(shadow)} shadow_score lines has a label "
                         f"({len(labels)} labels): wrong labels file, or shadow scoring off")
    y = np.array([labels[s["transaction_id"]] for s in rows], dtype=np.int8)
    champion_outs = np.array([s["outcome"] for s in rows], dtype=object)
    challenger_outs = np.array([s["challenger_outcome"] for s in rows], dtype=object)
    flips = Counter(f"{a}->{b}" for a, b in zip(champion_outs, challenger_outs, strict=True) if a != b)
    fraud = y == 1
    gained = int(np.sum(fraud & ~np.isin(champion_outs, FLAGGED) & np.isin(challenger_outs, FLAGGED)))
    lost = int(np.sum(fraud & np.isin(champion_outs, FLAGGED) & ~np.isin(challenger_outs, FLAGGED)))
    return {
        "transactions": len(rows),
        "frauds": int(fraud.sum()),
        "unlabelled_shadow_lines": len(shadow) - len(rows),
        "champion_version": sorted({s["model_version"] for s in rows}),
        "challenger_version": sorted({s["challenger_version"] for s in rows}),
        "champion": _side(y, np.array([s["score"] for s in rows]), champion_outs),
        "challenger": _side(y, np.array([s["challenger_score"] for s in rows]), challenger_outs),
        "decision_flips": sum(flips.values()),
        "flip_rate": round(sum(flips.values()) / len(rows), 5),
        "flips": dict(sorted(flips.items())),
        "frauds_caught_only_by_challenger": gained,
        "frauds_caught_only_by_champion": lost,
    }
