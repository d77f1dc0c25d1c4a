"""Which calibration: Platt against isotonic regression on the same trees and slice (`txguard
evaluate calibration`).

For each world, the model is fitted exactly as a published version is
(`txguard.training.train.fit_calibrated`: trees on the training rows but the calibration slice),
then the held-out rows are scored three ways:

- `none`: the trees alone (the ONNX graph before calibration, what versions before it served);
- `platt`: the published graph (the Platt calibration folded into the trees);
- `isotonic`: scikit-learn's IsotonicRegression fitted on the same slice's margins, applied to the
  held-out margins in float64 (it cannot be folded into the trees; serving it would need a
  lookup after them).

Each gets the held-out metrics `txguard train` reports: PR-AUC, Brier, ECE, the largest gap of a
bin holding >= 100 rows, mean score against the fraud rate, the alerts at thresholds derived from
its own scores, and how many distinct scores the held-out rows get (a step function ties them).

The worlds: `simulator` (`txguard train`'s data and time split), `handbook` (`txguard evaluate
handbook`'s data and split: labels as of the test start) and, with `--data`, a user's file
through `txguard train`'s split. The held-out rows are read to report; nothing is tuned on them
beyond this choice between two methods, which docs/evaluation.md records.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from txguard.training import metrics
from txguard.training.dataset import Dataset, from_file, simulated
from txguard.training.train import TrainConfig, fit_calibrated, onnx_scores, time_split, utc_iso

METHODS = ("none", "platt", "isotonic")
WORLDS = ("simulator", "handbook")


@dataclass(frozen=True)
class World:
    """A dataset with its training rows, held-out rows and when the training labels were read."""

    name: str
    dataset: Dataset
    train: np.ndarray
    test: np.ndarray
    as_of: float


def simulator_world(days: int = TrainConfig.days, wallets: int = TrainConfig.wallets, seed: int = 42) -> World:
    data = simulated(days, wallets, seed)
    train, test, cut = time_split(data, TrainConfig.test_fraction)
    return World(f"simulator ({days} days x {wallets} wallets, seed {seed}; txguard train's split)", data, train,
                 test, cut)


def file_world(path: str | Path) -> World:
    data = from_file(path)
    train, test, cut = time_split(data, TrainConfig.test_fraction)
    return World(f"{path} (txguard train's split)", data, train, test, cut)


def handbook_world(seed: int = 42, data_path: str | Path = "data/handbook.jsonl") -> World:
    from txguard.evaluation.compare import SplitDays, handbook_config, handbook_split, txguard_dataset
    from txguard.evaluation.handbook_data import HandbookConfig, generate, write_jsonl

    days = SplitDays()
    data = generate(handbook_config(HandbookConfig(seed=seed), days))
    dataset = txguard_dataset(data, write_jsonl(data, data_path))
    split = handbook_split(data, days)
    return World(f"handbook (seed {seed}; txguard evaluate handbook's split)", dataset, split.train, split.test,
                 split.test_start)


def method_metrics(y: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    thresholds = metrics.derive_thresholds(y, scores)
    return {"pr_auc": round(metrics.pr_auc(y, scores), 6),
            **{k: round(v, 6) for k, v in metrics.calibration(y, scores).items()},
            "alerts": metrics.alerts(scores, thresholds), "thresholds": thresholds.model_dump(),
            "distinct_scores": int(len(np.unique(scores)))}


def compare_methods(world: World, config: TrainConfig | None = None) -> dict[str, Any]:
    """Each method's held-out metrics on one world, the trees and the slice shared."""
    from sklearn.isotonic import IsotonicRegression

    data, t0, config = world.dataset, time.perf_counter(), config or TrainConfig()
    X32 = data.X.astype(np.float32)
    fitted = fit_calibrated(config, X32, data.y, data.ts, data.label_time, world.train, world.as_of)
    held, y = fitted.calibration_slice, data.y[world.test]
    isotonic = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(
        fitted.model.decision_function(X32[held.rows]), data.y[held.rows])
    scores = {"none": onnx_scores(fitted.raw_artifact, X32[world.test]),
              "platt": onnx_scores(fitted.artifact, X32[world.test]),
              "isotonic": isotonic.predict(fitted.model.decision_function(X32[world.test]))}
    return {
        "world": world.name,
        "n_train": int(fitted.fit_rows.sum()),
        "n_calibration": int(held.rows.sum()),
        "n_calibration_fraud": int(data.y[held.rows].sum()),
        "calibration_from": utc_iso(held.start),
        "calibration_until": utc_iso(held.end),
        "label_maturity_days": round(held.label_maturity_s / 86400.0, 3),
        "n_test": int(world.test.sum()),
        "held_out_fraud_rate": round(float(y.mean()), 6),
        "platt": {"slope": fitted.platt.slope, "intercept": fitted.platt.intercept},
        "methods": {name: method_metrics(y, s) for name, s in scores.items()},
        "seconds": round(time.perf_counter() - t0, 2),
    }


def run_calibration_comparison(worlds: tuple[str, ...] = WORLDS, seed: int = 42, data: str | None = None,
                               data_out: str | Path = "data/handbook.jsonl", days: int = TrainConfig.days,
                               wallets: int = TrainConfig.wallets,
                               log: Callable[[str], None] = lambda _msg: None) -> dict[str, Any]:
    unknown = sorted(set(worlds) - set(WORLDS))
    if unknown:
        raise ValueError(f"--worlds: unknown {unknown}; choose from {', '.join(WORLDS)}")
    t0 = time.perf_counter()
    results = []
    builders: list[tuple[str, Callable[[], World]]] = []
    if "simulator" in worlds:
        builders.append(("simulator", lambda: simulator_world(days, wallets, seed)))
    if "handbook" in worlds:
        builders.append(("handbook", lambda: handbook_world(seed, data_out)))
    if data:
        builders.append((str(data), lambda: file_world(data)))
    for name, build in builders:
        log(f"{name}: building features")
        world = build()
        log(f"{name}: fitting the trees and both calibrations")
        results.append(compare_methods(world, TrainConfig(seed=seed)))
    return {"worlds": results, "methods": list(METHODS), "seconds": round(time.perf_counter() - t0, 2)}
