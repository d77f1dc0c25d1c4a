"""txguard against the Handbook's recipe on the same rows and the same time split.

The split follows the Handbook (chapter 3.5): a history period that only feeds features, a
training period, a delay period as long as the label delay (its labels are not known yet when
testing starts, so nothing trains on it), then the test period. Training rows are also
required to have their label known before the test starts. As in the Handbook, a test
transaction of a customer already known to be defrauded (a fraud label known before that
transaction) is left out: that card would have been blocked, so it says nothing about detection.

txguard goes through its real path: the rows are written to the JSONL that `txguard train
--data` reads, `txguard.training.dataset.from_file` computes the features the functions
compute, `txguard.training.train.fit_calibrated` fits the model every published version is (trees
on the training rows but a calibration slice of the training period, Platt calibration on that
slice folded into the ONNX graph), and the scores are the ONNX model's, as served; their
calibration is reported next to the trees' own. The recipe reads the same rows as columns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from txguard.evaluation import CLASSIFIERS, recipe
from txguard.evaluation.handbook_data import (
    DAY,
    HandbookConfig,
    HandbookData,
    describe,
    generate,
    write_jsonl,
)
from txguard.training import metrics
from txguard.training.dataset import Dataset, from_file
from txguard.training.train import TrainConfig, fit_calibrated, onnx_scores

FPR = 0.01


@dataclass(frozen=True)
class SplitDays:
    history: int = 30  # features only: the longest window (30 days) plus the delay, nearly
    train: int = 21
    delay: int = 7  # the label delay: labels of these days are unknown when the test starts
    test: int = 14

    def __post_init__(self) -> None:
        for name, least in (("history", 0), ("train", 1), ("delay", 0), ("test", 1)):
            if getattr(self, name) < least:
                raise ValueError(f"{name}_days must be >= {least}, got {getattr(self, name)}")

    @property
    def total(self) -> int:
        return self.history + self.train + self.delay + self.test


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # boolean masks over the rows
    test: np.ndarray
    train_start: float
    test_start: float
    test_end: float
    known_compromised_dropped: int


def handbook_split(data: HandbookData, days: SplitDays, drop_known_compromised: bool = True) -> Split:
    start = float(data.config.start_epoch)
    train_start = start + days.history * DAY
    test_start = train_start + (days.train + days.delay) * DAY
    test_end = test_start + days.test * DAY
    known = np.isnan(data.label_time) | (data.label_time < test_start)
    train = (data.ts >= train_start) & (data.ts < train_start + days.train * DAY) & known
    test = (data.ts >= test_start) & (data.ts < test_end)
    dropped = 0
    if drop_known_compromised:
        already = test & known_compromised(data)
        dropped = int(already.sum())
        test &= ~already
    return Split(train, test, train_start, test_start, test_end, dropped)


def known_compromised(data: HandbookData) -> np.ndarray:
    """Rows of a customer with a fraud label known before the row's time: that card would have
    been blocked, so such a row says nothing about detection (the Handbook leaves it out)."""
    first_known = np.full(data.config.customers, np.inf)
    fraud = data.is_fraud == 1
    np.minimum.at(first_known, data.customer[fraud], data.label_time[fraud])
    return first_known[data.customer] < data.ts


def handbook_config(data_config: HandbookConfig | None, days: SplitDays) -> HandbookConfig:
    """The data's days are the split's days; its label delay is the split's delay period."""
    return replace(data_config or HandbookConfig(), days=days.total, label_delay_days=float(days.delay))


def txguard_dataset(data: HandbookData, path: str | Path) -> Dataset:
    """`data` as txguard reads it: the `txguard train --data` file at `path`, through
    `txguard.training.dataset.from_file` (the columnar replay of the serving features)."""
    dataset = from_file(path)
    _check_same_rows(dataset, data)
    return dataset


def score_metrics(
    y: np.ndarray, scores: np.ndarray, ts: np.ndarray, wallets: np.ndarray, scenarios: np.ndarray
) -> dict[str, Any]:
    out: dict[str, Any] = {k: round(v, 4) for k, v in metrics.evaluate(y, scores, ts, wallets).items()}
    # One threshold for every scenario, the one a deployment would use: weighted by their fraud
    # counts the per-scenario recalls add up to recall_at_1pct_fpr.
    by_scenario = metrics.recall_by_scenario(y, scores, list(scenarios), metrics.threshold_at_fpr(y, scores, FPR))
    out["recall_at_1pct_fpr_by_scenario"] = {k: v["recall"] for k, v in by_scenario.items()}
    return out


def _check_same_rows(dataset: Dataset, data: HandbookData) -> None:
    """The file txguard read and the columns the recipe reads must be the same rows in the same order."""
    if not (
        len(dataset) == len(data)
        and np.array_equal(dataset.ts, data.ts)
        and np.array_equal(dataset.y, data.is_fraud)
        and np.array_equal(dataset.wallets, data.wallet_ids())
    ):
        raise RuntimeError("txguard's dataset and the recipe's columns are not the same rows in the same order")


def ranking_scores(dataset: Dataset, split: Split, config: TrainConfig) -> np.ndarray:
    """The test rows' scores of the trees alone, fitted on every training row (ONNX, uncalibrated):
    what choosing hyperparameters compares (`evaluate tune`), where only the ranking matters."""
    from txguard.training.onnx_export import to_onnx
    from txguard.training.train import fit_model

    X32 = dataset.X.astype(np.float32)
    model = fit_model(config, X32[split.train], dataset.y[split.train])
    return onnx_scores(to_onnx(model, X32.shape[1]), X32[split.test])


