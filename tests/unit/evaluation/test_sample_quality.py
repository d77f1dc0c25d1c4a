"""`txguard evaluate sample`: the full-data and the sampled model, both graded on the full held-out period."""

from __future__ import annotations

import json

import numpy as np
import pytest

from txguard.cli.main import main
from txguard.evaluation.calibration import simulator_world
from txguard.evaluation.sample import COMPARED, compare_sample
from txguard.training.train import TrainConfig


def test_the_sampled_model_is_fitted_on_the_sample_and_graded_on_every_held_out_row() -> None:
    world = simulator_world(days=12, wallets=700, seed=5)
    report = compare_sample(world, fraction=0.25, sample_seed=3, config=TrainConfig(seed=5, max_iter=40), hard=None)
    assert report["hard"] is None
    assert report["sample_rows"] < report["rows"] and 0.25 <= report["sample_share"] < 0.6
    assert report["train_rows"]["sampled"] < report["train_rows"]["full"]
    assert report["n_test"] == int(world.test.sum())
    for name in ("full", "sampled"):
        m = report[name]
        assert 0.0 < m["pr_auc"] <= 1.0 and m["alerts"]["review"] >= m["alerts"]["block"]
        # The thresholds were derived to flag ~1 % of the legitimate traffic; graded on all of it,
        # the sampled model's (derived on weighted rows) does too.
        assert m["review_fpr"] == pytest.approx(0.01, abs=0.006)
    assert set(report["deltas"]) == set(COMPARED)
    assert report["within_bound"] == all(abs(v) <= report["bound"] for v in report["deltas"].values())
    # What the sampled run estimates from its weighted held-out rows stands for the full period.
    assert report["sampled_estimates"]["test_rows"] == pytest.approx(report["n_test"], rel=0.1)
    assert np.isfinite(report["review_alerts_ratio"])


def test_hard_negatives_come_from_a_stand_in_fitted_on_another_sample_and_only_add_rows() -> None:
    """The stand-in production model marks its review band, or a top share of its scores, hard; the sample
    then holds every row the plain draw holds (same seed, same wallet-day draws) and more, hard ones
    weighted 1/hard; the sampled model never trains on a dropped row."""
    world = simulator_world(days=12, wallets=700, seed=5)
    config = TrainConfig(seed=5, max_iter=40)
    plain = compare_sample(world, fraction=0.2, sample_seed=3, config=config, hard=None)
    drawn = compare_sample(world, fraction=0.2, sample_seed=3, config=config, hard=0.8, hard_share=None)
    stand_in = drawn["hard"]["production_stand_in"]
    assert drawn["hard"]["fraction"] == 0.8 and drawn["hard"]["share"] is None and stand_in["sample_seed"] == 4
    assert 0.0 < stand_in["hard_legit_share"]["test"] < 0.05 and 0.0 < stand_in["pr_auc"] <= 1.0
    # the top 20 % of the stand-in's scores: a wider band, a superset of the review band's rows
    wide = compare_sample(world, fraction=0.2, sample_seed=3, config=config, hard=0.8, hard_share=0.2)
    assert wide["hard"]["share"] == 0.2
    assert wide["hard"]["production_stand_in"]["hard_legit_share"]["train"] > 0.15
    assert drawn["sample_rows"] < wide["sample_rows"] < plain["rows"]
    assert plain["sample_rows"] < drawn["sample_rows"] < plain["rows"]
    assert drawn["train_rows"]["sampled"] > plain["train_rows"]["sampled"]
    # Weighted held-out rows still stand for the full held-out period.
    assert drawn["sampled_estimates"]["test_rows"] == pytest.approx(drawn["n_test"], rel=0.1)
    assert drawn["full"] == plain["full"]  # the full-data model is the same fit


def test_cli_refuses_a_bad_fraction(capsys: pytest.CaptureFixture) -> None:
    assert main(["evaluate", "sample", "--fraction", "0", "--worlds", "simulator"]) == 2
    assert "sample fraction" in json.loads(capsys.readouterr().out.splitlines()[-1])["error"]
    assert main(["evaluate", "sample", "--fraction", "0.2", "--hard", "0.1", "--worlds", "simulator"]) == 2
    assert "hard fraction" in json.loads(capsys.readouterr().out.splitlines()[-1])["error"]
    assert main(["evaluate", "sample", "--hard-share", "1.5", "--worlds", "simulator"]) == 2
    assert "hard share" in json.loads(capsys.readouterr().out.splitlines()[-1])["error"]
