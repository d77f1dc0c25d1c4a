"""`txguard bench e2e`: sustained publishing through the local pipeline, and its ceiling.

One stack (emulators or embedded) serves every stage (txguard.local.stage): a stage publishes at
a fixed rate for a bounded duration while the backlog (sent, no outcome yet) is sampled; it is
*sustained* when the backlog stops growing and everything drains afterwards. Rates grow
geometrically from `--rate` until a stage is not sustained, then one bisection step refines the
ceiling. Per-stage timings (store, scoring, publish) come from the enrichment function's JSON
logs, read for the transactions of the stage; each stage's CPU split (emulators, functions, the
bench process with the bridge, the rest of the machine) from /proc (txguard.bench.cpu_split); each
stage's Firestore, Bigtable and Pub/Sub calls per decided message from the enrichment function's own
count of its gRPC calls (txguard.bench.rpc_count).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from txguard.bench import cpu_split, rpc_count
from txguard.local.ledger import percentile
from txguard.local.stage import Stage, run_stage


def enrich_timings(log_path: Path, prefix: str) -> dict[str, dict[str, float | None]]:
    """p50/p95 of each timing the enrichment function logged for the stage's transactions."""
    values: dict[str, list[float]] = {}
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    for line in lines:
        if f'"{prefix}-' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("status") != "decided" or not isinstance(entry.get("timings"), dict):
            continue
        for key, value in entry["timings"].items():
            if isinstance(value, int | float):
                values.setdefault(key, []).append(float(value))
    return {k: {"p50": _r(percentile(v, 50)), "p95": _r(percentile(v, 95))} for k, v in sorted(values.items())}


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def measured_stage(stack: Any, rate: float, duration_s: float, prefix: str, drain_timeout_s: float,
                   rpc_dir: Path | None, seed: int = 1) -> Stage:
    """One stage with its CPU split and, when the enrichment function counts its gRPC calls under
    `rpc_dir`, its calls per decided message (read after the drain: the counts are written every 0.5 s)."""
    before, calls = cpu_split.snapshot(stack), rpc_count.read(rpc_dir) if rpc_dir else None
    stage = run_stage(stack, rate, duration_s, prefix, drain_timeout_s, seed=seed)
    decided = stage.summary.get("decided")
    stage.cpu = cpu_split.split(before, cpu_split.snapshot(stack), decided)
    if rpc_dir is not None and calls is not None:
        time.sleep(1.0)  # the last deliveries' counts written
        stage.ops = rpc_count.per_message(calls, rpc_count.read(rpc_dir), decided)
    return stage


def search(stack: Any, rate: float, duration_s: float, max_rate: float, step: float, drain_timeout_s: float,
           log: Any, min_rate: float = 2.0, rpc_dir: Path | None = None) -> list[Stage]:
    """Stages from `rate`: up by `step` while sustained (to max_rate), or down until one is; then bisect once."""
    stages: list[Stage] = []

    def run(r: float) -> Stage:
        stage = measured_stage(stack, r, duration_s, f"b{len(stages)}", drain_timeout_s, rpc_dir, seed=len(stages) + 1)
        stages.append(stage)
        log(stage)
        return stage

    current = rate
    first = run(current)
    going_up = first.sustained
    while True:
        nxt = round(current * step, 1) if going_up else round(current / step, 1)
        if (going_up and current >= max_rate) or (not going_up and nxt < min_rate):
            break
        current = min(max_rate, nxt)
        if run(current).sustained != going_up:
            break
    lo = max_sustained(stages)
    above = [s.rate for s in stages if not s.sustained and lo is not None and s.rate > lo]
    if lo is not None and above and min(above) - lo >= 0.1 * lo:
        run(round((lo + min(above)) / 2, 1))
    return stages


def draw_latency(stages: list[Stage], path: Path, mode: str) -> str:
    """End-to-end latency histogram of each stage (publish -> decision on `decisions`), one PNG."""
    from txguard.bench.pictures import samples_histogram

    series = {f"{s.rate:g} tx/s": list(s.ledger.latencies().values()) for s in stages if s.ledger is not None}
    return str(samples_histogram(series, f"txguard bench e2e ({mode}): publish -> decision latency", path))


def max_sustained(stages: list[Stage]) -> float | None:
    """The highest sustained rate below every unsustained one (a lucky stage above a failure does not count)."""
    bad = [s.rate for s in stages if not s.sustained]
    good = [s.rate for s in stages if s.sustained and (not bad or s.rate < min(bad))]
    return max(good) if good else None
