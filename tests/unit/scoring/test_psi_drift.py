"""PSI against quantile bins, and the drift windows the scoring function logs."""

from __future__ import annotations

import numpy as np
import pytest

from txguard.contract.logs import DRIFT_EVENT, EVENT_KEY
from txguard.scoring.drift import MIN_ROWS, DriftMonitor
from txguard.scoring.psi import SCORE, bin_counts, psi, psi_report, quantile_bins, reference_of, worst

NAMES = ["amount", "is_new", "constant"]


def _matrix(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([
        rng.normal(shift, 1.0, n),
        (rng.random(n) < 0.1).astype(float),
        np.full(n, 3.0),
    ])


def test_bins_are_deciles_of_a_continuous_value_and_two_bins_of_a_flag() -> None:
    values = np.random.default_rng(0).normal(size=10_000)
    bins = quantile_bins(values)
    assert len(bins.edges) == 9 and len(bins.expected) == 10
    assert np.allclose(bins.expected, 0.1, atol=0.002)
    flag = quantile_bins((np.arange(1000) % 10 == 0).astype(float))
    assert flag.edges == [0.0] and flag.expected == pytest.approx([0.9, 0.1])
    constant = quantile_bins(np.full(50, 7.0))
    assert constant.edges == [7.0] and constant.expected == [1.0, 0.0]


def test_bin_edges_belong_to_the_lower_bin() -> None:
    assert bin_counts(np.array([0.0, 1.0, 1.0001, 5.0]), [0.0, 1.0]).tolist() == [1, 1, 2]


def test_psi_is_zero_for_the_same_distribution_and_grows_with_a_shift() -> None:
    ref = quantile_bins(np.random.default_rng(1).normal(size=20_000))
    same = bin_counts(np.random.default_rng(2).normal(size=20_000), ref.edges)
    half_sd = bin_counts(np.random.default_rng(3).normal(0.5, 1.0, size=20_000), ref.edges)
    one_sd = bin_counts(np.random.default_rng(4).normal(1.0, 1.0, size=20_000), ref.edges)
    assert psi(ref.expected, same) < 0.01
    assert 0.15 < psi(ref.expected, half_sd) < 0.4
    assert psi(ref.expected, one_sd) > 0.6
    assert psi(ref.expected, np.zeros(10)) == 0.0


def test_reference_is_generic_over_feature_names_and_includes_the_score() -> None:
    x = _matrix(5000, 0)
    scores = np.random.default_rng(0).beta(0.5, 20, 5000)
    ref = reference_of(x, NAMES, scores, period="test")
    assert list(ref.features) == NAMES and ref.rows == 5000
    live = _matrix(5000, 1, shift=1.0)
    counts = {name: bin_counts(live[:, j], ref.features[name].edges) for j, name in enumerate(NAMES)}
    counts[SCORE] = bin_counts(scores, ref.score.edges)
    report = psi_report(ref, counts)
    value, name = worst(report)
    assert name == "amount" and value > 0.5
    assert report["is_new"] < 0.02 and report["constant"] == 0.0 and report[SCORE] == pytest.approx(0.0)
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        reference_of(x[:, :2], NAMES, scores)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _monitor(window_s: float = 300.0, rows: int = 2000) -> tuple[DriftMonitor, list[dict], Clock]:
    lines: list[dict] = []
    clock = Clock()
    return DriftMonitor(window_s, rows, lines.append, clock), lines, clock


def test_a_window_closes_on_rows_and_its_counts_reproduce_its_psi() -> None:
    ref = reference_of(_matrix(5000, 0), NAMES, np.linspace(0, 1, 5000))
    monitor, lines, _ = _monitor(rows=1000)
    live = _matrix(1500, 5, shift=1.0)
    monitor.add("v1", ref, NAMES, live[:600], np.linspace(0, 1, 600))
    assert lines == []
    monitor.add("v1", ref, NAMES, live[600:], np.linspace(0, 1, 900))
    (line,) = lines
    assert line[EVENT_KEY] == DRIFT_EVENT and line["rows"] == 1500 and line["model_version"] == "v1"
    assert line["feature_max"] == "amount" and line["psi_max"] > 0.5
    recomputed = psi_report(ref, line["counts"])
    assert recomputed["amount"] == pytest.approx(line["psi"]["amount"], abs=1e-4)
    assert set(line["psi"]) == {*NAMES, SCORE}


def test_a_window_closes_on_time_only_with_enough_rows() -> None:
    ref = reference_of(_matrix(5000, 0), NAMES, np.linspace(0, 1, 5000))
    monitor, lines, clock = _monitor(window_s=60)
    monitor.add("v1", ref, NAMES, _matrix(MIN_ROWS - 1, 6), np.zeros(MIN_ROWS - 1))
    clock.now += 120
    monitor.tick()
    assert lines == []  # too few rows to mean anything: the window goes on
    monitor.add("v1", ref, NAMES, _matrix(1, 7), np.zeros(1))
    assert len(lines) == 1 and lines[0]["rows"] == MIN_ROWS


def test_a_new_champion_closes_the_window_and_a_version_without_reference_is_skipped() -> None:
    ref = reference_of(_matrix(5000, 0), NAMES, np.linspace(0, 1, 5000))
    monitor, lines, _ = _monitor()
    monitor.add("v1", ref, NAMES, _matrix(700, 8), np.zeros(700))
    monitor.add("v2", ref, NAMES, _matrix(10, 9), np.zeros(10))
    assert [line["model_version"] for line in lines] == ["v1"]
    monitor.add("v3", None, NAMES, _matrix(5000, 10), np.zeros(5000))
    assert monitor.close() is None and len(lines) == 1
