"""`txguard bench batch`: where Beam overtakes one process, and score-file's two paths on a small file."""

from __future__ import annotations

from pathlib import Path

from tests.scoring_fixtures import publish_tiny
from txguard.bench.batch import overtake, score_file_figures


def row(size: int, single: float, beam2: float) -> dict:
    return {"size": size, "single": {"seconds": single}, "beam2": {"seconds": beam2}}


def test_overtake_measured_and_fitted() -> None:
    # one process: 20 us per transaction; Beam x2: 6 s to start, then 10 us per transaction
    rows = [row(n, 2e-5 * n, 6.0 + 1e-5 * n) for n in (10_000, 100_000, 1_000_000)]
    got = overtake(rows)
    assert got["beam2_overtakes_at"] == 1_000_000
    assert abs(got["beam2_overtakes_at_estimate"] - 600_000) < 1
    never = overtake([row(n, 1e-5 * n, 6.0 + 2e-5 * n) for n in (10_000, 100_000)])
    assert never == {"beam2_overtakes_at": None, "beam2_overtakes_at_estimate": None}


def test_score_file_figures_compare_both_paths_on_the_same_output(tmp_path: Path) -> None:
    publish_tiny(tmp_path / "registry")
    figures = score_file_figures(3000, f"{tmp_path / 'registry'}@production", tmp_path, log=lambda _m: None)
    assert figures["identical_output"] is True
    assert figures["per_row_jsonl"]["tx_per_cpu_s"] > 0 and figures["columnar_parquet"]["tx_per_cpu_s"] > 0
