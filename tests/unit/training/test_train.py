"""Training: a small end-to-end run, the quality gate, and malformed training files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from txguard.contract.errors import DataFileError, QualityGateError
from txguard.features.wallet import FEATURE_NAMES
from txguard.registry import open_registry
from txguard.simulator.core import simulate
from txguard.training.dataset import from_file, simulated
from txguard.training.gate import GatePolicy
from txguard.training.train import TrainConfig, time_split, train_and_publish

# A 10-day world is shorter than its chargebacks' delays: the estimated maturity window would take
# half of it (test_split.py holds the window), and its calibration slice, mature at the cut, is its
# first days. These tests train on every row before the cut, with a trial run's gate.
SMALL = TrainConfig(days=10, wallets=600, seed=5, max_iter=40, label_maturity_days=0.0,
                    policy=GatePolicy(min_pr_auc=0.3, max_ece=0.05))


@pytest.fixture(scope="module")
def small_data():  # noqa: ANN201
    return simulated(SMALL.days, SMALL.wallets, SMALL.seed)


def test_small_train_publishes_a_loadable_model(tmp_path: Path, small_data) -> None:  # noqa: ANN001
    report = train_and_publish(replace(SMALL, registry=str(tmp_path)), dataset=small_data)
    assert report["version"] == "v1" and report["aliases"] == ["staging", "production"]
    assert report["pr_auc"] >= 0.3 and report["onnx_max_abs_diff"] <= 1e-5
    reg = open_registry(str(tmp_path))
    loaded = reg.load("production")
    assert loaded.metadata.features == list(FEATURE_NAMES)
    assert loaded.metadata.thresholds.review <= loaded.metadata.thresholds.block
    assert set(loaded.metadata.library_versions) >= {"scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy"}
    assert loaded.metadata.model_extra["hyperparameters"]["fraud_weight"] == SMALL.fraud_weight
    session = ort.InferenceSession(loaded.artifact, providers=["CPUExecutionProvider"])
    # Published as the margin graph: the trees' log-odds, one column (the runtime takes the logistic).
    assert [o.name for o in session.get_outputs()] == ["margin"]
    margins = session.run(None, {"input": small_data.X[:5].astype(np.float32)})[0]
    assert margins.shape == (5, 1)

    # A second passing model goes to staging only; --promote moves production too.
    second = train_and_publish(replace(SMALL, registry=str(tmp_path)), dataset=small_data)
    assert second["aliases"] == ["staging"] and second["production_version"] == "v1"
    assert reg.aliases() == {"production": "v1", "staging": "v2"}
    train_and_publish(replace(SMALL, registry=str(tmp_path), promote=True), dataset=small_data)
    assert reg.aliases() == {"production": "v3", "staging": "v3"}


def test_fraud_weight_weighs_fraud_rows_in_the_loss(small_data) -> None:  # noqa: ANN001
    from txguard.training.train import fit_model

    X, y = small_data.X[:4000].astype(np.float32), small_data.y[:4000]
    assert y.sum() > 0
    plain = fit_model(replace(SMALL, fraud_weight=1.0), X, y).predict_proba(X)[:, 1]
    weighted = fit_model(replace(SMALL, fraud_weight=10.0), X, y).predict_proba(X)[:, 1]
    # Heavier fraud rows pull the scores of every row up (on average), frauds most.
    assert weighted.mean() > plain.mean()
    assert weighted[y == 1].mean() > plain[y == 1].mean()


def test_the_tree_shape_of_the_config_reaches_the_model(small_data) -> None:  # noqa: ANN001
    from txguard.training.train import fit_model

    X, y = small_data.X[:2000].astype(np.float32), small_data.y[:2000]
    model = fit_model(replace(SMALL, max_iter=5, max_leaf_nodes=7, min_samples_leaf=60), X, y)
    assert (model.max_leaf_nodes, model.min_samples_leaf) == (7, 60)
    # Every leaf the fit grew holds at least 60 rows and each tree at most 7 leaves.
    for predictors in model._predictors:
        leaves = [node for node in predictors[0].nodes if node["is_leaf"]]
        assert len(leaves) <= 7 and min(node["count"] for node in leaves) >= 60


def test_gate_rejects_a_degraded_model(tmp_path: Path, small_data) -> None:  # noqa: ANN001
    # Trained on shuffled labels, evaluated on the true held-out labels: a genuinely bad model.
    train_rows = time_split(small_data, SMALL.test_fraction, SMALL.label_maturity_days).train
    y = small_data.y.copy()
    y[train_rows] = np.random.default_rng(0).permutation(y[train_rows])
    shuffled = replace(small_data, y=y)
    with pytest.raises(QualityGateError, match="below the floor"):
        train_and_publish(replace(SMALL, registry=str(tmp_path)), dataset=shuffled)
    assert open_registry(str(tmp_path)).versions() == []

    # With no floor, the regression check against production (same held-out rows) still rejects it.
    train_and_publish(replace(SMALL, registry=str(tmp_path)), dataset=small_data)
    no_floor = replace(SMALL, registry=str(tmp_path), policy=GatePolicy(min_pr_auc=0.0, max_regression=0.02))
    with pytest.raises(QualityGateError, match="worse than production"):
        train_and_publish(no_floor, dataset=shuffled)
    assert [m.version for m in open_registry(str(tmp_path)).versions()] == ["v1"]


def _write_jsonl(path: Path, n_days: int = 10, wallets: int = 600) -> list[dict]:
    rows = [r.to_row() for r in simulate(days=n_days, wallets=wallets, seed=5)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def test_malformed_rows_are_reported_with_line_and_field(tmp_path: Path) -> None:
    rows = [r.to_row() for r in simulate(days=1, wallets=20, seed=1)][:5]
    bad = [dict(r) for r in rows]
    bad[2]["amount"] = -3
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in bad))
    with pytest.raises(DataFileError, match=r"line 3: field 'amount'"):
        from_file(path)

    bad = [dict(r) for r in rows]
    del bad[1]["is_fraud"]
    path.write_text("".join(json.dumps(r) + "\n" for r in bad))
    with pytest.raises(DataFileError, match=r"line 2: field 'is_fraud'"):
        from_file(path)

    path.write_text(json.dumps(rows[0]) + "\n{not json\n")
    with pytest.raises(DataFileError, match=r"line 2"):
        from_file(path)

    csv_path = tmp_path / "bad.csv"
    header = list(rows[0])
    lines = [",".join(header)]
    for i, r in enumerate(rows):
        r = dict(r, currency="XXX") if i == 3 else r
        lines.append(",".join("" if r[k] is None else str(r[k]) for k in header))
    csv_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFileError, match=r"line 5: field 'currency'"):
        from_file(csv_path)


def test_csv_and_label_time_are_accepted(tmp_path: Path) -> None:
    rows = [r.to_row() for r in simulate(days=2, wallets=50, seed=1)]
    header = [*rows[0], "label_time"]
    lines = [",".join(header)]
    for r in rows:
        r = {**r, "label_time": r["timestamp"] if r["is_fraud"] else ""}
        lines.append(",".join("" if r[k] is None else str(r[k]) for k in header))
    path = tmp_path / "ok.csv"
    path.write_text("\n".join(lines) + "\n")
    data = from_file(path)
    assert len(data) == len(rows) and data.X.shape == (len(rows), len(FEATURE_NAMES))
    assert int(data.y.sum()) == sum(r["is_fraud"] for r in rows)


def test_a_fraud_labelled_never_is_graded_but_never_known(tmp_path: Path) -> None:
    rows = [r.to_row() for r in simulate(days=6, wallets=300, seed=2)]
    frauds = [i for i, r in enumerate(rows) if r["is_fraud"]]
    assert len(frauds) >= 4
    never, known = frauds[0], frauds[1]
    rows[never]["label_time"] = "never"
    rows[known]["label_time"] = rows[known]["timestamp"]
    path = tmp_path / "never.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = from_file(path)
    order = np.argsort([r["timestamp"] for r in rows], kind="stable")
    at = {int(i): k for k, i in enumerate(order)}
    assert data.y[at[never]] == 1 and data.label_time[at[never]] == np.inf
    split = time_split(data, 0.25)
    # A fraud never reported is a fraud on the held-out side and never one in training.
    assert not split.y_train[np.flatnonzero(split.train) == at[never]].any()
    rows[never]["label_time"] = "next week"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataFileError, match="label_time"):
        from_file(path)


def test_cli_train_from_file_and_bad_file(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from txguard.cli.main import main

    data = tmp_path / "train.jsonl"
    _write_jsonl(data)
    reg = tmp_path / "reg"
    code = main(["train", "--data", str(data), "--registry", str(reg), "--max-iter", "40", "--min-pr-auc", "0.3"])
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0, last
    for key in ("pr_auc", "roc_auc", "recall_at_1pct_fpr", "wallet_precision_at_100", "baseline_pr_auc",
                "train_seconds", "version"):
        assert key in last
    assert last["version"] == "v1"

    lines = data.read_text().splitlines()
    row = json.loads(lines[6])
    row["country"] = "Atlantis"
    lines[6] = json.dumps(row)
    data.write_text("\n".join(lines) + "\n")
    assert main(["train", "--data", str(data), "--registry", str(reg)]) == 1  # input
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "line 7" in last["error"] and "country" in last["error"]
    assert [m.version for m in open_registry(str(reg)).versions()] == ["v1"]


def test_cli_gate_failure_exits_3_and_publishes_nothing(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from txguard.cli.main import main

    reg = tmp_path / "reg"
    code = main(["train", "--days", "10", "--wallets", "600", "--seed", "5", "--max-iter", "20", "--label-maturity-days", "0", "--max-ece", "0.05",
                 "--registry", str(reg), "--min-pr-auc", "0.9999"])
    captured = capsys.readouterr()
    last = json.loads(captured.out.strip().splitlines()[-1])
    assert code == 3 and last["gate"] == "failed" and "below the floor" in last["error"]
    assert open_registry(str(reg)).versions() == []
    # Refused, but measured: the whole metrics line, and the table before the refusal.
    assert 0.0 < last["pr_auc"] < 0.9999 and last["version"] is None
    for key in ("roc_auc", "recall_at_1pct_fpr", "baseline_pr_auc", "n_train", "n_test", "split_at", "thresholds"):
        assert key in last, key
    assert f"{last['pr_auc']:.4f}" in captured.err
    assert captured.err.index("held-out metrics") < captured.err.index("quality gate refused the model")


def test_a_gate_refusal_carries_every_figure_measured(tmp_path: Path, small_data) -> None:  # noqa: ANN001
    strict = replace(SMALL, registry=str(tmp_path), policy=GatePolicy(min_pr_auc=0.9999))
    with pytest.raises(QualityGateError, match="below the floor") as refused:
        train_and_publish(strict, dataset=small_data)
    passed = train_and_publish(replace(SMALL, registry=str(tmp_path / "other")), dataset=small_data)
    report = refused.value.report
    assert report is not None and report["version"] is None
    same = ("pr_auc", "roc_auc", "recall_at_1pct_fpr", "baseline_pr_auc", "n_train", "n_test", "split_at")
    assert {k: report[k] for k in same} == {k: passed[k] for k in same}


def test_a_version_carries_its_drift_reference_parity_probe_and_pictures(tmp_path: Path, small_data) -> None:  # noqa: ANN001
    from txguard.scoring.loading import smoke_test
    from txguard.scoring.runtime import ModelRuntime
    from txguard.training.lifecycle import NOT_MONITORED

    pictures = tmp_path / "pictures"
    report = train_and_publish(replace(SMALL, registry=str(tmp_path / "reg"), pictures_dir=str(pictures)),
                               dataset=small_data)
    reg = open_registry(str(tmp_path / "reg"))
    loaded = reg.load(report["version"])
    reference = loaded.metadata.drift_reference
    assert reference is not None and reference.rows == report["n_test"]
    assert list(reference.features) == [f for f in FEATURE_NAMES if f not in NOT_MONITORED]
    assert all(len(b.expected) == len(b.edges) + 1 and abs(sum(b.expected) - 1) < 1e-9
               for b in [*reference.features.values(), reference.score])
    probe = loaded.metadata.parity_probe
    assert probe is not None and 8 <= len(probe.rows) <= 32
    assert smoke_test(ModelRuntime(loaded.artifact, loaded.metadata)) <= probe.tolerance
    keys = [f"versions/{report['version']}/pictures/{name}"
            for name in ("curves.png", "scores.png", "scenarios.png", "reliability.png")]
    assert report["pictures"] == keys
    for key in keys:
        data, _ = reg.store.read(key)
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
        assert (pictures / key.rsplit("/", 1)[1]).read_bytes() == data


def test_a_version_serves_calibrated_probabilities_and_the_gate_bounds_them(tmp_path: Path, small_data) -> None:  # noqa: ANN001
    import onnx

    from txguard.training.metrics import calibration as calibration_metrics

    report = train_and_publish(replace(SMALL, registry=str(tmp_path)), dataset=small_data)
    # Before and after on the held-out rows; the ranking and the alert volume are the trees'.
    for key in ("brier", "ece", "ece_max_gap", "score_to_fraud_rate", "pr_auc"):
        assert key in report and f"{key}_uncalibrated" in report
    assert report["ece"] <= SMALL.policy.max_ece and report["ece_max_gap"] <= SMALL.policy.max_calibration_gap
    assert report["pr_auc"] == pytest.approx(report["pr_auc_uncalibrated"], abs=1e-4)
    assert report["alerts"] == report["alerts_uncalibrated"]
    assert report["n_train"] + report["n_calibration"] == int(time_split(small_data, SMALL.test_fraction, SMALL.label_maturity_days).train.sum())
    meta = open_registry(str(tmp_path)).load(report["version"])
    calibration = meta.metadata.calibration
    assert calibration is not None and calibration.method == "platt" and calibration.rows == report["n_calibration"]
    assert report["calibration"] == calibration.model_dump()
    assert meta.metadata.metrics["ece"] == pytest.approx(report["ece"], abs=1e-6)
    # The artifact is the calibrated graph: it records the metadata's parameters, and its held-out
    # scores are the ones whose calibration the report gives.
    props = {p.key: p.value for p in onnx.load_from_string(meta.artifact).metadata_props}
    assert props["txguard.calibration"] == f"platt slope={calibration.slope!r} intercept={calibration.intercept!r}"
    test = time_split(small_data, SMALL.test_fraction, SMALL.label_maturity_days).test
    session = ort.InferenceSession(meta.artifact, providers=["CPUExecutionProvider"])
    margins = session.run(None, {"input": small_data.X[test].astype(np.float32)})[0][:, 0].astype(np.float64)
    served = 1.0 / (1.0 + np.exp(-margins))
    assert calibration_metrics(small_data.y[test], served)["ece"] == pytest.approx(report["ece"], abs=1e-6)

    strict = replace(SMALL, registry=str(tmp_path / "strict"), policy=replace(SMALL.policy, max_ece=0.0))
    with pytest.raises(QualityGateError, match=r"expected calibration error .*\(--max-ece\)"):
        train_and_publish(strict, dataset=small_data)
    gap = replace(SMALL, registry=str(tmp_path / "gap"), policy=replace(SMALL.policy, max_calibration_gap=-1.0))
    with pytest.raises(QualityGateError, match="--max-calibration-gap"):
        train_and_publish(gap, dataset=small_data)
    assert open_registry(str(tmp_path / "strict")).versions() == [] == open_registry(str(tmp_path / "gap")).versions()


def test_cli_calibration_gate_exits_3(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from txguard.cli.main import main

    code = main(["train", "--days", "10", "--wallets", "600", "--seed", "5", "--max-iter", "20", "--label-maturity-days", "0", "--min-pr-auc", "0.3",
                 "--registry", str(tmp_path / "reg"), "--max-ece", "0", "--no-pictures"])
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 3 and "--max-ece" in last["error"]


def test_parity_reads_the_row_on_a_threshold_as_a_tie_and_refuses_a_score_that_moved() -> None:
    from txguard.registry.metadata import Thresholds
    from txguard.training.train import check_parity

    thresholds = Thresholds(review=0.2, block=0.6)
    served = np.array([0.05, 0.2, 0.6, 0.9])  # derived thresholds are served scores: those rows sit on them
    twin = served - np.array([0.0, 6e-7, 6e-7, 0.0])  # scikit-learn's float64 scores, rounded the other way
    assert check_parity(twin, served, thresholds) == {"onnx_max_abs_diff": pytest.approx(6e-7),
                                                       "onnx_decision_flips": 0.0}
    moved = served + np.array([0.0, 0.0, 0.0, -0.35])  # a row crossing the block threshold for real
    with pytest.raises(QualityGateError, match="1 decision flips"):
        check_parity(moved, served, thresholds)
