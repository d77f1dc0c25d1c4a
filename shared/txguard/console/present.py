"""How the console's pages read: names people use for metrics and features, numbers without
scientific notation, times in UTC with the zone shown.

The pages show `human(name)` with the raw name in a tooltip (the name in the code, the logs and the
model's metadata), `number(value, name)` for every figure: counts as integers with thousands
separators, large values in full, four significant digits otherwise; and `utc(moment)` for every
time. Registered as Jinja filters by txguard.console.app.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

METRICS: dict[str, str] = {
    "pr_auc": "PR-AUC",
    "roc_auc": "ROC-AUC",
    "recall_at_1pct_fpr": "recall at 1 % false positives",
    "wallet_precision_at_100": "precision of the top 100 wallets",
    "brier": "Brier score",
    "ece": "expected calibration error",
    "ece_max_gap": "largest calibration gap of a bin",
    "score_to_fraud_rate": "mean score / fraud rate",
    "train_seconds": "training time (s)",
    "n_train": "training rows",
    "n_calibration": "calibration rows",
    "n_test": "held-out rows",
    "psi": "PSI",
}
# Word by word, for feature names (snake_case, with abbreviations and windows).
WORDS: dict[str, str] = {
    "tx": "transactions", "cp": "counterparty", "amount": "amount", "std": "std. dev.", "zscore": "z-score",
    "mean": "mean", "sum": "sum", "count": "count", "len": "length", "is": "is", "new": "new",
    "1h": "1 h", "24h": "24 h", "1d": "1 day", "7d": "7 days", "30d": "30 days", "log": "(log)",
}
FEATURES_SPELLED: dict[str, str] = {
    "amount_log": "amount (log)",
    "seconds_since_last": "seconds since the wallet's last transaction",
    "seconds_since_last_inflow": "seconds since the last inflow",
    "outflow_to_inflow_24h": "outflow / inflow, 24 h",
    "history_len": "transactions in the wallet's history",
    "wallet_age_days": "wallet age (days)",
    "cp_age_days": "counterparty age (days)",
    "counterparty_known_days": "days since the wallet first paid this counterparty",
    "channel_code": "channel",
    "hour_of_day": "hour of day (UTC)",
    "day_of_week": "day of week (UTC)",
    "has_device": "has a device",
    "cp_amount_ratio_30d": "amount / counterparty's 30-day mean",
    "amount_ratio_30d": "amount / wallet's 30-day mean",
    "amount_zscore_30d": "amount z-score, 30 days",
    "cp_fraud_first_days": "days since the counterparty's first fraud",
    "cp_fraud_last_days": "days since the counterparty's last fraud",
    "cp_wallet_fraud_30d": "counterparty's own known frauds as a payer, 30 days",
    "score": "score",
}
_WINDOW = re.compile(r"^\d+[hd]$")


def human(name: str) -> str:
    """The name a person reads for a metric or feature; unknown names fall back to words."""
    if name in METRICS:
        return METRICS[name]
    if name in FEATURES_SPELLED:
        return FEATURES_SPELLED[name]
    if name.startswith("baseline_"):
        return f"rules baseline: {human(name.removeprefix('baseline_'))}"
    if name.endswith("_uncalibrated"):
        return f"{human(name.removesuffix('_uncalibrated'))} (trees alone)"
    if name.endswith("_ceiling"):
        return f"{human(name.removesuffix('_ceiling'))}, best possible"
    parts = name.split("_")
    window = parts.pop() if parts and _WINDOW.match(parts[-1]) else None
    words = " ".join(WORDS.get(p, p) for p in parts)
    if name.startswith("cp_fraud_rate"):
        words = "counterparty fraud rate"
    return f"{words}, {WORDS.get(window, window)}" if window else words


def is_count(name: str) -> bool:
    return name.startswith("n_") or name in ("rows", "queued", "windows") or name.endswith(("_count", "_rows"))


def number(value: Any, name: str = "") -> str:
    """A figure as people read it: 30,250 (not 3.025e+04), 0.9551, 2,592,000."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "∞" if value > 0 else ("−∞" if value < 0 else "–")
    if isinstance(value, int) or is_count(name) or (float(value).is_integer() and abs(value) >= 1):
        return f"{round(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if value != 0 and abs(value) < 1e-4:
        return f"{value:.1e}"  # a parity difference: its order of magnitude is what matters
    return f"{value:.4g}"


def utc(moment: Any, seconds: bool = True) -> str:
    """`2026-12-06 19:18:50 UTC` from a datetime, an ISO 8601 string or epoch seconds."""
    if moment in (None, ""):
        return "–"
    if isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, UTC)
    elif isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError:
            return moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def feature_names() -> dict[str, str]:
    """Every feature the model reads, by its name in the code -> the name a person reads."""
    from txguard.features.wallet import FEATURE_NAMES

    return {name: human(name) for name in FEATURE_NAMES}


def register(app: Any) -> None:
    app.add_template_global(feature_names, "feature_names")
    app.add_template_filter(human, "human")
    app.add_template_filter(number, "number")
    app.add_template_filter(utc, "utc")
