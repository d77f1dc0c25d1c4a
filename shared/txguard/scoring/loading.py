"""From a registry reference to a `Scorer` that passed every check, or a clear refusal.

The one way to get a scorer: the cold start and every later alias change of the scoring function
(txguard.scoring.service, txguard.scoring.follower) go through `load_scorer`, and `txguard
score-file`, `txguard batch run` and the benchmarks through `open_scorer(uri)`, so no job scores with
a model that serving would have refused. Every path runs the same checks:

1. the registry resolves the reference and checks the artifact's SHA-256 (`ChecksumMismatchError`);
2. `ModelRuntime` refuses another feature list or ONNX signature (`IncompatibleModelError`);
3. the parity smoke test: the rows recorded at training (`metadata.parity_probe`) must score here,
   through the single-row fast path and the matrix path, within the recorded tolerance and on the
   same side of both thresholds (`ParityCheckError`). A version published without a probe gets a
   sanity check only (finite scores in [0, 1], both paths equal).

`is_transient` tells a failure worth retrying (the registry could not be reached) from a
version that is bad and stays bad (refused until the alias moves).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from txguard.contract.errors import ParityCheckError, RegistryUnavailableError
from txguard.registry import LATEST, Registry, open_registry, parse_model_uri
from txguard.registry.core import version_number
from txguard.registry.metadata import ModelMetadata
from txguard.registry.rulesets import RuleSetRegistry
from txguard.registry.store import Generation
from txguard.rules.engine import RuleSet
from txguard.scoring.runtime import N_FEATURES, ModelRuntime
from txguard.scoring.scorer import Scorer

SANITY_ROWS = 8


@dataclass(frozen=True)
class Target:
    """What a reference points at now: the version, and the alias generation it was read at."""

    version: str
    generation: Generation | None  # None for a fixed version (vN) or `latest`


def serving_registry(location: str) -> Registry:
    """The registry as the scoring function reads it: gs:// through urllib (no google-cloud-storage)."""
    if location.startswith("gs://"):
        from txguard.registry.gcs import GcsReader

        return Registry(GcsReader(location))
    return open_registry(location)


def split_uri(uri: str) -> tuple[Registry, str]:
    location, ref = parse_model_uri(uri)
    return serving_registry(location), ref


def is_alias(ref: str) -> bool:
    return ref != LATEST and version_number(ref) is None


def resolve(registry: Registry, ref: str) -> Target:
    """Where `ref` points now; an alias also returns its generation (the follower polls against it)."""
    if is_alias(ref):
        found = registry.read_alias(ref)
        if found is None:
            registry.resolve(ref)  # raises ModelNotFoundError naming the known aliases
        record, generation = found  # type: ignore[misc]
        return Target(record.version, generation)
    if version_number(ref):
        return Target(ref, None)  # loading reads its metadata (and says when it does not exist)
    return Target(registry.resolve(ref), None)


def rule_sets(registry: Registry) -> RuleSetRegistry:
    """The rule sets of a model registry (same store, `rulesets/` beside the model versions)."""
    return RuleSetRegistry(registry.store)


def load_rules(registry: Registry, ref: str) -> RuleSet:
    """Rule set `ref` (alias or rN): checksum checked, every rule checked and compiled again
    (RuleCheckError if this code refuses what an older one saved)."""
    loaded = rule_sets(registry).load(ref)
    return RuleSet(loaded.spec, loaded.metadata.version)


def open_rules(uri: str) -> RuleSet | None:
    """`models/registry@production` -> the rule set that alias names, None when there is none (tools:
    `score-file`, `batch run`, the benches, so they decide as serving does)."""
    from txguard.contract.errors import RuleSetNotFoundError

    registry, ref = split_uri(uri)
    try:
        return load_rules(registry, ref)
    except RuleSetNotFoundError:
        return None


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, (RegistryUnavailableError, OSError, TimeoutError))


def open_scorer(uri: str, threads: int = 1) -> Scorer:
    """`gs://bucket/prefix@production`, `models/registry@v3`: resolve, load, verify and smoke-test."""
    registry, ref = split_uri(uri)
    return load_scorer(registry, resolve(registry, ref).version, threads)


def load_scorer(registry: Registry, version: str, threads: int = 1) -> Scorer:
    """Load, verify and smoke-test `version`; raises the reason it cannot serve."""
    loaded = registry.load(version)  # SHA-256 checked here
    return scorer_of(loaded.artifact, loaded.metadata, threads)


def scorer_of(artifact: bytes, metadata: ModelMetadata, threads: int = 1) -> Scorer:
    """A scorer of model bytes already at hand (a benchmark's), through the same checks."""
    runtime = ModelRuntime(artifact, metadata, threads=threads)  # features, ONNX signature
    smoke_test(runtime)  # also the warm-up: it runs the single-row and the matrix path
    return Scorer(runtime)


def smoke_test(runtime: ModelRuntime) -> float:
    """The parity smoke test (see the module docstring); returns the largest difference seen."""
    meta, version = runtime.metadata, runtime.version
    probe = meta.parity_probe
    if probe is not None:
        rows = np.asarray(probe.rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != N_FEATURES:
            raise ParityCheckError(f"model {version}: parity probe rows have shape {rows.shape}, "
                                   f"the model takes {N_FEATURES} features")
        expected, tolerance = np.asarray(probe.scores, dtype=np.float64), probe.tolerance
    else:
        # Fixed rows in 0..10 (numpy.random would add ~25 ms of imports to the cold start).
        rows = (np.arange(SANITY_ROWS * N_FEATURES, dtype=np.float64).reshape(SANITY_ROWS, N_FEATURES) * 7919 % 1000) / 100
        expected, tolerance = None, 1e-6
    single = np.array([runtime.predict_row(r) for r in rows.tolist()])
    matrix = runtime.predict(rows)
    if not all(math.isfinite(s) and 0.0 <= s <= 1.0 for s in single.tolist()):
        raise ParityCheckError(f"model {version}: scores outside [0, 1] or not finite on probe rows")
    worst = float(np.max(np.abs(single - matrix)))
    if worst > tolerance:
        raise ParityCheckError(f"model {version}: single-row and matrix scores differ by {worst:.2e}")
    if expected is None:
        return worst
    worst = max(worst, float(np.max(np.abs(single - expected))))
    t = meta.thresholds
    flips = sum(int(np.sum((single >= th) != (expected >= th))) for th in (t.review, t.block))
    if worst > tolerance or flips:
        raise ParityCheckError(
            f"model {version}: scores here differ from the ones recorded at training by up to {worst:.2e} "
            f"(tolerance {tolerance:.0e}), {flips} decision flips on {len(rows)} probe rows: refusing it"
        )
    return worst
