"""txguard against the Handbook's recipe on the same rows and the same time split.

The split follows the Handbook (chapter 3.5): a history period that only feeds features, a
training period, a delay period as long as the label delay, then the test period. It is
`txguard.training.split.as_of_cut` with the delay as the label-maturity window: training uses the
labels known when the test starts, and nothing of the delay period. As in the Handbook, a test
transaction of a customer already known to be defrauded (a fraud label known before that
transaction) is left out: that card would have been blocked, so it says nothing about detection.

txguard goes through its real path: the rows are written to the JSONL that `txguard train
--data` reads, `txguard.training.dataset.from_file` computes the features the functions
compute, `txguard.training.train.fit_calibrated` fits the model every published version is (trees
on the training rows but a calibration slice of the training period, Platt calibration on that
slice folded into the ONNX graph), and the scores are the ONNX model's, as served; their
calibration is reported next to the trees' own. The recipe reads the same rows as columns.

The pieces every design shares (the split days, the metrics with recall per kind of fraud, the
per-kind comparison with its noise, the shuffled-label check) are here too.
"""

from __future__ import annotations

import math
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
from txguard.training.split import as_of_cut
from txguard.training.train import TrainConfig, fit_calibrated, onnx_scores

FPR = 0.01


class Laps:
    """Seconds of each step of a run, each from the end of the one before (`name_seconds` keys), and
    the whole run's (`seconds`)."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.steps: dict[str, float] = {}

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.steps[name] = round(now - self.last, 2)
        self.last = now

    def seconds(self) -> dict[str, float]:
        return {**self.steps, "seconds": round(time.perf_counter() - self.start, 2)}


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
    y_train: np.ndarray  # the training rows' labels as known when the test starts
    train_start: float
    test_start: float
    test_end: float
    known_compromised_dropped: int
    unknown_at_cut: int = 0  # training frauds whose label had not arrived when the test started


def design_split(ts: np.ndarray, y: np.ndarray, label_time: np.ndarray, start: float, days: SplitDays) -> Split:
    """History, train, delay, test from `start`: `as_of_cut` at the test's start, the delay as the
    label-maturity window."""
    train_start = start + days.history * DAY
    test_start = train_start + (days.train + days.delay) * DAY
    test_end = test_start + days.test * DAY
    cut = as_of_cut(ts, y, label_time, test_start, days.delay, train_start, test_end)
    return Split(cut.train, cut.test, cut.y_train, train_start, test_start, test_end, 0, cut.unknown_at_cut)


def handbook_split(data: HandbookData, days: SplitDays, drop_known_compromised: bool = True) -> Split:
    split = design_split(data.ts, data.is_fraud, data.label_time, float(data.config.start_epoch), days)
    if not drop_known_compromised:
        return split
    already = split.test & known_compromised(data)
    return replace(split, test=split.test & ~already, known_compromised_dropped=int(already.sum()))


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


def handbook_world(cfg: HandbookConfig, days: SplitDays, data_path: str | Path,
                   drop_known_compromised: bool = True) -> tuple[HandbookData, Path, Split]:
    """The Handbook design's world (`handbook_config`'s `cfg`): generated, written as txguard's data
    file at `data_path`, split."""
    data = generate(cfg)
    path = write_jsonl(data, data_path)
    return data, path, handbook_split(data, days, drop_known_compromised)


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


def kind_comparison(y: np.ndarray, kinds: np.ndarray, ours: np.ndarray, theirs: np.ndarray,
                    fpr: float = FPR) -> dict[str, dict[str, Any]]:
    """Per kind of fraud, recall at `fpr` of each side (each at its own threshold) and whether the
    difference is beyond noise. The two sides are graded on the same frauds, so the noise is that
    of a paired difference: two standard errors, 2 sqrt(b + c) / n, b and c the frauds only one
    side catches (McNemar). `verdict`: `above`, `within noise` (at most that much below) or `below`."""
    caught_ours = ours >= metrics.threshold_at_fpr(y, ours, fpr)
    caught_theirs = theirs >= metrics.threshold_at_fpr(y, theirs, fpr)
    out: dict[str, dict[str, Any]] = {}
    for kind in sorted(set(kinds[y == 1].tolist())):
        m = (kinds == kind) & (y == 1)
        n = int(m.sum())
        a, b = caught_ours[m], caught_theirs[m]
        only_ours, only_theirs = int((a & ~b).sum()), int((b & ~a).sum())
        diff = (only_ours - only_theirs) / n
        noise = 2.0 * math.sqrt(only_ours + only_theirs) / n
        verdict = "above" if diff > 0 else "within noise" if diff >= -noise else "below"
        out[str(kind)] = {"frauds": n, "ours": round(float(a.mean()), 4), "theirs": round(float(b.mean()), 4),
                          "only_ours": only_ours, "only_theirs": only_theirs, "difference": round(diff, 4),
                          "noise": round(noise, 4), "verdict": verdict}
    return out


def shuffled(y_train: np.ndarray, seed: int) -> np.ndarray:
    """The training labels in a random order: the shuffled-label check. A model fitted on them can
    only rank by chance, so its test PR-AUC must fall to about the test's fraud rate; if it does
    not, the features or the split leak the labels."""
    return np.random.default_rng(seed).permutation(y_train)


def _check_same_rows(dataset: Dataset, data: HandbookData) -> None:
    """The file txguard read and the columns the recipe reads must be the same rows in the same order."""
    same_rows(dataset, data.ts, data.is_fraud, data.wallet_ids())


def same_rows(dataset: Dataset, ts: np.ndarray, y: np.ndarray, wallets: np.ndarray) -> None:
    """The file txguard read and a baseline's columns must be the same rows in the same order."""
    if not (
        len(dataset) == len(ts)
        and np.array_equal(dataset.ts, ts)
        and np.array_equal(dataset.y, y)
        and np.array_equal(dataset.wallets, wallets)
    ):
        raise RuntimeError("txguard's dataset and the baseline's columns are not the same rows in the same order")


