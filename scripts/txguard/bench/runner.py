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

    requests = sum(r.requests for r in rounds)
    cpu = [r.cpu_s for r in rounds if r.cpu_s is not None]
    return {
        "target": label,
        "client": rounds[0].client,
        "rps": statistics.fmean(r.rps for r in rounds),
        "p50_ms": statistics.median(r.p50_ms for r in rounds),
        "p99_ms": statistics.median(r.p99_ms for r in rounds),
        "requests": requests,
        "errors": sum(r.errors for r in rounds),
        "rounds": [round(r.rps, 1) for r in rounds],
        # Server CPU (all its processes) per request: the efficiency figure that background load
        # on a shared machine disturbs least (requests per second follow the CPU share it gets).
        "cpu_us_per_req": round(sum(cpu) / requests * 1e6, 1) if cpu and requests else None,
    }


def _measured_round(t: Target, seconds: float, opts: BenchOptions, wrk: str | None) -> load.LoadResult:
    before = t.server.cpu_seconds()
    result = load.run_load(t.server.port, t.path, t.bodies, seconds, opts.connections, t.label, wrk)
    result.cpu_s = t.server.cpu_seconds() - before
    return result


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
                t.rounds.append(_measured_round(t, per_round, opts, wrk))
            log(f"round {r + 1}/{rounds}: " + ", ".join(f"{t.label} {t.rounds[-1].rps:,.0f}/s" for t in live))
    for t in live:
        results[t.label] = _aggregate(t.label, t.rounds)
        res = results[t.label]
        log(f"{t.label}: {res['rps']:,.0f} req/s, p50 {res['p50_ms']:.2f} ms, p99 {res['p99_ms']:.2f} ms, "
            f"{res['errors']} errors ({res['client']})")
    return results


MLSERVER = "mlserver"  # label prefix of the MLServer targets: "mlserver defaults", "mlserver tuned", ...


def _mlserver_targets(model: Any, workdir: Path, runs: Path, log: Log) -> list[Target]:
    """One target per MLServer configuration (`mlserver.variants`), same model, same rows."""
    from txguard.bench import mlserver

    venv = workdir / "mlserver-venv"
    mlserver.ensure_venv(venv, log=log, pip_log=workdir / "mlserver-pip.log")
    repo = mlserver.write_model_repository(model.estimator, workdir / "mlserver-models")
    bodies = [mlserver.infer_body(r) for r in model.rows[: len(model.payloads)].tolist()]
    targets = []
    for variant in mlserver.variants():
        http_port = _free_port()
        env = mlserver.server_env(http_port, _free_port(), _free_port(), variant)
        # Its own scratch folders (MLServer clears its metrics folder at start; both default to the
        # working directory, the repository): the variants run side by side.
        env["MLSERVER_METRICS_DIR"] = str(runs / f"mlserver-{variant.label}-metrics")
        env["MLSERVER_ENVIRONMENTS_DIR"] = str(runs / f"mlserver-{variant.label}-envs")
        server = Server(f"mlserver-{variant.label}", mlserver.server_argv(venv, repo), env,
                        runs / f"mlserver-{variant.label}.log", http_port)
        targets.append(Target(f"{MLSERVER} {variant.label}", server, mlserver.infer_path(), bodies,
                              ("GET", f"/v2/models/{mlserver.MODEL_NAME}/ready"), ready_timeout=180.0))
    return targets


