"""The benchmark's model and payloads: one HistGradientBoosting model (as production trains it)
on simulated data, its ONNX artifact in a local registry, and enriched transactions to send.

Cached under .txguard/bench/model-<key>/ so repeated runs skip training.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

SIM = {"days": 14, "wallets": 1000, "seed": 7}
HGB = {"max_iter": 200, "learning_rate": 0.1, "max_leaf_nodes": 31, "l2_regularization": 1.0}
N_PAYLOADS = 2000


@dataclass
class BenchModel:
    estimator: Any
    artifact: bytes
    registry: Path  # local registry holding the artifact as production
    payloads: list[str]  # EnrichedTransaction JSON bodies
    rows: np.ndarray  # the same transactions' feature rows (float64)
    classifier: bytes  # the same trees in the classifier form skl2onnx writes (what older versions serve)


def _key() -> str:
    """The cache's name: the data and model settings, the feature set (a model cached before a feature
    was added no longer fits the rows the code computes) and the exporter's source (a cached graph
    written by another exporter is not the graph a version is published as)."""
    import hashlib

    from txguard.features.wallet import FEATURE_NAMES
    from txguard.training import onnx_export

    features = hashlib.sha256(",".join(FEATURE_NAMES).encode()).hexdigest()[:8]
    export = hashlib.sha256(Path(onnx_export.__file__).read_bytes()).hexdigest()[:8]
    return "-".join(f"{k}{v}" for k, v in {**SIM, **HGB, "features": features, "export": export}.items())


def build(cache: Path, log: Any = print) -> BenchModel:
    import joblib

    from txguard.features.wallet import FEATURE_NAMES
    from txguard.registry import open_registry
    from txguard.training.onnx_export import margin_graph, to_onnx

    folder = cache / f"model-{_key()}"
    est_path, onnx_path = folder / "model.joblib", folder / "model.onnx"
    payload_path, rows_path = folder / "payloads.jsonl", folder / "rows.npy"
    registry = folder / "registry"
    if not (est_path.exists() and onnx_path.exists() and payload_path.exists() and rows_path.exists()):
        from sklearn.ensemble import HistGradientBoostingClassifier
        from threadpoolctl import threadpool_limits

        from txguard.training.dataset import simulated

        log(f"training the benchmark model on simulated data {SIM} (cached in {folder})")
        data = simulated(**SIM)
        est = HistGradientBoostingClassifier(random_state=0, **HGB)
        with threadpool_limits(1):
            est.fit(data.X.astype(np.float32), data.y)
        folder.mkdir(parents=True, exist_ok=True)
        joblib.dump(est, est_path)
        onnx_path.write_bytes(margin_graph(to_onnx(est, len(FEATURE_NAMES))))  # as a version is published
        payloads, rows = _payloads()
        payload_path.write_text("\n".join(payloads) + "\n")
        np.save(rows_path, rows)
    est = joblib.load(est_path)
    artifact = onnx_path.read_bytes()
    classifier_path = folder / "classifier.onnx"  # written on first use: caches made before it stay valid
    if not classifier_path.exists():
        classifier_path.write_bytes(to_onnx(est, len(FEATURE_NAMES)))
    reg = open_registry(str(registry))
    if not reg.aliases().get("production"):
        meta = reg.publish(artifact, _metadata())
        reg.promote(meta.version)
    payloads = payload_path.read_text().splitlines()
    return BenchModel(est, artifact, registry, payloads, np.load(rows_path), classifier_path.read_bytes())


def _metadata() -> Any:
    from txguard.features.wallet import FEATURE_NAMES
    from txguard.registry.metadata import ModelMetadata, Thresholds

    return ModelMetadata(
        created_at=datetime.now(UTC), data_fingerprint=f"bench {_key()}", features=list(FEATURE_NAMES),
        thresholds=Thresholds(review=0.01, block=0.1), metrics={}, hyperparameters=HGB,
    )


def _payloads() -> tuple[list[str], np.ndarray]:
    """Recent transactions (the contract refuses future ones) with their real history and counterparty features."""
    from txguard.features.timeline import replay_enriched
    from txguard.scoring.vectorize import row_of
    from txguard.simulator.core import quick_stream

    txs = list(replay_enriched(r.tx for r in quick_stream(N_PAYLOADS, seed=11, id_prefix="bench")))
    bodies = [tx.model_dump_json() for tx in txs]
    return bodies, np.array([row_of(tx) for tx in txs], dtype=np.float64)


def publish_to(location: str, artifact: bytes) -> str:
    """Publish the artifact to another registry (the GCS emulator for cold start); its MODEL_URI."""
    from txguard.registry import open_registry

    reg = open_registry(location)
    meta = reg.publish(artifact, _metadata())
    reg.promote(meta.version)
    return f"{location}@production"


def first_rows(model: BenchModel, n: int) -> list[list[float]]:
    return model.rows[:n].tolist()


def dump_json(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))
