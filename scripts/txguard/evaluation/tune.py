"""Choosing txguard's hyperparameters on the training period only (`txguard evaluate tune`).

The data and the split are `txguard evaluate handbook`'s (txguard.evaluation.compare): same
generator, same seed, same history / train / delay / test periods. Only the TRAINING period's
rows are used: the model is fitted on its first `fit_days` days and each candidate is scored
on the rest (the validation slice); the delay and test periods play no part, so the test
figures `evaluate handbook` reports stay an honest estimate after the choice. The validation
rows are all the training rows of those days; `drop_known_compromised` also leaves out, as the
test period does, those of a customer already known to be defrauded (easy rows: the features
already carry that customer's fraud labels).

Each candidate is a `TrainConfig` (fraud weight, leaves, rows a leaf) fitted by
`txguard.training.train.fit_model` on the features `txguard train --data` computes, and scored
by its ONNX model (`compare.ranking_scores`): the trees alone, on every fit row, since ranking is
what the candidates are compared on; the calibration a published version adds keeps the ranking.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from txguard.evaluation.compare import (
    Split,
    SplitDays,
    handbook_config,
    handbook_split,
    known_compromised,
    ranking_scores,
    score_metrics,
    txguard_dataset,
    utc_iso,
)
from txguard.evaluation.handbook_data import (
    DAY,
    HandbookConfig,
    HandbookData,
    describe,
    generate,
    write_jsonl,
)
from txguard.training.train import TrainConfig

FIT_DAYS = 14  # of the 21 training days: the last 7 (one label delay) validate


@dataclass(frozen=True)
class Candidate:
    """The hyperparameters a candidate changes; everything else is TrainConfig's default."""

    fraud_weight: float
    max_leaf_nodes: int
    min_samples_leaf: int

    def __post_init__(self) -> None:
        if not self.fraud_weight > 0:
            raise ValueError(f"fraud weight (--fraud-weights, --base-weight) must be > 0, got {self.fraud_weight}")
        if self.max_leaf_nodes < 2:
            raise ValueError(f"leaves (--leaves) must be >= 2, got {self.max_leaf_nodes}")
        if self.min_samples_leaf < 1:
            raise ValueError(f"rows a leaf (--min-leaf) must be >= 1, got {self.min_samples_leaf}")

    @property
    def name(self) -> str:
        return f"fraud weight {self.fraud_weight:g}, {self.max_leaf_nodes} leaves, >= {self.min_samples_leaf} rows a leaf"

    def config(self, base: TrainConfig) -> TrainConfig:
        return replace(base, fraud_weight=self.fraud_weight, max_leaf_nodes=self.max_leaf_nodes,
                       min_samples_leaf=self.min_samples_leaf)


def candidates(
    fraud_weights: Sequence[float],
    leaves: Sequence[int] = (),
    min_leaf: Sequence[int] = (),
    base_weight: float = 1.0,
    grid: bool = False,
    base: TrainConfig | None = None,
) -> list[Candidate]:
    """One factor at a time (each fraud weight at TrainConfig's shape, then each other leaf count
    and rows-a-leaf at `base_weight`), or with `grid` every combination; in order, no repeats."""
    if not fraud_weights:
        raise ValueError("--fraud-weights: give at least one fraud weight")
    base = base or TrainConfig()
    leaves = [base.max_leaf_nodes, *leaves]
    min_leaf = [base.min_samples_leaf, *min_leaf]
    if grid:
        found = [Candidate(w, n, m) for w in fraud_weights for n in leaves for m in min_leaf]
    else:
        found = [Candidate(w, base.max_leaf_nodes, base.min_samples_leaf) for w in fraud_weights]
        found += [Candidate(base_weight, n, base.min_samples_leaf) for n in leaves[1:]]
        found += [Candidate(base_weight, base.max_leaf_nodes, m) for m in min_leaf[1:]]
    return list(dict.fromkeys(found))


