"""`txguard bench score`: the scoring function's latency, throughput and cold start, side by side
with plain scikit-learn, a constant functions-framework function and MLServer 1.7.1.

One invocation, the same model and payloads for all (scripts/txguard/bench/). Loopback only; every
server runs in its own process group and is stopped. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json

from txguard.cli.commands._group import command_group

DEFAULT_WORKDIR = ".txguard/bench"


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = command_group(subparsers, "bench", "benchmarks (scoring function, local pipeline end to end)")
    p = bench.add_parser(
        "score",
        help="scoring function: in-process latency, HTTP load vs a constant function and MLServer, cold start",
        description="Measure the ONNX fast path vs scikit-learn in process, then HTTP throughput/latency of "
        "the scoring function under functions-framework (gunicorn), of a constant-answer function (ceiling) "
        "and of MLServer 1.7.1 serving the same model, then cold start from the GCS emulator.",
    )
    p.add_argument("--duration", type=float, default=10.0, help="seconds of load per server (default 10)")
    p.add_argument("--connections", type=int, default=10, help="concurrent connections (default 10)")
    p.add_argument("--skip-mlserver", action="store_true", help="skip the MLServer comparison")
    p.add_argument("--skip-coldstart", action="store_true", help="skip the cold start measurement")
    p.add_argument("--sweep", action="store_true",
                   help="also load the scoring function with WORKERS in {1,2} x THREADS in {1, default}")
    p.add_argument("--workers", type=int, default=None, help="gunicorn WORKERS (default: txguard.contract.settings)")
    p.add_argument("--threads", type=int, default=None, help="gunicorn THREADS (default: txguard.contract.settings)")
    p.add_argument("--coldstart-runs", type=int, default=3, help="cold starts to measure (default 3)")
    p.add_argument("--workdir", default=DEFAULT_WORKDIR, help=f"cache and logs (default {DEFAULT_WORKDIR})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from txguard.bench.runner import BenchOptions, run_all
    from txguard.local.terminal import make_terminal

    terminal = make_terminal(stderr=True)
    opts = BenchOptions(
        duration=args.duration, connections=args.connections, skip_mlserver=args.skip_mlserver,
        skip_coldstart=args.skip_coldstart, sweep=args.sweep, workers=args.workers, threads=args.threads,
        coldstart_runs=args.coldstart_runs, workdir=args.workdir,
    )
    report = run_all(opts, log=lambda m: terminal.print(f"[dim]{m}[/dim]"))
    from txguard.bench.runner import render_table

    make_terminal().print(render_table(report))
    print(json.dumps(report["summary"], separators=(",", ":")))
    return 0