def ranking_scores(dataset: Dataset, split: Split, config: TrainConfig) -> np.ndarray:
    """The test rows' scores of the trees alone, fitted on every training row with the labels known
    at the cut (ONNX, uncalibrated): what choosing hyperparameters compares (`evaluate tune`), where
    only the ranking matters."""
    from txguard.training.onnx_export import to_onnx
    from txguard.training.train import fit_model

    X32 = dataset.X.astype(np.float32)
    model = fit_model(config, X32[split.train], split.y_train)
    return onnx_scores(to_onnx(model, X32.shape[1]), X32[split.test])


def txguard_scores(dataset: Dataset, split: Split, config: TrainConfig, y_train: np.ndarray | None = None,
                   out_of_fold: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """The test rows' served (calibrated) scores, the trees' own, and the fit's counts: the calibration
    slice's rows (`n_calibration`), the training rows presumed fraud (`n_train_presumed_fraud`,
    `config.presume_fraud_at`; txguard.training.presumed; `out_of_fold`: their scores, computed
    already) and how many of those the truth says are fraud (read after the fit, for the report).

    The labels are read as of the test start (`split.y_train`, or `y_train`: the shuffled-label
    check): the slice is the most recent training rows whose labels are mature then.
    """
    X32 = dataset.X.astype(np.float32)  # what ONNX sees at serving; the model trains on the same values
    y = np.zeros(len(dataset), dtype=np.int8)
    y[split.train] = split.y_train if y_train is None else y_train
    fitted = fit_calibrated(config, X32, y, dataset.ts, dataset.label_time, split.train, split.test_start,
                            wallets=dataset.wallets, out_of_fold=out_of_fold)
    test = X32[split.test]
    return (onnx_scores(fitted.artifact, test), onnx_scores(fitted.raw_artifact, test),
            {"n_calibration": int(fitted.calibration_slice.rows.sum()),
             "n_train_presumed_fraud": int(fitted.presumed.sum()),
             "n_train_presumed_truly_fraud": int(dataset.y[fitted.presumed].sum())})


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
    laps = Laps()
    cfg = handbook_config(data_config, days)
    log(f"generating {cfg.days} days: {cfg.customers} customers, {cfg.terminals} terminals, seed {cfg.seed}")
    data, path, split = handbook_world(cfg, days, data_path, drop_known_compromised)
    laps("generate_seconds")
    y, ts, wallets, scenarios = data.is_fraud, data.ts, data.wallet_ids(), data.scenario_names()
    y_train, y_test = split.y_train, y[split.test]
    check_enough(y_train, y_test, "use more customers or days")
    log(f"txguard: features of {len(data)} rows through {path} (txguard.training.dataset.from_file)")
    dataset = txguard_dataset(data, path)
    laps("txguard_features_seconds")
    log(f"txguard: fitting on {int(split.train.sum())} rows ({int(y_train.sum())} frauds)")
    where = (ts[split.test], wallets[split.test], scenarios[split.test])  # the test rows' days, wallets, kinds
    config = train_config or TrainConfig(seed=cfg.seed)
    ours, uncalibrated, counts = txguard_scores(dataset, split, config)
    txguard = {**score_metrics(y_test, ours, *where), **calibration_metrics(y_test, ours, uncalibrated), **counts,
               "presume_fraud_at": config.presume_fraud_at}
    laps("txguard_fit_seconds")

    log("recipe: Handbook features")
    F = recipe.recipe_features(data.ts, data.customer, data.terminal, data.amount, y, data.label_time, days.delay)
    laps("recipe_features_seconds")
    by_classifier: dict[str, dict[str, Any]] = {}
    scores: dict[str, np.ndarray] = {}
    for name in classifiers:
        log(f"recipe: fitting {name}")
        scores[name] = recipe.fit_predict(name, F[split.train], y_train, F[split.test], seed=cfg.seed)
        by_classifier[name] = score_metrics(y_test, scores[name], *where)
        laps(f"recipe_{name}_seconds")
    best = max(by_classifier, key=lambda k: by_classifier[k]["pr_auc"])
    log("shuffled-label check: txguard fitted on the training labels in a random order")
    noise, _, _ = txguard_scores(dataset, split, config, shuffled(y_train, cfg.seed))
    laps("shuffled_seconds")

    return {
        "txguard": txguard,
        "recipe": {"classifier": best, **by_classifier[best]},
        "recipe_classifiers": by_classifier,
        "by_scenario": kind_comparison(y_test, where[2], ours, scores[best]),
        "pr_auc_margin": round(txguard["pr_auc"] - by_classifier[best]["pr_auc"], 4),
        "shuffled_labels": {"txguard_pr_auc": round(metrics.pr_auc(y_test, noise), 4),
                            "test_fraud_rate": round(float(y_test.mean()), 5)},
        "data": {**describe(data), "path": str(path)},
        "split": split_report(split, days, y, where[2]),
        "txguard_features": len(dataset.X[0]),
        "recipe_features": list(recipe.RECIPE_FEATURES),
        **laps.seconds(),
    }


def check_enough(y_train: np.ndarray, y_test: np.ndarray, hint: str) -> None:
    if y_train.sum() == 0 or y_test.sum() == 0 or y_test.min() == 1:
        raise ValueError(
            f"not enough fraud on both sides of the split ({int(y_train.sum())} known in training, "
            f"{int(y_test.sum())} in test): {hint}"
        )


def split_report(split: Split, days: SplitDays, y: np.ndarray, test_kinds: np.ndarray) -> dict[str, Any]:
    y_test = y[split.test]
    return {
        **{f"{k}_days": v for k, v in vars(days).items()},
        "protocol": "as of the cut: labels known when the test starts, the delay period left out",
        "n_train": int(split.train.sum()),
        "n_train_fraud": int(split.y_train.sum()),
        "n_train_fraud_unknown_at_cut": split.unknown_at_cut,
        "n_test": int(split.test.sum()),
        "n_test_fraud": int(y_test.sum()),
        "test_fraud_by_scenario": {
            k: int(((test_kinds == k) & (y_test == 1)).sum()) for k in sorted(set(test_kinds[y_test == 1]))
        },
        "known_compromised_dropped": split.known_compromised_dropped,
        "train_start": utc_iso(split.train_start),
        "test_start": utc_iso(split.test_start),
        "test_end": utc_iso(split.test_end),
    }


def utc_iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat()
