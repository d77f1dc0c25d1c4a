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

# The same as txguard.publisher.sources.SCENARIOS (a unit test checks), without importing pydantic at CLI start.
SCENARIOS = ("normal", "fraud", "burst", "drift", "fake_shop")


SIMULATED_COUNT = 1000
SIMULATED_INVALID_FRACTION = 0.01
SHOWN_BAD_ROWS = 10


def add_stream_options(parser: argparse.ArgumentParser, count: int | None, rate: float | None,
                       rate_help: str | None = None, count_help: str | None = None,
                       invalid_default: float | None = SIMULATED_INVALID_FRACTION,
                       invalid_help: str | None = None) -> None:
    """Options shared by `publish` and `local up`: what to publish and how fast."""
    parser.add_argument("--count", type=int, default=count,
                        help=count_help or f"transactions to publish (default {count})")
    parser.add_argument("--scenario", choices=SCENARIOS, default="burst",
                        help="normal | fraud (~1%% fraud) | burst (~8%% fraud in incidents, the fake_shop attack among "
                        "them) | drift | fake_shop (fraud plus the fake_shop attack) (default burst)")
    parser.add_argument("--seed", type=int, default=7, help="simulation seed (default 7)")
    parser.add_argument("--drift", type=float, default=None, help="simulator drift (default: 0.6 for drift, else 0)")
    parser.add_argument("--invalid-fraction", type=float, default=invalid_default,
                        help=invalid_help or f"fraction of messages made invalid on purpose (default {invalid_default:g})")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, default=rate, help=rate_help or f"messages per second (default {rate:g})")
    pace.add_argument("--speed", type=float, default=None,
                      help="replay at the events' own spacing times this multiplier instead of a fixed rate")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "publish",
        help="publish simulated or replayed transactions to Pub/Sub",
        description="Publish a simulated scenario or a JSONL/CSV file to the transactions topic "
        "(emulator if PUBSUB_EMULATOR_HOST is set, else the real project with ADC). A file is published "
        "whole and as it is: every row is checked against the contract first, and a file with rows the "
        "pipeline would reject is refused (line numbers and reasons on stderr) unless --skip-invalid or "
        "--publish-invalid says otherwise. The last line is one JSON object.",
    )
    add_stream_options(
        parser, count=None, rate=100.0,
        count_help=f"transactions to publish (default: {SIMULATED_COUNT} simulated, or every row of --file)",
        invalid_default=None,
        invalid_help=f"fraction of messages made invalid on purpose (default: {SIMULATED_INVALID_FRACTION:g} "
        "simulated, 0 with --file)")
    parser.add_argument("--file", default=None, help="replay this JSONL or CSV file instead of simulating")
    bad_rows = parser.add_mutually_exclusive_group()
    bad_rows.add_argument("--skip-invalid", action="store_true",
                          help="with --file: leave out the rows the contract rejects and publish the rest")
    bad_rows.add_argument("--publish-invalid", action="store_true",
                          help="with --file: publish rejected rows too, as they are (they end on the invalid "
                          "topic with their reason)")
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
    from txguard.cli.errors import CliError, Exit, print_error, usage
    from txguard.cli.inputs import require_pubsub, require_rows
    from txguard.contract import names
    from txguard.contract.settings import CommonSettings
    from txguard.local.terminal import make_terminal
    from txguard.publisher import Pacer, PubSubTransport, make_stream, publish_all

    terminal = make_terminal(stderr=True)
    project = args.project or CommonSettings().google_cloud_project
    topic = args.topic or names.TRANSACTIONS_TOPIC
    count = args.count if args.count is not None or args.file else SIMULATED_COUNT
    if args.duration is not None and args.rate and args.file is None:
        count = max(count, int(args.duration * args.rate))
    invalid_fraction = args.invalid_fraction
    if invalid_fraction is None:
        invalid_fraction = 0.0 if args.file else SIMULATED_INVALID_FRACTION
    if args.file is None and (args.skip_invalid or args.publish_invalid):
        raise usage("--skip-invalid and --publish-invalid apply to --file only", "nothing is read from a file",
                    "give --file FILE, or drop them")
    if args.file:
        require_rows(args.file, "transactions", "give a JSONL or CSV of transactions (`txguard simulate --out tx.csv`)")
    try:
        messages = make_stream(
            count, args.scenario, seed=args.seed, drift=args.drift, invalid_fraction=invalid_fraction,
            file=args.file, shift_to_now=not args.no_shift, id_prefix=f"s{args.seed}-{_run_token()}",
        )
        pacer = Pacer(rate=None if args.speed else args.rate, speed=args.speed)
    except ValueError as exc:
        raise CliError(f"cannot publish {args.file or args.scenario}", str(exc),
                       "check the file and the flags (`txguard publish --help`)") from None
    rejected = [m for m in messages if m.problem is not None]
    if rejected and not args.publish_invalid:
        for m in rejected[:SHOWN_BAD_ROWS]:
            print(f"{args.file}: line {m.line}: {m.problem}", file=sys.stderr)
        if len(rejected) > SHOWN_BAD_ROWS:
            print(f"... and {len(rejected) - SHOWN_BAD_ROWS} more", file=sys.stderr)
        if not args.skip_invalid:
            raise CliError(f"{len(rejected)} of {len(messages)} rows of {args.file} would be rejected by the pipeline",
                           "nothing published", "fix them, or pass --skip-invalid or --publish-invalid",
                           extra={"file": args.file, "rows": len(messages), "rejected": len(rejected),
                                  "rejected_lines": [m.line for m in rejected], "published": 0})
        messages = [m for m in messages if m.problem is None]
    if not messages:
        raise CliError(f"nothing to publish from {args.file or args.scenario}", "no valid row is left",
                       "give a file with valid transactions, or a --count above 0")
    require_pubsub()
    target = os.environ.get("PUBSUB_EMULATOR_HOST") or "Google Cloud (ADC)"
    terminal.print(f"publishing {len(messages)} messages to projects/{project}/topics/{topic} on {target}")
    transport = PubSubTransport(
        project, topic, max_messages=args.batch_max_messages, max_latency_s=args.batch_max_latency,
        timeout_s=args.timeout, retry_deadline_s=args.retry_deadline, ordering=not args.no_ordering,
    )
    from rich.progress import Progress

    try:
        with Progress(console=terminal, transient=True) as progress:
            task = progress.add_task("publishing", total=len(messages))
            stats = publish_all(
                messages, transport, pacer, duration_s=args.duration,
                on_sent=lambda _m, _t: progress.advance(task),
            )
    except KeyboardInterrupt:
        terminal.print("interrupted")
        return 130
    finally:
        transport.close()
    summary = {"project": project, "topic": topic, "scenario": None if args.file else args.scenario,
               "file": args.file, **stats.as_dict()}
    if args.file:
        summary |= {"rows_skipped": len(rejected) if args.skip_invalid else 0,
                    "rows_rejected_published": len(rejected) if args.publish_invalid else 0}
    if stats.failed:
        print_error(CliError(f"{stats.failed} of {stats.attempted} messages were not published",
                             f"errors: {stats.errors}", "check Pub/Sub (or the emulator) and publish again", Exit.FAILED))
    print(json.dumps(summary))
    return int(Exit.FAILED) if stats.failed else 0


def _run_token() -> str:
    """A short token per run so transaction ids never collide with an earlier run's."""
    n = int(time.time() * 1000) % 36**6
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    for _ in range(6):
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out
