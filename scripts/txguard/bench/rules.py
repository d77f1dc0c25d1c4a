"""What rules cost on the fast path, and the rule-language candidates measured side by side.

`bench_rules(rows, n)` makes a realistic rule set of `n` rules over the bench's payloads: two or
three conditions each, on features, text fields and the score, thresholds at high quantiles of the
rows so that a few fire (an analyst's rules select the rare, not the usual). `measure_fast_path`
times the fast path without and with the rules on the same transactions, alternating call by call
(`txguard.bench.inproc.paired`), so both see the same machine; the rules' cost is the difference of
the medians.

`candidates(...)` compares the ways to evaluate the same 50 rules on the same rows: our compiler
(txguard.rules.compiler) and the Common Expression Language runtimes on PyPI, which run in a venv
the bench creates once (.txguard/bench/cel-venv, pinned, as the MLServer peer does): cel-python
(pure Python), common-expression-language (Rust, PyO3) and cel-expr-python (Google's C++ runtime).
Each gets the rules as one program per rule and, where it has lists, as one program returning the
list of the rules' results; every runtime's results are compared with ours on every row.
"""

from __future__ import annotations

import gc
import json
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from txguard.bench.inproc import paired, percentiles
from txguard.contract.models import RuleSetSpec
from txguard.features.wallet import FEATURE_NAMES
from txguard.rules.engine import RuleSet

CEL_PINS = ("cel-python==0.5.0", "common-expression-language==0.10.0", "cel-expr-python==0.1.3")
_TEXT_ATOMS = ("type == 'transfer'", "type == 'payment'", "channel in ['web', 'api']", "country in ['NG', 'RU', 'BR']",
               "currency != 'EUR'", "device_id == ''")


def bench_rules(rows: np.ndarray, n: int = 50, seed: int = 5) -> RuleSetSpec:
    """`n` rules of 2-3 conditions: numbers above their 90-99.5th percentile, text fields, the score."""
    rng = random.Random(seed)
    varied = [j for j in range(rows.shape[1]) if np.unique(rows[:, j]).size > 3]
    rules = []
    for i in range(n):
        atoms = []
        for j in rng.sample(varied, rng.choice((1, 2, 2))):
            q = float(np.quantile(rows[:, j], rng.choice((0.9, 0.95, 0.99, 0.995))))
            top = float(rows[:, j].max())
            if q >= top:  # a flag or a capped value: above its quantile is nothing
                q = float(np.quantile(rows[:, j], 0.5))
            # written as doubles (1.0, not 1): strict CEL runtimes refuse to compare a double with an int
            atoms.append(f"{FEATURE_NAMES[j]} > {round(q, 4)!r}" if q < top else f"{FEATURE_NAMES[j]} >= {round(top, 4)!r}")
        extra = rng.random()
        if extra < 0.4:
            atoms.append(rng.choice(_TEXT_ATOMS))
        elif extra < 0.6:
            atoms.append(f"score > {rng.choice((0.01, 0.05, 0.2))}")
        rules.append({"name": f"rule_{i:02d}", "condition": " && ".join(atoms),
                      "outcome": rng.choice(("review", "review", "block")), "reason": f"bench rule {i}"})
    return RuleSetSpec(rules=rules)


def measure_fast_path(runtime: Any, txs: Sequence[Any], n: int = 20000, n_rules: int = 50) -> dict[str, Any]:
    """The fast path (`predict_transaction`, as `Scorer.score` runs it) alone and followed by `n_rules`
    rules on its row and score, paired."""
    from txguard.scoring.vectorize import row_of

    rows = np.array([row_of(tx) for tx in txs])
    rules = RuleSet(bench_rules(rows, n_rules), version="bench")
    evaluate = rules.evaluate
    scores = [runtime.predict_row(r) for r in rows.tolist()]
    predict = runtime.predict_transaction

    def fast(tx: Any) -> float:
        return predict(tx)[0]

    def fast_rules(tx: Any) -> list[int]:
        p, row = predict(tx)
        return evaluate(row, p, tx)

    without, with_ = paired(fast, fast_rules, txs, n)
    ready = list(zip(rows.tolist(), scores, txs, strict=True))
    alone = percentiles(_times(lambda item: evaluate(*item), ready, n))
    fired = sum(1 for row, s, tx in ready if evaluate(row, s, tx))
    return {"rules": n_rules, "fast": without, "fast_rules": with_, "rules_only": alone,
            "added_us_p50": round(with_["p50_us"] - without["p50_us"], 2),
            "share_of_rows_with_a_hit": round(fired / len(ready), 4)}


