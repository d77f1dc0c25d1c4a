"""`txguard publish`: put simulated or replayed transactions on the `transactions` topic.

Works against the Pub/Sub emulator (PUBSUB_EMULATOR_HOST, e.g. from `txguard local up --keep`)
or a real project (Application Default Credentials). Ordering key = wallet id; the
`published_at` attribute (epoch ms) lets the pipeline's consumers measure end-to-end latency.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

# The same as shared.publisher.sources.SCENARIOS (a unit test checks), without importing pydantic at CLI start.
SCENARIOS = ("normal", "fraud", "burst", "drift")


def add_stream_options(parser: argparse.ArgumentParser, count: int, rate: float | None,
                       rate_help: str | None = None) -> None:
    """Options shared by `publish` and `local up`: what to publish and how fast."""
    parser.add_argument("--count", type=int, default=count, help=f"transactions to publish (default {count})")
    parser.add_argument("--scenario", choices=SCENARIOS, default="burst",
                        help="normal | fraud (~1%% fraud) | burst (~8%% fraud in incidents) | drift (default burst)")
    parser.add_argument("--seed", type=int, default=7, help="simulation seed (default 7)")
    parser.add_argument("--drift", type=float, default=None, help="simulator drift (default: 0.6 for drift, else 0)")
    parser.add_argument("--invalid-fraction", type=float, default=0.01,
                        help="fraction of messages made invalid on purpose (default 0.01)")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, default=rate, help=rate_help or f"messages per second (default {rate:g})")
    pace.add_argument("--speed", type=float, default=None,
                      help="replay at the events' own spacing times this multiplier instead of a fixed rate")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "publish",
        help="publish simulated or replayed transactions to Pub/Sub",
        description="Publish a simulated scenario or a JSONL/CSV file to the transactions topic "
        "(emulator if PUBSUB_EMULATOR_HOST is set, else the real project with ADC).",
    )
    add_stream_options(parser, count=1000, rate=100.0)
    parser.add_argument("--file", default=None, help="replay this JSONL or CSV file instead of simulating")
    parser.add_argument("--no-shift", action="store_true",
                        help="keep the file's timestamps (default: shift them so the last one is now)")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--project", default=None, help="project id (default GOOGLE_CLOUD_PROJECT)")
    parser.add_argument("--topic", default=None, help="topic (default: transactions)")
    parser.add_argument("--batch-max-messages", type=int, default=100, help="client batch size (default 100)")
    parser.add_argument("--batch-max-latency", type=float, default=0.01,
                        help="seconds a batch may wait to fill (default 0.01)")
    parser.add_argument("--timeout", type=float, default=60.0, help="per-publish RPC timeout, s (default 60)")
    parser.add_argument("--retry-deadline", type=float, default=120.0,
                        help="total retry time for one publish, s (default 120)")
    parser.add_argument("--no-ordering", action="store_true", help="publish without ordering keys")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from txguard.contract import names
    from txguard.contract.settings import CommonSettings
    from txguard.publisher import Pacer, PubSubTransport, make_stream, publish_all

    console = Console(stderr=True)
    project = args.project or CommonSettings().google_cloud_project
    topic = args.topic or names.TRANSACTIONS_TOPIC
    count = args.count
    if args.duration is not None and args.rate and args.file is None:
        count = max(count, int(args.duration * args.rate))
    try:
        messages = make_stream(
            count, args.scenario, seed=args.seed, drift=args.drift, invalid_fraction=args.invalid_fraction,
            file=args.file, shift_to_now=not args.no_shift, id_prefix=f"s{args.seed}-{_run_token()}",
        )
        pacer = Pacer(rate=None if args.speed else args.rate, speed=args.speed)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    target = os.environ.get("PUBSUB_EMULATOR_HOST") or "Google Cloud (ADC)"
    console.print(f"publishing {len(messages)} messages to projects/{project}/topics/{topic} on {target}")
    transport = PubSubTransport(
        project, topic, max_messages=args.batch_max_messages, max_latency_s=args.batch_max_latency,
        timeout_s=args.timeout, retry_deadline_s=args.retry_deadline, ordering=not args.no_ordering,
    )
    from rich.progress import Progress

    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("publishing", total=len(messages))
            stats = publish_all(
                messages, transport, pacer, duration_s=args.duration,
                on_sent=lambda _m, _t: progress.advance(task),
            )
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    finally:
        transport.close()
    summary = {"project": project, "topic": topic, "scenario": None if args.file else args.scenario,
               "file": args.file, **stats.as_dict()}
    print(json.dumps(summary))
    return 0 if stats.failed == 0 else 1


def _run_token() -> str:
    """A short token per run so transaction ids never collide with an earlier run's."""
    n = int(time.time() * 1000) % 36**6
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    for _ in range(6):
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out
