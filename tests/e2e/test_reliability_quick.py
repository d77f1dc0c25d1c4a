"""`txguard reliability --quick`, end to end on the emulator stack with the production subscription
settings (push bridge, ordering by wallet): every scenario, every message accounted for, nothing
lost, nothing double counted, the counterparty aggregates equal to the replay, every transaction
scored on its replayed features or the difference explained by a logged late counterparty update
(the command's own exit code and its last line, one JSON object). Emulator mode needs gcloud + Java +
fake-gcs-server (skipped locally without them, failed in CI). A few minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require
from txguard.local.stack import emulator_mode_available

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("duplicates", "poison", "scoring_outage", "store_outage", "bad_model", "burst", "worker_kill",
             "flaky_delivery", "promotion", "labels", "counterparty_hot", "counterparty_outage")
COMMON = ("sent", "decided", "invalid", "dead_lettered", "lost", "double_counted", "late", "features_unexplained",
          "cp_features_differing", "cp_features_unexplained", "late_updates", "aggregate_cells_differing", "open_leases")


@pytest.mark.emulators
@pytest.mark.slow
@pytest.mark.timeout(1500)  # 14 scenarios: about 10 minutes on a quiet 2-CPU machine, past the suite's 600 s
def test_reliability_quick(tmp_path: Path) -> None:
    require(emulator_mode_available(), "gcloud (with Java) or fake-gcs-server missing: emulator mode unavailable")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST", "MODEL_URI")}
    doc = tmp_path / "reliability.md"
    argv = [sys.executable, "-m", "txguard.cli.main", "reliability", "--quick", "--workdir", str(tmp_path / "run"),
            "--write-doc", str(doc)]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1400)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines, f"no output (rc={proc.returncode}); stderr:\n{proc.stderr[-3000:]}"
    result = json.loads(lines[-1])
    assert proc.returncode == 0, f"rc={proc.returncode}: {lines[-1]}\n{proc.stderr[-3000:]}"
    assert result["passed"] is True and result["mode"] == "emulators" and result["profile"] == "quick"
    assert result["push_mode"] == "bridge"
    for name in SCENARIOS:
        row = result[name]
        assert all(k in row for k in COMMON), (name, row)
        assert row["lost"] == 0 and row["double_counted"] == 0 and row["missing"] == 0, (name, row)
        assert row["features_unexplained"] == 0, (name, row)
        assert row["cp_features_unexplained"] == 0 and row["aggregate_cells_differing"] == 0, (name, row)
        assert row["open_leases"] == 0 and row["aggregate_cells"] > 0, (name, row)
        assert row["decided"] == row["transactions"] > 0, (name, row)
        assert row["ok"] is True, (name, row)
    assert result["duplicates"]["identical_decisions"] is True
    assert result["duplicates"]["sent"] == 2 * result["duplicates"]["transactions"]
    assert result["poison"]["invalid"] == result["poison"]["poison"] > 0
    assert result["poison"]["poison_kinds"] >= 12
    assert result["bad_model"]["refused"] is True and result["bad_model"]["kept_serving"] is True
    assert result["burst"]["drain_s"] is not None
    assert result["scoring_outage"]["outage_s"] >= 10 and result["store_outage"]["outage_s"] >= 5
    # Deliveries that fail and are retried keep their wallet's order: nothing late, nothing to explain.
    for name in ("worker_kill", "flaky_delivery"):
        assert result[name]["ordering"] is True and result[name]["late"] == 0, result[name]
        assert result[name]["features_differing"] == 0, result[name]
    assert result["worker_kill"]["kills"] == 3 and result["worker_kill"]["workers_killed"] >= 3
    assert result["flaky_delivery"]["failed_deliveries"] > 0
    # Promote and roll back mid-stream: the scoring function followed both, nothing failed, decisions
    # of both versions, each naming a version the scoring log shows scoring it.
    promo = result["promotion"]
    assert promo["switched_promote_s"] and promo["switched_rollback_s"], promo
    assert all(0 <= s < 30 for s in [*promo["switched_promote_s"].values(), *promo["switched_rollback_s"].values()])
    assert promo["scoring_5xx"] == 0 and promo["decisions_not_matching"] == 0 and promo["retried"] == {}
    assert set(promo["decisions_by_version"]) == {promo["production_version"], promo["promoted_version"]}
    # Labels: every valid one applied once (copies acknowledged as duplicates), every malformed or
    # conflicting one on invalid with a reason, and the store's fraud counters equal the offline replay.
    lab = result["labels"]
    assert lab["labels_lost"] == 0 and lab["labels_dead_lettered"] == 0 and lab["labels_valid_on_invalid"] == 0, lab
    assert lab["labels_applied"] > 0 and lab["labels_invalid"] >= 6 and lab["labels_invalid_without_reason"] == 0
    assert lab["label_statuses"]["duplicate"] >= lab["label_kinds_sent"]["duplicate"] > 0, lab
    for kind in ("reversal", "reversal_first", "not_seen_yet", "unknown_transaction", "conflict"):
        assert lab["label_kinds_sent"][kind] > 0, (kind, lab)
    assert lab["labels_double_counted"] == 0 and lab["labels_missing"] == 0 and lab["label_frauds_replayed"] > 0
    # Labels published after transactions they should have counted for are late updates, and explain
    # every difference; a hot counterparty with workers killed, and the counterparty store frozen,
    # end with exact aggregates (above) and every difference explained.
    assert lab["late_updates"] > 0 and lab["cp_features_differing"] == lab["cp_features_explained"], lab
    hot, outage = result["counterparty_hot"], result["counterparty_outage"]
    assert hot["hot_transactions"] > 0 and hot["kills"] == 3, hot
    assert outage["outage_s"] >= 10 and outage["retried"].get("StoreUnavailableError", 0) > 0, outage
    text = doc.read_text()
    assert "txguard reliability --quick" in text and lines[-1] in text
