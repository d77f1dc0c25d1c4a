"""Calibration: the slice (mature labels, held out from the trees), Platt's fit, and the fold into
the exported trees (the graph's scores are the calibrated ones, ranking kept)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from tests.scoring_fixtures import N, synthetic_labels, synthetic_rows, tiny_model
from txguard.contract.errors import QualityGateError
from txguard.training import calibration
from txguard.training.calibration import Platt, calibration_slice, fit_platt, fold_into_onnx, label_maturity
from txguard.training.metrics import alerts, derive_thresholds, pr_auc
from txguard.training.train import onnx_scores

DAY = 86400.0


def test_label_maturity_is_the_quantile_of_the_label_delays_not_of_those_the_cut_let_through() -> None:
    """Delays independent of time (lognormal, median 7 days, as the simulator's chargebacks): the
    labels known at the split are truncated by it (a row of age a shows delays <= a), so their own
    quantile is too short; the estimate finds the delays' own quantile from them alone."""
    rng = np.random.default_rng(3)
    ts = np.sort(rng.uniform(0, 25 * DAY, 20_000))
    y = (rng.random(len(ts)) < 0.05).astype(int)
    delay = np.exp(rng.normal(np.log(7.0), 0.6, len(ts))) * DAY
    label_time = np.where(y == 1, ts + delay, np.nan)
    as_of = 25 * DAY
    known = (y == 1) & (label_time <= as_of)
    truncated = np.quantile((label_time - ts)[known], calibration.MATURITY_QUANTILE)
    truth = np.quantile(delay[y == 1], calibration.MATURITY_QUANTILE)
    estimate = label_maturity(ts, y, label_time, as_of)
    assert truncated < 0.85 * truth  # what the plain quantile of the known delays would say
    assert estimate == pytest.approx(truth, rel=0.05)
    # It reads only the labels known at the split: those that come later change nothing.
    later = label_time.copy()
    later[(y == 1) & ~known] += 100 * DAY
    assert label_maturity(ts, y, later, as_of) == estimate
    assert label_maturity(ts, np.zeros(len(ts), dtype=int), label_time, as_of) == 0.0  # no fraud label known


def test_the_slice_is_the_most_recent_mature_part_of_the_training_rows() -> None:
    ts = np.arange(0, 40 * DAY, 600.0)
    y = (np.arange(len(ts)) % 50 == 0).astype(int)
    label_time = np.where(y == 1, ts + 7 * DAY, np.nan)  # every fraud known 7 days later
    as_of = 30 * DAY
    train = (ts < as_of) & (np.isnan(label_time) | (label_time <= as_of))
    held = calibration_slice(ts, y, label_time, train, as_of, fraction=0.2)
    assert held.label_maturity_s == pytest.approx(7 * DAY)
    assert held.end == pytest.approx(as_of - 7 * DAY)
    assert held.end - held.start == pytest.approx(0.2 * (ts[train].max() - ts[train].min()))
    assert not np.any(held.rows & ~train)
    rows = ts[held.rows]
    assert rows.min() >= held.start and rows.max() < held.end
    # Every label of the slice was known at the split: its fraud rate is the data's.
    assert np.all(label_time[held.rows & (y == 1)] <= as_of)
    assert y[held.rows].mean() == pytest.approx(y.mean(), abs=0.002)


def test_the_slice_ends_at_the_last_training_row_when_labels_are_known_at_once() -> None:
    ts = np.arange(0, 10 * DAY, 3600.0)
    y = (np.arange(len(ts)) % 7 == 0).astype(int)
    label_time = np.full(len(ts), np.nan)
    train = ts < 8 * DAY
    held = calibration_slice(ts, y, label_time, train, 8 * DAY, fraction=0.25)
    assert held.label_maturity_s == 0.0
    assert ts[held.rows].max() == ts[train].max()
    # When the maturity reaches back past the period, the slice is its earliest part, not empty.
    label_time = np.where(y == 1, ts + 7.5 * DAY, np.nan)
    held = calibration_slice(ts, y, label_time, train, 8 * DAY, fraction=0.25)
    assert held.label_maturity_s == pytest.approx(7.5 * DAY)
    assert held.start == ts[train].min() and held.rows.sum() > 0
    with pytest.raises(ValueError, match="fraction"):
        calibration_slice(ts, y, label_time, train, 8 * DAY, fraction=1.0)


def test_platt_recovers_a_known_sigmoid_and_stays_finite_when_the_slice_separates() -> None:
    rng = np.random.default_rng(0)
    margin = rng.normal(0, 3, 200_000)
    y = (rng.random(len(margin)) < Platt(0.7, -2.0)(margin)).astype(int)
    fitted = fit_platt(margin, y)
    assert fitted.slope == pytest.approx(0.7, abs=0.02) and fitted.intercept == pytest.approx(-2.0, abs=0.05)
    separable = fit_platt(np.r_[np.full(50, -5.0), np.full(5, 5.0)], np.r_[np.zeros(50), np.ones(5)].astype(int))
    assert np.isfinite(separable.slope) and 0 < separable.slope < 10  # Platt's targets, not 0 and 1
    with pytest.raises(QualityGateError, match="0 frauds"):
        fit_platt(np.zeros(10), np.zeros(10, dtype=int))
    assert Platt(1.0, 0.0)(np.array([-1000.0, 0.0, 1000.0])).tolist() == [0.0, 0.5, 1.0]  # no overflow


def test_the_folded_graph_serves_the_calibrated_probability_with_the_same_ranking() -> None:
    est, raw = tiny_model()
    x = synthetic_rows(5000, seed=9).astype(np.float32)
    platt = Platt(slope=0.6, intercept=-1.3)
    folded = fold_into_onnx(raw, platt)
    served, before = onnx_scores(folded, x), onnx_scores(raw, x)
    assert np.max(np.abs(served - platt(est.decision_function(x)))) < 1e-5
    assert np.max(np.abs(served - before)) > 0.05  # the calibration is really in the graph
    # Increasing: the ranking is the trees', so thresholds derived the same way flag as many rows (two
    # rows the trees' float32 scores tie may come out one float32 step apart after the fold, either way).
    order = np.argsort(before, kind="stable")
    assert np.all(np.diff(served[order]) >= -2.5e-7)
    y = synthetic_labels(x.astype(np.float64), seed=9)
    # As many alerts, but for such a tie at a threshold: one row either way.
    after, trees = alerts(served, derive_thresholds(y, served)), alerts(before, derive_thresholds(y, before))
    assert all(abs(after[k] - trees[k]) <= 1 for k in trees), (after, trees)
    assert pr_auc(y, served) == pytest.approx(pr_auc(y, before), abs=1e-6)
    model = onnx.load_from_string(folded)
    assert [n.op_type for n in model.graph.node] == ["TreeEnsembleClassifier"]  # no extra op at serving
    props = {p.key: p.value for p in model.metadata_props}
    assert props["txguard.calibration"] == f"platt slope={platt.slope!r} intercept={platt.intercept!r}"


def test_a_graph_of_another_shape_is_refused() -> None:
    from onnx import TensorProto, helper

    identity = helper.make_model(helper.make_graph(
        [helper.make_node("Identity", ["input"], ["probabilities"])], "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, N])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, N])]))
    with pytest.raises(ValueError, match="one TreeEnsembleClassifier"):
        fold_into_onnx(identity.SerializeToString(), Platt(1.0, 0.0))
    model = onnx.load_from_string(tiny_model()[1])
    for attr in model.graph.node[0].attribute:
        if attr.name == "post_transform":
            attr.s = b"NONE"
    with pytest.raises(ValueError, match="logistic"):
        fold_into_onnx(model.SerializeToString(), Platt(1.0, 0.0))


def test_fit_calibrated_never_fits_the_trees_on_the_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    from txguard.training import train as train_module

    x = synthetic_rows(6000, seed=4).astype(np.float32)
    y = synthetic_labels(x.astype(np.float64), seed=4)
    ts = np.arange(len(y), dtype=float) * 600
    label_time = np.where(y == 1, ts + 3 * DAY, np.nan)
    as_of = ts[-1] + 1
    train = np.isnan(label_time) | (label_time <= as_of)
    seen: list[np.ndarray] = []
    real = train_module.fit_model
    monkeypatch.setattr(train_module, "fit_model",
                        lambda config, X, yy, weight=None: seen.append(X) or real(config, X, yy, weight))
    fitted = train_module.fit_calibrated(train_module.TrainConfig(max_iter=20), x, y, ts, label_time, train, as_of)
    held = fitted.calibration_slice.rows
    assert held.sum() > 0 and not np.any(held & fitted.fit_rows) and np.array_equal(fitted.fit_rows, train & ~held)
    assert len(seen) == 1 and np.array_equal(seen[0], x[fitted.fit_rows])
    assert ts[held].max() < as_of - fitted.calibration_slice.label_maturity_s
    assert np.max(np.abs(onnx_scores(fitted.artifact, x[:500]) - fitted.reference_scores(x[:500]))) < 1e-5
    record = fitted.calibration_record(y)
    assert (record.method, record.rows, record.frauds) == ("platt", int(held.sum()), int(y[held].sum()))
