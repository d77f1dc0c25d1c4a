"""`txguard dead-letter redrive`: send dead-lettered transactions (or labels) back through the pipeline.

Pulls `transactions-dead-letter-inspect` (emulator if PUBSUB_EMULATOR_HOST is set, else the real
project with ADC), republishes each message to `transactions` with its attributes and acks it
once the publish is confirmed (scripts/txguard/ops/redrive.py). Run it after the outage that parked them.
`--labels`: the same from `labels-dead-letter-inspect`, each label back to the topic of the route it
was dead-lettered from (`labels` or `labels-analyst`; a label applies once per label id).
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
    from txguard.cli.errors import CliError, Exit, print_error
    from txguard.cli.inputs import require_pubsub
    from txguard.contract import names
    from txguard.contract.settings import CommonSettings
    from txguard.local.terminal import make_terminal
    from txguard.ops.redrive import label_topic_of, redrive

    require_pubsub()
    terminal = make_terminal(stderr=True)
    project = args.project or CommonSettings().google_cloud_project
    subscription = args.subscription or (names.LABELS_DEAD_LETTER_SUBSCRIPTION if args.labels
                                         else names.DEAD_LETTER_SUBSCRIPTION)
    # Labels go back to the topic of the route they were dead-lettered from (labels or labels-analyst).
    by_route = args.labels and not args.topic
    topic = args.topic or (names.LABELS_TOPIC if args.labels else names.TRANSACTIONS_TOPIC)
    shown = "each label's route topic" if by_route else topic
    with terminal.status(f"redriving {subscription} -> {shown}"):
        stats = redrive(project, subscription, topic, max_messages=args.max,
                        topic_of=label_topic_of if by_route else None)
    terminal.print(f"redriven {stats.republished} of {stats.pulled} pulled ({stats.failed} failed, left parked)")
    if stats.failed:
        print_error(CliError(f"{stats.failed} of {stats.pulled} dead-lettered messages were not republished",
                             "they are left parked", f"check {shown} and run the redrive again", Exit.FAILED))
    print(json.dumps({"project": project, "subscription": subscription, "topic": shown, **stats.as_dict()}))
    return int(Exit.FAILED) if stats.failed else 0
