"""After the answer: shadow scores of the challenger and drift windows of the champion, as logged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.scoring_fixtures import enriched_transactions, tiny_metadata, tiny_model
from txguard.contract.logs import DRIFT_EVENT, SHADOW_EVENT
from txguard.contract.settings import ScoringSettings
from txguard.features.wallet import FEATURE_NAMES
from txguard.registry import STAGING, open_registry
from txguard.scoring.http import BytesBody
from txguard.scoring.psi import reference_of
from txguard.scoring.runtime import ModelRuntime
from txguard.scoring.scorer import outcome
from txguard.scoring.service import ScoringService
from txguard.scoring.vectorize import matrix_of

JSON = {"Content-Type": "application/json"}


def registry(tmp_path: Path, staging_seed: int | None = 1, **meta: Any) -> Path:
    path = tmp_path / "registry"
    reg = open_registry(str(path))
    v1 = reg.publish(tiny_model(0)[1], tiny_metadata(**meta)).version
    reg.promote(v1)
    if staging_seed is not None:
        v2 = reg.publish(tiny_model(staging_seed)[1], tiny_metadata(thresholds={"review": 0.2, "block": 0.6})).version
        reg.promote(v2, STAGING)
    return path


def serve(path: Path, **env: Any) -> ScoringService:
    settings = ScoringSettings(MODEL_URI=f"{path}@production", MODEL_POLL_S=3600, **{"DRIFT_WINDOW_S": 0, **env})
    service = ScoringService.load(settings)
    service.follower.check()  # what the thread does first: load the challenger
    return service


def lines(capsys: Any, event: str) -> list[dict]:
    out = [json.loads(raw) for raw in capsys.readouterr().out.splitlines() if raw.startswith("{")]
    return [line for line in out if line.get("event") == event]


def test_shadow_scores_every_transaction_with_the_challenger_after_the_answer(tmp_path: Path, capsys: Any) -> None:
    service = serve(registry(tmp_path), SHADOW_ENABLED="true", SHADOW_SAMPLE_RATE=1.0)
    assert service.state.challenger is not None and service.state.challenger.version == "v2"
    assert json.loads(service.handle("GET", "/health", {}, BytesBody(b"")).body)["challenger_version"] == "v2"
    txs = enriched_transactions()[:150]
    for tx in txs:
        resp = service.handle("POST", "/score", JSON, BytesBody(tx.model_dump_json().encode()))
        assert json.loads(resp.body)["model_version"] == "v1"  # the champion answers
    service.close()
    shadow = lines(capsys, SHADOW_EVENT)
    assert [s["transaction_id"] for s in shadow] == [tx.transaction_id for tx in txs]
    challenger = ModelRuntime(tiny_model(1)[1], tiny_metadata())
    expected = challenger.predict(matrix_of(txs))
    assert [s["challenger_score"] for s in shadow] == pytest.approx(expected.tolist(), abs=1e-6)
    thresholds = open_registry(str(tmp_path / "registry")).metadata("v2").thresholds
    assert all(s["challenger_outcome"] == outcome(s["challenger_score"], thresholds).value for s in shadow)
    assert {(s["model_version"], s["challenger_version"]) for s in shadow} == {("v1", "v2")}
    assert service.observer.shadow_scored == len(txs)


def test_batches_are_observed_and_the_sample_rate_applies(tmp_path: Path, capsys: Any) -> None:
    service = serve(registry(tmp_path), SHADOW_ENABLED="true", SHADOW_SAMPLE_RATE=0.3)
    txs = enriched_transactions()[:400]
    body = json.dumps({"transactions": [json.loads(tx.model_dump_json()) for tx in txs]}).encode()
    assert service.handle("POST", "/score/batch", JSON, BytesBody(body)).status == 200
    service.close()
    n = len(lines(capsys, SHADOW_EVENT))
    assert 60 < n < 180  # ~120 of 400 (binomial: 9 standard deviations of room)


@pytest.mark.parametrize("case", ["disabled", "staging_is_production", "no_staging"])
def test_no_shadow_lines_without_a_distinct_challenger(tmp_path: Path, capsys: Any, case: str) -> None:
    path = registry(tmp_path, staging_seed=None if case != "disabled" else 1)
    if case == "staging_is_production":
        open_registry(str(path)).promote("v1", STAGING)
    service = serve(path, SHADOW_ENABLED="false" if case == "disabled" else "true")
    for tx in enriched_transactions()[:20]:
        service.handle("POST", "/score", JSON, BytesBody(tx.model_dump_json().encode()))
    service.close()
    assert lines(capsys, SHADOW_EVENT) == []
    health = json.loads(service.handle("GET", "/health", {}, BytesBody(b"")).body)
    assert health["challenger_version"] == ("v1" if case == "staging_is_production" else None)


def test_drift_windows_compare_traffic_with_the_versions_reference(tmp_path: Path, capsys: Any) -> None:
    txs = enriched_transactions(days=3, wallets=150)
    x = matrix_of(txs)
    runtime = ModelRuntime(tiny_model(0)[1], tiny_metadata())
    reference = reference_of(x, FEATURE_NAMES, runtime.predict(x), period="the same traffic")
    service = serve(registry(tmp_path, staging_seed=None, drift_reference=reference),
                    DRIFT_WINDOW_S=300, DRIFT_WINDOW_ROWS=500, DRIFT_SAMPLE_RATE=1.0)
    # A random sample of the same traffic (in time order the first rows are young wallets: history
    # features like wallet_age_days really do differ from the whole period's).
    sample = [txs[i] for i in np.random.default_rng(0).permutation(len(txs))[:1000]]
    body = json.dumps({"transactions": [json.loads(tx.model_dump_json()) for tx in sample]}).encode()
    assert service.handle("POST", "/score/batch", JSON, BytesBody(body)).status == 200
    service.close()
    windows = lines(capsys, DRIFT_EVENT)
    # Rows arrive in chunks of 64: the first window closes at 512; the last 488 are under MIN_ROWS.
    assert [w["rows"] for w in windows] == [512]
    assert all(w["model_version"] == "v1" and set(w["psi"]) == {*FEATURE_NAMES, "score"} for w in windows)
    # The reference is this very traffic: nothing drifted (small-sample noise only).
    assert max(w["psi_max"] for w in windows) < 0.2
    assert np.sum(windows[0]["counts"]["amount"]) == 512
