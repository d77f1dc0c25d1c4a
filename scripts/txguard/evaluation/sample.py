"""What a training sample costs in quality (`txguard evaluate sample`).

For each world, two models are fitted exactly as a published version is
(`txguard.training.train.fit_calibrated`), on the same split:

- `full`: every training row, thresholds derived on every held-out row (what `txguard train`
  does on a full feature table);
- `sampled`: the training sample of `txguard batch run --sample FRACTION` (`txguard.batch.sampling`:
  every wallet-day holding a fraud, FRACTION of the others, weighted), trees and
  calibration on its weighted training rows, thresholds derived on its weighted held-out rows
  (what `txguard train --features` does on the sample: it never sees the dropped rows).

With `hard` (the default, 1.0), the sample draws hard negatives more often, as `txguard batch run
--sample-hard-model --sample-hard-share` does: a wallet-day holding a row among the top `hard_share`
(default 5 %) of the production model's scores (None: at or above its review threshold) is kept with
probability `hard` (weight 1/hard). The production model here is a
stand-in fitted as `txguard train --features` fits one on another seed's plain sample of the same
training period (thresholds on its weighted held-out rows): what a team retraining has at hand. It
is not the full-data model, and the sampled model is still fitted on the sample alone.

Both are then graded on the **full, unsampled held-out period**: PR-AUC, recall at 1 % FPR, the
alert volume of each model's own review and block thresholds (as a share of the held-out traffic)
and the false positive rate its review threshold really has there (the thresholds were meant to
flag 1 % of legitimate traffic: a sampled model whose weighted thresholds are right flags ~1 % of
the full one). The deltas are reported against the bound (0.01 each by default).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from txguard.batch.sampling import HARD_SHARE, check_hard_share, check_sample, hard_marks, sample_weights
from txguard.evaluation.calibration import WORLDS, World, handbook_world, simulator_world
from txguard.training import metrics
from txguard.training.train import TrainConfig, fit_calibrated, onnx_scores

BOUND = 0.01
COMPARED = ("pr_auc", "recall_at_1pct_fpr", "review_alert_rate", "block_alert_rate")


def graded(y: np.ndarray, served: np.ndarray, thresholds: Any) -> dict[str, Any]:
    """A model's figures on the full held-out period, at its own thresholds."""
    alerts = metrics.alerts(served, thresholds)
    legit = y == 0
    return {
        "pr_auc": metrics.pr_auc(y, served),
        "recall_at_1pct_fpr": metrics.recall_at_fpr(y, served, 0.01),
        "review_alert_rate": alerts["review"] / len(y),
        "block_alert_rate": alerts["block"] / len(y),
        "review_fpr": float(np.mean(served[legit] >= thresholds.review)),
        "review_recall": float(np.mean(served[y == 1] >= thresholds.review)),
        "alerts": alerts,
        "thresholds": thresholds.model_dump(),
    }


def production_stand_in(world: World, X32: np.ndarray, fraction: float, sample_seed: int,
                        config: TrainConfig, share: float | None = HARD_SHARE) -> tuple[np.ndarray, dict[str, Any]]:
    """Every row's hard mark (among the top `share` of the stand-in production model's scores, or at or
    above its review threshold with None: `hard_marks`, on the world's rows as one shard)
    and what the stand-in is: fitted on the plain sample of seed `sample_seed + 1`, thresholds derived
    on that sample's weighted held-out rows, as `txguard train --features` would."""
    data = world.dataset
    weight = sample_weights(data.wallets, data.ts, data.y, fraction, sample_seed + 1)
    kept = weight > 0
    fitted = fit_calibrated(config, X32, world.known, data.ts, data.label_time, world.train & kept, world.as_of,
                            weight)
    scores = onnx_scores(fitted.artifact, X32)
    seen = world.test & kept
    thresholds = metrics.derive_thresholds(data.y[seen], scores[seen], weight[seen])
    hard = hard_marks(scores, thresholds.review, share)
    legit = data.y == 0
    return hard, {
        "sample_seed": sample_seed + 1,
        "pr_auc": round(metrics.pr_auc(data.y[world.test], scores[world.test]), 6),
        "review_threshold": round(float(thresholds.review), 6),
        "hard_legit_share": {"train": round(float(hard[world.train & legit].mean()), 5),
                             "test": round(float(hard[world.test & legit].mean()), 5)},
    }


