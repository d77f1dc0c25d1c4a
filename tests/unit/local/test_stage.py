"""A stage's arithmetic: backlog slope, the sustained verdict, wallets of its own."""

from __future__ import annotations

import json

import pytest

from txguard.local.stage import SLOPE_TOLERANCE, Stage, own_wallets, slope
from txguard.publisher import make_stream


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


def test_own_wallets_renames_and_can_fold_onto_a_few_hot_wallets() -> None:

    base = make_stream(60, "fraud", seed=3, id_prefix="ow")
    renamed = own_wallets(base, "x-")
    assert [m.transaction_id for m in renamed] == [m.transaction_id for m in base]
    assert all(json.loads(m.data)["wallet_id"] == m.ordering_key and m.ordering_key.startswith("x-w") for m in renamed)
    hot = own_wallets(base, "x-", wallets=3)
    keys = {m.ordering_key for m in hot}
    assert len(keys) <= 3 and all(k.startswith("x-hot") for k in keys)
    assert all(json.loads(m.data)["wallet_id"] == m.ordering_key for m in hot)
