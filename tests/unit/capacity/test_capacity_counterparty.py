"""Bigtable nodes of the counterparty store (scripts/txguard/capacity/counterparty.py) from a bench line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from txguard.capacity import counterparty as cp
from txguard.capacity import plan as cap

# The shape `txguard bench counterparty` prints (scripts/txguard/bench/counterparty.py), round numbers.
REPORT = {
    "threads": 16, "seconds": 10.0,
    "bigtable": {
        "1": {"shards": 1, "exactly_once": {"writes_per_s": 1000.0}, "add_to_cell_only": {"writes_per_s": 2800.0},
              "snapshot_read": {"p50_ms": 5.0}, "snapshot_read_quiet": {"p50_ms": 1.0}},
        "8": {"shards": 8, "exactly_once": {"writes_per_s": 1000.0}, "add_to_cell_only": {"writes_per_s": 2800.0},
              "snapshot_read": {"p50_ms": 19.0}, "snapshot_read_quiet": {"p50_ms": 3.8}},
    },
    "firestore": {},
}


def test_reads_the_bench_line_and_calibrates_the_emulator_against_a_node() -> None:
    bench = cp.CounterpartyBench.from_json(REPORT)
    assert bench.busy_read_ms == {1: 5.0, 8: 19.0} and bench.quiet_read_ms == {1: 1.0, 8: 3.8}
    assert bench.conditional_cost == pytest.approx(2.8)  # an exactly-once update = 2.8 plain writes
    assert bench.emulator_vs_node == pytest.approx(2800 / cp.NODE_WRITES_PER_S)  # 0.2 of a node


def test_snapshot_time_is_interpolated_in_the_shard_count() -> None:
    assert cp.interpolate({1: 5.0, 8: 19.0}, 4) == pytest.approx(11.0)
    assert cp.interpolate({1: 5.0, 8: 19.0}, 1) == 5.0
    assert cp.interpolate({1: 5.0, 8: 19.0}, 16) == pytest.approx(35.0)  # extrapolated on the same line
    assert cp.interpolate({4: 7.0}, 8) == 7.0
    with pytest.raises(ValueError):
        cp.interpolate({}, 4)


def test_node_time_per_transaction_and_nodes() -> None:
    bench = cp.CounterpartyBench.from_json(REPORT)
    s = cp.sizing(10_000, bench, shards=4, device_share=0.5, labels_per_tx=0.0)
    write_ms = 1000 / cp.NODE_WRITES_PER_S
    writes = 1.5 * 2.8 * write_ms  # counterparty + half a device row, each an exactly-once update
    assert s.node_ms_per_tx_busy == pytest.approx(writes + 11.0 * 0.2, abs=1e-3)
    assert s.node_ms_per_tx_quiet == pytest.approx(writes + 2.2 * 0.2, abs=1e-3)
    assert s.nodes_busy == -(-10_000 * s.node_ms_per_tx_busy // (1000 * cp.CPU_TARGET))
    assert s.nodes_quiet < s.nodes_busy
    labelled = cp.sizing(10_000, bench, shards=4, device_share=0.5, labels_per_tx=0.05)
    assert labelled.node_ms_per_tx_busy > s.node_ms_per_tx_busy
    # Ten times the rate, about ten times the nodes; never below the one node an instance has.
    small = cp.sizing(1000, bench, 4, 0.5, 0.0)
    assert 8 * small.nodes_busy <= s.nodes_busy <= 10 * small.nodes_busy  # rounded up at each rate
    assert cp.sizing(1, bench, 4, 0.5, 0.0).nodes_busy == 1
    assert s.usd_per_month_busy == pytest.approx(
        s.nodes_busy * cp.PRICES["node_hour"] * cp.MONTH_HOURS + s.storage_gib * cp.PRICES["ssd_gib_month"], abs=1)


def test_deployed_defaults_are_the_models() -> None:
    from txguard.contract.settings import CounterpartySettings

    assert CounterpartySettings.model_fields["counterparty_shards"].default == 4  # --counterparty-shards default
    config = (Path(__file__).resolve().parents[3] / "infra" / "config.py").read_text()
    assert f'cfg.get_int("bigtableCpuTarget") or {cp.CPU_TARGET * 100:.0f}' in config
    assert 0 < cp.device_share(300) < 1


def test_command_adds_the_bigtable_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    score = tmp_path / "score.out"
    score.write_text(json.dumps({"http_rps": 1500.0, "http_p50_ms": 5.0}) + "\n")
    enrich = tmp_path / "enrich.json"
    enrich.write_text(json.dumps({"total_ms": {"p50": 80.0, "p99": 200.0}}) + "\n")
    bench = tmp_path / "cp.out"
    bench.write_text("progress...\n" + json.dumps(REPORT) + "\n")
    argv = ["--score", str(score), "--enrich", str(enrich), "--counterparty", str(bench), "--rates", "1000", "10000"]
    assert cap.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    result = json.loads(lines[-1])
    store = result["counterparty"]
    assert set(store["rates"]) == {"1000", "10000"}
    assert store["inputs"]["shards"] == 4 and store["rates"]["10000"]["nodes_busy"] >= 1
    assert any(line.startswith("counterparty store (Bigtable SSD") for line in lines)
    assert any(line.startswith("10,000 | ") and line.count("|") == 6 for line in lines)
    bad = tmp_path / "bad.out"
    bad.write_text(json.dumps({"bigtable": {}}) + "\n")
    assert cap.main([*argv[:4], "--counterparty", str(bad)]) == 2
    assert "txguard bench counterparty" in capsys.readouterr().err
