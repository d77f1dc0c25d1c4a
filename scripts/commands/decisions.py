"""`txguard decisions`: print decisions from the `decisions-tail` pull subscription, one per line.

With `--follow` it streams until Ctrl-C (or `--timeout`); without, it drains what is waiting and
exits. The end-to-end latency shown is now minus the publisher's `published_at` attribute.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from datetime import UTC, datetime


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "decisions",
        help="tail the decisions topic (one line per decision)",
        description="Pull decisions from the decisions-tail subscription (emulator if PUBSUB_EMULATOR_HOST "
        "is set, else the real project with ADC) and print one line each, acking them.",
    )
    parser.add_argument("--follow", "-f", action="store_true", help="keep streaming until Ctrl-C")
    parser.add_argument("--max", type=int, default=None, help="stop after this many decisions")
    parser.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--json", action="store_true", help="print each decision's JSON instead of a summary line")
    parser.add_argument("--project", default=None, help="project id (default GOOGLE_CLOUD_PROJECT)")
    parser.add_argument("--subscription", default=None, help="subscription (default decisions-tail)")
    parser.set_defaults(func=run)


def format_decision(data: bytes, attributes: dict[str, str], now_ms: int | None = None) -> str:
    """One human line for a decision message (tolerant: a malformed body is shown raw)."""
    from shared import names  # noqa: PLC0415

    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    stamp = datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]
    try:
        doc = json.loads(data)
        outcome = str(doc["decision"]).upper()
        score = float(doc["score"])
    except (ValueError, KeyError, TypeError):
        return f"{stamp}  ?       {data[:200]!r}"
    latency = ""
    published_at = attributes.get(names.ATTR_PUBLISHED_AT)
    if published_at and published_at.isdigit():
        latency = f"  e2e={now_ms - int(published_at)}ms"
    reasons = ",".join(doc.get("reasons") or []) or "-"
    return (
        f"{stamp}  {outcome:<6}  {score:5.3f}  {doc.get('transaction_id', '?')}  wallet={doc.get('wallet_id', '?')}"
        f"  model={doc.get('model_version', '?')}{latency}  reasons={reasons}"
    )


def run(args: argparse.Namespace) -> int:
    from google.cloud import pubsub_v1  # noqa: PLC0415

    from shared import names  # noqa: PLC0415
    from shared.settings import CommonSettings  # noqa: PLC0415

    project = args.project or CommonSettings().google_cloud_project
    subscriber = pubsub_v1.SubscriberClient()
    path = subscriber.subscription_path(project, args.subscription or names.DECISIONS_SUBSCRIPTION)
    seen = 0
    lock = threading.Lock()
    done = threading.Event()

    def show(data: bytes, attributes: dict[str, str]) -> None:
        nonlocal seen
        with lock:
            if args.max is not None and seen >= args.max:
                return
            seen += 1
            print(data.decode("utf-8", "replace") if args.json else format_decision(data, attributes), flush=True)
            if args.max is not None and seen >= args.max:
                done.set()

    try:
        if args.follow:
            def callback(message: pubsub_v1.subscriber.message.Message) -> None:
                show(message.data, dict(message.attributes))
                message.ack()

            future = subscriber.subscribe(path, callback=callback)
            with contextlib.suppress(KeyboardInterrupt):
                done.wait(timeout=args.timeout)
            future.cancel()
            with contextlib.suppress(Exception):
                future.result(timeout=10)
        else:
            deadline = time.monotonic() + (args.timeout or 30.0)
            while time.monotonic() < deadline and not done.is_set():
                resp = subscriber.pull(request={"subscription": path, "max_messages": 500}, timeout=5.0)
                if not resp.received_messages:
                    break
                for rm in resp.received_messages:
                    show(rm.message.data, dict(rm.message.attributes))
                subscriber.acknowledge(
                    request={"subscription": path, "ack_ids": [rm.ack_id for rm in resp.received_messages]}
                )
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # noqa: BLE001 - a CLI reports the failure instead of a traceback
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        subscriber.close()
    print(json.dumps({"subscription": path, "decisions": seen}), file=sys.stderr)
    return 0