def _times(fn: Callable[[Any], Any], items: Sequence[Any], n: int) -> list[int]:
    out = []
    clock = time.perf_counter_ns
    for i in range(min(500, n)):
        fn(items[i % len(items)])
    gc.disable()
    try:
        for i in range(n):
            item = items[i % len(items)]
            t0 = clock()
            fn(item)
            out.append(clock() - t0)
    finally:
        gc.enable()
    return out


# The CEL runtimes, in their own venv ----------------------------------------------------------------
def ensure_cel_venv(venv: Path, log: Callable[[str], None] = print) -> Path:
    stamp = venv / ".txguard-ready"
    py = venv / "bin" / "python"
    if stamp.exists() and stamp.read_text() == "\n".join(CEL_PINS):
        return py
    log(f"creating the CEL runtimes' venv in {venv} (one-off)")
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / "cel-pip.log", "ab") as out:
        for argv in ([sys.executable, "-m", "venv", "--clear", str(venv)],
                     [str(py), "-m", "pip", "install", "-q", *CEL_PINS]):
            subprocess.run(argv, check=True, stdout=out, stderr=subprocess.STDOUT, timeout=1800)
    stamp.write_text("\n".join(CEL_PINS))
    return py


def candidates(rows: np.ndarray, scores: Sequence[float], texts: Sequence[dict[str, str]], workdir: Path,
               n_rules: int = 50, n: int = 300, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every candidate on the same `n` rows and `n_rules` rules: us per row (p50) and agreement with ours."""
    spec = bench_rules(rows, n_rules)
    rules = RuleSet(spec, version="bench")
    rows, scores, texts = rows[:n], list(scores[:n]), list(texts[:n])

    class Tx:
        def __init__(self, d: dict[str, str]) -> None:
            self.__dict__.update(d)

    objs = [Tx(t) for t in texts]
    ours = [rules.evaluate(r, s, tx) for r, s, tx in zip(rows.tolist(), scores, objs, strict=True)]
    ours_times = percentiles(_times(lambda i: rules.evaluate(rows[i].tolist(), scores[i], objs[i]), range(n), 20 * n))
    out: dict[str, Any] = {"rules": n_rules, "rows": n,
                           "txguard_compiler": {"us_per_row_p50": round(ours_times["p50_us"], 2), "agree": True}}
    payload = {"rules": [r.condition for r in spec.rules],
               "rows": [{**{name: float(v) for name, v in zip(FEATURE_NAMES, row, strict=True)}, "score": float(s),
                         **t} for row, s, t in zip(rows.tolist(), scores, texts, strict=True)]}
    py = ensure_cel_venv(workdir / "cel-venv", log)
    data = workdir / "cel-input.json"
    data.write_text(json.dumps(payload))
    result = subprocess.run([str(py), str(Path(__file__).with_name("cel_peers.py")), str(data)],
                            capture_output=True, text=True, timeout=1800, check=False)
    if result.returncode != 0:
        out["error"] = result.stderr[-500:]
        return out
    peers = json.loads(result.stdout.strip().splitlines()[-1])
    expected = [[i in set(hits) for i in range(n_rules)] for hits in ours]
    for name, peer in peers.items():
        if "results" in peer:
            results = peer.pop("results")
            peer["agree"] = results == expected[:len(results)]
        out[name] = peer
    base = ours_times["p50_us"]
    for peer in out.values():
        if isinstance(peer, dict) and peer.get("us_per_row_p50"):
            peer["vs_txguard"] = round(peer["us_per_row_p50"] / base, 1)
    return out
