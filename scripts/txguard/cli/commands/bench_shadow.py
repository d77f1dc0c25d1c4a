"""`txguard bench shadow`: p99 of the champion's answer with shadow scoring on vs off, same run.

Three scoring functions (shadow off, shadow on at sample rate 1, neither shadow nor drift) under
the same load in interleaved rounds (scripts/txguard/bench/shadow.py). The last line is one JSON
object with `p99_shadow_on_vs_off` (target <= 1.10).
"""

from __future__ import annotations

import argparse
import json

from txguard.cli.commands._group import command_group


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = command_group(subparsers, "bench", "benchmarks (scoring function, local pipeline end to end)")
    p = bench.add_parser(
        "shadow",
        help="latency of the champion's answer with shadow scoring on vs off (and without drift windows)",
        description="Load three scoring functions in interleaved rounds: shadow off, shadow on (every "
        "transaction scored by the staging challenger after the answer), and neither shadow nor drift; "
        "report p50/p99, throughput, and the p99 ratio shadow on / off.",
    )
    p.add_argument("--duration", type=float, default=10.0, help="seconds of load per server (default 10)")
    p.add_argument("--connections", type=int, default=10, help="concurrent connections (default 10)")
    p.add_argument("--workers", type=int, default=None, help="gunicorn WORKERS (default: shared settings)")
    p.add_argument("--threads", type=int, default=None, help="gunicorn THREADS (default: shared settings)")
    p.add_argument("--workdir", default=".txguard/bench", help="cache and logs (default .txguard/bench)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from txguard.bench.runner import BenchOptions
    from txguard.bench.shadow import run_all

    terminal = Console(stderr=True)
    opts = BenchOptions(duration=args.duration, connections=args.connections, workers=args.workers,
                        threads=args.threads, workdir=args.workdir, skip_mlserver=True, skip_coldstart=True)
    report = run_all(opts, log=lambda m: terminal.print(f"[dim]{m}[/dim]"))
    table = Table(title=f"txguard bench shadow ({args.connections} connections, {args.duration:g} s, "
                        f"{report['load_client']}, {report['cpus']} CPUs)")
    for col in ("scoring function", "req/s", "p50", "p99", "errors"):
        table.add_column(col, justify="left" if col == "scoring function" else "right")
    for label, r in report["results"].items():
        table.add_row(label, f"{r.get('rps', 0):,.0f}", f"{r.get('p50_ms', 0):.2f} ms", f"{r.get('p99_ms', 0):.2f} ms",
                      str(r.get("errors", r.get("error"))))
    Console().print(table)
    print(json.dumps(report["summary"], separators=(",", ":")))
    return 0
