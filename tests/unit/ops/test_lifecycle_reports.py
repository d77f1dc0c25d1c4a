"""`txguard drift` and `txguard compare`: the verdicts, the log formats they read, and both drift
scenarios end to end on a small trained registry (simulated traffic scored in process)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from txguard.cli.main import main
from txguard.ops import logfile
from txguard.ops.compare import compare
from txguard.ops.drift_report import assess
from txguard.training.gate import GatePolicy
from txguard.training.train import TrainConfig, train_and_publish

# A 10-day world is shorter than its labels' delays: no label-maturity window, as in tests/unit/training.
SMALL = TrainConfig(days=10, wallets=600, seed=5, max_iter=40, label_maturity_days=0.0,
                    policy=GatePolicy(min_pr_auc=0.3, max_ece=0.05),
                    pictures=False)


def window(end: str, psi_max: float, feature: str = "amount") -> dict[str, Any]:
    return {"event": "drift_window", "window_end": end, "psi_max": psi_max, "feature_max": feature,
            "psi_score": 0.01, "rows": 1000, "model_version": "v1", "psi": {feature: psi_max, "score": 0.01}}


def test_the_alert_needs_windows_in_a_row_over_the_threshold() -> None:
    spikes = [window("t1", 0.5), window("t2", 0.1), window("t3", 0.3), window("t4", 0.05)]
    result = assess(spikes, threshold=0.2, sustained=2)
    assert not result["alert"] and result["windows_over"] == 2 and result["longest_run_over"] == 1
    assert result["psi_max"] == 0.5 and result["feature_max"] == "amount"
    sustained = assess([window("t2", 0.25), window("t1", 0.1), window("t3", 0.4, "channel_code")], 0.2, 2)
    assert sustained["alert"] and sustained["feature_max"] == "channel_code" and sustained["rows"] == 3000


def shadow(tid: str, outcome: str, score: float, c_outcome: str, c_score: float) -> dict[str, Any]:
    return {"event": "shadow_score", "transaction_id": tid, "model_version": "v1", "score": score,
            "outcome": outcome, "challenger_version": "v2", "challenger_score": c_score,
            "challenger_outcome": c_outcome}


def test_compare_counts_flips_and_recall_per_version() -> None:
    lines = [shadow("a", "allow", 0.01, "review", 0.4), shadow("b", "block", 0.9, "block", 0.95),
             shadow("c", "review", 0.3, "allow", 0.02), shadow("d", "allow", 0.02, "allow", 0.01),
             shadow("unlabelled", "allow", 0.1, "allow", 0.1)]
    report = compare(lines, {"a": 1, "b": 1, "c": 0, "d": 0})
    assert report["transactions"] == 4 and report["frauds"] == 2 and report["unlabelled_shadow_lines"] == 1
    assert report["flips"] == {"allow->review": 1, "review->allow": 1} and report["decision_flips"] == 2
    assert report["champion"]["recall_review"] == 0.5 and report["challenger"]["recall_review"] == 1.0
    assert report["champion"]["legit_flagged_rate"] == 0.5 and report["challenger"]["legit_flagged_rate"] == 0.0
    assert report["frauds_caught_only_by_challenger"] == 1 and report["challenger"]["pr_auc"] == 1.0
    # Calibration per version, from its own scores of the labelled rows (a, b, c, d).
    brier = ((0.01 - 1) ** 2 + (0.9 - 1) ** 2 + 0.3**2 + 0.02**2) / 4
    assert report["champion"]["calibration"]["brier"] == pytest.approx(brier, abs=1e-5)
    assert report["challenger"]["calibration"]["score_to_fraud_rate"] == pytest.approx(
        (0.4 + 0.95 + 0.02 + 0.01) / 4 / 0.5, abs=1e-5)
    with pytest.raises(ValueError, match="none of the 5 shadow_score lines"):
        compare(lines, {"zzz": 1})


def test_log_files_from_stdout_and_from_a_cloud_logging_export(tmp_path: Path) -> None:
    stdout = tmp_path / "score.log"
    stdout.write_text("[gunicorn] booting\n" + json.dumps(window("t1", 0.3)) + "\n{not json\n"
                      + json.dumps({"event": "model_loaded"}) + "\n")
    export = tmp_path / "export.json"
    export.write_text(json.dumps([{"jsonPayload": window("t1", 0.3), "severity": "INFO"},
                                  {"jsonPayload": {"event": "other"}}]))
    assert logfile.events(path=stdout, event="drift_window") == [window("t1", 0.3)]
    assert logfile.events(path=export, event="drift_window") == [window("t1", 0.3)]
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"transaction_id": "a", "is_fraud": 1}\n{"transaction_id": "b", "is_fraud": "maybe"}\n')
    with pytest.raises(ValueError, match=r"row 2: field 'is_fraud'"):
        logfile.read_labels(labels)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    from txguard.training.dataset import simulated

    path = str(tmp_path_factory.mktemp("lifecycle") / "registry")
    data = simulated(SMALL.days, SMALL.wallets, SMALL.seed)
    train_and_publish(replace(SMALL, registry=path), dataset=data)  # v1: production and staging
    weaker = replace(SMALL, registry=path, max_iter=15, seed=6, policy=GatePolicy(min_pr_auc=0.3, max_regression=1.0,
                                                                                  max_ece=0.05))
    train_and_publish(weaker, dataset=data)  # v2: staging only, the challenger
    return path


def run_cli(capsys: Any, *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(list(argv))
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_drift_scenario_raises_the_alert_and_the_normal_one_does_not(registry: str, capsys: Any) -> None:
    common = ("--registry", registry, "--window-rows", "500")
    code, normal = run_cli(capsys, "drift", "--scenario", "normal", *common)
    assert code == 0 and normal["alert"] is False and normal["windows"] >= 2, normal
    # The population of the training data, read from the version's metadata.
    assert f"{SMALL.days} days x {SMALL.wallets} wallets" in normal["traffic"]
    assert normal["psi_max"] < 0.2
    code, drifted = run_cli(capsys, "drift", "--scenario", "drift", *common)
    assert code == 0 and drifted["alert"] is True and drifted["longest_run_over"] >= 2, drifted
    assert drifted["psi_max"] > 0.2 and drifted["model_version"] == "v1"
    assert {"psi_max", "feature_max", "alert"} <= set(drifted)


def test_compare_reports_champion_against_challenger_on_labelled_traffic(registry: str, capsys: Any) -> None:
    code, report = run_cli(capsys, "compare", "--registry", registry, "--wallets", "300")
    assert code == 0 and report["champion_version"] == ["v1"] and report["challenger_version"] == ["v2"]
    assert report["transactions"] > 500 and report["frauds"] > 0
    for side in ("champion", "challenger"):
        assert 0 <= report[side]["pr_auc"] <= 1 and 0 <= report[side]["recall_block"] <= report[side]["recall_review"]
        assert {"brier", "ece", "ece_max_gap", "score_to_fraud_rate"} <= set(report[side]["calibration"])
    assert report["decision_flips"] == sum(report["flips"].values())


def test_training_simulation_reads_days_and_wallets_from_the_data_source() -> None:
    from types import SimpleNamespace

    from txguard.ops.replay import training_simulation

    def of(source: str | None) -> tuple[int | None, int | None]:
        return training_simulation(SimpleNamespace(data_source=source))

    assert of('simulator {"days": 30, "wallets": 2000, "seed": 42}') == (30, 2000)
    assert of('simulator {"days": 14}') == (14, None)
    assert of("file data/tx.jsonl") == (None, None)
    assert of("simulator not-json") == (None, None)
    assert of(None) == (None, None)
