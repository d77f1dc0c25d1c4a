"""`txguard evaluate calibration`: Platt and isotonic on the same trees and slice, the trees alone
beside them, on a small file through `txguard train`'s split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from txguard.cli.main import main
from txguard.simulator.core import simulate


def test_methods_share_the_trees_and_only_platt_keeps_the_ranking_exactly(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text("".join(r.to_json() + "\n" for r in simulate(days=10, wallets=600, seed=5)))
    code = main(["evaluate", "calibration", "--worlds", "", "--data", str(data), "--seed", "5"])
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (world,) = report["worlds"]
    assert str(data) in world["world"] and world["n_calibration"] > 0 and world["n_calibration_fraud"] > 0
    methods = world["methods"]
    assert set(methods) == set(report["methods"]) == {"none", "platt", "isotonic"}
    for m in methods.values():
        assert {"pr_auc", "brier", "ece", "ece_max_gap", "score_to_fraud_rate", "alerts", "thresholds"} <= set(m)
    none, platt, isotonic = methods["none"], methods["platt"], methods["isotonic"]
    # Platt is strictly increasing: the trees' ranking and the alert volume are unchanged.
    assert platt["pr_auc"] == pytest.approx(none["pr_auc"], abs=1e-4) and platt["alerts"] == none["alerts"]
    # Isotonic is a step function: a few distinct scores, ties where the trees had an order.
    assert isotonic["distinct_scores"] < platt["distinct_scores"] / 10
    assert platt["brier"] < none["brier"]


def test_an_unknown_world_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "calibration", "--worlds", "moon"]) == 2
    assert "moon" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]
    assert main(["evaluate", "calibration", "--worlds", ""]) == 2
    assert "nothing to evaluate" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]
