"""Training from a weighted training sample (`txguard batch run --sample`, then `txguard train
--features`): the table is read into one float32 matrix, the weights reach the estimator, the
calibration and the gate, and the held-out figures are those of the traffic the sample stands for."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score

from tests.unit.batch.test_batch_sample import write_labelled_simulation
from txguard.batch.jobs import JobSpec, JobState, run_job
from txguard.registry import open_registry
from txguard.training import gate, metrics
from txguard.training.dataset import from_feature_table
from txguard.training.gate import GatePolicy
from txguard.training.train import TrainConfig, onnx_scores, time_split, train_and_publish

FRACTION = 0.3
SMALL = TrainConfig(seed=5, max_iter=40, policy=GatePolicy(min_pr_auc=0.3, max_ece=0.05, max_calibration_gap=0.3),
                    pictures=False)


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train-sample")
    write_labelled_simulation(root / "in", days=16, wallets=900, seed=5)
    status = run_job(JobSpec(input=str(root / "in" / "part-*.jsonl"), output=str(root / "out"), sample=FRACTION,
                             sample_seed=1, shards=2), workers=1)
    assert status.state is JobState.COMPLETED, status.error
    assert not list((root / "out").glob("features-*.parquet"))  # the sample instead of the full table
    return root / "out"


def test_the_sample_is_read_into_one_float32_matrix_with_its_weights(sample_dir: Path) -> None:
    data = from_feature_table(str(sample_dir))
    assert data.X.dtype == np.float32 and data.X.flags.c_contiguous
    assert data.weight is not None and set(np.unique(data.weight)) == {1.0, 1.0 / FRACTION}
    assert np.all(data.weight[data.y == 1] == 1.0)
    assert np.all(np.diff(data.ts) >= 0) and data.source.startswith("training sample")


def test_the_weights_reach_the_estimator_the_calibration_and_the_gate(sample_dir: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    fitted: list[np.ndarray | None] = []
    original_fit = HistGradientBoostingClassifier.fit

    def recording_fit(self, X, y, sample_weight=None):  # noqa: ANN001, ANN202
        fitted.append(sample_weight)
        return original_fit(self, X, y, sample_weight=sample_weight)

    seen: dict[str, object] = {}
    original_check, original_calibration = gate.check, gate.check_calibration

    def recording_check(pr_auc, production, policy):  # noqa: ANN001, ANN202
        seen["pr_auc"] = pr_auc
        return original_check(pr_auc, production, policy)

    def recording_calibration(calibration, policy):  # noqa: ANN001, ANN202
        seen["calibration"] = calibration
        return original_calibration(calibration, policy)

    monkeypatch.setattr(HistGradientBoostingClassifier, "fit", recording_fit)
    monkeypatch.setattr(gate, "check", recording_check)
    monkeypatch.setattr(gate, "check_calibration", recording_calibration)

    report = train_and_publish(replace(SMALL, registry=str(tmp_path), features=str(sample_dir)))
    assert report["version"] == "v1"
    data = from_feature_table(str(sample_dir))
    # The estimator: one fit, on the training rows but the calibration slice, with their weights.
    (weights,) = fitted
    assert weights is not None and len(weights) == report["n_train"]
    assert set(np.unique(weights)) == {1.0, 1.0 / FRACTION}
    assert report["sample"]["stands_for"] == round(float(data.weight.sum())) > len(data)

    # The gate: the weighted PR-AUC and calibration of the published graph on the held-out rows.
    split = time_split(data, SMALL.test_fraction)
    y, w = data.y[split.test], data.weight[split.test]
    served = onnx_scores(open_registry(str(tmp_path)).load("v1").artifact, data.X[split.test])
    assert seen["pr_auc"] == pytest.approx(average_precision_score(y, served, sample_weight=w), abs=1e-12)
    assert seen["pr_auc"] != pytest.approx(average_precision_score(y, served), abs=1e-6)
    assert seen["calibration"] == pytest.approx(metrics.calibration(y, served, w))

    # Thresholds and alert volume are the traffic's: the review threshold flags <= 1 % of the
    # weighted legitimate rows, and the alerts count what the rows stand for.
    review = report["thresholds"]["review"]
    legit = y == 0
    assert w[legit & (served >= review)].sum() <= 0.01 * w[legit].sum()
    assert report["alerts"]["review"] == round(float(w[served >= review].sum()))


def test_weights_of_one_change_no_figure() -> None:
    rng = np.random.default_rng(2)
    y = (rng.uniform(size=5000) < 0.05).astype(np.int8)
    s = np.clip(rng.normal(0.1 + 0.5 * y, 0.2), 0, 1)
    ts = rng.uniform(0, 5 * 86400, 5000)
    wallets = np.asarray([f"w{i}" for i in rng.integers(0, 800, 5000)], dtype=object)
    ones = np.ones(5000)
    assert metrics.derive_thresholds(y, s, ones) == metrics.derive_thresholds(y, s)
    assert metrics.calibration(y, s, ones) == pytest.approx(metrics.calibration(y, s))
    assert metrics.evaluate(y, s, ts, wallets, ones) == pytest.approx(metrics.evaluate(y, s, ts, wallets))
    # A row of weight 2 counts as that row twice.
    twice = np.concatenate([np.arange(5000), np.flatnonzero(y == 0)])
    w = np.where(y == 0, 2.0, 1.0)
    assert metrics.pr_auc(y, s, w) == pytest.approx(metrics.pr_auc(y[twice], s[twice]), abs=1e-12)
    assert metrics.calibration(y, s, w)["brier"] == pytest.approx(metrics.calibration(y[twice], s[twice])["brier"])
