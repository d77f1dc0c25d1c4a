"""In-process single-transaction latency: the ONNX fast path vs plain scikit-learn predict_proba.

`fast` is the serving fast path: vectorize a validated EnrichedTransaction and run
the model (`row_of` + `predict_row`), timed as a request runs it: on the transaction validated just
before from its JSON body (untimed), whose objects are still in the CPU's caches. `fast_cycled` is
the same call cycling through 2,000 transactions validated beforehand (the protocol before): each
call then first fetches about 60 scattered Python objects from memory, about 1 us that a request,
which has just made them, does not pay. `decision` adds outcome, reasons and the Decision object;
`request` adds JSON validation and serialisation (everything the handler does except HTTP).
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


def measure(estimator: Any, artifact: bytes, payloads: list[str], n_fast: int = 20000,
            n_sklearn: int = 2000) -> dict[str, dict[str, float]]:
    import numpy as np

    from txguard.bench.model import _metadata
    from txguard.contract.models import DECISION_ADAPTER, ENRICHED_ADAPTER
    from txguard.scoring.loading import scorer_of
    from txguard.scoring.vectorize import row_of

    scorer = scorer_of(artifact, _metadata().model_copy(update={"version": "bench"}))  # checked and warm
    runtime = scorer.runtime
    raw = [p.encode() for p in payloads]
    txs = [ENRICHED_ADAPTER.validate_json(b) for b in raw]
    rows = [np.asarray(row_of(tx), dtype=np.float64).reshape(1, -1) for tx in txs]

    def fast(tx: Any) -> float:
        return runtime.predict_row(row_of(tx))

    def request(body: bytes) -> bytes:
        return DECISION_ADAPTER.dump_json(scorer.score(ENRICHED_ADAPTER.validate_json(body)))

    return {
        "fast": time_each(fast, raw, n_fast, make=ENRICHED_ADAPTER.validate_json),
        "fast_cycled": time_each(fast, txs, n_fast),
        "inference_only": time_each(runtime.predict_row, [r[0].tolist() for r in rows], n_fast),
        "decision": time_each(scorer.score, txs, n_fast),
        "request": time_each(request, raw, n_fast),
        "sklearn": time_each(lambda r: estimator.predict_proba(r)[0, 1], rows, n_sklearn, warmup=50),
    }


def measure_rules(artifact: bytes, payloads: list[str], n: int = 20000, n_rules: int = 50) -> dict[str, Any]:
    """The fast path alone and followed by `n_rules` rules (txguard.bench.rules), paired call by call."""
    from txguard.bench.model import _metadata
    from txguard.bench.rules import measure_fast_path
    from txguard.contract.models import ENRICHED_ADAPTER
    from txguard.scoring.loading import scorer_of

    scorer = scorer_of(artifact, _metadata().model_copy(update={"version": "bench"}))
    txs = [ENRICHED_ADAPTER.validate_json(p.encode()) for p in payloads]
    return measure_fast_path(scorer.runtime, txs, n, n_rules)
