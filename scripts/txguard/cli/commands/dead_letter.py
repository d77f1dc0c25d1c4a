"""`txguard dead-letter redrive`: send dead-lettered transactions (or labels) back through the pipeline.

Pulls `transactions-dead-letter-inspect` (emulator if PUBSUB_EMULATOR_HOST is set, else the real
project with ADC), republishes each message to `transactions` with its attributes and acks it
once the publish is confirmed (scripts/txguard/ops/redrive.py). Run it after the outage that parked them.
`--labels`: the same from `labels-dead-letter-inspect` to `labels` (a label applies once per label id).
"""

from __future__ import annotations

import argparse
import json

from txguard.cli.commands._group import command_group


def register(subparsers: argparse._SubParsersAction) -> None:
    group = command_group(subparsers, "dead-letter", "inspect and redrive the dead-letter topic")
    parser = group.add_parser(
        "redrive",
        help="republish dead-lettered messages to the transactions (or labels) topic",
        description="Pull the dead-letter inspection subscription, republish every message to the "
        "transactions topic keeping its attributes, ack after the publish is confirmed; prints one JSON line. "
        "--labels does the same for dead-lettered labels (labels-dead-letter-inspect -> labels).",
    )
    parser.add_argument("--labels", action="store_true",
                        help="redrive dead-lettered labels instead (labels-dead-letter-inspect -> labels)")
    parser.add_argument("--project", default=None, help="project id (default GOOGLE_CLOUD_PROJECT)")
    parser.add_argument("--max", type=int, default=None, help="stop after this many messages (default: all)")
    parser.add_argument("--subscription", default=None, help="subscription (default transactions-dead-letter-inspect)")
    parser.add_argument("--topic", default=None, help="topic to republish to (default transactions)")
    parser.set_defaults(func=run_redrive)


def run_redrive(args: argparse.Namespace) -> int:
    from txguard.contract import names
    from txguard.contract.settings import CommonSettings
    from txguard.local.terminal import make_terminal
    from txguard.ops.redrive import redrive

    terminal = make_terminal(stderr=True)
    project = args.project or CommonSettings().google_cloud_project
    subscription = args.subscription or (names.LABELS_DEAD_LETTER_SUBSCRIPTION if args.labels
                                         else names.DEAD_LETTER_SUBSCRIPTION)
    topic = args.topic or (names.LABELS_TOPIC if args.labels else names.TRANSACTIONS_TOPIC)
    with terminal.status(f"redriving {subscription} -> {topic}"):
        stats = redrive(project, subscription, topic, max_messages=args.max)
    terminal.print(f"redriven {stats.republished} of {stats.pulled} pulled ({stats.failed} failed, left parked)")
    print(json.dumps({"project": project, "subscription": subscription, "topic": topic, **stats.as_dict()}))
    return 0 if stats.failed == 0 else 1
