"""Bench arithmetic: backlog slope, the sustained verdict, enrichment timings from JSON logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from txguard.bench.e2e import SLOPE_TOLERANCE, Stage, enrich_timings, slope


def test_slope_of_a_growing_and_a_flat_backlog() -> None:
    assert slope([(t, 5 * t) for t in range(10)]) == pytest.approx(5.0)
    assert slope([(t, 7) for t in range(10)]) == pytest.approx(0.0)
    assert slope([(1.0, 3)]) == 0.0


def test_stage_is_sustained_only_with_a_flat_backlog_and_nothing_lost() -> None:
    flat = Stage(100, 10, "b0", samples=[(t / 2, 20) for t in range(20)], summary={"lost": 0, "publish_failed": 0})
    assert flat.sustained
    growing = Stage(100, 10, "b1", samples=[(t / 2, int(t / 2 * 100 * 2 * SLOPE_TOLERANCE)) for t in range(20)],
                    summary={"lost": 0, "publish_failed": 0})
    assert not growing.sustained
    lossy = Stage(100, 10, "b2", samples=flat.samples, summary={"lost": 3, "publish_failed": 0})
    assert not lossy.sustained
    assert set(flat.as_dict()) >= {"rate", "e2e_p50_ms", "e2e_p99_ms", "sustained", "backlog_slope_per_s"}


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


def test_own_wallets_renames_and_can_fold_onto_a_few_hot_wallets() -> None:
    import json as _json

    from txguard.bench.e2e import own_wallets
    from txguard.publisher import make_stream

    base = make_stream(60, "fraud", seed=3, id_prefix="ow")
    renamed = own_wallets(base, "x-")
    assert [m.transaction_id for m in renamed] == [m.transaction_id for m in base]
    assert all(_json.loads(m.data)["wallet_id"] == m.ordering_key and m.ordering_key.startswith("x-w") for m in renamed)
    hot = own_wallets(base, "x-", wallets=3)
    keys = {m.ordering_key for m in hot}
    assert len(keys) <= 3 and all(k.startswith("x-hot") for k in keys)
    assert all(_json.loads(m.data)["wallet_id"] == m.ordering_key for m in hot)
