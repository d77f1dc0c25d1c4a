"""Human-readable reason codes for a decision, from the model's own input features.

A reviewer needs to know *why* a transaction was flagged in a few words. Model explanations
(SHAP) cost milliseconds per row; these rules cost microseconds: each rule looks at one feature,
fires past a threshold, and measures how far past it the value is (its *deviation*, 1.0 = just at
the threshold). The top few by deviation become `Decision.reasons`.

The rules are data (`RULES`: a trigger plus conditions), so the batch path finds in numpy the rows
where a rule fires and formats text only for those (`reasons_matrix`); a test checks that both
paths agree.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from txguard.features.wallet import FEATURE_NAMES, SMALL_AMOUNT

MAX_REASONS = 3
_IX = {name: i for i, name in enumerate(FEATURE_NAMES)}

Row = Sequence[float]


def _v(row: Row, name: str) -> float:
    return float(row[_IX[name]])


def _plural(n: float, word: str, plural: str | None = None) -> str:
    return f"{n:.0f} {word if round(n) == 1 else (plural or word + 's')}"


_OPS: dict[str, Callable[[Any, float], Any]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "==": operator.eq,
}
Condition = tuple[str, str, float]  # (feature, op, value)


@dataclass(frozen=True)
class Rule:
    """Fires when `feature` >= `threshold` (<= when `below`) and every extra condition holds."""

    code: str
    feature: str
    threshold: float
    text: Callable[[Row], str]
    below: bool = False
    conditions: tuple[Condition, ...] = ()
    weight: float = 1.0  # how alarming the signal is, relative to the others

    def all_conditions(self) -> tuple[Condition, ...]:
        return ((self.feature, "<=" if self.below else ">=", self.threshold), *self.conditions)

    def deviation(self, value: float) -> float:
        """How far past the threshold `value` is (>= `weight` once the rule fires)."""
        if self.below:
            return self.weight * self.threshold / max(value, self.threshold / 10.0)
        return self.weight * value / self.threshold


OUTFLOW: Condition = ("is_top_up", "==", 0.0)
HAD_INFLOW: Condition = ("inflow_sum_24h", ">", 0.0)
HAS_HISTORY: Condition = ("history_len", ">=", 3.0)

RULES: tuple[Rule, ...] = (
    Rule("amount_vs_mean", "amount_ratio_30d", 4.0,
         lambda r: f"amount {_v(r, 'amount_ratio_30d'):.1f}x the wallet's 30-day mean",
         conditions=(HAS_HISTORY,)),
    Rule("new_counterparties", "new_counterparties_24h", 4.0,
         lambda r: f"{_plural(_v(r, 'new_counterparties_24h'), 'new counterparty', 'new counterparties')} in 24h"),
    Rule("velocity_1h", "tx_count_1h", 5.0,
         lambda r: f"{_plural(_v(r, 'tx_count_1h'), 'transaction')} in the last hour"),
    Rule("small_probes", "small_tx_count_1h", 3.0,
         lambda r: f"{_plural(_v(r, 'small_tx_count_1h'), 'transaction')} under {SMALL_AMOUNT:.0f} "
                   "in the last hour", weight=1.5),
    Rule("out_after_top_up", "seconds_since_last_inflow", 600.0,
         lambda r: f"money out within {max(_v(r, 'seconds_since_last_inflow') / 60.0, 1.0):.0f} min of a top-up",
         below=True, conditions=(OUTFLOW, HAD_INFLOW), weight=1.2),
    Rule("drains_inflow", "outflow_to_inflow_24h", 0.9,
         lambda r: f"{min(_v(r, 'outflow_to_inflow_24h'), 99.0) * 100:.0f}% of the last 24h inflow sent out",
         conditions=(OUTFLOW, HAD_INFLOW)),
    Rule("new_device", "is_new_device", 1.0, lambda _r: "device never used by this wallet before", weight=1.3),
    Rule("country_changed", "country_changed", 1.0,
         lambda _r: "country differs from the previous transaction", conditions=(HAS_HISTORY,), weight=1.2),
    Rule("burst", "seconds_since_last", 10.0,
         lambda r: f"{_v(r, 'seconds_since_last'):.0f}s after the previous transaction", below=True,
         conditions=(HAS_HISTORY,), weight=0.5),
    Rule("young_wallet", "wallet_age_days", 1.0, lambda _r: "wallet less than a day old", below=True,
         conditions=(OUTFLOW, ("history_len", ">", 0.0)), weight=0.8),
    Rule("counterparty_fraud", "cp_fraud_30d", 2.0,
         lambda r: f"counterparty has {_plural(_v(r, 'cp_fraud_30d'), 'known fraud')} in 30 days", weight=1.6),
    Rule("counterparty_new_payers", "cp_new_wallets_1h", 5.0,
         lambda r: f"{_plural(_v(r, 'cp_new_wallets_1h'), 'wallet')} paid this counterparty for the first "
                   "time in the last hour"),
    Rule("device_fraud", "device_fraud_30d", 1.0,
         lambda r: f"device linked to {_plural(_v(r, 'device_fraud_30d'), 'known fraud')} in 30 days", weight=1.4),
    Rule("device_burst", "device_new_wallets_1h", 3.0,
         lambda r: f"device used by {_plural(_v(r, 'device_new_wallets_1h'), 'new wallet')} in the last hour",
         weight=1.3),
    Rule("device_shared", "device_new_wallets_24h", 3.0,
         lambda r: f"device used by {_plural(_v(r, 'device_new_wallets_24h'), 'new wallet')} in 24h", weight=1.2),
    Rule("inflow_new_payers", "in_new_payers_24h", 5.0,
         lambda r: f"wallet paid by {_plural(_v(r, 'in_new_payers_24h'), 'new payer')} in 24h"),
    Rule("inflow_fraud", "in_fraud_30d", 1.0,
         lambda r: f"wallet received {_plural(_v(r, 'in_fraud_30d'), 'known fraud')} in 30 days", weight=1.5),
    Rule("wallet_fraud", "wallet_fraud_30d", 1.0,
         lambda r: f"wallet has {_plural(_v(r, 'wallet_fraud_30d'), 'known fraud')} in 30 days", weight=1.5),
)


# Compiled once: (feature index, below, threshold, extra conditions as (index, op, value), rule).
_COMPILED = tuple(
    (_IX[r.feature], r.below, r.threshold, tuple((_IX[n], _OPS[op], v) for n, op, v in r.conditions), r)
    for r in RULES
)


def reasons_for(row: Row, limit: int = MAX_REASONS) -> list[str]:
    """The top `limit` reasons of one feature row (FEATURE_NAMES order), strongest first."""
    fired = None
    for idx, below, threshold, extra, rule in _COMPILED:
        value = row[idx]
        if (value > threshold) if below else (value < threshold):
            continue  # the common case: a few comparisons per row and nothing else
        if extra and not all(op(row[i], v) for i, op, v in extra):
            continue
        if fired is None:
            fired = []
        fired.append((rule.deviation(value), rule))
    if fired is None:
        return []
    fired.sort(key=lambda item: -item[0])
    return [rule.text(row) for _dev, rule in fired[:limit]]


def fired_mask(x: np.ndarray) -> np.ndarray:
    """(n, len(RULES)) booleans: which rule fires on which row, computed in numpy."""
    mask = np.ones((x.shape[0], len(RULES)), dtype=bool)
    for j, rule in enumerate(RULES):
        for name, op, value in rule.all_conditions():
            mask[:, j] &= _OPS[op](x[:, _IX[name]], value)
    return mask


def candidate_rows(x: np.ndarray) -> np.ndarray:
    """Indices of the rows where at least one rule fires."""
    return np.flatnonzero(fired_mask(x).any(axis=1))


def reasons_matrix(x: np.ndarray, limit: int = MAX_REASONS) -> list[list[str]]:
    """`reasons_for` of every row of a matrix: which rules fire and their ranking in numpy (the same
    float operations as `Rule.deviation`, ties kept in rule order by a stable sort), so Python only
    formats the texts of the rows where a rule fires."""
    out: list[list[str]] = [[] for _ in range(x.shape[0])]
    mask = fired_mask(x)
    rows = np.flatnonzero(mask.any(axis=1))
    if not len(rows):
        return out
    sub, fired = x[rows], mask[rows]
    deviation = np.full(fired.shape, -np.inf)
    for j, rule in enumerate(RULES):
        value = sub[:, _IX[rule.feature]]
        if rule.below:
            dev = rule.weight * rule.threshold / np.maximum(value, rule.threshold / 10.0)
        else:
            dev = rule.weight * value / rule.threshold
        deviation[:, j] = np.where(fired[:, j], dev, -np.inf)
    order = np.argsort(-deviation, axis=1, kind="stable")[:, :limit].tolist()
    counts = np.minimum(fired.sum(axis=1), limit).tolist()
    for k, (i, row) in enumerate(zip(rows.tolist(), sub.tolist(), strict=True)):
        out[i] = [RULES[j].text(row) for j in order[k][:counts[k]]]
    return out
