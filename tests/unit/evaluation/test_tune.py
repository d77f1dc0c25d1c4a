"""Hyperparameters chosen on the training period only: the validation cut never reaches the
delay or test periods, the candidates, and `txguard evaluate tune` end to end on a tiny dataset."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from txguard.cli.main import main
from txguard.evaluation.compare import SplitDays, handbook_split
from txguard.evaluation.handbook_data import DAY, HandbookConfig, HandbookData
from txguard.evaluation.tune import Candidate, candidates, validation_split
from txguard.training.train import TrainConfig


def _data(rows: list[tuple[float, int, int]]) -> HandbookData:
    """Rows of (day, customer, is_fraud); labels known 7 days later."""
    cfg = HandbookConfig(customers=3, terminals=1, days=20)
    day, cust, fraud = (np.asarray(c) for c in zip(*rows, strict=True))
    ts = cfg.start_epoch + day * DAY
    return HandbookData(ts=ts, customer=cust, terminal=np.zeros(len(ts), int), amount=np.ones(len(ts)),
                        is_fraud=fraud.astype(np.int8), scenario=fraud.astype(np.int8), label_time=ts + 7 * DAY,
                        config=cfg)


def test_the_validation_slice_lies_inside_the_training_period() -> None:
    days = SplitDays(history=2, train=6, delay=7, test=4)  # train [2, 8), delay [8, 15), test [15, 19)
    rows = [
        (1.0, 0, 0),  # history
        (2.0, 0, 1),  # fit: customer 0 defrauded, known on day 9
        (5.9, 1, 0),  # fit
        (6.0, 2, 0),  # validation
        (7.9, 1, 1),  # validation
        (8.0, 2, 0),  # delay period
        (9.5, 0, 0),  # delay period, customer 0 known defrauded
        (15.0, 1, 1),  # test
        (18.0, 2, 0),  # test
    ]
    data = _data(rows)
    split = validation_split(data, days, fit_days=4)
    assert np.flatnonzero(split.train).tolist() == [1, 2]
    assert np.flatnonzero(split.test).tolist() == [3, 4]
    held_out = handbook_split(data, days)
    used = split.train | split.test
    assert not (used & held_out.test).any()
    assert not (used & ~held_out.train).any()  # only rows `evaluate handbook` trains on
    assert data.ts[used].max() < held_out.test_start - days.delay * DAY  # before the delay period too
    assert data.ts[split.train].max() < split.test_start <= data.ts[split.test].min()
    assert (split.train_start, split.test_end) == (held_out.train_start, held_out.test_start - days.delay * DAY)


def test_validation_can_drop_customers_already_known_defrauded() -> None:
    days = SplitDays(history=0, train=20, delay=7, test=1)
    data = _data([(0.0, 0, 1), (5.0, 1, 0), (10.0, 0, 0), (12.0, 1, 0)])  # customer 0 known on day 7
    dropped = validation_split(data, days, fit_days=9, drop_known_compromised=True)
    assert np.flatnonzero(dropped.test).tolist() == [3] and dropped.known_compromised_dropped == 1
    kept = validation_split(data, days, fit_days=9)  # by default every training row of the validation days
    assert np.flatnonzero(kept.test).tolist() == [2, 3] and kept.known_compromised_dropped == 0


def test_fit_days_must_leave_days_to_validate() -> None:
    data = _data([(0.0, 0, 0)])
    for fit_days in (0, 21):
        with pytest.raises(ValueError, match="fit_days"):
            validation_split(data, SplitDays(train=21), fit_days=fit_days)


def test_candidates_one_factor_at_a_time_or_every_combination() -> None:
    base = TrainConfig()
    one = candidates([1, 5, 10], [15], [100], base_weight=1, base=base)
    assert one == [
        Candidate(1, base.max_leaf_nodes, base.min_samples_leaf),
        Candidate(5, base.max_leaf_nodes, base.min_samples_leaf),
        Candidate(10, base.max_leaf_nodes, base.min_samples_leaf),
        Candidate(1, 15, base.min_samples_leaf),
        Candidate(1, base.max_leaf_nodes, 100),
    ]
    assert candidates([10], [base.max_leaf_nodes], [], base_weight=10, base=base) == [one[2]]  # no repeats
    grid = candidates([1, 10], [15], [100], grid=True, base=base)
    assert len(grid) == 2 * 2 * 2 and len(set(grid)) == 8
    tuned = one[3].config(base)
    assert (tuned.fraud_weight, tuned.max_leaf_nodes, tuned.min_samples_leaf, tuned.max_iter) == (
        1, 15, base.min_samples_leaf, base.max_iter)
    with pytest.raises(ValueError, match="--fraud-weights"):
        candidates([], [15])
    with pytest.raises(ValueError, match="--leaves"):
        candidates([1], [1])


def test_evaluate_tune_end_to_end_on_a_tiny_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "hb.jsonl"
    code = main(["evaluate", "tune", "--customers", "400", "--terminals", "800", "--history-days", "8",
                 "--train-days", "10", "--test-days", "7", "--fit-days", "6", "--seed", "3", "--data-out", str(out),
                 "--fraud-weights", "1,10", "--leaves", "7", "--min-leaf", "50", "--max-iter", "40"])
    assert code == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out.strip().splitlines()[-1])
    names = [c["name"] for c in report["candidates"]]
    assert [(c["fraud_weight"], c["max_leaf_nodes"], c["min_samples_leaf"]) for c in report["candidates"]] == [
        (1.0, 31, 20), (10.0, 31, 20), (1.0, 7, 20), (1.0, 31, 50)]
    for name in names:
        assert name in captured.err  # the table
    for c in report["candidates"]:
        assert 0.0 <= c["pr_auc"] <= 1.0 and c["roc_auc"] > 0.6  # real models on real features
    assert report["chosen"] == max(report["candidates"], key=lambda c: c["pr_auc"])
    assert report["fixed"]["max_iter"] == 40

    split = report["split"]
    when = {k: datetime.fromisoformat(split[k]) for k in
            ("fit_start", "validation_start", "validation_end", "test_start", "last_row_used")}
    assert split["fit_start"] == "2018-04-09T00:00:00+00:00"  # after 8 history days
    assert (when["validation_start"] - when["fit_start"]).days == 6
    assert (when["validation_end"] - when["fit_start"]).days == 10
    assert split["test_start"] == "2018-04-26T00:00:00+00:00"  # as `evaluate handbook`'s: 8 + 10 + 7 days
    assert when["last_row_used"] < when["validation_end"] < when["test_start"]
    assert split["n_fit_fraud"] > 0 and split["n_validation_fraud"] > 0
    assert split["n_fit"] + split["n_validation"] < report["data"]["transactions"]

    # As on the test period: rows of customers already known to be defrauded left out, same fit.
    assert main(["evaluate", "tune", "--customers", "400", "--terminals", "800", "--history-days", "8",
                 "--train-days", "10", "--test-days", "7", "--fit-days", "6", "--seed", "3", "--data-out", str(out),
                 "--fraud-weights", "1", "--leaves", "", "--min-leaf", "", "--max-iter", "40",
                 "--drop-known-compromised"]) == 0
    dropped = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [c["name"] for c in dropped["candidates"]] == names[:1]
    assert dropped["split"]["n_fit"] == split["n_fit"]
    assert dropped["split"]["n_validation"] + dropped["split"]["known_compromised_dropped"] == split["n_validation"]


def test_evaluate_tune_names_a_bad_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "tune", "--fraud-weights", "ten"]) == 2
    assert "--fraud-weights" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]
    assert main(["evaluate", "tune", "--fit-days", "21"]) == 2
    assert "--fit-days" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]