def best_peer(peers: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    """The fastest configuration of the peer that ran (highest req/s): the one ratios are taken against."""
    ran = [(label, r) for label, r in peers.items() if "rps" in r]
    return max(ran, key=lambda item: item[1]["rps"]) if ran else None


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
    report["inproc"] = inproc.measure(model.estimator, model.artifact, model.payloads,
                                       classifier=model.classifier)
    log("rules on the fast path (50 rules, paired with the fast path alone)")
    report["rules"] = inproc.measure_rules(model.artifact, model.payloads)

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
    targets.append(Target("hello", _ff_server("hello", coldstart.HELLO, "hello",
                                              _serving_env(workers, threads), runs),
                          "/score", model.payloads, ("POST", "/score")))
    if not opts.skip_mlserver:
        try:
            targets += _mlserver_targets(model, workdir, runs, log)
        except Exception as exc:  # report, do not lose the other figures
            log(f"MLServer unavailable: {exc}")
            report["mlserver"] = {"error": str(exc)[:500]}
    results = _interleaved(targets, opts, wrk, log)
    report["latency_png"] = draw_latency(targets, runs / "latency.png", "txguard bench score: HTTP latency", log)
    report["http"] = {t.label: results[t.label] for t in targets if t.label.startswith("score")}
    report["hello"] = results["hello"]
    peers = {t.label.removeprefix(f"{MLSERVER} "): results[t.label] for t in targets
             if t.label.startswith(MLSERVER)}
    if peers:
        report["mlserver"] = peers
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


def _p50(inproc: dict[str, Any], name: str) -> float | None:
    """An in-process measurement's p50 in us to 0.01 (None when it was not taken)."""
    return round(inproc[name]["p50_us"], 2) if name in inproc else None


def summary(report: dict[str, Any], main: dict[str, Any]) -> dict[str, Any]:
    """The last line: our figures, and ratios against the constant function and the best MLServer."""
    inp, hello, peers = report["inproc"], report["hello"], report.get("mlserver") or {}
    best = best_peer(peers) if "error" not in peers else None
    label, mls = best if best else (None, {})
    defaults = peers.get("defaults") or {}
    rules = report.get("rules")  # the rules' cost on the fast path (absent when that step failed)
    if "rps" not in main or "rps" not in hello:
        raise RuntimeError(f"the scoring or hello server failed: {main.get('error') or hello.get('error')}")
    out: dict[str, Any] = {
        "fast_us_p50": round(inp["fast"]["p50_us"], 1),
        "fast_us_p99": round(inp["fast"]["p99_us"], 1),
        "fast_cycled_us_p50": round(inp["fast_cycled"]["p50_us"], 1) if "fast_cycled" in inp else None,
        "row_us_p50": _p50(inp, "row"),
        "write_us_p50": _p50(inp, "write"),
        "inference_only_us_p50": _p50(inp, "inference_only"),
        "inference_only_classifier_us_p50": _p50(inp, "inference_only_classifier"),
        "sklearn_us_p50": round(inp["sklearn"]["p50_us"], 1),
        "rules50_added_us_p50": rules["added_us_p50"] if rules else None,
        "rules50_eval_us_p50": round(rules["rules_only"]["p50_us"], 2) if rules else None,
        "fast_rules50_us_p50": round(rules["fast_rules"]["p50_us"], 1) if rules else None,
        "http_rps": round(main["rps"], 1),
        "http_p50_ms": round(main["p50_ms"], 2),
        "http_p99_ms": round(main["p99_ms"], 2),
        "http_errors": main["errors"],
        "hello_rps": round(hello["rps"], 1),
        "mlserver_rps": round(mls["rps"], 1) if "rps" in mls else None,
        "mlserver_p99_ms": round(mls["p99_ms"], 2) if "p99_ms" in mls else None,
        "mlserver_config": label,
        "http_cpu_us_per_req": main.get("cpu_us_per_req"),
        "hello_cpu_us_per_req": hello.get("cpu_us_per_req"),
        "mlserver_cpu_us_per_req": mls.get("cpu_us_per_req"),
        "mlserver_defaults_rps": round(defaults["rps"], 1) if "rps" in defaults else None,
        "mlserver_defaults_p99_ms": round(defaults["p99_ms"], 2) if "p99_ms" in defaults else None,
        "coldstart_s": (report.get("coldstart") or {}).get("median_s"),
        "coldstart_cpu_ms": (report.get("coldstart") or {}).get("cpu_ms_median"),
        "coldstart_hello_s": (report.get("coldstart") or {}).get("hello_median_s"),
        "coldstart_hello_cpu_ms": (report.get("coldstart") or {}).get("hello_cpu_ms_median"),
        "workers": report["workers"],
        "threads": report["threads"],
        "load_client": report["load_client"],
    }
    out["vs_hello"] = round(main["rps"] / hello["rps"], 2) if hello["rps"] else None
    out["vs_mlserver"] = round(main["rps"] / mls["rps"], 2) if mls.get("rps") else None
    out["vs_mlserver_defaults"] = round(main["rps"] / defaults["rps"], 2) if defaults.get("rps") else None
    # The same comparisons in server CPU per request (less sensitive to a busy machine than req/s).
    ours = main.get("cpu_us_per_req")
    out["cpu_vs_hello"] = round(hello["cpu_us_per_req"] / ours, 2) if ours and hello.get("cpu_us_per_req") else None
    out["cpu_vs_mlserver"] = round(mls["cpu_us_per_req"] / ours, 2) if ours and mls.get("cpu_us_per_req") else None
    return out


def render_table(report: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title=f"txguard bench score ({report['connections']} connections, {report['duration_s']:.0f} s, "
                        f"{report['load_client']}, {report['cpus']} CPUs)")
    for col in ("measurement", "throughput", "p50", "p99", "CPU/request", "errors"):
        table.add_column(col, justify="left" if col == "measurement" else "right")
    for name, stats in report["inproc"].items():
        table.add_row(f"in-process {name}", "", f"{stats['p50_us']:.1f} us", f"{stats['p99_us']:.1f} us", "", "")
    rules = report.get("rules") or {}
    for name in ("fast", "fast_rules", "rules_only"):
        if name in rules:
            stats = rules[name]
            label = {"fast": "fast (paired)", "fast_rules": f"fast + {rules['rules']} rules (paired)",
                     "rules_only": f"{rules['rules']} rules alone"}[name]
            table.add_row(f"in-process {label}", "", f"{stats['p50_us']:.1f} us", f"{stats['p99_us']:.1f} us", "", "")
    rows = [*report["http"].items(), ("hello (constant JSON)", report["hello"])]
    peers = report.get("mlserver") or {}
    if "error" in peers:
        rows.append(("MLServer 1.7.1 sklearn", peers))
    else:
        rows += [(f"MLServer 1.7.1 sklearn, {label}", r) for label, r in peers.items()]
    for name, r in rows:
        if "rps" not in r:
            table.add_row(name, "failed", "", "", "", str(r.get("error", ""))[:40])
            continue
        cpu = f"{r['cpu_us_per_req']:,.0f} us" if r.get("cpu_us_per_req") else ""
        table.add_row(f"HTTP {name}", f"{r['rps']:,.0f} req/s", f"{r['p50_ms']:.2f} ms", f"{r['p99_ms']:.2f} ms",
                      cpu, str(r["errors"]))
    cold = report.get("coldstart") or {}
    if "median_s" in cold:
        table.add_row("cold start (GCS emulator)", "", f"{cold['median_s']:.3f} s", f"min {cold['min_s']:.3f} s",
                      f"{cold['cpu_ms_median']:,.0f} ms", "")
        table.add_row("cold start, hello (server stack floor)", "", f"{cold['hello_median_s']:.3f} s", "",
                      f"{cold['hello_cpu_ms_median']:,.0f} ms", "")
    return table
