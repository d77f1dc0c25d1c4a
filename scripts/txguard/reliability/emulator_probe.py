"""How the Pub/Sub emulator redelivers failing pushes, with and without a retry policy.

    python -m scripts.reliability.emulator_probe --messages 20 --seconds 90            # with the policy
    python -m scripts.reliability.emulator_probe --messages 20 --seconds 40 --no-retry-policy

A loopback endpoint answers 500 to every push; the subscription has production's dead-letter
policy (10 attempts) and, unless --no-retry-policy, its retry policy (1-60 s backoff). After
`--seconds` it prints one JSON line: how many attempts each message got (histogram), how many
were dead-lettered, and how long ago the last push came. docs/reliability.md quotes it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from txguard.contract import names
from txguard.local import emulators

PROJECT = "txguard-probe"


def probe(messages: int, seconds: float, retry_policy: bool, workdir: Path) -> dict[str, Any]:
    import os

    attempts: Counter[str] = Counter()
    last_push = [0.0]

    class Failing(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            attempts[body["message"]["messageId"]] += 1
            last_push[0] = time.monotonic()
            self.send_response(500)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    emu = emulators.start_pubsub(PROJECT, workdir)
    try:
        os.environ["PUBSUB_EMULATOR_HOST"] = emu.env_value
        from google.cloud import pubsub_v1
        from google.protobuf import duration_pb2

        spec = names.subscription(names.ENRICH_PUSH_SUBSCRIPTION)
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        topic, dead = publisher.topic_path(PROJECT, "probe-in"), publisher.topic_path(PROJECT, "probe-dead")
        for path in (topic, dead):
            publisher.create_topic(name=path)
        dead_sub = subscriber.subscription_path(PROJECT, "probe-dead-inspect")
        subscriber.create_subscription(request={"name": dead_sub, "topic": dead})
        request: dict[str, Any] = {
            "name": subscriber.subscription_path(PROJECT, "probe-push"), "topic": topic, "ack_deadline_seconds": 60,
            "push_config": {"push_endpoint": f"http://127.0.0.1:{server.server_port}/"},
            "dead_letter_policy": {"dead_letter_topic": dead, "max_delivery_attempts": spec.max_delivery_attempts},
        }
        if retry_policy:
            request["retry_policy"] = {"minimum_backoff": duration_pb2.Duration(seconds=spec.min_backoff_seconds),
                                       "maximum_backoff": duration_pb2.Duration(seconds=spec.max_backoff_seconds)}
        subscriber.create_subscription(request=request)
        for i in range(messages):
            publisher.publish(topic, f"m{i}".encode()).result(timeout=30)
        time.sleep(seconds)
        dead_lettered = len(subscriber.pull(request={"subscription": dead_sub, "max_messages": 1000},
                                            timeout=10).received_messages)
        subscriber.close()
        publisher.transport.close()
    finally:
        emu.stop()
        server.shutdown()
    return {
        "messages": messages, "retry_policy": retry_policy, "seconds": seconds,
        "max_delivery_attempts": spec.max_delivery_attempts,
        "attempts_histogram": {str(k): v for k, v in sorted(Counter(attempts.values()).items())},
        "dead_lettered": dead_lettered,
        "last_push_s_ago": round(time.monotonic() - last_push[0], 1) if last_push[0] else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--no-retry-policy", action="store_true")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="txguard-probe-"))
    print(json.dumps(probe(args.messages, args.seconds, not args.no_retry_policy, workdir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
