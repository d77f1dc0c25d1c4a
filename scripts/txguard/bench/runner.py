"""Orchestration of `txguard bench score`: stages, servers, the table and the summary line."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from txguard.bench import load
from txguard.bench.procs import ROOT, Server, functions_framework_argv, running

Log = Callable[[str], None]


@dataclass
class BenchOptions:
    duration: float = 10.0
    connections: int = 10
    skip_mlserver: bool = False
    skip_coldstart: bool = False
    sweep: bool = False
    workers: int | None = None
    threads: int | None = None
    coldstart_runs: int = 3
    workdir: str = ".txguard/bench"


def _free_port() -> int:
    from txguard.local.emulators import free_port

    return free_port()


def _ff_server(name: str, source: Path, target: str, env: dict[str, str], workdir: Path) -> Server:
    port = _free_port()
    return Server(name, functions_framework_argv(source, target, port), env, workdir / f"{name}.log", port)


def _serving_env(workers: int, threads: int) -> dict[str, str]:
    # Request logs go to the server's log file, as on Cloud Run; LOG_LEVEL stays INFO (one line per request).
    return {"WORKERS": str(workers), "THREADS": str(threads), "LOG_LEVEL": "INFO"}


@dataclass
class Target:
    """A server under load: how to start it, where to post, what to send."""

    label: str
    server: Server
    path: str
    bodies: list[str]
    ready: tuple[str, str]
    ready_timeout: float = 120.0
    rounds: list[load.LoadResult] | None = None


def _aggregate(label: str, rounds: list[load.LoadResult]) -> dict[str, Any]:
    """Rounds of equal length: mean rate; median of the rounds' p50 and p99; all errors."""
    import statistics

    return {
        "target": label,
        "client": rounds[0].client,
        "rps": statistics.fmean(r.rps for r in rounds),
        "p50_ms": statistics.median(r.p50_ms for r in rounds),
        "p99_ms": statistics.median(r.p99_ms for r in rounds),
        "requests": sum(r.requests for r in rounds),
        "errors": sum(r.errors for r in rounds),
        "rounds": [round(r.rps, 1) for r in rounds],
    }


def _interleaved(targets: list[Target], opts: BenchOptions, wrk: str | None, log: Log) -> dict[str, dict[str, Any]]:
    """Start every server, then load them in turn, round after round.

    The machine may be shared: interleaving rounds exposes every target to the same background
    load, so the ratios between them (the point of the benchmark) hold even when absolute figures
    drift. Idle servers cost nothing while another is loaded.
    """
    rounds = max(1, min(5, round(opts.duration / 2)))
    per_round = max(1.0, opts.duration / rounds)
    results: dict[str, dict[str, Any]] = {}
    with contextlib.ExitStack() as stack:
        live = []
        for t in targets:
            try:
                stack.enter_context(running(t.server))
                t.server.wait(*t.ready, timeout=t.ready_timeout, interval=0.05)
                load.run_load(t.server.port, t.path, t.bodies, min(2.0, per_round), opts.connections, t.label, wrk)
                t.rounds = []
                live.append(t)
            except Exception as exc:  # one failing server must not lose the others' figures
                log(f"{t.label} failed to start: {exc}")
                results[t.label] = {"error": str(exc)[:500]}
        for r in range(rounds):
            for t in live:
                t.rounds.append(load.run_load(t.server.port, t.path, t.bodies, per_round, opts.connections,
                                              t.label, wrk))
            log(f"round {r + 1}/{rounds}: " + ", ".join(f"{t.label} {t.rounds[-1].rps:,.0f}/s" for t in live))
    for t in live:
        results[t.label] = _aggregate(t.label, t.rounds)
        res = results[t.label]
        log(f"{t.label}: {res['rps']:,.0f} req/s, p50 {res['p50_ms']:.2f} ms, p99 {res['p99_ms']:.2f} ms, "
            f"{res['errors']} errors ({res['client']})")
    return results


def _mlserver_target(model: Any, workdir: Path, log: Log) -> Target:
    from txguard.bench import mlserver

    venv = workdir / "mlserver-venv"
    mlserver.ensure_venv(venv, log=log, pip_log=workdir / "mlserver-pip.log")
    repo = mlserver.write_model_repository(model.estimator, workdir / "mlserver-models")
    http_port, grpc_port, metrics_port = _free_port(), _free_port(), _free_port()
    server = Server("mlserver", mlserver.server_argv(venv, repo),
                    mlserver.server_env(http_port, grpc_port, metrics_port), workdir / "mlserver.log", http_port)
    bodies = [mlserver.infer_body(r) for r in model.rows[: len(model.payloads)].tolist()]
    return Target("mlserver", server, mlserver.infer_path(), bodies,
                  ("GET", f"/v2/models/{mlserver.MODEL_NAME}/ready"), ready_timeout=180.0)


