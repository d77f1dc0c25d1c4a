"""Backtest a rule set on history: what each rule would have done, against the labels known then.

The input is a `BacktestSample`: a feature table's rows (the model's input row of every
transaction, its text fields, time, label and when the label became known) with the production
model's scores, recorded when the sample was made (`txguard rules backtest --features RUN` makes
one from a `txguard batch run --features` table; the console reads a saved one). Numbers only
(numpy), so the console can run it without the batch tooling.

Reported, per rule: hits and hits per day, precision and recall against the frauds known at
`as_of` (default: the last transaction of the sample; a fraud whose label came later is counted
as not known, as it would have been then), the known frauds it catches that the model's review
threshold misses, and the extra reviews per day (transactions the model allowed that the rule
sends to review or block); then the whole set against the model alone, and per scenario when the
sample names them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from txguard.contract.models import Outcome
from txguard.features.wallet import FEATURE_NAMES
from txguard.rules.engine import RuleSet, decide
from txguard.rules.vocabulary import TEXT_FIELDS

DAY = 86400.0
_CODES = {Outcome.ALLOW: 0, Outcome.REVIEW: 1, Outcome.BLOCK: 2}
_OUTCOMES = (Outcome.ALLOW, Outcome.REVIEW, Outcome.BLOCK)


@dataclass
class BacktestSample:
    x: np.ndarray  # (n, len(FEATURE_NAMES)) float64, the model's input rows
    ts: np.ndarray  # (n,) epoch seconds of the transactions
    is_fraud: np.ndarray  # (n,) int8: 1 fraud, 0 not, -1 unknown
    label_time: np.ndarray  # (n,) epoch seconds the label became known (NaN: at once)
    scores: np.ndarray  # (n,) the model's calibrated scores
    review: float  # the model's thresholds
    block: float
    model_version: str
    texts: dict[str, np.ndarray] = field(default_factory=dict)  # TEXT_FIELDS present in the source
    scenario: np.ndarray | None = None  # (n,) str, when the source names scenarios
    source: str = ""

    def __len__(self) -> int:
        return len(self.ts)

    def save(self, path: str | Path) -> None:
        """One .npz (numpy only, no pickle: text as fixed-width unicode arrays)."""
        arrays: dict[str, Any] = {"x": self.x, "ts": self.ts, "is_fraud": self.is_fraud, "label_time": self.label_time,
                                  "scores": self.scores, "thresholds": np.array([self.review, self.block]),
                                  "meta": np.array([self.model_version, self.source])}
        for name, values in self.texts.items():
            arrays[f"text_{name}"] = np.asarray(values, dtype=str)
        if self.scenario is not None:
            arrays["scenario"] = np.asarray(self.scenario, dtype=str)
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> BacktestSample:
        with np.load(path, allow_pickle=False) as data:
            if data["x"].shape[1:] != (len(FEATURE_NAMES),):
                raise ValueError(f"{path}: rows of {data['x'].shape[1:]} features, the model takes "
                                 f"{len(FEATURE_NAMES)}: made by another version of txguard")
            review, block = (float(v) for v in data["thresholds"])
            version, source = (str(v) for v in data["meta"])
            texts = {name: data[f"text_{name}"] for name in TEXT_FIELDS if f"text_{name}" in data}
            return cls(x=data["x"], ts=data["ts"], is_fraud=data["is_fraud"], label_time=data["label_time"],
                       scores=data["scores"], review=review, block=block, model_version=version, texts=texts,
                       scenario=data.get("scenario"), source=source)


class _Row:
    """A row's text fields, as the compiled rules read them (attributes of the transaction)."""

    __slots__ = TEXT_FIELDS

    def __init__(self, values: Sequence[str]) -> None:
        for name, value in zip(TEXT_FIELDS, values, strict=True):
            object.__setattr__(self, name, value)


def _rows(sample: BacktestSample, needed: frozenset[str]) -> list[_Row]:
    missing = sorted((needed & set(TEXT_FIELDS)) - set(sample.texts))
    if missing:
        raise ValueError(f"the rules read {', '.join(missing)}, which the feature table lacks "
                         f"(a table written before txguard kept text fields): rerun txguard batch run --features")
    n = len(sample)
    columns = [sample.texts[name].tolist() if name in sample.texts else [""] * n for name in TEXT_FIELDS]
    return [_Row(values) for values in zip(*columns, strict=True)]


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


def window(sample: BacktestSample, since: float) -> BacktestSample:
    """The sample's transactions from `since` on (their features still saw the history before it): a
    backtest of recent days, after the warm-up of a feature table whose first days see every
    counterparty as new."""
    keep = sample.ts >= since
    return BacktestSample(
        x=sample.x[keep], ts=sample.ts[keep], is_fraud=sample.is_fraud[keep], label_time=sample.label_time[keep],
        scores=sample.scores[keep], review=sample.review, block=sample.block, model_version=sample.model_version,
        texts={k: v[keep] for k, v in sample.texts.items()},
        scenario=None if sample.scenario is None else sample.scenario[keep], source=sample.source)


