"""`txguard evaluate p2p` end to end on a tiny world: same rows, the split as of the cut, both sides
graded, the shuffled-label check, recall per kind with its noise, the top legitimate rows by pattern."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from txguard.cli.main import main
from txguard.evaluation.p2p_fraud import KINDS
from txguard.evaluation.p2p_world import PATTERNS
from txguard.evaluation.presume import P2P_PRESUME_FRAUD_AT


def test_evaluate_p2p_end_to_end_on_a_tiny_world(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p2p.jsonl"
    code = main(["evaluate", "p2p", "--users", "1500", "--history-days", "10", "--train-days", "14",
                 "--delay-days", "3", "--test-days", "7", "--seed", "3", "--data-out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    report = json.loads(captured.out.strip().splitlines()[-1])
    assert out.is_file() and report["data"]["path"] == str(out)
    assert report["data"]["transactions"] == sum(report["data"]["kinds"].values())
    split = report["split"]
    assert split["test_start"] == "2024-01-28T00:00:00+00:00"  # 10 + 14 + 3 days after 2024-01-01
    assert split["n_train_fraud"] + split["n_train_fraud_unknown_at_cut"] > 0 and split["n_test_fraud"] > 0
    for side in ("txguard", "baseline"):
        for key in ("pr_auc", "roc_auc", "recall_at_1pct_fpr"):
            assert 0.0 <= report[side][key] <= 1.0
        assert report[side]["roc_auc"] > 0.6  # real models on real features
    assert report["pr_auc_margin"] == round(report["txguard"]["pr_auc"] - report["baseline"]["pr_auc"], 4)
    assert set(report["by_kind"]) == set(split["test_fraud_by_scenario"]) <= set(KINDS[1:])
    for row in report["by_kind"].values():
        assert row["verdict"] in ("above", "within noise", "below") and row["noise"] >= 0
    checked = report["shuffled_labels"]
    assert checked["txguard_pr_auc"] < report["txguard"]["pr_auc"]
    assert checked["baseline_pr_auc"] < report["baseline"]["pr_auc"]
    for side in ("txguard", "baseline"):
        assert sum(report["top_legit_patterns"][side].values()) == 200
        assert set(report["top_legit_patterns"][side]) <= set(PATTERNS)
    assert "what the top of each ranking gets wrong" in captured.err
    # txguard trained at the design's presumed-fraud score (chosen on a validation world), and says so
    assert report["txguard"]["presume_fraud_at"] == P2P_PRESUME_FRAUD_AT
    presumed = report["txguard"]["n_train_presumed_fraud"]
    assert 0 <= report["txguard"]["n_train_presumed_truly_fraud"] <= presumed
    assert (presumed == 0) == (P2P_PRESUME_FRAUD_AT is None)


def test_evaluate_p2p_names_a_bad_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "p2p", "--test-days", "0"]) == 2
    assert "test_days" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]
    assert main(["evaluate", "p2p", "--users", "5"]) == 2
    assert "users" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]
    assert main(["evaluate", "p2p", "--presume-fraud-at", "1.5"]) == 2
    assert "--presume-fraud-at" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]
