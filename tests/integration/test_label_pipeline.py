"""The label function end to end on the emulators, served as Cloud Run serves it.

Pub/Sub emulator `labels` and `labels-analyst` topics -> their push subscriptions, each on its own
path of the label function under functions-framework (gunicorn) -> Bigtable emulator counterparty
table, each label checked against the transaction index (written here as enrichment writes it);
malformed and refused labels -> `invalid`, pulled here. Duplicates, reversals (one arriving before
the label it withdraws), an analyst's verdict on a counterparty with no aggregates yet, a label of a
transaction nobody saw (retried, then parked), one whose counterparty disagrees with the record, one
on the wrong route: nothing lost, nothing counted twice, nothing refused counted.
As in test_enrich_pipeline.py, the push subscriptions are created without a retry policy (the
emulator's backoff scheduler stops after a few failed pushes).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.enrich_fakes import make_tx
from txguard.contract import names
from txguard.contract.models import LabelEvent
from txguard.enrichment.counterparty.bigtable import BigtableCounterpartyStore
from txguard.enrichment.transaction_index.bigtable import BigtableTransactionIndex
from txguard.local import emulators
from txguard.local.bigtable import drop_tables, ensure_tables
from txguard.local.processes import FunctionProcess, label_process
from txguard.local.topology import delete_topology, ensure_topology, subscription_request

pytestmark = pytest.mark.emulators


class Stack:
    def __init__(self, project: str, function: FunctionProcess, store: BigtableCounterpartyStore) -> None:
        from google.cloud import pubsub_v1

        self.project, self.function, self.store = project, function, store
        self.publisher, self.subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()

    def publish(self, *payloads: bytes, topic_name: str = names.LABELS_TOPIC) -> None:
        topic = self.publisher.topic_path(self.project, topic_name)
        for f in [self.publisher.publish(topic, p) for p in payloads]:
            f.result(timeout=30)

    def pull_invalid(self, want: int, timeout: float = 60.0) -> list:
        path = self.subscriber.subscription_path(self.project, names.INVALID_SUBSCRIPTION)
        got: list = []
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            resp = self.subscriber.pull(request={"subscription": path, "max_messages": 100}, timeout=10)
            if resp.received_messages:
                self.subscriber.acknowledge(request={"subscription": path,
                                                     "ack_ids": [m.ack_id for m in resp.received_messages]})
                got += [m.message for m in resp.received_messages]
        return got

    def frauds(self, counterparty: str, at) -> int:  # noqa: ANN001
        probe = make_tx(9999, counterparty_id=counterparty, timestamp=at)
        return sum(c.get("df", 0) for c in self.store.snapshot(probe).counterparty.values())

    def wait_frauds(self, counterparty: str, at, want: int, timeout: float = 90.0) -> int:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while (got := self.frauds(counterparty, at)) != want and time.monotonic() < deadline:
            time.sleep(0.5)
        return got


@pytest.fixture
def stack(pubsub_emulator: emulators.Emulator, bigtable_emulator: emulators.Emulator, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    from google.cloud import pubsub_v1

    project = f"txg-{uuid.uuid4().hex[:8]}"
    hosts = {"PUBSUB_EMULATOR_HOST": pubsub_emulator.env_value, "BIGTABLE_EMULATOR_HOST": bigtable_emulator.env_value,
             "GOOGLE_CLOUD_PROJECT": project}
    for key, value in hosts.items():
        monkeypatch.setenv(key, value)
    ensure_tables(project)
    # A label of an unknown transaction is retried 30 s here (production: LABEL_UNKNOWN_RETRY_S, 180 s): long
    # enough for its first push to come within it on a loaded machine, short enough for the test.
    function = label_process(tmp_path, {**hosts, "COUNTERPARTY_STORE": "bigtable", "LABEL_UNKNOWN_RETRY_S": "30"},
                             threads=4).start()
    ensure_topology(project, {}, subscriptions=tuple(s for s in names.SUBSCRIPTIONS if s.push_to is None))
    subscriber = pubsub_v1.SubscriberClient()
    for route in names.LABEL_ROUTES:
        request = subscription_request(project, names.subscription(route.subscription),
                                       {names.LABEL_FUNCTION: function.url}, emulator=True, retry_policy=False)
        request["dead_letter_policy"]["max_delivery_attempts"] = 100
        subscriber.create_subscription(request=request)
    subscriber.close()
    store = BigtableCounterpartyStore(project=project)
    s = Stack(project, function, store)
    try:
        yield s
    finally:
        function.stop()
        delete_topology(project)
        s.subscriber.close()
        store.close()
        drop_tables(project)
        print(f"\nlabel log: {function.log_path}")


def test_labels_applied_once_reversed_and_malformed_or_refused_parked(stack: Stack) -> None:
    txs = [make_tx(i, wallet=f"victim-{i}", counterparty_id="skimmed-shop") for i in range(20)]
    new_shop = make_tx(50, wallet="victim-50", counterparty_id="never-seen-shop")
    index = BigtableTransactionIndex(stack.store.client, project=stack.project)
    for tx in [*txs, new_shop]:  # what enrichment recorded when it applied them
        index.record(tx)

    def label(tx, suffix: str, **over) -> LabelEvent:  # noqa: ANN001, ANN003
        fields = {"label_id": f"{tx.transaction_id}:{suffix}", "transaction_id": tx.transaction_id,
                  "wallet_id": tx.wallet_id, "counterparty_id": tx.counterparty_id, "device_id": tx.device_id,
                  "transaction_time": tx.timestamp, "known_at": tx.timestamp + timedelta(days=2),
                  "kind": "chargeback", "is_fraud": True, "source": "issuer:bank-1"}
        return LabelEvent(**{**fields, **over})

    chargebacks = [label(tx, "cb") for tx in txs]
    reversals = [label(tx, "rv", kind="reversal", is_fraud=None, reverses=f"{tx.transaction_id}:cb",
                       known_at=tx.timestamp + timedelta(days=3)) for tx in txs[:6]]
    malformed = [b"{not json", json.dumps({"label_id": "x", "kind": "chargeback"}).encode()]
    ghost = label(make_tx(60, wallet="nobody"), "cb")  # a transaction txguard never saw
    moved = label(txs[7], "cb-moved", counterparty_id="m00042")  # disagrees with the record
    analyst = label(new_shop, "an", kind="analyst", source="analyst:alice")
    refused = [ghost, moved, analyst.model_copy(update={"label_id": "wrong-route"})]  # the last on the feed's topic
    # A reversal that arrives before the chargeback it withdraws, then duplicates of everything.
    stack.publish(reversals[0].model_dump_json().encode())
    stack.publish(*[lb.model_dump_json().encode() for lb in chargebacks + reversals[1:] + refused], *malformed)
    stack.publish(analyst.model_dump_json().encode(), topic_name=names.ANALYST_LABELS_TOPIC)
    stack.publish(*[lb.model_dump_json().encode() for lb in chargebacks[:10] + reversals])

    at = txs[-1].timestamp + timedelta(days=10)
    assert stack.wait_frauds("skimmed-shop", at, want=14) == 14  # 20 chargebacks, 6 withdrawn
    assert stack.wait_frauds("never-seen-shop", at, want=1) == 1
    invalid = stack.pull_invalid(want=len(malformed) + len(refused), timeout=150)  # the ghost waits 30 s first
    assert sorted(m.data for m in invalid) == sorted(malformed + [lb.model_dump_json().encode() for lb in refused])
    assert all(m.attributes[names.ATTR_REASON] and m.attributes[names.ATTR_ERROR_KIND] for m in invalid)
    kinds = {json.loads(m.data)["label_id"]: m.attributes[names.ATTR_ERROR_KIND] for m in invalid
             if m.data not in malformed}
    assert kinds == {ghost.label_id: "unknown_transaction", moved.label_id: "mismatch", "wrong-route": "source"}
    time.sleep(2)  # stragglers: nothing more may change
    assert stack.frauds("skimmed-shop", at) == 14 and stack.frauds("m00042", at) == 0
    log = [json.loads(line) for line in stack.function.log_path.read_text().splitlines() if line.startswith("{")]
    statuses = [entry.get("status") for entry in log if entry.get("status")]
    assert statuses.count("duplicate") >= 16 and "error" not in statuses
    assert "retry" in statuses  # the ghost was retried before it was parked
