"""`txguard label`: publish label events (chargebacks, analyst verdicts, reversals) on the `labels` topic.

From a JSONL/CSV file of LabelEvents (every row checked against the contract first; a file with
bad rows is refused, each reported by line, unless --skip-invalid) or from the simulator's delayed
labels known by now. Emulator if PUBSUB_EMULATOR_HOST is set, else the real project with ADC.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

SHOWN_BAD_ROWS = 10


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "label",
        help="publish label events (from a file or the simulator) to the labels topic",
        description="Publish LabelEvents to the labels topic, where the label function applies them to the "
        "counterparty aggregates (exactly once per label_id). --file checks every row against the contract first "
        "and refuses a file with bad rows (line numbers and reasons on stderr) unless --skip-invalid; --simulate "
        "publishes the simulator's labels known by now (chargebacks days to weeks late, analyst verdicts within "
        "hours, a few reversals). The last line is one JSON object.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", help="JSONL or CSV of LabelEvents (txguard simulate --labels-out writes one)")
    source.add_argument("--simulate", action="store_true", help="the simulator's delayed labels known by now")
    parser.add_argument("--days", type=int, default=30, help="with --simulate: simulated days (default 30)")
    parser.add_argument("--wallets", type=int, default=2000, help="with --simulate: wallets (default 2000)")
    parser.add_argument("--seed", type=int, default=42, help="with --simulate: seed (default 42)")
    parser.add_argument("--start", default="2026-01-01T00:00:00+00:00", help="with --simulate: ISO start time")
    parser.add_argument("--skip-invalid", action="store_true", help="with --file: publish the valid rows only")
    parser.add_argument("--rate", type=float, default=200.0, help="labels per second (default 200)")
    parser.add_argument("--project", default=None, help="project id (default GOOGLE_CLOUD_PROJECT)")
    parser.add_argument("--topic", default=None, help="topic (default: labels)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datetime import datetime

    from txguard.contract import names
    from txguard.contract.settings import CommonSettings
    from txguard.local.terminal import make_terminal
    from txguard.publisher import Pacer, PubSubTransport, publish_all
    from txguard.publisher.label_sources import read_labels, simulated_labels

    terminal = make_terminal(stderr=True)
    project = args.project or CommonSettings().google_cloud_project
    topic = args.topic or names.LABELS_TOPIC
    if args.file and not os.path.isfile(args.file):
        print(f"error: labels file {args.file} not found", file=sys.stderr)
        return 2
    if args.file:
        messages = read_labels(args.file)
    else:
        start = datetime.fromisoformat(args.start)
        if start.tzinfo is None:
            print("error: --start must include a timezone (e.g. +00:00)", file=sys.stderr)
            return 2
        terminal.print(f"simulating {args.days} days of {args.wallets} wallets (seed {args.seed}) for their labels")
        messages = simulated_labels(args.days, args.wallets, args.seed, start)
    rejected = [m for m in messages if m.problem is not None]
    source = {"file": args.file} if args.file else {"simulated": {"days": args.days, "wallets": args.wallets,
                                                                  "seed": args.seed}}
    if rejected:
        for m in rejected[:SHOWN_BAD_ROWS]:
            print(f"{args.file}: line {m.line}: {m.problem}", file=sys.stderr)
        if len(rejected) > SHOWN_BAD_ROWS:
            print(f"... and {len(rejected) - SHOWN_BAD_ROWS} more", file=sys.stderr)
        if not args.skip_invalid:
            print(f"error: {len(rejected)} of {len(messages)} rows of {args.file} would be rejected by the label "
                  "function; nothing published (fix them, or pass --skip-invalid)", file=sys.stderr)
            print(json.dumps({**source, "rows": len(messages), "rejected": len(rejected),
                              "rejected_lines": [m.line for m in rejected], "published": 0}))
            return 2
        messages = [m for m in messages if m.problem is None]
    if not messages:
        print("error: no label to publish", file=sys.stderr)
        return 2
    target = os.environ.get("PUBSUB_EMULATOR_HOST") or "Google Cloud (ADC)"
    terminal.print(f"publishing {len(messages)} labels to projects/{project}/topics/{topic} on {target}")
    transport = PubSubTransport(project, topic, ordering=False)
    from rich.progress import Progress

    try:
        with Progress(console=terminal, transient=True) as progress:
            task = progress.add_task("publishing", total=len(messages))
            stats = publish_all(messages, transport, Pacer(rate=args.rate),
                                on_sent=lambda _m, _t: progress.advance(task))
    except KeyboardInterrupt:
        terminal.print("interrupted")
        return 130
    finally:
        transport.close()
    print(json.dumps({"project": project, "topic": topic, **source, "rows_skipped": len(rejected),
                      **stats.as_dict()}))
    return 0 if stats.failed == 0 else 1
