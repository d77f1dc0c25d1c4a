"""`txguard local up`, end to end, in both modes: a short stream, every message accounted for.

Runs the real command in a subprocess (its own environment, its own emulators and function
processes, all stopped by the command itself) and reads its last line, one JSON object.
Emulator mode needs gcloud + Java + fake-gcs-server (skipped locally without them, failed in CI);
embedded mode needs nothing beyond the venv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require
from txguard.contract.trace import TRACE_KEY
from txguard.local.stack import emulator_mode_available

ROOT = Path(__file__).resolve().parents[2]
REQUIRED_KEYS = {"mode", "published", "decided", "invalid", "dead_lettered", "lost", "e2e_p50_ms", "e2e_p99_ms",
                 "labels_published", "labels_applied", "labels_lost"}
COUNT = 150


def _local_up(tmp_path: Path, *extra: str) -> tuple[dict, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST", "MODEL_URI")}
    argv = [sys.executable, "-m", "txguard.cli.main", "local", "up", "--count", str(COUNT), "--rate", "100",
            "--invalid-fraction", "0.05", "--seed", "11", "--drain-timeout", "90", "--workdir", str(tmp_path / "run"),
            *extra]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=540)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines, f"no output (rc={proc.returncode}); stderr:\n{proc.stderr[-3000:]}"
    try:
        summary = json.loads(lines[-1])
    except ValueError:
        pytest.fail(f"last line is not JSON: {lines[-1]!r}; stderr:\n{proc.stderr[-3000:]}")
    assert proc.returncode == 0, f"rc={proc.returncode}: {summary}\n{proc.stderr[-3000:]}"
    return summary, proc.stderr


def _check(summary: dict, mode: str) -> None:
    assert set(summary) >= REQUIRED_KEYS
    assert summary["mode"] == mode
    assert summary["published"] == COUNT
    assert summary["lost"] == 0
    assert summary["dead_lettered"] == 0
    assert summary["decided"] + summary["invalid"] == summary["published"]
    # Every invalid message was one made invalid on purpose, and each of those was rejected.
    assert summary["valid_on_invalid"] == 0
    assert summary["invalid"] == summary["poison"]
    assert sum(summary["decisions"].values()) == summary["decided"]
    assert summary["e2e_p50_ms"] is not None and summary["e2e_p50_ms"] <= summary["e2e_p99_ms"]
    assert summary["unmatched"] == {}
    # The stream's labels followed it on `labels`: each applied by the label function (its log says
    # so), none lost, none parked (all are valid), none delivered twice by the push path.
    assert summary["labels_all_sent"] is True
    assert summary["labels_published"] == summary["labels_planned"] > 0
    assert summary["labels_applied"] == summary["labels_published"] > 0
    assert summary["labels_lost"] == summary["labels_invalid"] == summary["labels_dead_lettered"] == 0
    # One push per label route (the processor feed's and the analysts'), each on its own path.
    assert set(summary["labels_push"]) == {"chargeback", "analyst"}
    # A label may come before its transaction is in the index (an analyst's verdict 0.25 s after it was
    # published): 503, retried until applied (labels_applied above). Nothing else may fail.
    assert all(set(route["statuses"]) <= {"200", "503"} for route in summary["labels_push"].values())


def _json_lines(path: Path) -> list[dict]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def _check_one_trace_per_transaction(workdir: Path) -> None:
    """What Logs Explorer groups: each decided transaction's enrichment line and scoring line name
    the same trace, and different transactions different traces."""
    (enrich_log,) = workdir.rglob("enrich.log")
    (score_log,) = workdir.rglob("score.log")
    enriched = {e["transaction_id"]: e[TRACE_KEY] for e in _json_lines(enrich_log)
                if e.get("status") == "decided" and TRACE_KEY in e}
    scored = {e["transaction_id"]: e[TRACE_KEY] for e in _json_lines(score_log)
              if e.get("path") == "/score" and "transaction_id" in e and TRACE_KEY in e}
    assert len(enriched) >= COUNT // 2, f"{len(enriched)} decided lines with a trace"
    assert {tx: scored.get(tx) for tx in enriched} == enriched
    assert len(set(enriched.values())) == len(enriched)


@pytest.mark.emulators
@pytest.mark.slow
def test_local_up_with_emulators(tmp_path: Path) -> None:
    require(emulator_mode_available(), "gcloud (with Java) or fake-gcs-server missing: emulator mode unavailable")
    summary, stderr = _local_up(tmp_path)
    _check(summary, "emulators")
    assert summary["push_mode"] == "bridge" and summary["ordering"] is True  # production-like push, by wallet
    assert summary["push"]["failures"] == 0 and summary["late"] == 0
    _check_one_trace_per_transaction(tmp_path / "run")
    assert "gs://txguard-models/registry" in stderr  # the model came from the emulated Cloud Storage registry


@pytest.mark.slow
def test_local_up_embedded(tmp_path: Path) -> None:
    summary, _ = _local_up(tmp_path, "--embedded")
    _check(summary, "embedded")
    assert summary["push_mode"] == "embedded" and summary["ordering"] is True
    _check_one_trace_per_transaction(tmp_path / "run")
    assert summary["push"]["failures"] == 0
