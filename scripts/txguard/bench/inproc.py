"""In-process single-transaction latency: the ONNX fast path vs plain scikit-learn predict_proba.

`fast` is the serving fast path, what `Scorer.score` runs for a request: vectorize a validated
EnrichedTransaction and run the model (`ModelRuntime.predict_transaction`), timed as a request runs
it: on the transaction validated just before from its JSON body (untimed), whose objects are still
in the CPU's caches. `fast_cycled` is the same call cycling through 2,000 transactions validated
beforehand (the protocol before): each call then first fetches about 60 scattered Python objects
from memory, about 1 us that a request, which has just made them, does not pay. The pieces: `row`
(`row_of` alone), `write` (the row packed into the bound float32 input), `inference_only`
(onnxruntime's run alone on the row written just before, untimed) and `inference_only_classifier`
(the same trees in the classifier form skl2onnx writes, which versions published before the margin
graph serve). `decision` adds outcome, reasons and the Decision object; `request` adds JSON validation and serialisation (everything the handler does except HTTP).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from typing import Any


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    s = sorted(samples_ns)
    return {"p50_us": s[len(s) // 2] / 1e3, "p99_us": s[min(len(s) - 1, int(len(s) * 0.99))] / 1e3,
            "n": float(len(s))}


def time_each(fn: Callable[[Any], Any], items: Sequence[Any], n: int, warmup: int = 200,
              make: Callable[[Any], Any] | None = None) -> dict[str, float]:
    """`fn` timed on each item in turn; with `make`, on what `make` has just built from the item (the
    build untimed), as a request has its transaction: validated from its body just before."""
    build = make or (lambda item: item)
    for i in range(min(warmup, n)):
        fn(build(items[i % len(items)]))
    samples = []
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for i in range(n):
            item = build(items[i % len(items)])
            t0 = clock()
            fn(item)
            samples.append(clock() - t0)
    finally:
        gc.enable()
    return percentiles(samples)


def paired(first: Callable[[Any], Any], second: Callable[[Any], Any], items: Sequence[Any], n: int,
           warmup: int = 500, make: Callable[[Any], Any] | None = None) -> tuple[dict[str, float], dict[str, float]]:
    """Both functions on the same items, alternating call by call (which goes first alternates too: the
    second call finds the first one's caches warm); with `make`, each call on its own item built just
    before (untimed), as `time_each` does. Returns (first, second) percentiles."""
    build = make or (lambda item: item)
    for i in range(min(warmup, n)):
        first(build(items[i % len(items)]))
        second(build(items[i % len(items)]))
    a: list[int] = []
    b: list[int] = []
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for i in range(n):
            item = items[i % len(items)]
            calls = ((first, build(item), a), (second, build(item), b))
            for fn, arg, samples in calls if i % 2 == 0 else reversed(calls):  # each goes first half the time
                t0 = clock()
                fn(arg)
                samples.append(clock() - t0)
    finally:
        gc.enable()
    return percentiles(a), percentiles(b)


def measure(estimator: Any, artifact: bytes, payloads: list[str], n_fast: int = 20000,
            n_sklearn: int = 2000, classifier: bytes | None = None) -> dict[str, dict[str, float]]:
    """`classifier`: the same model in skl2onnx's classifier form, for `inference_only_classifier`."""
    import numpy as np

    from txguard.bench.model import _metadata
    from txguard.contract.models import DECISION_ADAPTER, ENRICHED_ADAPTER
    from txguard.scoring.loading import scorer_of
    from txguard.scoring.vectorize import row_of

    scorer = scorer_of(artifact, _metadata().model_copy(update={"version": "bench"}))  # checked and warm
    runtime = scorer.runtime
    raw = [p.encode() for p in payloads]
    validate = ENRICHED_ADAPTER.validate_json
    txs = [validate(b) for b in raw]
    rows = [row_of(tx) for tx in txs]
    matrices = [np.asarray(row, dtype=np.float64).reshape(1, -1) for row in rows]

    def fast(tx: Any) -> float:
        return runtime.predict_transaction(tx)[0]

    def request(body: bytes) -> bytes:
        return DECISION_ADAPTER.dump_json(scorer.score(validate(body)))

    out = {
        "fast": time_each(fast, raw, n_fast, make=validate),
        "fast_cycled": time_each(fast, txs, n_fast),
        "row": time_each(row_of, raw, n_fast, make=validate),
        "write": time_each(runtime.bound_steps()[0], rows, n_fast),
        "inference_only": run_alone(runtime, rows, n_fast),
    }
    if classifier is not None:
        form = scorer_of(classifier, _metadata().model_copy(update={"version": "bench-classifier"})).runtime
        out["inference_only_classifier"] = run_alone(form, rows, n_fast)
    return {
        **out,
        "decision": time_each(scorer.score, txs, n_fast),
        "request": time_each(request, raw, n_fast),
        "sklearn": time_each(lambda r: estimator.predict_proba(r)[0, 1], matrices, n_sklearn, warmup=50),
    }


def run_alone(runtime: Any, rows: Sequence[Sequence[float]], n: int) -> dict[str, float]:
    """onnxruntime's run on each row in turn, the row written into the bound input just before (untimed)."""
    write, run, _read = runtime.bound_steps()
    return time_each(lambda _written: run(), rows, n, make=write)


def measure_rules(artifact: bytes, payloads: list[str], n: int = 20000, n_rules: int = 50) -> dict[str, Any]:
    """The fast path alone and followed by `n_rules` rules (txguard.bench.rules), paired call by call."""
    from txguard.bench.model import _metadata
    from txguard.bench.rules import measure_fast_path
    from txguard.contract.models import ENRICHED_ADAPTER
    from txguard.scoring.loading import scorer_of

    scorer = scorer_of(artifact, _metadata().model_copy(update={"version": "bench"}))
    txs = [ENRICHED_ADAPTER.validate_json(p.encode()) for p in payloads]
    return measure_fast_path(scorer.runtime, txs, n, n_rules)
