"""A model in the stack's registry before the scoring function starts (it loads at cold start).

Emulator mode: `gs://txguard-models/registry` on fake-gcs-server (bucket created here), as the
cloud's registry bucket. Embedded mode: a local registry folder. Either way, if no `production`
alias exists, a small model is trained on simulated data and published through the
`txguard.training.train` pipeline (quality gate included) -- a few seconds of scikit-learn.

That demo model is smaller than `txguard train`'s (QUICK below against TrainConfig's defaults:
30 days x 1,500 wallets and 150 iterations against 30 x 2,000 and 200), so a demo's precision is
lower than the README's model-quality figures; the stack says so when it trains one, and the
summary records which model decided (`model`). It trains as `txguard train` does, without
hindsight: the rows of the label-maturity window before the cut are left out, so a world much
shorter than 30 days has too few mature frauds left to calibrate on and the gate refuses it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

MODEL_BUCKET = "txguard-models"
GCS_REGISTRY = f"gs://{MODEL_BUCKET}/registry"

# Small and quick, still enough mature labelled fraud on both sides of the time split to pass the gate
# (21 days x 800 wallets no longer does once the label-maturity window is left out: ECE 0.07).
QUICK = {"days": 30, "wallets": 1500, "max_iter": 150}
FALLBACK = {"days": 30, "wallets": 2000, "max_iter": 200}


def ensure_bucket(bucket: str = MODEL_BUCKET) -> None:
    """Create the bucket on the Cloud Storage emulator (STORAGE_EMULATOR_HOST) if missing."""
    import os

    from google.api_core import exceptions as gexc
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    project = os.environ.get("GOOGLE_CLOUD_PROJECT", "txguard-local")
    client = storage.Client(project=project, credentials=AnonymousCredentials())
    with contextlib.suppress(gexc.Conflict):
        client.create_bucket(bucket)


def production_version(registry: str) -> str | None:
    from txguard.contract.errors import ModelNotFoundError
    from txguard.registry import PRODUCTION, open_registry

    try:
        return open_registry(registry).resolve(PRODUCTION)
    except ModelNotFoundError:
        return None


def ensure_model(registry: str, seed: int = 42, log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """The production version in `registry`, training and publishing one first if there is none."""
    version = production_version(registry)
    if version is not None:
        return {"version": version, "trained": False}
    from txguard.contract.errors import QualityGateError
    from txguard.training.train import TrainConfig, train_and_publish  # scikit-learn, only when needed

    log(f"training a small demo model ({describe(QUICK)}; `txguard train` trains on "
        f"{describe({'days': TrainConfig.days, 'wallets': TrainConfig.wallets, 'max_iter': TrainConfig.max_iter})})")
    used = QUICK
    try:
        report = train_and_publish(TrainConfig(registry=registry, promote=True, seed=seed, **QUICK), log=log)
    except QualityGateError as exc:
        log(f"quick model refused ({exc}); training on more data")
        used = FALLBACK
        report = train_and_publish(TrainConfig(registry=registry, promote=True, seed=seed, **FALLBACK), log=log)
    return {"version": report["version"], "trained": True, "pr_auc": report.get("pr_auc"),
            "train_seconds": report.get("total_seconds"), "demo_model": describe(used)}


def describe(params: dict[str, int]) -> str:
    """`30 days x 1500 wallets, 150 iterations` (what the demo model was trained on)."""
    return f"{params['days']} days x {params['wallets']} wallets, {params['max_iter']} iterations"


# The demo's rule set (docs/examples/rules.json holds the same, a test keeps them equal): saved as
# `production` when the registry has no rule set, so `make demo` shows rules firing beside the model.
DEMO_RULES: dict[str, Any] = {"rules": [
    {"name": "first_big_payment_new_shop",
     "condition": "type == 'payment' && amount > 100 && is_new_counterparty == 1 && cp_age_days < 1",
     "outcome": "review", "reason": "first payment above 100 to a counterparty younger than a day"},
    {"name": "card_testing_then_big", "condition": "small_tx_count_1h >= 3 && amount > 100",
     "outcome": "block", "reason": "a large payment right after several probe-sized ones"},
    {"name": "own_bank_top_up",
     "condition": "type == 'top_up' && counterparty_id.startsWith('bank-') && amount < 5000",
     "outcome": "allow", "reason": "a top-up from the wallet's own bank account"},
]}


def ensure_rules(registry: str, log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """The production rule set in `registry`, saving the demo's first if there is none."""
    from txguard.contract.errors import RuleSetNotFoundError
    from txguard.contract.models import RuleSetSpec
    from txguard.registry import PRODUCTION, open_registry
    from txguard.registry.rulesets import RuleSetRegistry
    from txguard.rules.engine import RuleSet

    store = RuleSetRegistry(open_registry(registry).store)
    try:
        return {"version": store.resolve(PRODUCTION), "saved": False}
    except RuleSetNotFoundError:
        pass
    spec = RuleSet(RuleSetSpec.model_validate(DEMO_RULES)).spec  # checked as `txguard rules save` would
    meta = store.publish(spec, saved_by="txguard local up", reason="the demo's rule set")
    store.promote(meta.version)
    log(f"rule set {meta.version} ({len(meta.rules)} rules) saved as production")
    return {"version": meta.version, "saved": True, "rules": meta.rules}