def run_all(opts: BenchOptions, log: Log = print) -> dict[str, Any]:
    from txguard.bench import coldstart, inproc
    from txguard.bench.model import build
    from txguard.contract import names
    from txguard.contract.settings import SCORING_THREADS, SCORING_WORKERS

    workdir = (ROOT / opts.workdir) if not os.path.isabs(opts.workdir) else Path(opts.workdir)
    runs = workdir / "runs" / time.strftime("%Y%m%d-%H%M%S")
    runs.mkdir(parents=True, exist_ok=True)
    workers = opts.workers or SCORING_WORKERS
    threads = opts.threads or SCORING_THREADS
    report: dict[str, Any] = {"workers": workers, "threads": threads, "connections": opts.connections,
                              "duration_s": opts.duration, "cpus": os.cpu_count(), "logs": str(runs)}

    model = build(workdir, log=log)
    log("in-process latency (fast path vs scikit-learn predict_proba)")
    report["inproc"] = inproc.measure(model.estimator, model.artifact, model.payloads)

    wrk = load.ensure_wrk(log)
    if wrk is None:
        log("wrk unavailable (not root or no apt-get): using the Python load client, figures are lower bounds")
    report["load_client"] = "wrk" if wrk else "python"

    score_src = ROOT / "functions" / "score" / "main.py"
    score_env = {"MODEL_URI": f"{model.registry}@production"}
    configs = [(workers, threads)]
    if opts.sweep:
        default_threads = 4 * (os.cpu_count() or 1)  # functions-framework's default
        configs += [c for c in ((1, 1), (1, default_threads), (2, 1), (2, default_threads)) if c not in configs]
    targets = [
        Target(f"score w{w} t{t}", _ff_server(f"score-w{w}-t{t}", score_src, names.SCORING_ENTRY_POINT,
                                              {**score_env, **_serving_env(w, t)}, runs),
               "/score", model.payloads, ("GET", "/health"))
        for w, t in configs
    ]
    targets.append(Target("hello", _ff_server("hello", Path(__file__).resolve().parent / "hello" / "main.py", "hello",
                                              _serving_env(workers, threads), runs),
                          "/score", model.payloads, ("POST", "/score")))
    if not opts.skip_mlserver:
        try:
            targets.append(_mlserver_target(model, workdir, log))
        except Exception as exc:  # report, do not lose the other figures
            log(f"MLServer unavailable: {exc}")
            report["mlserver"] = {"error": str(exc)[:500]}
    results = _interleaved(targets, opts, wrk, log)
    report["latency_png"] = draw_latency(targets, runs / "latency.png", "txguard bench score: HTTP latency", log)
    report["http"] = {t.label: results[t.label] for t in targets if t.label.startswith("score")}
    report["hello"] = results["hello"]
    if "mlserver" in results:
        report["mlserver"] = results["mlserver"]
    main = report["http"][f"score w{workers} t{threads}"]
    if not opts.skip_coldstart:
        log("cold start from the Cloud Storage emulator")
        report["coldstart"] = coldstart.measure(model.artifact, model.payloads[0], runs,
                                                _serving_env(workers, threads), opts.coldstart_runs, log)
    report["summary"] = summary(report, main)
    return report


def draw_latency(targets: list[Target], path: Path, title: str, log: Log) -> str | None:
    """The loaded targets' latency histograms in one PNG (None when matplotlib or data is missing)."""
    series = {t.label: [r.percentiles for r in t.rounds] for t in targets if t.rounds and t.rounds[0].percentiles}
    if not series:
        return None
    try:
        from txguard.bench.pictures import percentile_histogram

        drawn = str(percentile_histogram(series, title, path))
    except ImportError as exc:  # matplotlib is in the `train` extra
        log(f"latency histogram skipped: {exc}")
        return None
    log(f"latency histogram: {drawn}")
    return drawn


def summary(report: dict[str, Any], main: dict[str, Any]) -> dict[str, Any]:
    inp, hello, mls = report["inproc"], report["hello"], report.get("mlserver") or {}
    if "rps" not in main or "rps" not in hello:
        raise RuntimeError(f"the scoring or hello server failed: {main.get('error') or hello.get('error')}")
    out: dict[str, Any] = {
        "fast_us_p50": round(inp["fast"]["p50_us"], 1),
        "fast_us_p99": round(inp["fast"]["p99_us"], 1),
        "sklearn_us_p50": round(inp["sklearn"]["p50_us"], 1),
        "http_rps": round(main["rps"], 1),
        "http_p50_ms": round(main["p50_ms"], 2),
        "http_p99_ms": round(main["p99_ms"], 2),
        "http_errors": main["errors"],
        "hello_rps": round(hello["rps"], 1),
        "mlserver_rps": round(mls["rps"], 1) if "rps" in mls else None,
        "mlserver_p99_ms": round(mls["p99_ms"], 2) if "p99_ms" in mls else None,
        "coldstart_s": (report.get("coldstart") or {}).get("median_s"),
        "workers": report["workers"],
        "threads": report["threads"],
        "load_client": report["load_client"],
    }
    out["vs_hello"] = round(main["rps"] / hello["rps"], 2) if hello["rps"] else None
    out["vs_mlserver"] = round(main["rps"] / mls["rps"], 2) if mls.get("rps") else None
    return out


def render_table(report: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title=f"txguard bench score ({report['connections']} connections, {report['duration_s']:.0f} s, "
                        f"{report['load_client']}, {report['cpus']} CPUs)")
    for col in ("measurement", "throughput", "p50", "p99", "errors"):
        table.add_column(col, justify="left" if col == "measurement" else "right")
    for name, stats in report["inproc"].items():
        table.add_row(f"in-process {name}", "", f"{stats['p50_us']:.1f} us", f"{stats['p99_us']:.1f} us", "")
    rows = [*report["http"].items(), ("hello (constant JSON)", report["hello"])]
    if "mlserver" in report:
        rows.append(("MLServer 1.7.1 sklearn", report["mlserver"]))
    for name, r in rows:
        if "rps" not in r:
            table.add_row(name, "failed", "", "", str(r.get("error", ""))[:40])
            continue
        table.add_row(f"HTTP {name}", f"{r['rps']:,.0f} req/s", f"{r['p50_ms']:.2f} ms", f"{r['p99_ms']:.2f} ms",
                      str(r["errors"]))
    cold = report.get("coldstart") or {}
    if "median_s" in cold:
        table.add_row("cold start (GCS emulator)", "", f"{cold['median_s']:.3f} s", f"min {cold['min_s']:.3f} s", "")
    return table
