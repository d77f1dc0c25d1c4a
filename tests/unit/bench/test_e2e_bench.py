"""Bench arithmetic: enrichment timings from JSON logs, the search for the ceiling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from txguard.bench.e2e import enrich_timings
from txguard.local.stage import Stage


def test_enrich_timings_reads_the_stage_lines(tmp_path: Path) -> None:
    log = tmp_path / "enrich.log"
    lines = [json.dumps({"transaction_id": f"b1-{i:09d}", "status": "decided",
                         "timings": {"store_ms": float(i), "total_ms": 2.0 * i}}) for i in range(1, 11)]
    lines.append(json.dumps({"transaction_id": "b2-000000001", "status": "decided", "timings": {"store_ms": 999.0}}))
    lines.append(json.dumps({"transaction_id": "b1-x", "status": "invalid", "timings": {"store_ms": 999.0}}))
    lines.append("not json b1-")
    log.write_text("\n".join(lines))
    timings = enrich_timings(log, "b1")
    assert timings["store_ms"] == {"p50": 5.0, "p95": 10.0}
    assert timings["total_ms"]["p50"] == 10.0
    assert enrich_timings(tmp_path / "missing.log", "b1") == {}


class _FakeStack:
    """Stands in for a LocalStack: a pipeline whose capacity is `capacity` tx/s."""

    def __init__(self, capacity: float) -> None:
        self.capacity = capacity


def test_search_finds_the_ceiling_from_above_and_below(monkeypatch: pytest.MonkeyPatch) -> None:
    from txguard.bench import e2e as bench

    def fake_stage(stack, rate, duration_s, prefix, drain_timeout_s, seed=1):
        growth = 0.0 if rate <= stack.capacity else rate - stack.capacity
        return Stage(rate, duration_s, prefix, samples=[(t / 2, int(growth * t / 2)) for t in range(2 * int(duration_s))],
                     summary={"lost": 0, "publish_failed": 0})

    monkeypatch.setattr(bench, "run_stage", fake_stage)
    up = bench.search(_FakeStack(70), 20, 10, 1000, 2.0, 5, log=lambda s: None)
    assert [s.rate for s in up][:3] == [20, 40, 80]
    assert bench.max_sustained(up) == 60.0  # bisection between 40 and 80
    down = bench.search(_FakeStack(30), 100, 10, 1000, 2.0, 5, log=lambda s: None)
    assert [s.rate for s in down][:3] == [100, 50, 25]
    assert bench.max_sustained(down) == 25
    capped = bench.search(_FakeStack(1e9), 100, 10, 150, 2.0, 5, log=lambda s: None)
    assert [s.rate for s in capped] == [100, 150]
