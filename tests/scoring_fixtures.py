"""A tiny model trained on synthetic rows, published into a tmp registry, and enriched transactions.

Shared by the scoring tests (unit, functional, integration). Training happens once per test
process (`tiny_model()` is cached); nothing is committed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from txguard.contract.models import EnrichedTransaction
from txguard.features.wallet import FEATURE_NAMES
from txguard.registry.metadata import ModelMetadata, QualityGate, Thresholds

N = len(FEATURE_NAMES)
IX = {name: i for i, name in enumerate(FEATURE_NAMES)}
THRESHOLDS = Thresholds(review=0.3, block=0.7)


def synthetic_rows(n: int, seed: int = 0) -> np.ndarray:
    """Rows in plausible ranges (counts >= 0, flags 0/1, amounts log-normal), FEATURE_NAMES order."""
    rng = np.random.default_rng(seed)
    x = rng.gamma(1.5, 2.0, size=(n, N))
    amount = rng.lognormal(3.0, 1.2, size=n)
    x[:, IX["amount"]] = amount
    x[:, IX["amount_log"]] = np.log1p(amount)
    for flag in ("is_transfer", "is_withdrawal", "is_top_up", "has_device", "is_new_counterparty",
                 "country_changed", "device_changed", "is_new_device"):
        x[:, IX[flag]] = rng.random(n) < 0.2
    x[:, IX["channel_code"]] = rng.integers(0, 5, n)
    x[:, IX["hour_of_day"]] = rng.integers(0, 24, n)
    x[:, IX["day_of_week"]] = rng.integers(0, 7, n)
    x[:, IX["amount_ratio_30d"]] = rng.lognormal(0.0, 1.0, n)
    x[:, IX["seconds_since_last_inflow"]] = rng.uniform(0, 30 * 86400, n)
    x[:, IX["history_len"]] = rng.integers(0, 128, n)
    # Known frauds are rare: most counterparties, devices and wallets have none.
    for name in ("cp_fraud_1d", "cp_fraud_7d", "cp_fraud_30d", "device_fraud_30d", "in_fraud_30d", "wallet_fraud_30d"):
        x[:, IX[name]] = np.where(rng.random(n) < 0.05, rng.poisson(2.0, n), 0)
    for name in ("cp_fraud_rate_7d", "cp_fraud_rate_30d"):
        x[:, IX[name]] = np.minimum(x[:, IX[name.replace("_rate", "")]] / np.maximum(x[:, IX["cp_tx_30d"]], 1.0), 1.0)
    x[:, IX["cp_amount_ratio_30d"]] = rng.lognormal(0.0, 0.7, n)
    return x


def synthetic_labels(x: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    logit = (
        1.2 * np.log(x[:, IX["amount_ratio_30d"]])
        + 0.5 * x[:, IX["new_counterparties_24h"]]
        + 1.5 * x[:, IX["device_changed"]]
        - 3.0
    )
    return (rng.random(len(x)) < 1.0 / (1.0 + np.exp(-logit))).astype(int)


@lru_cache(maxsize=2)
def tiny_model(seed: int = 0) -> tuple[Any, bytes]:
    """(fitted HistGradientBoostingClassifier, its ONNX bytes), trained once per process."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    from txguard.training.onnx_export import to_onnx

    x = synthetic_rows(4000, seed)
    est = HistGradientBoostingClassifier(max_iter=40, max_leaf_nodes=15, random_state=seed)
    with threadpool_limits(1):  # OpenMP threads on a busy 2-core machine make fitting ~30x slower
        est.fit(x.astype(np.float32), synthetic_labels(x, seed))
    return est, to_onnx(est, N)


def tiny_metadata(**overrides: Any) -> ModelMetadata:
    fields: dict[str, Any] = {
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "data_fingerprint": "synthetic",
        "features": list(FEATURE_NAMES),
        "metrics": {"pr_auc": 0.5},
        "thresholds": THRESHOLDS,
        "version": "v1",
        # As `txguard train` records it: the console promotes only versions whose gate passed.
        "quality_gate": QualityGate(passed=True, policy={"min_pr_auc": 0.5}),
    }
    fields.update(overrides)
    return ModelMetadata(**fields)


def parity_probe(seed: int = 0, n: int = 12) -> Any:
    """The ParityProbe training records for the tiny model of `seed`: rows and the scores it gives them."""
    from txguard.registry.metadata import ParityProbe
    from txguard.scoring.runtime import ModelRuntime

    runtime = ModelRuntime(tiny_model(seed)[1], tiny_metadata())
    rows = synthetic_rows(n, seed=99).astype(np.float32).astype(np.float64)
    return ParityProbe(rows=rows.tolist(), scores=runtime.predict(rows).tolist())


def publish_disagreeing(registry: Path | str) -> ModelMetadata:
    """A version whose ONNX disagrees with its metadata: model 0 carrying the parity probe of model 1
    (the scores recorded at training are not the ones this artifact gives), promoted to production."""
    return publish_tiny(registry, parity_probe=parity_probe(1))


def publish_tiny(registry: Path | str, promote: bool = True, **overrides: Any) -> ModelMetadata:
    """Publish the tiny model into a registry (local folder or gs://) and promote it to production."""
    from txguard.registry import open_registry

    reg = open_registry(str(registry))
    meta = reg.publish(tiny_model()[1], tiny_metadata(**overrides))
    if promote:
        reg.promote(meta.version)
    return meta


@lru_cache(maxsize=4)
def enriched_transactions(days: int = 2, wallets: int = 60, seed: int = 3) -> tuple[EnrichedTransaction, ...]:
    """Simulated transactions with their real history and counterparty features (the simulator's
    labels replayed too), validated through the contract."""
    from txguard.contract.models import ENRICHED_ADAPTER
    from txguard.features.timeline import replay_enriched
    from txguard.simulator.core import Simulation

    sim = Simulation(days=days, wallets=wallets, seed=seed)
    out = []
    for built in replay_enriched((r.tx for r in sim), sim.label_events()):
        out.append(ENRICHED_ADAPTER.validate_json(built.model_dump_json()))
    return tuple(out)
