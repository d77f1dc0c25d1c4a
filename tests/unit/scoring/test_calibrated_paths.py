"""A calibrated version serves the same calibrated probability on every scoring path: `/score` (the
single-row fast path), `/score/batch`, `txguard score-file`, a `batch run` job, and shadow scoring of
a calibrated challenger. The calibration lives in the ONNX graph (training folds it into the
trees), so each path's score is compared with the reference `sigmoid(slope * margin + intercept)`
computed from scikit-learn's margin."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.scoring_fixtures import enriched_transactions, tiny_metadata, tiny_model
from txguard.batch.jobs import JobSpec, JobState, run_job
from txguard.batch.score_file import score_file
from txguard.contract.logs import SHADOW_EVENT
from txguard.contract.settings import ScoringSettings
from txguard.features.wallet import FEATURE_NAMES
from txguard.registry import STAGING, open_registry
from txguard.registry.metadata import Calibration
from txguard.scoring.http import BytesBody
from txguard.scoring.loading import load_scorer
from txguard.scoring.service import ScoringService
from txguard.scoring.vectorize import matrix_of
from txguard.simulator.core import simulate
from txguard.training.calibration import Platt, fold_into_onnx

JSON = {"Content-Type": "application/json"}
PLATT = {0: Platt(slope=0.55, intercept=-1.7), 1: Platt(slope=1.3, intercept=0.4)}  # champion, challenger
TOLERANCE = 1e-5  # float32 graph against the float64 reference


def expected(seed: int, x: np.ndarray) -> np.ndarray:
    return PLATT[seed](tiny_model(seed)[0].decision_function(np.asarray(x, dtype=np.float32)))


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("calibrated") / "registry"
    reg = open_registry(str(path))
    for seed, alias in ((0, "production"), (1, STAGING)):
        platt = PLATT[seed]
        record = Calibration(method="platt", slope=platt.slope, intercept=platt.intercept, rows=1000, frauds=10,
                             period="synthetic", label_maturity_days=0.0)
        meta = reg.publish(fold_into_onnx(tiny_model(seed)[1], platt), tiny_metadata(calibration=record))
        reg.promote(meta.version, alias)
    return path


def test_the_served_score_is_the_calibrated_one_on_every_path(registry: Path, tmp_path: Path, capsys: Any) -> None:
    txs = enriched_transactions()[:200]
    x = matrix_of(txs)
    champion = expected(0, x)
    assert np.max(np.abs(champion - tiny_model(0)[0].predict_proba(x.astype(np.float32))[:, 1])) > 0.05

    settings = ScoringSettings(MODEL_URI=f"{registry}@production", MODEL_POLL_S=3600, DRIFT_WINDOW_S=0,
                               SHADOW_ENABLED="true", SHADOW_SAMPLE_RATE=1.0)
    service = ScoringService.load(settings)
    service.follower.check()  # loads the challenger, as the follower's thread does first
    info = json.loads(service.handle("GET", "/model", {}, BytesBody(b"")).body)
    assert (info["calibration"]["slope"], info["calibration"]["intercept"]) == (PLATT[0].slope, PLATT[0].intercept)
    single = [json.loads(service.handle("POST", "/score", JSON, BytesBody(tx.model_dump_json().encode())).body)
              for tx in txs]
    body = json.dumps({"transactions": [tx.model_dump(mode="json") for tx in txs]}).encode()
    batch = json.loads(service.handle("POST", "/score/batch", JSON, BytesBody(body)).body)["decisions"]
    service.close()
    shadow = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    shadow = [s for s in shadow if s.get("event") == SHADOW_EVENT]

    assert [d["score"] for d in single] == pytest.approx(champion.tolist(), abs=TOLERANCE)
    assert [d["score"] for d in batch] == pytest.approx(champion.tolist(), abs=TOLERANCE)
    # Shadow lines for the single requests, then for the batch.
    assert [s["transaction_id"] for s in shadow] == [tx.transaction_id for tx in txs] * 2
    assert [s["challenger_score"] for s in shadow] == pytest.approx(expected(1, x).tolist() * 2, abs=TOLERANCE)
    assert [s["score"] for s in shadow] == pytest.approx(champion.tolist() * 2, abs=TOLERANCE)

    src = tmp_path / "in.jsonl"
    src.write_text("".join(tx.model_dump_json() + "\n" for tx in txs))
    scorer = load_scorer(open_registry(str(registry)), "v1")
    score_file(scorer, str(src), str(tmp_path / "out.jsonl"), chunk=64)
    from_file = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [d["score"] for d in from_file] == pytest.approx(champion.tolist(), abs=TOLERANCE)
    # The same graph on both paths: the single-row and matrix scores agree to the bit or nearly.
    assert [d["score"] for d in single] == pytest.approx([d["score"] for d in from_file], abs=1e-6)


def test_a_batch_job_serves_the_calibrated_score(registry: Path, tmp_path: Path) -> None:
    rows = list(simulate(days=1, wallets=60, seed=4))
    src = tmp_path / "in.jsonl"
    src.write_text("".join(r.to_json() + "\n" for r in rows))
    status = run_job(JobSpec(input=str(src), output=str(tmp_path / "out"), model_uri=f"{registry}@production",
                             features=True, shards=2), workers=1)
    assert status.state is JobState.COMPLETED, status.error
    table = pq.read_table(sorted((tmp_path / "out").glob("features-*.parquet")))
    x = np.column_stack([table.column(n).to_numpy() for n in FEATURE_NAMES])
    reference = dict(zip(table.column("transaction_id").to_pylist(), expected(0, x).tolist(), strict=True))
    decisions = [json.loads(line) for path in sorted((tmp_path / "out").glob("decisions-*.jsonl"))
                 for line in path.read_text().splitlines()]
    assert len(decisions) == len(rows) == len(reference)
    assert [d["score"] for d in decisions] == pytest.approx([reference[d["transaction_id"]] for d in decisions],
                                                            abs=TOLERANCE)
