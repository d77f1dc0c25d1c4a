"""txguard against a competent baseline on the peer-to-peer mobile-money world, same rows, same split.

The world (`p2p_data`) is generated, written as the file `txguard train --data` reads, and split as
every design is (`compare.design_split`: history, train, a label-maturity delay, test; training
labels as known when the test starts, so a fraud still unreported then trains as legitimate and a
fraud never reported never trains as fraud). txguard reads the file through its real path
(`from_file`, the served features, `fit_calibrated`: the trees and their calibration, ONNX scores as
served); the baseline (`p2p_baseline`) reads the same rows as columns and is fitted by the same
`fit_model` with txguard's hyperparameters (a ranking needs no calibration). Both are graded on the
truth.

Around the two scores, the checks that make the comparison honest: the same rows in the same order
(`compare.same_rows`), the shuffled-label check for both sides (a model fitted on shuffled labels
must fall to the fraud rate), recall per kind with the noise of the paired difference
(`compare.kind_comparison`), and what the top of each ranking gets wrong: the honest pattern of the
highest-scored legitimate test rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from txguard.evaluation.compare import (
    FPR,
    Laps,
    Split,
    SplitDays,
    calibration_metrics,
    check_enough,
    design_split,
    kind_comparison,
    same_rows,
    score_metrics,
    shuffled,
    split_report,
    txguard_scores,
)
from txguard.evaluation.p2p_baseline import BASELINE_FEATURES, baseline_features
from txguard.evaluation.p2p_data import P2PConfig, P2PData, describe, generate, write_jsonl
from txguard.evaluation.p2p_world import PATTERNS
from txguard.training import metrics
from txguard.training.dataset import Dataset, from_file
from txguard.training.train import TrainConfig, fit_model

P2P_DAYS = SplitDays(history=30, train=28, delay=7, test=14)
TOP_LEGIT = 200  # the highest-scored legitimate test rows whose patterns are reported


def baseline_scores(F: np.ndarray, train: np.ndarray, y_train: np.ndarray, test: np.ndarray,
                    config: TrainConfig) -> np.ndarray:
    """The baseline: txguard's learner and hyperparameters on the baseline's features."""
    F32 = F.astype(np.float32)
    return fit_model(config, F32[train], y_train).predict_proba(F32[test])[:, 1]


def top_legit_patterns(y: np.ndarray, scores: np.ndarray, patterns: np.ndarray, k: int = TOP_LEGIT) -> dict[str, int]:
    """The honest behaviours behind the `k` highest-scored legitimate rows, most frequent first."""
    legit = np.flatnonzero(y == 0)
    top = legit[np.argsort(-scores[legit], kind="stable")[:k]]
    names, counts = np.unique(np.asarray(PATTERNS, dtype=object)[patterns[top]], return_counts=True)
    return {str(n): int(c) for n, c in sorted(zip(names, counts, strict=True), key=lambda nc: (-nc[1], nc[0]))}


def p2p_world(cfg: P2PConfig, days: SplitDays, data_path: str | Path) -> tuple[P2PData, Path, Split]:
    """The peer-to-peer design's world over the split's days: generated, written as txguard's data
    file at `data_path`, split (`design_split`)."""
    cfg = replace(cfg, days=days.total)
    data = generate(cfg)
    path = write_jsonl(data, data_path)
    return data, path, design_split(data.ts, data.is_fraud, data.label_time, float(cfg.start_epoch), days)


def p2p_dataset(data: P2PData, path: Path) -> Dataset:
    """The written world as txguard reads it (`from_file`: the served features), checked to be the
    generated rows in their order."""
    dataset = from_file(path)
    same_rows(dataset, data.ts, data.is_fraud, data.wallet_ids())
    return dataset


def run_p2p(
    data_config: P2PConfig | None = None,
    days: SplitDays = P2P_DAYS,
    data_path: str | Path = "data/p2p.jsonl",
    train_config: TrainConfig | None = None,
    shuffled_check: bool = True,
    log: Callable[[str], None] = lambda _msg: None,
) -> dict[str, Any]:
    """Generate, split, fit txguard and the baseline, score the test rows; the report."""
    laps = Laps()
    cfg = replace(data_config or P2PConfig(), days=days.total)
    log(f"generating {cfg.days} days of {cfg.users} mobile-money users, seed {cfg.seed}")
    data, path, split = p2p_world(cfg, days, data_path)
    laps("generate_seconds")
    y, kinds = data.is_fraud, data.kind_names()
    y_test = y[split.test]
    check_enough(split.y_train, y_test, "use more users or days")
    where = (data.ts[split.test], data.wallet_ids()[split.test], kinds[split.test])
    config = train_config or TrainConfig(seed=cfg.seed)

    log(f"txguard: features of {len(data)} rows through {path} (txguard.training.dataset.from_file)")
    dataset = p2p_dataset(data, path)
    laps("txguard_features_seconds")
    log(f"txguard: fitting on {int(split.train.sum())} rows ({int(split.y_train.sum())} frauds known at the cut)")
    ours, uncalibrated, counts = txguard_scores(dataset, split, config)
    laps("txguard_fit_seconds")

    log("baseline: rolling per-wallet, per-payee and per-device features, known-fraud counts")
    F = baseline_features(data)
    laps("baseline_features_seconds")
    log("baseline: fitting")
    theirs = baseline_scores(F, split.train, split.y_train, split.test, config)
    laps("baseline_fit_seconds")

    txguard = {**score_metrics(y_test, ours, *where), **calibration_metrics(y_test, ours, uncalibrated), **counts,
               "presume_fraud_at": config.presume_fraud_at}
    baseline = score_metrics(y_test, theirs, *where)
    report: dict[str, Any] = {
        "txguard": txguard,
        "baseline": baseline,
        "pr_auc_margin": round(txguard["pr_auc"] - baseline["pr_auc"], 4),
        "by_kind": kind_comparison(y_test, where[2], ours, theirs, FPR),
        "top_legit_patterns": {"txguard": top_legit_patterns(y_test, ours, data.pattern[split.test]),
                               "baseline": top_legit_patterns(y_test, theirs, data.pattern[split.test])},
    }
    if shuffled_check:
        log("shuffled-label check: both fitted on the training labels in a random order")
        noise = shuffled(split.y_train, cfg.seed)
        report["shuffled_labels"] = {
            "txguard_pr_auc": round(metrics.pr_auc(y_test, txguard_scores(dataset, split, config, noise)[0]), 4),
            "baseline_pr_auc": round(metrics.pr_auc(
                y_test, baseline_scores(F, split.train, noise, split.test, config)), 4),
            "test_fraud_rate": round(float(y_test.mean()), 5),
        }
        laps("shuffled_seconds")
    return {
        **report,
        "data": {**describe(data), "path": str(path)},
        "split": split_report(split, days, y, where[2]),
        "txguard_features": int(dataset.X.shape[1]),
        "baseline_features": list(BASELINE_FEATURES),
        **laps.seconds(),
    }

