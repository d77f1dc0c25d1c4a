"""The backtest's picture, like the training pictures: hits per day of each rule, and each rule's
precision and the frauds it catches that the model misses (PNG, matplotlib's Agg backend)."""

from __future__ import annotations

import io
from typing import Any


def render(report: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rules = report["rules"]
    days = report["days_list"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), dpi=110)
    for r in rules:
        left.plot(range(len(days)), r["hits_by_day"], marker="o", ms=3, label=r["rule"])
    step = max(1, len(days) // 7)
    left.set_xticks(range(0, len(days), step), [d[5:] for d in days[::step]], rotation=45, fontsize=8)
    left.set_yscale("symlog", linthresh=10)  # an allowlist's hundreds beside a new rule's handful
    left.set_ylim(bottom=0)  # counts: no negative half of the symlog axis
    left.set_title("hits per day")
    left.set_xlabel("day (UTC)")
    left.legend(fontsize=7, loc="upper left")
    rules_flagging = [r for r in rules if r["outcome"] != "allow"]  # an allow rule's precision means nothing
    names = [r["rule"] for r in rules_flagging]
    precision = [r["precision"] or 0.0 for r in rules_flagging]
    ys = range(len(names))
    right.barh(ys, precision, color="#4c72b0", label="precision")
    for y, r in zip(ys, rules_flagging, strict=True):
        right.text(min((r["precision"] or 0.0) + 0.02, 0.9), y,
                   f"{r['hits']} hits, {r['caught_model_missed']} frauds the model missed", va="center", fontsize=7)
    right.set_yticks(list(ys), names, fontsize=7)
    right.set_xlim(0, 1)
    right.invert_yaxis()
    right.set_title(f"precision (labels known at {report['as_of'][:10]})")
    fig.suptitle(f"rule set {report['rule_set']} beside model {report['model_version']}: "
                 f"{report['with_rules']['frauds_caught']} frauds caught with the rules, "
                 f"{report['model']['frauds_caught']} by the model alone", fontsize=9)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    return out.getvalue()
