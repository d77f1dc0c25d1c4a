"""`txguard bench follow`: how a scoring instance notices a promote, measured two ways.

A conditional read of the alias object (what the scoring function does, MODEL_POLL_S) against
fake-gcs-server, and a Cloud Storage object notification through the Pub/Sub emulator to a
streaming pull (scripts/txguard/bench/follow.py). docs/lifecycle.md explains the choice.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json

from txguard.cli.commands._group import command_group


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = command_group(subparsers, "bench", "benchmarks (scoring function, local pipeline end to end)")
    p = bench.add_parser(
        "follow",
        help="alias following: conditional reads of the alias vs a Cloud Storage notification to Pub/Sub",
        description="Latency and CPU of a conditional read of the alias object (the serving path's urllib "
        "reader, fake-gcs-server), promote-to-detection delays of polling and of a Pub/Sub notification "
        "(emulator), the idle CPU of a streaming pull and the cold-start import cost of google-cloud-pubsub.",
    )
    p.add_argument("--reads", type=int, default=500, help="conditional reads to time (default 500)")
    p.add_argument("--interval", type=float, default=1.0, help="poll interval for the detection delay (default 1 s)")
    p.add_argument("--promotes", type=int, default=5, help="promotes per method (default 5)")
    p.add_argument("--idle", type=float, default=10.0, help="seconds to measure the idle subscriber (default 10)")
    p.add_argument("--workdir", default=".txguard/bench/follow", help="emulator logs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from txguard.bench.follow import run as measure

    terminal = Console(stderr=True)
    result = measure(Path(args.workdir), args.reads, args.interval, args.promotes, args.idle,
                     log=lambda m: terminal.print(f"[dim]{m}[/dim]"))
    poll, note = result["poll"], result.get("notification", {})
    terminal.print(f"poll: read p50 {poll['read_p50_ms']} ms, p99 {poll['read_p99_ms']} ms, "
                   f"{poll['cpu_per_read_us']} us CPU per read; every {poll['interval_s']} s -> seen after "
                   f"{poll['detect_mean_s']} s mean, {poll['detect_max_s']} s max")
    if "detect_mean_s" in note:
        terminal.print(f"notification: seen after {note['detect_mean_s']} s mean, {note['detect_max_s']} s max; idle "
                       f"subscriber {note['idle_cpu_share']:.2%} of a CPU; +{result['pubsub_import_s']} s of imports")
    print(json.dumps(result, separators=(",", ":")))
    return 0
