"""`txguard drift`'s verdict from the scoring function's `drift_window` lines.

The alert is the one the Pulumi alert policy raises in the cloud: the largest PSI of a window
(over every feature and the score) above `threshold` for `sustained` windows in a row. One window
over the line is noise or a burst; several in a row is a population that moved.
"""

from __future__ import annotations

from typing import Any

THRESHOLD = 0.2
SUSTAINED = 2


def assess(windows: list[dict[str, Any]], threshold: float = THRESHOLD, sustained: int = SUSTAINED) -> dict[str, Any]:
    """Summary of `windows` (drift_window lines, any order) and whether they raise the alert."""
    ordered = sorted(windows, key=lambda w: (w.get("window_end", ""), w.get("window_start", "")))
    run = longest = over = 0
    for w in ordered:
        if w["psi_max"] > threshold:
            over += 1
            run += 1
            longest = max(longest, run)
        else:
            run = 0
    worst = max(ordered, key=lambda w: w["psi_max"], default=None)
    by_feature: dict[str, float] = {}
    for w in ordered:
        for name, value in (w.get("psi") or {}).items():
            by_feature[name] = max(by_feature.get(name, 0.0), value)
    top = dict(sorted(by_feature.items(), key=lambda kv: -kv[1])[:5])
    return {
        "windows": len(ordered),
        "rows": sum(int(w.get("rows", 0)) for w in ordered),
        "model_versions": sorted({str(w.get("model_version")) for w in ordered}),
        "psi_max": worst["psi_max"] if worst else None,
        "feature_max": worst["feature_max"] if worst else None,
        "psi_score_max": max((w.get("psi_score", 0.0) for w in ordered), default=None),
        "windows_over": over,
        "longest_run_over": longest,
        "threshold": threshold,
        "sustained": sustained,
        "alert": longest >= sustained,
        "top_features": {name: round(value, 4) for name, value in top.items()},
    }
