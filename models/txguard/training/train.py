"""Train, check, gate and publish a fraud model.

Pipeline: data (simulated or a user's file) -> features through the serving code path ->
time-based split as of the cut (train on the earlier days with the labels known when the last
quarter starts, evaluate on that quarter; `txguard.training.split`) ->
HistGradientBoostingClassifier on the training rows but a calibration slice -> Platt calibration
fitted on that slice (txguard.training.calibration) -> ONNX with the calibration folded into the
trees -> parity check of ONNX against scikit-learn -> held-out metrics (ranking and calibration,
before and after) next to the rules baseline -> thresholds -> quality gate (floor, no regression
against production scored on the same held-out rows, calibration error) -> registry.

Nothing reaches the registry unless every check passed; a refusal still reports every figure.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from txguard.contract.errors import ModelNotFoundError, QualityGateError
from txguard.contract.settings import DEFAULT_LOCAL_REGISTRY
from txguard.features.wallet import FEATURE_NAMES
from txguard.registry import PRODUCTION, STAGING, open_registry
from txguard.registry.metadata import Calibration, ModelMetadata, Thresholds
from txguard.training import baseline, gate, lifecycle, metrics
from txguard.training.calibration import (
    METHOD,
    CalibrationSlice,
    Platt,
    calibration_slice,
    fit_platt,
    fold_into_onnx,
)
from txguard.training.dataset import Dataset, from_feature_table, from_file, simulated
from txguard.training.onnx_export import margin_graph, to_onnx
from txguard.training.presumed import out_of_fold_scores, presumed_fraud
from txguard.training.split import Split, fraction_split

PARITY_TOLERANCE = 1e-5


@dataclass(frozen=True)
class TrainConfig:
    days: int = 30
    wallets: int = 2000
    seed: int = 42
    drift: float = 0.0
    data: str | None = None  # JSONL/CSV file instead of the simulator
    labels: str | None = None  # JSONL/CSV file of LabelEvents (with `data`)
    features: str | None = None  # a `txguard batch run --features` table instead of replaying
    registry: str = ""  # "" -> $TXGUARD_REGISTRY or models/registry
    promote: bool = False
    test_fraction: float = 0.25
    # Rows of this many days before the cut are left out of training (their labels had little time
    # to arrive); the others are labelled as known at the cut (txguard.training.split). None: the
    # time within which 95 % of the fraud labels arrive, estimated from those known at the cut.
    label_maturity_days: float | None = None
    max_iter: int = 200
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 20  # scikit-learn's default
    # Weight of a fraud row in the loss (legitimate rows weigh 1). Chosen on a validation slice of
    # the training period of the Handbook-style data (`txguard evaluate tune`: fit on its first
    # 14 training days, PR-AUC on the last 7; docs/evaluation.md), never on a test period. The
    # trees' scores are then not probabilities: the calibration below makes them ones.
    fraud_weight: float = 10.0
    # Share of the training period held out from the trees to fit the calibration on (the most
    # recent rows whose labels are mature at the split; txguard.training.calibration).
    calibration_fraction: float = 0.2
    # A training row nobody reported trains as fraud when a model fitted without it (its wallet's
    # fold left out) scores it at least this, on the trees' own scale (txguard.training.presumed).
    # None (the default, chosen on the simulator, whose frauds are nearly all reported): every row
    # keeps the label known at the cut. For data where many frauds are never reported.
    presume_fraud_at: float | None = None
    # OpenMP threads for fitting. 1 by default: on a small shared machine OpenMP's spinning threads
    # made a 10k-row fit 30x slower under load, while one thread is never much slower here.
    threads: int = 1
    policy: gate.GatePolicy = gate.GatePolicy()
    pictures: bool = True  # PNGs next to the version in the registry (matplotlib)
    pictures_dir: str | None = None  # and a copy here (documentation pictures)


def default_registry() -> str:
    return os.environ.get("TXGUARD_REGISTRY") or DEFAULT_LOCAL_REGISTRY


def git_commit() -> str:
    """The commit of the checkout this code runs from (git finds it from this module's folder)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True,
            timeout=5, check=True,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def library_versions() -> dict[str, str]:
    out = {}
    for name in ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy"):
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def time_split(data: Dataset, test_fraction: float, maturity_days: float | None = None) -> Split:
    """Train on the earlier days, test on the last `test_fraction` of the time span, as of the cut:
    training labels are those known at the cut, the last `maturity_days` before it are left out
    (None: estimated from the labels known at the cut; `txguard.training.split`). A sample is split by
    the span of the history it was drawn from (`Dataset.span`), so as the full table is."""
    return fraction_split(data.ts, data.y, data.label_time, test_fraction, maturity_days, data.span)


def utc_iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def onnx_scores(artifact: bytes, X32: np.ndarray) -> np.ndarray:
    """The scores a graph of either form serves for each row, to the last bit (the runtime's own reading)."""
    import onnxruntime as ort

    from txguard.scoring.runtime import graph_scores

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(artifact, options, providers=["CPUExecutionProvider"])
    return graph_scores(session, np.ascontiguousarray(X32, dtype=np.float32))


def check_parity(sk: np.ndarray, onx: np.ndarray, thresholds: Thresholds) -> dict[str, float]:
    """The exported graph against scikit-learn: every score within the tolerance, no decision flipped.

    The thresholds are served scores (`derive_thresholds` picks them among the ONNX scores), so the
    row that sets a threshold sits exactly on it, and float32 rounding of the same trees puts its
    scikit-learn twin on either side. A row whose served score is within the tolerance of a
    threshold is such a tie, not a flip; any other row on different sides is one.
    """
    diff = float(np.max(np.abs(sk - onx))) if len(sk) else 0.0
    flips = 0
    for t in (thresholds.review, thresholds.block):
        tie = np.abs(onx - t) <= PARITY_TOLERANCE
        flips += int(np.sum(((sk >= t) != (onx >= t)) & ~tie))
    if diff > PARITY_TOLERANCE or flips:
        raise QualityGateError(
            f"ONNX parity check failed: max |onnx - sklearn| = {diff:.2e} (limit {PARITY_TOLERANCE:.0e}), "
            f"{flips} decision flips at the thresholds"
        )
    return {"onnx_max_abs_diff": diff, "onnx_decision_flips": float(flips)}


def production_pr_auc(registry: Any, X32: np.ndarray, y: np.ndarray,
                      weight: np.ndarray | None = None) -> tuple[float | None, str | None]:
    """Production's PR-AUC on the same held-out rows, weighted as the candidate's (or its recorded
    one if features differ)."""
    try:
        current = registry.load(PRODUCTION)
    except ModelNotFoundError:
        return None, None
    meta = current.metadata
    if list(meta.features) == list(FEATURE_NAMES):
        from sklearn.metrics import average_precision_score

        return float(average_precision_score(y, onnx_scores(current.artifact, X32), sample_weight=weight)), meta.version
    recorded = meta.metrics.get("pr_auc")
    return (float(recorded) if recorded is not None else None), meta.version


def fit_model(config: TrainConfig, X_train: np.ndarray, y_train: np.ndarray, weight: np.ndarray | None = None) -> Any:
    """The classifier every published version is; evaluations fit this very one. `weight`: a training
    sample's weights, multiplied into the loss with the fraud weight (a kept legitimate row counts
    for the rows it stands for)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    model = HistGradientBoostingClassifier(
        max_iter=config.max_iter,
        learning_rate=config.learning_rate,
        max_leaf_nodes=config.max_leaf_nodes,
        min_samples_leaf=config.min_samples_leaf,
        l2_regularization=1.0,
        class_weight={0: 1.0, 1: config.fraud_weight},
        early_stopping=False,
        random_state=config.seed,
    )
    with threadpool_limits(limits=config.threads):
        model.fit(X_train, y_train, sample_weight=weight)
    return model


@dataclass(frozen=True)
class Fitted:
    """A fitted version: the trees, their calibration and both ONNX graphs."""

    model: Any
    platt: Platt
    calibration_slice: CalibrationSlice
    fit_rows: np.ndarray  # boolean mask: the rows the trees were fitted on
    presumed: np.ndarray  # boolean mask: the fitted rows labelled legitimate that trained as fraud
    raw_artifact: bytes  # the trees alone: uncalibrated scores, what versions before calibration served
    artifact: bytes  # the published margin graph, the calibration folded into the trees

    def reference_scores(self, X32: np.ndarray) -> np.ndarray:
        """scikit-learn's calibrated scores in float64: what the ONNX graph must reproduce."""
        return self.platt(self.model.decision_function(X32))

    def calibration_record(self, y: np.ndarray) -> Calibration:
        rows = self.calibration_slice.rows
        return Calibration(method=METHOD, slope=self.platt.slope, intercept=self.platt.intercept,
                           rows=int(rows.sum()), frauds=int(y[rows].sum()),
                           period=f"{utc_iso(self.calibration_slice.start)} to {utc_iso(self.calibration_slice.end)}",
                           label_maturity_days=round(self.calibration_slice.label_maturity_s / 86400.0, 3))


def fit_calibrated(config: TrainConfig, X32: np.ndarray, y: np.ndarray, ts: np.ndarray, label_time: np.ndarray,
                   train: np.ndarray, as_of: float, weight: np.ndarray | None = None,
                   wallets: np.ndarray | None = None, out_of_fold: np.ndarray | None = None) -> Fitted:
    """Trees on the training rows but the calibration slice, Platt on the slice, both into ONNX.

    `as_of` is when the training labels were read (the split) and `y` the labels as known then
    (`txguard.training.split`: a fraud reported later is legitimate here); the slice is chosen from
    `train` with those labels (txguard.training.calibration.calibration_slice). Every published
    version and every evaluation fits through here. `weight` (a training sample's) reaches the
    trees and the calibration. With `wallets` (each row's) and `config.presume_fraud_at`, the fitted
    rows nobody reported that a model fitted without their wallet scores as fraud train as fraud
    (`txguard.training.presumed`); the slice keeps the labels as known. `out_of_fold`: those scores of
    the training rows when already computed (`out_of_fold_scores` on `train`, the same labels and seed).
    """
    held = calibration_slice(ts, y, label_time, train, as_of, config.calibration_fraction)
    fit_rows = train & ~held.rows
    if y[fit_rows].sum() == 0:
        raise QualityGateError("not enough labelled fraud outside the calibration slice to fit the trees: use more data")
    presumed = np.zeros(len(y), dtype=bool)
    if config.presume_fraud_at is not None and wallets is not None:
        if out_of_fold is None:
            out_of_fold = out_of_fold_scores(lambda X, yy, w: fit_model(config, X, yy, w), X32, y, train, wallets,
                                             config.seed, weight)
        presumed = presumed_fraud(out_of_fold, y, fit_rows, config.presume_fraud_at)
    y_trees = np.where(presumed, 1, y).astype(y.dtype)
    model = fit_model(config, X32[fit_rows], y_trees[fit_rows], None if weight is None else weight[fit_rows])
    platt = fit_platt(model.decision_function(X32[held.rows]), y[held.rows],
                      None if weight is None else weight[held.rows])
    raw = to_onnx(model, X32.shape[1])
    return Fitted(model, platt, held, fit_rows, presumed, raw, margin_graph(fold_into_onnx(raw, platt)))


def train_and_publish(
    config: TrainConfig = TrainConfig(),
    dataset: Dataset | None = None,
    log: Callable[[str], None] = lambda _msg: None,
) -> dict[str, Any]:
    """Run the whole pipeline; returns the report. Raises QualityGateError (nothing published)."""
    t_start = time.perf_counter()
    config = replace(config, registry=config.registry or default_registry())
    # Credentials, bucket and path first: a registry error after minutes of training wastes them.
    registry = open_registry(config.registry)
    registry.check(writable=True)
    if dataset is None:
        if config.features:
            log(f"reading the feature table {config.features}")
            dataset = from_feature_table(config.features)
        else:
            log("building features" + (f" from {config.data}" if config.data else " from simulated data"))
            dataset = from_file(config.data, config.labels) if config.data else simulated(
                config.days, config.wallets, config.seed, config.drift
            )
    features_seconds = time.perf_counter() - t_start
    try:
        split = time_split(dataset, config.test_fraction, config.label_maturity_days)
    except ValueError as exc:
        raise QualityGateError(f"cannot split the data: {exc}") from None
    train, test, cut = split.train, split.test, split.cut
    y_train, y_test = split.y_train, dataset.y[test]
    if y_train.sum() == 0 or y_test.sum() == 0 or (y_test == 0).sum() == 0:
        raise QualityGateError(
            f"not enough labelled fraud to train and evaluate ({int(y_train.sum())} frauds known before the cut, "
            f"{int(y_test.sum())} after): use more data"
        )
    y_fit = np.zeros_like(dataset.y)  # every row's label as known at the cut (training rows only)
    y_fit[train] = y_train
    # What ONNX sees at serving; sklearn trains on the same values. A feature table is read in float32
    # already (`from_feature_table`): no second matrix then.
    X32 = dataset.X if dataset.X.dtype == np.float32 else dataset.X.astype(np.float32)
    X_test = X32[test]
    weight = dataset.weight  # a training sample's: every held-out figure below is then the traffic's
    w_test = None if weight is None else weight[test]

    log(f"training on {len(y_train)} rows ({int(y_train.sum())} frauds) but a calibration slice, "
        f"testing on {len(y_test)}")
    t_fit = time.perf_counter()
    fitted = fit_calibrated(config, X32, y_fit, dataset.ts, dataset.label_time, train, cut, weight, dataset.wallets)
    train_seconds = time.perf_counter() - t_fit
    artifact = fitted.artifact

    log("checking ONNX parity")
    served = onnx_scores(artifact, X_test)
    thresholds = metrics.derive_thresholds(y_test, served, w_test)
    parity = check_parity(fitted.reference_scores(X_test), served, thresholds)
    # The trees alone, as versions before calibration served them: the same ranking, other numbers.
    uncalibrated = onnx_scores(fitted.raw_artifact, X_test)
    raw_thresholds = metrics.derive_thresholds(y_test, uncalibrated, w_test)
    calibrated_metrics = metrics.calibration(y_test, served, w_test)
    raw_metrics = {"pr_auc": metrics.pr_auc(y_test, uncalibrated, w_test),
                   **metrics.calibration(y_test, uncalibrated, w_test)}
    alerts = {"alerts": metrics.alerts(served, thresholds, w_test),
              "alerts_uncalibrated": metrics.alerts(uncalibrated, raw_thresholds, w_test)}
    calibration = fitted.calibration_record(y_fit)

    ts_test, wallets_test = dataset.ts[test], dataset.wallets[test]
    model_metrics = {**metrics.evaluate(y_test, served, ts_test, wallets_test, w_test), **calibrated_metrics,
                     **{f"{k}_uncalibrated": v for k, v in raw_metrics.items()}}
    base_scores = baseline.rule_scores(dataset.X[test])
    base = metrics.evaluate(y_test, base_scores, ts_test, wallets_test, w_test)
    test_scenarios = [s for s, keep in zip(dataset.scenarios, test, strict=True) if keep]
    by_scenario = metrics.recall_by_scenario(y_test, served, test_scenarios, thresholds.review)
    split_at = datetime.fromtimestamp(cut, UTC).isoformat()
    # What live traffic is compared with (drift): the held-out rows, the most recent the model saw.
    reference = lifecycle.drift_reference(dataset.X[test], served, period=f"held-out rows from {split_at}", weight=w_test,
                                          seed=config.seed)

    prod_pr_auc, prod_version = production_pr_auc(registry, X_test, y_test, w_test)
    report: dict[str, Any] = {
        **{k: round(v, 6) for k, v in model_metrics.items()},
        **{f"baseline_{k}": round(v, 6) for k, v in base.items()},
        "production_pr_auc": None if prod_pr_auc is None else round(prod_pr_auc, 6),
        "production_version": prod_version,
        "thresholds": thresholds.model_dump(),
        **alerts,
        "calibration": calibration.model_dump(),
        "recall_by_scenario": by_scenario,
        "n_train": int(fitted.fit_rows.sum()),
        "n_train_fraud": int(y_fit[fitted.fit_rows].sum()),
        "n_train_fraud_unknown_at_cut": split.unknown_at_cut,
        "n_train_presumed_fraud": int(fitted.presumed.sum()),
        "n_calibration": calibration.rows,
        "n_test": int(test.sum()),
        # A training sample: the rows measured stand for this many of the traffic (weights' sum).
        "sample": None if weight is None else {"rows": len(dataset), "stands_for": round(float(weight.sum())),
                                               "test_stands_for": round(float(w_test.sum()))},
        "fraud_rate": round(float(np.average(dataset.y, weights=weight)), 6),
        "held_out_fraud_rate": round(float(np.average(y_test, weights=w_test)), 6),
        "split_at": split_at,
        "label_maturity_days": round(split.maturity_days, 3),
        "features_seconds": round(features_seconds, 2),
        "train_seconds": round(train_seconds, 2),
        **{k: round(v, 9) for k, v in parity.items()},
        "data_fingerprint": dataset.fingerprint,
        "registry": config.registry,
        "version": None,
        "aliases": [],
    }
    try:
        gate.check(model_metrics["pr_auc"], prod_pr_auc, config.policy)
        gate.check_calibration(calibrated_metrics, config.policy)
    except QualityGateError as exc:
        raise QualityGateError(str(exc), {**report, "total_seconds": round(time.perf_counter() - t_start, 2)}) from None

    meta = ModelMetadata(
        created_at=datetime.now(UTC),
        git_commit=git_commit(),
        data_fingerprint=dataset.fingerprint,
        features=list(FEATURE_NAMES),
        metrics={
            **model_metrics,
            **{f"baseline_{k}": v for k, v in base.items()},
            "train_seconds": train_seconds,
            "n_train": float(fitted.fit_rows.sum()),
            "n_calibration": float(calibration.rows),
            "n_test": float(test.sum()),
        },
        thresholds=thresholds,
        calibration=calibration,
        library_versions=library_versions(),
        data_source=dataset.source,
        hyperparameters={
            "max_iter": config.max_iter,
            "learning_rate": config.learning_rate,
            "max_leaf_nodes": config.max_leaf_nodes,
            "min_samples_leaf": config.min_samples_leaf,
            "l2_regularization": 1.0,
            "fraud_weight": config.fraud_weight,
            "test_fraction": config.test_fraction,
            "calibration_fraction": config.calibration_fraction,
            "label_maturity_days": round(split.maturity_days, 3),
            "threads": config.threads,
        },
        drift_reference=reference,
        parity_probe=lifecycle.parity_probe(X_test, served, thresholds, PARITY_TOLERANCE),
        quality_gate=gate.passed(config.policy, prod_version),
    )
    published = registry.publish(artifact, meta)
    if config.pictures:
        from txguard.training.pictures import HeldOut

        held_out = HeldOut(
            y=y_test, scores=served, uncalibrated=uncalibrated, baseline=base_scores, thresholds=thresholds,
            baseline_thresholds=metrics.derive_thresholds(y_test, base_scores, w_test), weight=w_test,
            scenarios=[dataset.scenarios[i] for i in np.flatnonzero(test)] if dataset.scenarios else [""] * len(y_test),
            title=f"{published.version} (held-out from {split_at[:10]}, {len(y_test):,} transactions)")
        report["pictures"] = lifecycle.attach_pictures(registry, published.version, held_out, config.pictures_dir,
                                                       log)
    aliases = [STAGING]
    registry.promote(published.version, STAGING)
    if config.promote or prod_version is None:
        registry.promote(published.version, PRODUCTION)
        aliases.append(PRODUCTION)
    report.update(version=published.version, aliases=aliases, sha256=published.sha256)
    report["total_seconds"] = round(time.perf_counter() - t_start, 2)
    log(f"published {published.version} ({', '.join(aliases)}) to {config.registry}")
    return report