def validation_split(
    data: HandbookData, days: SplitDays, fit_days: int = FIT_DAYS, drop_known_compromised: bool = False
) -> Split:
    """The training period's rows (those `evaluate handbook` trains on) cut at `fit_days`:
    `train` fits, `test` validates. Both end before the delay period, so never touch the test."""
    _check_fit_days(fit_days, days)
    period = handbook_split(data, days, drop_known_compromised=False).train
    start = float(data.config.start_epoch) + days.history * DAY
    cut, end = start + fit_days * DAY, start + days.train * DAY
    fit = period & (data.ts < cut)
    validation = period & (data.ts >= cut)
    dropped = 0
    if drop_known_compromised:
        already = validation & known_compromised(data)
        dropped = int(already.sum())
        validation &= ~already
    return Split(fit, validation, start, cut, end, dropped)


def _check_fit_days(fit_days: int, days: SplitDays) -> None:
    if not 1 <= fit_days < days.train:
        raise ValueError(f"fit_days (--fit-days) must be in [1, train_days - 1] = [1, {days.train - 1}], got {fit_days}")


def run_tuning(
    data_config: HandbookConfig | None = None,
    days: SplitDays | None = None,
    fit_days: int = FIT_DAYS,
    grid: Sequence[Candidate] | None = None,
    data_path: str | Path = "data/handbook.jsonl",
    drop_known_compromised: bool = False,
    train_config: TrainConfig | None = None,
    log: Callable[[str], None] = lambda _msg: None,
) -> dict[str, Any]:
    """Generate `evaluate handbook`'s data, fit each candidate on the fit days, score the
    validation days; the report, with the candidate of the highest validation PR-AUC (the
    first listed on a tie)."""
    t0 = time.perf_counter()
    days = days or SplitDays()
    _check_fit_days(fit_days, days)  # before minutes of work
    cfg = handbook_config(data_config, days)
    base = train_config or TrainConfig(seed=cfg.seed)
    grid = list(grid) if grid is not None else candidates((1.0, 5.0, 10.0, 20.0), (15,), (100,), base=base)
    log(f"generating {cfg.days} days: {cfg.customers} customers, {cfg.terminals} terminals, seed {cfg.seed}")
    data = generate(cfg)
    split = validation_split(data, days, fit_days, drop_known_compromised)
    y_fit, y_val = data.is_fraud[split.train], data.is_fraud[split.test]
    if y_fit.sum() == 0 or y_val.sum() == 0 or y_val.min() == 1:
        raise ValueError(
            f"not enough fraud on both sides of the validation cut ({int(y_fit.sum())} to fit, "
            f"{int(y_val.sum())} to validate): use more customers or days"
        )
    path = write_jsonl(data, data_path)
    log(f"txguard: features of {len(data)} rows through {path} (txguard.training.dataset.from_file)")
    t = time.perf_counter()
    dataset = txguard_dataset(data, path)
    features_seconds = time.perf_counter() - t
    where = (data.ts[split.test], data.wallet_ids()[split.test], data.scenario_names()[split.test])
    results = []
    for i, candidate in enumerate(grid, 1):
        log(f"[{i}/{len(grid)}] {candidate.name}: fitting on {int(split.train.sum())} rows ({int(y_fit.sum())} frauds)")
        t = time.perf_counter()
        found = score_metrics(y_val, ranking_scores(dataset, split, candidate.config(base)), *where)
        results.append({"name": candidate.name, **vars(candidate), **found,
                        "fit_seconds": round(time.perf_counter() - t, 2)})
    chosen = max(results, key=lambda r: r["pr_auc"])  # max keeps the first of equals
    test_start = split.test_end + days.delay * DAY
    return {
        "candidates": results,
        "chosen": chosen,
        "split": {
            **{f"{k}_days": v for k, v in vars(days).items()},
            "fit_days": fit_days,
            "n_fit": int(split.train.sum()),
            "n_fit_fraud": int(y_fit.sum()),
            "n_validation": int(split.test.sum()),
            "n_validation_fraud": int(y_val.sum()),
            "known_compromised_dropped": split.known_compromised_dropped,
            "fit_start": utc_iso(split.train_start),
            "validation_start": utc_iso(split.test_start),
            "validation_end": utc_iso(split.test_end),
            "test_start": utc_iso(test_start),
            "last_row_used": utc_iso(float(data.ts[split.train | split.test].max())),
        },
        "data": {**describe(data), "path": str(path)},
        "fixed": {"max_iter": base.max_iter, "learning_rate": base.learning_rate, "seed": base.seed,
                  "threads": base.threads},
        "features_seconds": round(features_seconds, 2),
        "seconds": round(time.perf_counter() - t0, 2),
    }