def txguard_scores(dataset: Dataset, split: Split, config: TrainConfig) -> tuple[np.ndarray, np.ndarray, int]:
    """The test rows' served (calibrated) scores, the trees' own, and the calibration slice's size.

    The labels are read as of the test start: the slice is the most recent training rows whose labels
    are mature then (with the delay period between them, the last training days).
    """
    X32 = dataset.X.astype(np.float32)  # what ONNX sees at serving; the model trains on the same values
    fitted = fit_calibrated(config, X32, dataset.y, dataset.ts, dataset.label_time, split.train, split.test_start)
    test = X32[split.test]
    return (onnx_scores(fitted.artifact, test), onnx_scores(fitted.raw_artifact, test),
            int(fitted.calibration_slice.rows.sum()))


def calibration_metrics(y: np.ndarray, served: np.ndarray, uncalibrated: np.ndarray) -> dict[str, float]:
    """Calibration of the served scores and of the trees' own (`*_uncalibrated`), and the trees' PR-AUC."""
    return {**{k: round(v, 6) for k, v in metrics.calibration(y, served).items()},
            **{f"{k}_uncalibrated": round(v, 6) for k, v in metrics.calibration(y, uncalibrated).items()},
            "pr_auc_uncalibrated": round(metrics.pr_auc(y, uncalibrated), 4)}  # as score_metrics rounds pr_auc


def run_comparison(
    data_config: HandbookConfig | None = None,
    days: SplitDays = SplitDays(),
    classifiers: tuple[str, ...] = CLASSIFIERS,
    data_path: str | Path = "data/handbook.jsonl",
    drop_known_compromised: bool = True,
    train_config: TrainConfig | None = None,
    log: Callable[[str], None] = lambda _msg: None,
) -> dict[str, Any]:
    """Generate, split, fit txguard and every recipe classifier, score the test rows; the report."""
    t0 = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 2)
        return now

    cfg = handbook_config(data_config, days)
    log(f"generating {cfg.days} days: {cfg.customers} customers, {cfg.terminals} terminals, seed {cfg.seed}")
    data = generate(cfg)
    path = write_jsonl(data, data_path)
    t = lap("generate_seconds", t0)
    split = handbook_split(data, days, drop_known_compromised)
    y, ts, wallets, scenarios = data.is_fraud, data.ts, data.wallet_ids(), data.scenario_names()
    y_train, y_test = y[split.train], y[split.test]
    if y_train.sum() == 0 or y_test.sum() == 0 or y_test.min() == 1:
        raise ValueError(
            f"not enough fraud on both sides of the split ({int(y_train.sum())} in training, "
            f"{int(y_test.sum())} in test): use more customers or days"
        )
    log(f"txguard: features of {len(data)} rows through {path} (txguard.training.dataset.from_file)")
    dataset = txguard_dataset(data, path)
    t = lap("txguard_features_seconds", t)
    log(f"txguard: fitting on {int(split.train.sum())} rows ({int(y_train.sum())} frauds)")
    where = (ts[split.test], wallets[split.test], scenarios[split.test])  # the test rows' days, wallets, kinds
    served, uncalibrated, n_calibration = txguard_scores(dataset, split, train_config or TrainConfig(seed=cfg.seed))
    txguard = {**score_metrics(y_test, served, *where), **calibration_metrics(y_test, served, uncalibrated),
               "n_calibration": n_calibration}
    t = lap("txguard_fit_seconds", t)

    log("recipe: Handbook features")
    F = recipe.recipe_features(data.ts, data.customer, data.terminal, data.amount, y, data.label_time, days.delay)
    t = lap("recipe_features_seconds", t)
    by_classifier: dict[str, dict[str, Any]] = {}
    for name in classifiers:
        log(f"recipe: fitting {name}")
        scores = recipe.fit_predict(name, F[split.train], y_train, F[split.test], seed=cfg.seed)
        by_classifier[name] = score_metrics(y_test, scores, *where)
        t = lap(f"recipe_{name}_seconds", t)
    best = max(by_classifier, key=lambda k: by_classifier[k]["pr_auc"])

    test_scen = where[2]
    return {
        "txguard": txguard,
        "recipe": {"classifier": best, **by_classifier[best]},
        "recipe_classifiers": by_classifier,
        "data": {**describe(data), "path": str(path)},
        "split": {
            **{f"{k}_days": v for k, v in vars(days).items()},
            "n_train": int(split.train.sum()),
            "n_train_fraud": int(y_train.sum()),
            "n_test": int(split.test.sum()),
            "n_test_fraud": int(y_test.sum()),
            "test_fraud_by_scenario": {
                k: int(((test_scen == k) & (y_test == 1)).sum()) for k in sorted(set(test_scen[y_test == 1]))
            },
            "known_compromised_dropped": split.known_compromised_dropped,
            "train_start": utc_iso(split.train_start),
            "test_start": utc_iso(split.test_start),
            "test_end": utc_iso(split.test_end),
        },
        "txguard_features": len(dataset.X[0]),
        "recipe_features": list(recipe.RECIPE_FEATURES),
        **timings,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def utc_iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat()
