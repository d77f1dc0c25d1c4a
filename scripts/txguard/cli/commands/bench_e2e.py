"""`txguard bench e2e`: sustained end-to-end throughput and latency of the local pipeline.

Brings the local stack up once (emulators, or embedded with --embedded / without gcloud),
warms it, then runs stages of fixed-rate publishing (scripts/txguard/local/stage.py; the search
in scripts/txguard/bench/e2e.py) and reports per stage: achieved rate, end-to-end p50/p99,
backlog slope, and enrichment stage timings.
The last line is one JSON object: push_mode (bridge by default: production-like push, see
scripts/txguard/local/bridge.py), rate, e2e_p50_ms, e2e_p99_ms (at --rate), max_sustained_tps, lost,
and at_max_sustained.cpu: the CPU split of that stage (emulators, functions, bench process with the
bridge, the rest of the machine; scripts/txguard/bench/cpu_split.py) and at_max_sustained.ops_per_msg:
the enrichment function's Firestore, Bigtable and Pub/Sub calls per decided message, by method
(its own count of its gRPC calls, scripts/txguard/bench/rpc_count.py); every stage carries both.
"""

from __future__ import annotations

import argparse
import json

from txguard.cli.commands._group import command_group
from txguard.cli.commands.local import add_push_options


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = command_group(subparsers, "bench", "benchmarks (scoring function, local pipeline end to end)")
    p = bench.add_parser(
        "e2e",
        help="sustained end-to-end throughput of the local pipeline",
        description="Publish at --rate for --duration seconds, then higher rates until the backlog grows; "
        "report latency percentiles, the highest sustained rate and per-stage timings.",
    )
    p.add_argument("--rate", type=float, default=100.0, help="first (reference) rate, tx/s (default 100)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of publishing per stage (default 20)")
    p.add_argument("--max-rate", type=float, default=1000.0, help="stop searching at this rate (default 1000)")
    p.add_argument("--step", type=float, default=1.5, help="rate multiplier between stages (default 1.5)")
    p.add_argument("--no-search", action="store_true", help="only the --rate stage")
    p.add_argument("--warmup", type=int, default=100, help="transactions sent first to warm the stack (default 100)")
    p.add_argument("--drain-timeout", type=float, default=30.0,
                   help="seconds without any new outcome before a stage's missing outcomes count as lost")
    p.add_argument("--embedded", action="store_true", help="embedded mode even if gcloud is installed")
    add_push_options(p)
    p.add_argument("--registry", default=None, help="model registry (see `txguard local up --help`)")
    p.add_argument("--workdir", default=None, help="folder for logs and local state")
    p.add_argument("--enrich-threads", type=int, default=8, help="enrichment THREADS (default 8)")
    p.add_argument("--scoring-threads", type=int, default=1, help="scoring THREADS (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from rich.table import Table

    from txguard.bench import e2e as bench
    from txguard.bench import rpc_count
    from txguard.local.processes import function_env
    from txguard.local.stack import LocalStack, StackOptions
    from txguard.local.stage import Stage, run_stage
    from txguard.local.terminal import make_terminal

    terminal = make_terminal(stderr=True)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="txguard-local-"))
    rpc_dir = workdir / "rpc"  # the enrichment function's gRPC calls (txguard.bench.rpc_count)
    pythonpath = function_env({}, threads=1)["PYTHONPATH"]  # what the functions get otherwise
    options = StackOptions(embedded=args.embedded, registry=args.registry, enrich_threads=args.enrich_threads,
                           scoring_threads=args.scoring_threads, workdir=workdir,
                           push=args.push, push_window=args.push_window,
                           enrich_env=rpc_count.hook_env(rpc_dir, pythonpath))

    def log(stage: Stage) -> None:
        d = stage.as_dict()
        terminal.print(f"  {d['rate']:>7.1f} tx/s: achieved {d['achieved_tps']}, e2e p50 {d['e2e_p50_ms']} ms "
                       f"p99 {d['e2e_p99_ms']} ms, backlog slope {d['backlog_slope_per_s']}/s, lost {d['lost']} "
                       f"-> {'sustained' if d['sustained'] else 'NOT sustained'}")

    try:
        with LocalStack(options, terminal) as stack:
            stack.up()
            if args.warmup > 0:
                stack.step(f"warm-up: {args.warmup} transactions")
                run_stage(stack, max(10.0, args.warmup / 5), args.warmup / max(10.0, args.warmup / 5),
                          "warm", args.drain_timeout, wallet_prefix="warm-")
            stack.step(f"stages of {args.duration:g} s from {args.rate:g} tx/s")
            if args.no_search:  # the --rate stage alone, sustained or not
                stages = [bench.measured_stage(stack, args.rate, args.duration, "b0", args.drain_timeout, rpc_dir)]
                log(stages[0])
            else:
                stages = bench.search(stack, args.rate, args.duration, args.max_rate, args.step, args.drain_timeout,
                                      log, rpc_dir=rpc_dir)
            timings = bench.enrich_timings(stack.workdir / "enrich.log", stages[0].prefix)
            mode = stack.mode
            try:
                picture: str | None = bench.draw_latency(stages, stack.workdir / "e2e-latency.png", mode)
                terminal.print(f"latency histogram: {picture}")
            except (ImportError, ValueError) as exc:  # matplotlib missing, or nothing decided
                picture = None
                terminal.print(f"latency histogram skipped: {exc}")
            delivery = stack.delivery_summary()
    except KeyboardInterrupt:
        terminal.print("stopping (interrupted)")
        return 130
    except Exception as exc:  # noqa: BLE001 - one readable line, the logs have the rest
        from txguard.cli.errors import run_failure

        raise run_failure("the end-to-end benchmark failed", exc, "the stack's logs are in its work folder (printed at start)") from exc
    table = Table(title=f"txguard bench e2e ({mode} mode, push {delivery['push_mode']})")
    rows = [s.as_dict() for s in stages]
    columns = {"rate": "rate", "achieved_tps": "achieved", "e2e_p50_ms": "p50 ms", "e2e_p99_ms": "p99 ms",
               "backlog_slope_per_s": "backlog/s", "max_backlog": "max backlog", "lost": "lost",
               "sustained": "sustained"}
    for title in columns.values():
        table.add_column(title, justify="right")
    for row in rows:
        table.add_row(*(str(row[key]) for key in columns))
    make_terminal().print(table)
    first = stages[0].summary
    best = bench.max_sustained(stages)
    result = {
        "mode": mode, "push_mode": delivery["push_mode"], "ordering": delivery["ordering"],
        "rate": args.rate, "duration_s": args.duration,
        "e2e_p50_ms": first.get("e2e_p50_ms"), "e2e_p95_ms": first.get("e2e_p95_ms"),
        "e2e_p99_ms": first.get("e2e_p99_ms"),
        "max_sustained_tps": best,
        "at_max_sustained": next(({"e2e_p50_ms": s.summary.get("e2e_p50_ms"), "e2e_p99_ms": s.summary.get("e2e_p99_ms"),
                                   "cpu": s.cpu or None, "ops_per_msg": s.ops or None}
                                  for s in stages if s.rate == best), None),
        "lost": sum(int(s.summary.get("lost") or 0) for s in stages),
        "enrich_timings_ms": timings, "stages": rows, "latency_png": picture,
    }
    print(json.dumps(result), flush=True)
    return 0 if result["lost"] == 0 else 1
