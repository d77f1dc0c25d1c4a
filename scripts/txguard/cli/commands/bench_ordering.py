"""`txguard bench ordering`: the cost of delivering each wallet's transactions in order, measured locally.

Brings the local stack up once (push bridge on the emulators, or --embedded), then runs the
measurements of scripts/txguard/bench/ordering.py with ordering on and off: throughput on many
and on a few hot wallets, and head-of-line blocking behind one wallet's retried transaction.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse

from txguard.cli.commands._group import command_group


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = command_group(subparsers, "bench", "benchmarks (scoring function, local pipeline end to end)")
    p = bench.add_parser(
        "ordering",
        help="what per-wallet ordering costs: throughput (many / hot wallets) and head-of-line blocking",
        description="Each measurement ordered (production) and unordered on one local stack with the push bridge. "
        "The last line is one JSON object.",
    )
    p.add_argument("--rate", type=float, default=20.0,
                   help="throughput stages, tx/s: one the stack sustains, so latency is not queueing (default 20)")
    p.add_argument("--duration", type=float, default=15.0, help="seconds of publishing per throughput stage")
    p.add_argument("--hot-wallets", type=int, default=5, help="wallets of the hot-wallet stages (default 5)")
    p.add_argument("--fail-attempts", type=int, default=3,
                   help="head-of-line: deliveries refused before the blocked transaction succeeds (default 3)")
    p.add_argument("--embedded", action="store_true", help="embedded mode even if gcloud is installed")
    p.add_argument("--workdir", default=None, help="folder for logs and local state")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from txguard.bench import ordering
    from txguard.local.stack import LocalStack, StackOptions
    from txguard.local.stage import run_stage

    terminal = Console(stderr=True)
    plan = ordering.Plan(rate=args.rate, duration_s=args.duration, hot_wallets=args.hot_wallets,
                         fail_attempts=args.fail_attempts)
    options = StackOptions(embedded=args.embedded, workdir=Path(args.workdir) if args.workdir else None, warmup=0)
    try:
        with LocalStack(options, terminal) as stack:
            stack.up()
            log = stack.step
            log("warm-up: 50 transactions on wallets of their own")
            run_stage(stack, 10.0, 5.0, "warm", plan.drain_timeout_s, wallet_prefix="warm-")
            results = {"throughput": ordering.throughput(stack, plan, log),
                       "head_of_line": ordering.head_of_line(stack, plan, log)}
            line = ordering.last_line(stack, plan, results)
    except KeyboardInterrupt:
        terminal.print("stopping (interrupted)")
        return 130
    except Exception as exc:  # noqa: BLE001 - one readable line, the logs have the rest
        from txguard.cli.errors import run_failure

        raise run_failure("the ordering benchmark failed", exc, "the stack's logs are in its work folder (printed at start)") from exc
    print(line, flush=True)
    return 0
