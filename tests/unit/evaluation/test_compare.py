"""The comparison's split (history, train, delay, test; known-defrauded customers out) and the
`txguard evaluate handbook` command end to end on a tiny dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from txguard.cli.main import main
from txguard.evaluation.compare import Laps, SplitDays, handbook_split, kind_comparison, shuffled
from txguard.evaluation.handbook_data import DAY, HandbookConfig, HandbookData


def _data(rows: list[tuple[float, int, int]]) -> HandbookData:
    """Rows of (day, customer, is_fraud); labels known 7 days later."""
    cfg = HandbookConfig(customers=3, terminals=1, days=10)
    day, cust, fraud = (np.asarray(c) for c in zip(*rows, strict=True))
    ts = cfg.start_epoch + day * DAY
    return HandbookData(ts=ts, customer=cust, terminal=np.zeros(len(ts), int), amount=np.ones(len(ts)),
                        is_fraud=fraud.astype(np.int8), scenario=fraud.astype(np.int8), label_time=ts + 7 * DAY,
                        config=cfg)


def test_split_leaves_the_delay_period_out_and_drops_known_defrauded_customers() -> None:
    days = SplitDays(history=2, train=3, delay=7, test=4)  # train [2, 5), delay [5, 12), test [12, 16)
    rows = [
        (1.0, 0, 0),  # history
        (2.0, 0, 1),  # train: customer 0 defrauded, known on day 9
        (4.9, 1, 0),  # train
        (5.0, 2, 0),  # delay period: in neither
        (8.0, 1, 1),  # delay period: customer 1 defrauded, known on day 15
        (12.0, 0, 0),  # test, customer 0 already known defrauded: dropped
        (14.0, 1, 1),  # test, customer 1 not yet known: kept
        (15.5, 1, 0),  # test, customer 1 known since day 15: dropped
        (15.9, 2, 0),  # test
        (16.0, 2, 0),  # after the test period
    ]
    data = _data(rows)
    split = handbook_split(data, days)
    assert np.flatnonzero(split.train).tolist() == [1, 2]
    assert np.flatnonzero(split.test).tolist() == [6, 8]
    assert split.known_compromised_dropped == 2
    assert np.all(data.label_time[split.train] < split.test_start)
    assert split.y_train.tolist() == [1, 0] and split.unknown_at_cut == 0  # labels known when the test starts
    assert split.test_start - data.ts[split.train].max() > days.delay * DAY
    kept = handbook_split(data, days, drop_known_compromised=False)
    assert np.flatnonzero(kept.test).tolist() == [5, 6, 7, 8]


def test_a_label_arriving_after_the_test_starts_trains_as_legitimate() -> None:
    days = SplitDays(history=0, train=5, delay=2, test=3)  # train [0, 5), delay [5, 7), test [7, 10)
    data = _data([(1.0, 0, 1), (2.0, 1, 1), (3.0, 2, 0), (8.0, 2, 1)])
    data.label_time[0] = data.ts[0] + DAY  # reported on day 2
    data.label_time[1] = data.ts[1] + 9 * DAY  # reported on day 11: after the test started
    split = handbook_split(data, days)
    assert np.flatnonzero(split.train).tolist() == [0, 1, 2]  # kept, not dropped by its future label
    assert split.y_train.tolist() == [1, 0, 0] and split.unknown_at_cut == 1


def test_kind_comparison_grades_the_paired_difference() -> None:
    y = np.array([0] * 1000 + [1] * 100)
    kinds = np.array(["legit"] * 1000 + ["a"] * 50 + ["b"] * 50, dtype=object)
    rng = np.random.default_rng(1)
    legit = rng.uniform(0, 1, 1000)
    ours, theirs = np.concatenate([legit, np.full(100, 2.0)]), np.concatenate([legit, np.full(100, 2.0)])
    theirs[1000:1010] = 0.0  # theirs misses 10 of kind a
    ours[1050:1052] = 0.0  # ours misses 2 of kind b
    out = kind_comparison(y, kinds, ours, theirs)
    assert out["a"]["ours"] == 1.0 and out["a"]["theirs"] == 0.8 and out["a"]["verdict"] == "above"
    assert (out["b"]["only_theirs"], out["b"]["only_ours"]) == (2, 0)
    assert out["b"]["difference"] == -0.04 and out["b"]["noise"] == round(2 * np.sqrt(2) / 50, 4)
    assert out["b"]["verdict"] == "within noise"
    ours[1050:1060] = 0.0  # 10 missed: 0.2 below, noise 2 sqrt(10) / 50 = 0.126
    assert kind_comparison(y, kinds, ours, theirs)["b"]["verdict"] == "below"


def test_shuffled_labels_are_a_permutation() -> None:
    y = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0] * 20, dtype=np.int8)
    noise = shuffled(y, 3)
    assert sorted(noise.tolist()) == sorted(y.tolist()) and not np.array_equal(noise, y)
    assert np.array_equal(noise, shuffled(y, 3))


def test_split_days_are_checked() -> None:
    with pytest.raises(ValueError, match="train_days must be >= 1"):
        SplitDays(train=0)


def test_evaluate_handbook_end_to_end_on_a_tiny_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "hb.jsonl"
    code = main(["evaluate", "handbook", "--customers", "400", "--terminals", "800", "--history-days", "8",
                 "--train-days", "10", "--test-days", "7", "--seed", "3", "--data-out", str(out),
                 "--classifiers", "logistic_regression,decision_tree_depth_2"])
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out.is_file() and report["data"]["path"] == str(out)
    assert report["data"]["transactions"] == sum(report["data"]["scenarios"].values())
    assert set(report["recipe_classifiers"]) == {"logistic_regression", "decision_tree_depth_2"}
    best = max(report["recipe_classifiers"].values(), key=lambda m: m["pr_auc"])
    assert report["recipe"]["pr_auc"] == best["pr_auc"]
    split = report["split"]
    assert split["test_start"] == "2018-04-26T00:00:00+00:00"  # 8 + 10 + 7 days after 2018-04-01
    assert split["n_test_fraud"] == sum(split["test_fraud_by_scenario"].values()) > 0
    for side in (report["txguard"], report["recipe"]):
        for key in ("pr_auc", "roc_auc", "recall_at_1pct_fpr", "wallet_precision_at_100"):
            assert 0.0 <= side[key] <= 1.0
        assert set(side["recall_at_1pct_fpr_by_scenario"]) == set(split["test_fraud_by_scenario"])
    assert report["txguard"]["roc_auc"] > 0.6  # a real model on real features, not a constant
    assert report["pr_auc_margin"] == round(report["txguard"]["pr_auc"] - report["recipe"]["pr_auc"], 4)
    assert set(report["by_scenario"]) == set(split["test_fraud_by_scenario"])
    assert report["shuffled_labels"]["txguard_pr_auc"] < report["txguard"]["pr_auc"]
    # Scored as served: calibrated, the ranking of the trees alone kept.
    t = report["txguard"]
    for key in ("brier", "ece", "ece_max_gap", "score_to_fraud_rate"):
        assert key in t and f"{key}_uncalibrated" in t
    assert t["pr_auc"] == pytest.approx(t["pr_auc_uncalibrated"], abs=1e-4) and t["n_calibration"] > 0


def test_evaluate_handbook_names_a_bad_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "handbook", "--classifiers", "xgboost"]) == 2
    assert "--classifiers" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]
    assert main(["evaluate", "handbook", "--train-days", "0"]) == 2
    assert "train_days" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]


def test_laps_time_each_step_from_the_end_of_the_one_before() -> None:
    laps = Laps()
    laps("generate_seconds")
    laps("fit_seconds")
    out = laps.seconds()
    assert list(out) == ["generate_seconds", "fit_seconds", "seconds"]
    assert all(v >= 0 for v in out.values())
    assert out["seconds"] >= out["generate_seconds"] + out["fit_seconds"] - 0.02  # each step rounded to 0.01
