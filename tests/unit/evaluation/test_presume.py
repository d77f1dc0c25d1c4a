"""`txguard evaluate presume`: the presumed-fraud score chosen on a validation world of a design, every
score of the grid graded on the same test period from one out-of-fold pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from txguard.cli.main import main
from txguard.evaluation.compare import SplitDays
from txguard.evaluation.presume import VALIDATION_SEED, choose

TINY = SplitDays(history=10, train=14, delay=3, test=7)


def test_each_score_is_graded_and_the_best_chosen_off_on_a_tie(tmp_path: Path) -> None:
    report = choose("p2p", seed=3, grid=(None, 0.5, 0.05), data_path=tmp_path / "p2p.jsonl", population=1500,
                    days=TINY)
    rows = report["by_score"]
    assert list(rows) == ["off", "0.5", "0.05"] and report["grid"] == [None, 0.5, 0.05]
    assert rows["off"]["n_train_presumed_fraud"] == 0
    # a lower score presumes at least the rows a higher one does (the same out-of-fold scores)
    assert rows["0.05"]["n_train_presumed_fraud"] >= rows["0.5"]["n_train_presumed_fraud"]
    for row in rows.values():
        assert 0 < row["pr_auc"] <= 1 and 0 <= row["n_train_presumed_truly_fraud"] <= row["n_train_presumed_fraud"]
    best = max(r["pr_auc"] for r in rows.values())
    chosen = "off" if report["chosen"] is None else f"{report['chosen']:g}"
    assert rows[chosen]["pr_auc"] == best and (rows["off"]["pr_auc"] < best or chosen == "off")
    assert report["n_train_fraud_unknown_at_cut"] > 0


def test_the_validation_seed_is_none_of_the_results_seeds() -> None:
    assert VALIDATION_SEED not in (42, 7, 123)


def test_a_bad_grid_or_design_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "presume", "--design", "p2p", "--grid", "0,2"]) == 2
    assert "--grid" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]
    with pytest.raises(SystemExit):
        main(["evaluate", "presume", "--design", "cards"])
