"""The publisher: transactions onto the `transactions` topic, paced, one wallet per ordering key.

- `messages`: what goes on the wire (`Outgoing`), timestamp shifting, injected invalid events;
- `sources`: simulated scenarios (normal, fraud, burst, drift) and replay of JSONL/CSV files;
- `pacing`: a fixed rate (tx/s) or a speed multiplier over the events' own timestamps;
- `transport`: google-cloud-pubsub (emulator or real project) behind a small `Transport` protocol;
- `run`: the publish loop (bounded in-flight, stats, per-message callbacks for end-to-end tracking).

Used by `txguard publish`, `txguard local up` and the e2e tests; never by the functions.
"""

from txguard.publisher.messages import Outgoing, corrupt, from_labelled, shift_to_end_at
from txguard.publisher.pacing import Pacer
from txguard.publisher.run import PublishStats, publish_all
from txguard.publisher.sources import SCENARIOS, make_stream, read_file, simulated
from txguard.publisher.transport import PubSubTransport, Transport

__all__ = [
    "SCENARIOS",
    "Outgoing",
    "Pacer",
    "PubSubTransport",
    "PublishStats",
    "Transport",
    "corrupt",
    "from_labelled",
    "make_stream",
    "publish_all",
    "read_file",
    "shift_to_end_at",
    "simulated",
]
