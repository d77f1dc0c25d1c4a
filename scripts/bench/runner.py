"""Orchestration of `txguard bench score`: stages, servers, the table and the summary line."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.bench import load
from scripts.bench.procs import ROOT, Server, functions_framework_argv, running

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
    from scripts.emulators import free_port  # noqa: PLC0415

    return free_port()


def _ff_server(name: str, source: Path, target: str, env: dict[str, str], workdir: Path) -> Server:
    port = _free_port()
    return Server(name, functions_framework_argv(source, target, port), env, workdir / f"{name}.log", port)


def _serving_env(workers: int, threads: int) -> dict[str, str]:
    # Request logs go to the server's log file, as on Cloud Run; LOG_LEVEL stays INFO (one line per request).
    return {"WORKERS": str(workers), "THREADS": str(threads), "LOG_LEVEL": "INFO"}


def _load_function(label: str, source: Path, target: str, env: dict[str, str], path: str, ready: tuple[str, str],
                   bodies: list[str], opts: BenchOptions, wrk: str | None, workdir: Path, log: Log) -> dict[str, Any]:
    server = _ff_server(label, source, target, env, workdir)
    with running(server):
        server.wait(*ready, timeout=120.0)
        load.run_load(server.port, path, bodies, min(2.0, opts.duration), opts.connections, label, wrk)  # warm-up
        result = load.run_load(server.port, path, bodies, opts.duration, opts.connections, label, wrk)
    log(f"{label}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
        f"{result.errors} errors ({result.client})")
    return result.as_dict()


def _mlserver(model: Any, bodies: list[str], opts: BenchOptions, wrk: str | None, workdir: Path,
              log: Log) -> dict[str, Any]:
    from scripts.bench import mlserver  # noqa: PLC0415

    venv = workdir / "mlserver-venv"
    mlserver.ensure_venv(venv, log=log, pip_log=workdir / "mlserver-pip.log")
    repo = mlserver.write_model_repository(model.estimator, workdir / "mlserver-models")
    http_port, grpc_port, metrics_port = _free_port(), _free_port(), _free_port()
    server = Server("mlserver", mlserver.server_argv(venv, repo), mlserver.server_env(http_port, grpc_port,
                    metrics_port), workdir / "mlserver.log", http_port)
    with running(server):
        server.wait("GET", f"/v2/models/{mlserver.MODEL_NAME}/ready", timeout=180.0, interval=0.2)
        path = mlserver.infer_path()
        load.run_load(http_port, path, bodies, min(2.0, opts.duration), opts.connections, "mlserver", wrk)
        result = load.run_load(http_port, path, bodies, opts.duration, opts.connections, "mlserver", wrk)
    log(f"mlserver: {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
        f"{result.errors} errors ({result.client})")
    return result.as_dict()


def run_all(opts: BenchOptions, log: Log = print) -> dict[str, Any]:
    from scripts.bench import coldstart, inproc, mlserver  # noqa: PLC0415
    from scripts.bench.model import build  # noqa: PLC0415
    from shared import names  # noqa: PLC0415
    from shared.settings import SCORING_THREADS, SCORING_WORKERS  # noqa: PLC0415

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
    ready = ("GET", "/health")
    configs = [(workers, threads)]
    if opts.sweep:
        default_threads = 4 * (os.cpu_count() or 1)  # functions-framework's default
        for cfg in ((1, 1), (1, default_threads), (2, 1), (2, default_threads)):
            if cfg not in configs:
                configs.append(cfg)
    report["http"] = {}
    for w, t in configs:
        label = f"score w{w} t{t}"
        report["http"][label] = _load_function(label, score_src, names.SCORING_ENTRY_POINT,
                                               {**score_env, **_serving_env(w, t)}, "/score", ready,
                                               model.payloads, opts, wrk, runs, log)
    main = report["http"][f"score w{workers} t{threads}"]
    report["hello"] = _load_function("hello", ROOT / "scripts" / "bench" / "hello" / "main.py", "hello",
                                     _serving_env(workers, threads), "/score", ("POST", "/score"),
                                     model.payloads, opts, wrk, runs, log)
    if not opts.skip_mlserver:
        rows = [mlserver.infer_body(r) for r in model.rows[: len(model.payloads)].tolist()]
        try:
            report["mlserver"] = _mlserver(model, rows, opts, wrk, workdir, log)
        except Exception as exc:  # report, do not lose the other figures
            log(f"MLServer stage failed: {exc}")
            report["mlserver"] = {"error": str(exc)}
    if not opts.skip_coldstart:
        log("cold start from the Cloud Storage emulator")
        report["coldstart"] = coldstart.measure(model.artifact, model.payloads[0], runs,
                                                _serving_env(workers, threads), opts.coldstart_runs, log)
    report["summary"] = summary(report, main)
    return report


def summary(report: dict[str, Any], main: dict[str, Any]) -> dict[str, Any]:
    inp, hello, mls = report["inproc"], report["hello"], report.get("mlserver") or {}
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
    from rich.table import Table  # noqa: PLC0415

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
