"""The comparison's split (history, train, delay, test; known-defrauded customers out) and the
`txguard evaluate handbook` command end to end on a tiny dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from txguard.cli.main import main
from txguard.evaluation.compare import SplitDays, handbook_split
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
    assert split.test_start - data.ts[split.train].max() > days.delay * DAY
    kept = handbook_split(data, days, drop_known_compromised=False)
    assert np.flatnonzero(kept.test).tolist() == [5, 6, 7, 8]


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
