"""`txguard bench train` on one small history: the Beam job writes both tables, each training runs in
its own measured process, both models are graded on the full held-out period."""

from __future__ import annotations

from pathlib import Path

from txguard.bench.train import train_figures


def test_one_size_measures_both_trainings_and_grades_them_on_the_full_period(tmp_path: Path) -> None:
    report = train_figures([12_000], sample_rows=3_000, workdir=tmp_path, shards=2, workers=1, full_up_to=10**9,
                           seed=21, log=lambda _m: None, label_maturity_days=0.0)  # a small world: every row
    (row,) = report["results"]
    assert row["history_rows"] >= 10_000 and row["fraction"] == round(3_000 / row["history_rows"], 6)
    assert 3_000 * 0.8 < row["sample_rows"] < row["history_rows"]
    for name in ("sampled", "full"):
        assert row[name]["peak_rss_mb"] > 50 and row[name]["cpu_seconds"] > 0 and row[name]["train_seconds"] > 0
        assert 0 < row["quality"][name]["pr_auc"] <= 1
    assert set(row["quality_deltas"]) == {"pr_auc", "recall_at_1pct_fpr", "review_alert_rate"}
    assert report["sampled_peak_rss_mb_range"] == [row["sampled"]["peak_rss_mb"]] * 2
    assert not any(p.name.startswith("registry") for p in (tmp_path / "n12000").iterdir())


def test_the_picture_draws_a_report(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    import json

    from txguard.cli.main import main

    result = {"history_rows": 1000, "fraction": 0.5, "sample_rows": 600,
              "sampled": {"peak_rss_mb": 280.0}, "full": {"peak_rss_mb": 300.0},
              "quality": {"sampled": {"pr_auc": 0.8}, "full": {"pr_auc": 0.82}}}
    report = {"sample_rows_target": 500, "results": [result, {**result, "history_rows": 2000}]}
    (tmp_path / "run.json").write_text("table\n" + json.dumps(report) + "\n")
    assert main(["bench", "train", "--render", str(tmp_path / "run.json"), "--picture", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {"picture": str(tmp_path / "p.png")}