def compare_sample(world: World, fraction: float, sample_seed: int = 0, config: TrainConfig | None = None,
                   bound: float = BOUND, hard: float | None = 1.0, hard_share: float | None = HARD_SHARE
                   ) -> dict[str, Any]:
    """The full-data model against the sampled one, both graded on the full held-out period. `hard`:
    the hard negatives' chance to be kept (None: the plain draw, no hard stratum); `hard_share`: the
    top share of the stand-in's scores they are (None: its review band)."""
    hard_fraction = fraction if hard is None else hard  # the plain draw: no stratum above the rest
    check_sample(fraction, sample_seed, hard_fraction)
    check_hard_share(hard_share)
    data, config, t0 = world.dataset, config or TrainConfig(), time.perf_counter()
    X32 = data.X.astype(np.float32)
    stand_in: dict[str, Any] | None = None
    hard_rows = None
    if hard is not None:
        hard_rows, stand_in = production_stand_in(world, X32, fraction, sample_seed, config, hard_share)
    weight = sample_weights(data.wallets, data.ts, data.y, fraction, sample_seed, hard_rows, hard_fraction)
    kept = weight > 0
    y_test, X_test = data.y[world.test], X32[world.test]

    t_full = time.perf_counter()
    full = fit_calibrated(config, X32, world.known, data.ts, data.label_time, world.train, world.as_of)
    full_seconds = time.perf_counter() - t_full
    full_served = onnx_scores(full.artifact, X_test)
    full_thresholds = metrics.derive_thresholds(y_test, full_served)

    t_sampled = time.perf_counter()
    sampled = fit_calibrated(config, X32, world.known, data.ts, data.label_time, world.train & kept, world.as_of,
                             weight)
    sampled_seconds = time.perf_counter() - t_sampled
    sampled_served = onnx_scores(sampled.artifact, X_test)
    seen = kept[world.test]  # the held-out rows the sample holds: all `txguard train` would see of them
    w_seen = weight[world.test][seen]
    sampled_thresholds = metrics.derive_thresholds(y_test[seen], sampled_served[seen], w_seen)

    ours, theirs = graded(y_test, full_served, full_thresholds), graded(y_test, sampled_served, sampled_thresholds)
    deltas = {k: round(theirs[k] - ours[k], 6) for k in COMPARED}
    estimated = {  # what the sampled run reports from its weighted held-out rows, for the full period
        "pr_auc": round(metrics.pr_auc(y_test[seen], sampled_served[seen], w_seen), 6),
        "review_alerts": metrics.alerts(sampled_served[seen], sampled_thresholds, w_seen)["review"],
        "test_rows": round(float(w_seen.sum())),
    }
    return {
        "world": world.name,
        "fraction": fraction,
        "sample_seed": sample_seed,
        "hard": None if hard is None else {"fraction": hard, "share": hard_share, "production_stand_in": stand_in},
        "rows": len(data),
        "sample_rows": int(kept.sum()),
        "sample_share": round(float(kept.mean()), 4),
        "train_rows": {"full": int(full.fit_rows.sum()), "sampled": int(sampled.fit_rows.sum())},
        "train_seconds": {"full": round(full_seconds, 2), "sampled": round(sampled_seconds, 2)},
        "n_test": int(world.test.sum()),
        "n_test_fraud": int(y_test.sum()),
        "full": _rounded(ours),
        "sampled": _rounded(theirs),
        "sampled_estimates": estimated,
        "deltas": deltas,
        # the same volumes relative to each other: the bound is on the share of traffic, this says
        # how many more (or fewer) alerts a team would handle
        "review_alerts_ratio": round(theirs["alerts"]["review"] / max(1, ours["alerts"]["review"]), 4),
        "bound": bound,
        "within_bound": all(abs(d) <= bound for d in deltas.values()),
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _rounded(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in figures.items()}


def run_sample_comparison(worlds: tuple[str, ...] = WORLDS, fraction: float = 0.05, sample_seed: int = 0,
                          seed: int = 42, data_out: str = "data/handbook.jsonl", days: int = TrainConfig.days,
                          wallets: int = TrainConfig.wallets, bound: float = BOUND, hard: float | None = 1.0,
                          log: Callable[[str], None] = lambda _msg: None,
                          hard_share: float | None = HARD_SHARE) -> dict[str, Any]:
    unknown = sorted(set(worlds) - set(WORLDS))
    if unknown or not worlds:
        raise ValueError(f"--worlds: unknown {unknown}; choose from {', '.join(WORLDS)}")
    check_sample(fraction, sample_seed, fraction if hard is None else hard)
    check_hard_share(hard_share)
    t0 = time.perf_counter()
    results = []
    for name in worlds:
        log(f"{name}: building features")
        world = simulator_world(days, wallets, seed) if name == "simulator" else handbook_world(seed, data_out)
        log(f"{name}: fitting the full-data and the sampled model" + ("" if hard is None else
                                                                        ", after the production stand-in"))
        results.append(compare_sample(world, fraction, sample_seed, TrainConfig(seed=seed), bound, hard, hard_share))
    return {"worlds": results, "fraction": fraction, "hard": hard,
            "hard_share": None if hard is None else hard_share, "bound": bound,
            "within_bound": all(r["within_bound"] for r in results),
            "seconds": round(time.perf_counter() - t0, 2)}