def run_backtest(rules: RuleSet, sample: BacktestSample, as_of: float | None = None,
                 since: float | None = None) -> dict[str, Any]:
    """The report (JSON-friendly): per rule, the whole set, and per scenario."""
    if since is not None:
        sample = window(sample, since)
    n = len(sample)
    if n == 0:
        raise ValueError("the sample has no transactions")
    as_of = float(sample.ts.max()) if as_of is None else as_of
    label_time = np.where(np.isnan(sample.label_time), sample.ts, sample.label_time)
    fraud = (sample.is_fraud == 1)
    known = fraud & (label_time <= as_of)
    scores = sample.scores
    model_codes = (scores >= sample.review).astype(np.int8) + (scores >= sample.block).astype(np.int8)
    model_flagged = model_codes > 0
    rows = _rows(sample, rules.compiled.names)
    evaluate = rules.evaluate
    hits = np.zeros((n, len(rules)), dtype=bool)
    final = model_codes.copy()
    outcomes = rules.outcomes
    for i, (row, score, tx) in enumerate(zip(sample.x.tolist(), scores.tolist(), rows, strict=True)):
        fired = evaluate(row, score, tx)
        if fired:
            hits[i, fired] = True
            final[i] = _CODES[decide(_OUTCOMES[model_codes[i]], [outcomes[j] for j in fired])]
    days = np.floor(sample.ts / DAY).astype(np.int64)
    day_list = sorted(set(days.tolist()))
    n_days = max(len(day_list), 1)
    total_known = int(known.sum())
    per_rule = []
    for j, name in enumerate(rules.names):
        h = hits[:, j]
        flags = outcomes[j] is not Outcome.ALLOW
        caught = h & known
        per_day = np.bincount(np.searchsorted(day_list, days[h]), minlength=len(day_list)).tolist()
        per_rule.append({
            "rule": name, "outcome": outcomes[j].value, "hits": int(h.sum()),
            "hits_per_day": round(float(h.sum()) / n_days, 2), "hits_by_day": per_day,
            "precision": _ratio(float(caught.sum()), float(h.sum())),
            "recall": _ratio(float(caught.sum()), float(total_known)),
            "frauds_caught": int(caught.sum()),
            "caught_model_missed": int((caught & ~model_flagged).sum()) if flags else 0,
            "extra_reviews_per_day": round(float((h & ~model_flagged).sum()) / n_days, 2) if flags else 0.0,
            "legit_allowed": int((h & ~fraud & model_flagged).sum()) if not flags else 0,
            "frauds_allowed": int((h & known & model_flagged).sum()) if not flags else 0,
        })
    flagged = final > 0

    def summary(mask: np.ndarray) -> dict[str, Any]:
        return {"flagged": int(mask.sum()), "flagged_per_day": round(float(mask.sum()) / n_days, 2),
                "precision": _ratio(float((mask & known).sum()), float(mask.sum())),
                "recall": _ratio(float((mask & known).sum()), float(total_known)),
                "frauds_caught": int((mask & known).sum())}

    report: dict[str, Any] = {
        "transactions": n, "days": n_days, "first_day": _iso_day(day_list[0]), "last_day": _iso_day(day_list[-1]),
        "as_of": _iso(as_of), "frauds_known": total_known, "frauds_not_known_yet": int((fraud & ~known).sum()),
        "model_version": sample.model_version, "rule_set": rules.version, "rules": per_rule,
        "model": summary(model_flagged), "with_rules": summary(flagged),
        "extra_reviews_per_day": round(float((flagged & ~model_flagged).sum()) / n_days, 2),
        "caught_model_missed": int((flagged & known & ~model_flagged).sum()),
        "days_list": [_iso_day(d) for d in day_list],
    }
    if sample.scenario is not None:
        by: dict[str, Any] = {}
        for name in sorted(set(sample.scenario[fraud].tolist())):
            mask = fraud & (sample.scenario == name)
            by[name] = {"frauds": int(mask.sum()), "model": int((mask & model_flagged).sum()),
                        "with_rules": int((mask & flagged).sum()),
                        "rules": {r: int((mask & hits[:, j]).sum()) for j, r in enumerate(rules.names)
                                  if (mask & hits[:, j]).any()}}
        report["by_scenario"] = by
    return report


def _iso_day(day: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(day * DAY, UTC).date().isoformat()


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(math.floor(ts), UTC).isoformat().replace("+00:00", "Z")
