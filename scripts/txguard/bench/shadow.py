"""`txguard bench shadow`: what shadow scoring and drift windows cost the champion's answer.

Four scoring functions in one run, same model, same payloads, the same load in interleaved rounds
(txguard.bench.runner): shadow off (drift windows on: the default deployment), shadow on at its
default sample rate, shadow on for every transaction (SHADOW_SAMPLE_RATE=1, the worst case), and
neither (DRIFT_WINDOW_S=0: the function before this work). The challenger is the same artifact
published again: the same tree ensemble, so it costs what a real challenger of the same size
would. Reported: p50/p99 and throughput of each, and p99 with shadow on / off (target <= 1.10).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from txguard.bench import load
from txguard.bench.procs import ROOT
from txguard.bench.runner import (
    BenchOptions,
    Log,
    Target,
    _ff_server,
    _interleaved,
    _serving_env,
    draw_latency,
)

CONFIGS = {
    "shadow off": {"SHADOW_ENABLED": "false"},
    "shadow on": {"SHADOW_ENABLED": "true"},
    "shadow on, every transaction": {"SHADOW_ENABLED": "true", "SHADOW_SAMPLE_RATE": "1.0"},
    "no drift, no shadow": {"SHADOW_ENABLED": "false", "DRIFT_WINDOW_S": "0"},
}


def _registry(model: Any, workdir: Path) -> Path:
    from txguard.bench.model import _metadata
    from txguard.registry import STAGING, open_registry

    path = workdir / "shadow-registry"
    reg = open_registry(str(path))
    if set(reg.aliases()) != {"production", STAGING}:
        champion = reg.publish(model.artifact, _metadata())
        reg.promote(champion.version)
        challenger = reg.publish(model.artifact, _metadata())
        reg.promote(challenger.version, STAGING)
    return path


def measure_inproc(registry: Path, payloads: list[str], repeat: int = 3) -> dict[str, float]:
    """CPU per transaction in process (process time, so a busy machine inflates it less than latency):
    `handle` alone, then the observer's work per row with drift only and with drift + shadow,
    queued first and drained in this thread (no thread interplay in the figure)."""
    import contextlib
    import io

    from txguard.contract.settings import ScoringSettings
    from txguard.scoring.http import BytesBody
    from txguard.scoring.service import ScoringService

    bodies = [p.encode() for p in payloads] * repeat
    out: dict[str, float] = {}
    every = {"DRIFT_SAMPLE_RATE": "1", "SHADOW_SAMPLE_RATE": "1"}  # per row: every row looked at
    for label, env in (("request_us", {"DRIFT_WINDOW_S": "0"}), ("drift_us_per_row", every),
                       ("drift_and_shadow_us_per_row", {**every, "SHADOW_ENABLED": "true"})):
        with contextlib.redirect_stdout(io.StringIO()):
            service = ScoringService.load(ScoringSettings(MODEL_URI=f"{registry}@production", MODEL_POLL_S="3600",
                                                          DRIFT_WINDOW_ROWS="1000000", **env))
            service.follower.check()  # the challenger, when shadow is on
            service._background_started = True  # no threads: drained below, in this thread
            t0 = time.process_time()
            for body in bodies:
                service.handle("POST", "/score", {"Content-Type": "application/json"}, BytesBody(body))
            t1 = time.process_time()
            if service.observer is not None:
                service.observer.drain()
            t2 = time.process_time()
        out[label] = round(1e6 * ((t1 - t0) if label == "request_us" else (t2 - t1)) / len(bodies), 1)
    return out


def run_all(opts: BenchOptions, log: Log = print) -> dict[str, Any]:
    from txguard.bench.model import build
    from txguard.contract import names
    from txguard.contract.settings import SCORING_THREADS, SCORING_WORKERS, ScoringSettings

    workdir = (ROOT / opts.workdir) if not os.path.isabs(opts.workdir) else Path(opts.workdir)
    runs = workdir / "runs" / f"shadow-{time.strftime('%Y%m%d-%H%M%S')}"
    runs.mkdir(parents=True, exist_ok=True)
    workers, threads = opts.workers or SCORING_WORKERS, opts.threads or SCORING_THREADS
    load_before = os.getloadavg()[0]
    model = build(workdir, log=log)
    registry = _registry(model, workdir)
    log("in process: CPU per request, and per row of the observer (drift, drift + shadow)")
    inproc = measure_inproc(registry, model.payloads)
    wrk = load.ensure_wrk(log)
    source = ROOT / "functions" / "score" / "main.py"
    targets = [
        Target(label, _ff_server(label.replace(" ", "-").replace(",", ""), source, names.SCORING_ENTRY_POINT,
                                 {"MODEL_URI": f"{registry}@production", **_serving_env(workers, threads), **env},
                                 runs),
               "/score", model.payloads, ("GET", "/health"))
        for label, env in CONFIGS.items()
    ]
    results = _interleaved(targets, opts, wrk, log)
    picture = draw_latency(targets, runs / "latency.png", "txguard bench shadow: latency of the champion's answer", log)
    shadow_lines = sum(1 for line in (runs / "shadow-on.log").read_text().splitlines() if '"shadow_score"' in line)
    if not shadow_lines:
        raise RuntimeError(f"the shadow-on function logged no shadow_score line: see {runs / 'shadow-on.log'}")
    report: dict[str, Any] = {"workers": workers, "threads": threads, "connections": opts.connections,
                              "duration_s": opts.duration, "load_client": "wrk" if wrk else "python",
                              "cpus": os.cpu_count(), "logs": str(runs), "results": results,
                              "shadow_lines": shadow_lines, "inproc": inproc, "latency_png": picture,
                              "shadow_sample_rate": ScoringSettings.model_fields["shadow_sample_rate"].default,
                              # The ratio means something on a quiet machine only: the run says how quiet it was.
                              "load_1m": round(max(load_before, os.getloadavg()[0]), 2)}
    report["summary"] = summary(report)
    return report


def summary(report: dict[str, Any]) -> dict[str, Any]:
    r = report["results"]
    off, on, every, bare = r["shadow off"], r["shadow on"], r["shadow on, every transaction"], r["no drift, no shadow"]
    for res in (off, on, every, bare):
        if "p99_ms" not in res:
            raise RuntimeError(f"a scoring server failed: {res.get('error')}")
    out: dict[str, Any] = {
        "shadow_off_p50_ms": round(off["p50_ms"], 2), "shadow_off_p99_ms": round(off["p99_ms"], 2),
        "shadow_on_p50_ms": round(on["p50_ms"], 2), "shadow_on_p99_ms": round(on["p99_ms"], 2),
        "bare_p50_ms": round(bare["p50_ms"], 2), "bare_p99_ms": round(bare["p99_ms"], 2),
        "shadow_off_rps": round(off["rps"], 1), "shadow_on_rps": round(on["rps"], 1), "bare_rps": round(bare["rps"], 1),
        "shadow_every_p99_ms": round(every["p99_ms"], 2), "shadow_every_rps": round(every["rps"], 1),
        "shadow_sample_rate": report["shadow_sample_rate"],
        "p99_shadow_on_vs_off": round(on["p99_ms"] / off["p99_ms"], 3),
        "p99_shadow_every_vs_off": round(every["p99_ms"] / off["p99_ms"], 3),
        "p99_drift_vs_bare": round(off["p99_ms"] / bare["p99_ms"], 3),
        "rps_shadow_on_vs_off": round(on["rps"] / off["rps"], 3),
        "rps_drift_vs_bare": round(off["rps"] / bare["rps"], 3),
        "errors": off["errors"] + on["errors"] + every["errors"] + bare["errors"],
        "shadow_lines": report["shadow_lines"], "load_client": report["load_client"], **report["inproc"],
        "latency_png": report.get("latency_png"), "load_1m": report["load_1m"], "cpus": report["cpus"],
    }
    out["target_met"] = out["p99_shadow_on_vs_off"] <= 1.10
    return out
