"""`txguard decisions`: print decisions from the `decisions-tail` pull subscription, one per line.

With `--follow` it streams until Ctrl-C (or `--timeout`); without, it drains what is waiting and
exits. The end-to-end latency shown (`e2e=`) is the time the decision was published on
`decisions` (its Pub/Sub publish time) minus the publisher's `published_at` attribute, so it does
not grow while a decision waits to be pulled; that wait is shown apart (`waited=`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "decisions",
        help="tail the decisions topic (one line per decision)",
        description="Pull decisions from the decisions-tail subscription (emulator if PUBSUB_EMULATOR_HOST "
        "is set, else the real project with ADC) and print one line each, acking them. e2e= is the latency "
        "from the transaction's publication to the decision's (not to this pull); waited= is the time since.",
    )
    parser.add_argument("--follow", "-f", action="store_true", help="keep streaming until Ctrl-C")
    parser.add_argument("--max", type=int, default=None, help="stop after this many decisions")
    parser.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--json", action="store_true", help="print each decision's JSON instead of a summary line")
    parser.add_argument("--project", default=None, help="project id (default GOOGLE_CLOUD_PROJECT)")
    parser.add_argument("--subscription", default=None, help="subscription (default decisions-tail)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from google.cloud import pubsub_v1

    from txguard.cli.inputs import require_pubsub
    from txguard.contract import names
    from txguard.contract.settings import CommonSettings
    from txguard.local.report import format_decision

    project = args.project or CommonSettings().google_cloud_project
    require_pubsub()
    subscriber = pubsub_v1.SubscriberClient()
    path = subscriber.subscription_path(project, args.subscription or names.DECISIONS_SUBSCRIPTION)
    seen = 0

    def show(data: bytes, attributes: dict[str, str], publish_time: object) -> None:
        if args.json:
            print(data.decode("utf-8", "replace"), flush=True)
            return
        print(format_decision(data, attributes, decided_at_ms=_epoch_ms(publish_time)), flush=True)

    try:
        # Synchronous pull, acked before the next one: an interrupted streaming pull would leave
        # leases that hold the subscription's ordering keys (see scripts/txguard/local/consumers.py).
        from google.api_core import exceptions as gexc

        deadline = time.monotonic() + args.timeout if args.timeout else None
        while (args.max is None or seen < args.max) and (deadline is None or time.monotonic() < deadline):
            want = 500 if args.max is None else min(500, args.max - seen)
            try:
                resp = subscriber.pull(request={"subscription": path, "max_messages": want}, timeout=2.0)
            except gexc.DeadlineExceeded:
                resp = None
            if resp is None or not resp.received_messages:
                if not args.follow:
                    break
                continue
            for rm in resp.received_messages:
                show(rm.message.data, dict(rm.message.attributes), rm.message.publish_time)
            seen += len(resp.received_messages)
            subscriber.acknowledge(
                request={"subscription": path, "ack_ids": [rm.ack_id for rm in resp.received_messages]}
            )
    except KeyboardInterrupt:
        pass
    finally:  # a Pub/Sub error reaches txguard.cli.errors: one line naming what to check
        subscriber.close()
    print(json.dumps({"subscription": path, "decisions": seen}), file=sys.stderr)
    return 0


def _epoch_ms(publish_time: object) -> int | None:
    """A Pub/Sub message's publish time (a datetime from the client library) in epoch ms."""
    timestamp = getattr(publish_time, "timestamp", None)
    if timestamp is None:
        return None
    try:
        value = timestamp()
    except (TypeError, ValueError, OverflowError):
        return None
    return int(value * 1000) if value > 0 else None
