"""`txguard bench train` on one small history: the Beam job writes both tables, each training runs in
its own measured process, both models are graded on the full held-out period."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from txguard.batch.jobs import read_status
from txguard.bench.train import draw_seeds, hard_chance, train_figures


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


def test_the_sample_draws_hard_negatives_by_a_stand_in_retrained_on_its_own_hard_sample(tmp_path: Path) -> None:
    report = train_figures([12_000], sample_rows=3_000, workdir=tmp_path, shards=2, workers=1, full_up_to=0,
                           seed=21, log=lambda _m: None, label_maturity_days=0.0)
    (row,) = report["results"]
    assert report["hard_boost"] == 20.0 and report["hard_share"] == 0.05 and report["stand_in_rounds"] == 2
    # the measured job drew its sample by the top 5 % of the stand-in's scores, at seed 0
    sample = read_status(str(tmp_path / "n12000" / "out")).sample
    assert sample is not None and sample["seed"] == 0 and sample["hard_fraction"] == 1.0
    assert sample["hard_share"] == 0.05
    assert sample["hard_model"] == f"{tmp_path / 'n12000' / 'registry-stand-in'}@staging"
    stand_in = row["stand_in"]
    assert stand_in["sample_seed"] == 1 and stand_in["rounds"] == 2 and 0 < stand_in["review_threshold"] < 1
    # round 1 trained on seed 1's plain sample, round 2 on seed 1's sample drawn by round 1's model: the
    # hard stratum only adds wallet-days, so round 2's sample holds more rows, and so does the measured one
    plain, hard = stand_in["round_sample_rows"]
    assert hard > plain and stand_in["sample_rows"] == hard and row["sample_rows"] > plain
    assert 0 < row["quality"]["stand_in"]["pr_auc"] <= 1  # graded on the full period beside the sampled model
    assert not any(p.name.startswith(("out-stand-in", "registry-stand-in")) for p in (tmp_path / "n12000").iterdir())


def test_one_round_fits_the_stand_in_on_the_plain_sample_alone(tmp_path: Path) -> None:
    report = train_figures([12_000], sample_rows=3_000, workdir=tmp_path, shards=2, workers=1, full_up_to=0,
                           seed=21, log=lambda _m: None, label_maturity_days=0.0, stand_in_rounds=1)
    (row,) = report["results"]
    assert report["stand_in_rounds"] == 1 and row["stand_in"]["rounds"] == 1
    assert row["stand_in"]["round_sample_rows"] == [row["stand_in"]["sample_rows"]] and row["sample_rows"] > row["stand_in"]["sample_rows"]


def test_worlds_share_no_entity_so_one_job_per_world_computes_one_jobs_features(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from txguard.batch.jobs import JobSpec
    from txguard.bench.train import ENTITY_KEYS, beam_job, history_files

    inputs = history_files(tmp_path, 6_000, seed=21, world_rows=3_000, log=lambda _m: None)
    assert [p.name for p, _ in inputs] == ["tx-0.jsonl", "tx-1.jsonl"] and all(n > 2_000 for _, n in inputs)
    entities = []
    for path, _ in inputs:
        rows = [json.loads(line) for line in path.open()]
        entities.append({(k, r[k]) for r in rows for k in ENTITY_KEYS if r.get(k) is not None})
    assert entities[0] and entities[1] and not entities[0] & entities[1]
    assert all(value.startswith("k1.") for _, value in entities[1])

    def table(pattern: str) -> dict[str, dict]:  # by transaction; NaN as None (NaN != NaN); not the input file's index
        rows = pq.read_table([str(p) for p in sorted(tmp_path.glob(pattern))]).to_pylist()
        return {r["transaction_id"]: {k: None if v != v else v for k, v in r.items() if k != "file_index"} for r in rows}

    beam_job(JobSpec(input=str(tmp_path / "tx-*.jsonl"), output=str(tmp_path / "one"), features=True, shards=2), 1)
    for k, (path, _) in enumerate(inputs):
        beam_job(JobSpec(input=str(path), output=str(tmp_path / "each" / f"w{k}"), features=True, shards=2), 1)
    one, each = table("one/features-*.parquet"), table("each/w*/features-*.parquet")
    assert len(one) == sum(n for _, n in inputs) and one == each


def test_past_the_full_model_the_sizes_are_one_series_of_world_jobs_each_size_redrawn_at_its_fraction(
        tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    report = train_figures([6_000, 12_000], sample_rows=1_500, workdir=tmp_path, shards=2, workers=1, full_up_to=0,
                           seed=21, log=lambda _m: None, label_maturity_days=0.0, world_rows=6_000, draws=2)
    small, large = report["results"]
    assert "draws" not in large  # without the full model there is no delta to average: one draw
    assert small["worlds"]["count"] == 1 and large["worlds"]["count"] == 2
    assert large["worlds"]["rows"][0] == small["history_rows"] and sum(large["worlds"]["rows"]) == large["history_rows"]
    worlds = tmp_path / "worlds-6000-seed21"
    # one job per world, run once: world 0 at the fraction of the smallest size holding it, world 1 at the next
    statuses = [read_status(str(worlds / "out" / f"w{k}")) for k in range(2)]
    assert [round(s.sample["fraction"], 6) for s in statuses] == [small["fraction"], large["fraction"]]
    assert large["worlds"]["fractions"] == [small["fraction"], large["fraction"]]
    assert all(s.sample["hard_model"] == f"{worlds / 'registry-stand-in'}@staging" for s in statuses)
    assert large["features_seconds"] > small["features_seconds"] > 0  # the sum of its worlds' jobs
    # the large size's sample: world 0's redrawn at the large fraction (a subset, weights of that fraction)
    # and world 1's as drawn; the weights are the strata's at the large fraction
    by_world = [pq.read_table(tmp_path / "n12000" / f"sample-w{k}.parquet") for k in range(2)]
    drawn_w0 = set(pq.read_table(sorted(str(f) for f in (worlds / "out" / "w0").glob("sample-*.parquet")))
                   .column("transaction_id").to_pylist())
    assert set(by_world[0].column("transaction_id").to_pylist()) < drawn_w0
    assert by_world[1].num_rows == statuses[1].counts["sampled"]
    f = large["fraction"]
    assert set(large["sample_rows_by_weight"]) <= {f"{round(w, 3):g}" for w in (1.0, 1 / hard_chance(f), 1 / f)}
    assert sum(t.num_rows for t in by_world) == large["sample_rows"] == sum(large["sample_rows_by_weight"].values())
    report_of_training = json.loads((tmp_path / "n12000" / "train-sampled.json").read_text().splitlines()[-1])
    assert report_of_training["sample"]["rows"] == large["sample_rows"]  # the union of the worlds' samples
    # world 0 writes the full table the grading reads; the others their sample only
    assert list((worlds / "out" / "w0").glob("features-*.parquet"))
    assert not list((worlds / "out" / "w1").glob("features-*"))
    for row in (small, large):
        assert set(row["quality"]) == {"sampled", "stand_in"} and "quality_deltas" not in row
        assert row["quality"]["stand_in"] == small["quality"]["stand_in"]  # one stand-in, one grading period
    with pytest.raises(ValueError, match="not multiples of 6000"):
        train_figures([9_000], sample_rows=1_500, workdir=tmp_path, shards=2, workers=1, full_up_to=0, seed=21,
                      log=lambda _m: None, world_rows=6_000)


def test_the_hard_stratum_keeps_every_hard_wallet_day_from_5_percent_up_and_a_constant_number_below() -> None:
    assert hard_chance(0.25) == hard_chance(0.05) == 1.0
    history = [200_000, 400_000, 800_000]
    chances = [hard_chance(10_000 / n) for n in history]
    assert chances == [1.0, 0.5, 0.25]  # 5 %, 2.5 %, 1.25 %: the hard wallet-days kept halve as the history doubles
    assert hard_chance(0.01, boost=0.5) == 0.01  # never below the fraction (the sampling rule's floor)


def test_the_plain_draw_needs_no_stand_in(tmp_path: Path) -> None:
    report = train_figures([12_000], sample_rows=3_000, workdir=tmp_path, shards=2, workers=1, full_up_to=0,
                           seed=21, log=lambda _m: None, label_maturity_days=0.0, hard_boost=None)
    (row,) = report["results"]
    assert report["hard_boost"] is None and report["hard_share"] is None and "stand_in" not in row and set(row["quality"]) == {"sampled"}
    sample = read_status(str(tmp_path / "n12000" / "out")).sample
    assert sample is not None and sample["seed"] == 0 and "hard_model" not in sample
    assert round(sample["fraction"], 6) == row["fraction"]


def test_several_draws_are_graded_by_their_mean_with_each_draw_beside_it(tmp_path: Path) -> None:
    report = train_figures([12_000], sample_rows=3_000, workdir=tmp_path, shards=2, workers=1, full_up_to=10**9,
                           seed=21, log=lambda _m: None, label_maturity_days=0.0, hard_boost=None, draws=2)
    (row,) = report["results"]
    draws = row["draws"]
    assert report["draws"] == 2 and draws["seeds"] == [0, 2]
    # seed 0's job wrote the full table and its sample; seed 2 drew another sample of the same rows
    assert draws["sample_rows"]["0"] == row["sample_rows"] != draws["sample_rows"]["2"]
    assert row["sampled"]["peak_rss_mb"] == max(draws["peak_rss_mb"].values())
    full = row["quality"]["full"]
    for key in ("pr_auc", "recall_at_1pct_fpr", "review_alert_rate"):
        each = [draws["quality"][d][key] for d in ("0", "2")]
        assert row["quality"]["sampled"][key] == pytest.approx(sum(each) / 2, abs=1e-6)
        assert row["quality_deltas"][key] == pytest.approx(row["quality"]["sampled"][key] - full[key], abs=1e-6)
        assert [draws["quality_deltas"][d][key] for d in ("0", "2")] == pytest.approx([e - full[key] for e in each],
                                                                                       abs=1e-6)
    assert draws["quality"]["0"] != draws["quality"]["2"]
    one_draw = max(abs(v) for d in draws["quality_deltas"].values() for v in d.values())
    assert report["max_abs_quality_delta_one_draw"] == one_draw >= report["max_abs_quality_delta"]
    assert not any(p.name.startswith(("registry", "out-draw")) for p in (tmp_path / "n12000").iterdir())


def test_the_draws_seeds_skip_the_stand_ins() -> None:
    assert draw_seeds(1) == [0] and draw_seeds(3) == [0, 2, 3]
    with pytest.raises(ValueError, match="draws must be >= 1"):
        draw_seeds(0)


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


def test_the_picture_draws_several_runs_sizes_in_one(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    import json

    from txguard.bench.train import merged
    from txguard.cli.main import main

    series = {"sample_rows_target": 500, "hard_boost": 20.0, "results": [
        {"history_rows": 2000, "fraction": 0.25, "sample_rows": 700, "sampled": {"peak_rss_mb": 290.0},
         "full": {"peak_rss_mb": 330.0}, "quality": {"sampled": {"pr_auc": 0.81}, "full": {"pr_auc": 0.82}}},
        {"history_rows": 1000, "fraction": 0.5, "sample_rows": 600, "sampled": {"peak_rss_mb": 280.0},
         "full": {"peak_rss_mb": 300.0}, "quality": {"sampled": {"pr_auc": 0.8}, "full": {"pr_auc": 0.82}}}]}
    largest = {"sample_rows_target": 500, "hard_boost": None, "results": [
        {"history_rows": 40_000, "fraction": 0.0125, "sample_rows": 2_000, "worlds": {"count": 4, "rows": [10_000] * 4},
         "sampled": {"peak_rss_mb": 400.0}, "quality": {"sampled": {"pr_auc": 0.79}, "stand_in": {"pr_auc": 0.78}}}]}
    both = merged([series, largest])
    assert [r["history_rows"] for r in both["results"]] == [1000, 2000, 40_000]
    assert both["hard_boost"] == 20.0 and both["sample_rows_target"] == 500  # the first report's fields
    with pytest.raises(ValueError, match="no report"):
        merged([])
    files = []
    for name, report in (("series", series), ("largest", largest)):
        (tmp_path / f"{name}.out").write_text("table\n" + json.dumps(report) + "\n")
        files.append(str(tmp_path / f"{name}.out"))
    assert main(["bench", "train", "--render", ",".join(files), "--picture", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {"picture": str(tmp_path / "p.png")}
