"""The enrichment function end to end on the real emulators, served as Cloud Run serves it.

Pub/Sub emulator (topics and subscriptions from shared/txguard/contract/names.py via scripts/txguard/local/topology.py)
-> `functions-framework` (gunicorn) enrich process -> Firestore emulator history -> the real
scoring function (functions/score, a tiny ONNX model from a tmp registry) over HTTP ->
`decisions` / `invalid` topics, pulled here. Each test gets its own project id (separate topics
and Firestore data on the same emulators).

Emulator limitation (measured, see docs/enrichment.md): with a retry policy on a push
subscription, the Pub/Sub emulator stops redelivering a message after its third failed push.
The push subscription is therefore created here without the retry policy (the emulator then
redelivers about once a second) and with max_delivery_attempts raised to the maximum (100) so the
dead-letter budget still spans minutes, as production's 10 attempts with 1-60 s backoff do.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.enrich_fakes import make_tx
from tests.scoring_fixtures import publish_tiny
from txguard.contract import names
from txguard.contract.models import Decision
from txguard.enrichment.history.firestore import FirestoreHistoryStore
from txguard.features.timeline import replay_enriched
from txguard.features.wallet import TxPoint, WalletState, apply
from txguard.local import emulators
from txguard.local.bigtable import drop_tables, ensure_tables
from txguard.local.processes import FunctionProcess, enrich_process, scoring_process
from txguard.local.topology import delete_topology, ensure_topology, subscription_request

pytestmark = pytest.mark.emulators

EMULATOR_MAX_DELIVERY_ATTEMPTS = 100


@pytest.fixture(scope="module")
def model_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    registry = tmp_path_factory.mktemp("enrich-registry") / "registry"
    publish_tiny(registry)
    return f"{registry}@production"


def start_scoring(workdir: Path, model_uri: str, port: int | None = None) -> FunctionProcess:
    proc = scoring_process(workdir, {"MODEL_URI": model_uri}, threads=1, port=port)
    return proc.start(ready_path="/health", ready_ok=(200,))


def create_topology(project: str, enrich_url: str) -> None:
    """Everything from names.py; the push subscription without retry policy (module docstring)."""
    from google.cloud import pubsub_v1

    push = names.subscription(names.ENRICH_PUSH_SUBSCRIPTION)
    others = tuple(s for s in names.SUBSCRIPTIONS if s.push_to is None)
    ensure_topology(project, {}, subscriptions=others)
    request = subscription_request(project, push, {names.ENRICH_FUNCTION: enrich_url}, emulator=True)
    request.pop("retry_policy")
    request["dead_letter_policy"]["max_delivery_attempts"] = EMULATOR_MAX_DELIVERY_ATTEMPTS
    subscriber = pubsub_v1.SubscriberClient()
    try:
        subscriber.create_subscription(request=request)
    finally:
        subscriber.close()


@dataclass
class Pipeline:
    project: str
    enrich: FunctionProcess
    scoring: FunctionProcess
    store: FirestoreHistoryStore
    publisher: object
    subscriber: object
    seen: dict[str, list] = field(default_factory=dict)

    def publish(self, data: bytes, **attrs: str) -> None:
        topic = self.publisher.topic_path(self.project, names.TRANSACTIONS_TOPIC)
        self.publisher.publish(topic, data, **attrs).result(timeout=30)

    def publish_txs(self, txs) -> None:
        topic = self.publisher.topic_path(self.project, names.TRANSACTIONS_TOPIC)
        futures = [self.publisher.publish(topic, tx.model_dump_json().encode(),
                                          **{names.ATTR_PUBLISHED_AT: str(int(time.time() * 1000))})
                   for tx in txs]
        for f in futures:
            f.result(timeout=30)

    def pull(self, subscription: str, until: Callable[[list], bool], timeout: float = 90.0,
             settle: float = 1.5) -> list:
        """Pull (and ack) until `until(all so far)` holds, then `settle` more seconds for stragglers."""
        from google.api_core import exceptions as gexc

        path = self.subscriber.subscription_path(self.project, subscription)
        got = self.seen.setdefault(subscription, [])
        deadline = time.monotonic() + timeout
        settle_until = None
        while time.monotonic() < (settle_until or deadline):
            try:
                resp = self.subscriber.pull(request={"subscription": path, "max_messages": 500}, timeout=5)
            except gexc.DeadlineExceeded:
                continue
            if resp.received_messages:
                self.subscriber.acknowledge(request={"subscription": path,
                                                     "ack_ids": [m.ack_id for m in resp.received_messages]})
                got.extend(m.message for m in resp.received_messages)
            else:
                time.sleep(0.2)
            if settle_until is None and until(got):
                settle_until = time.monotonic() + settle
        return list(got)

    def decisions(self, until: Callable[[list[Decision]], bool], **kw) -> list[Decision]:
        msgs = self.pull(names.DECISIONS_SUBSCRIPTION, lambda got: until(_decisions(got)), **kw)
        return _decisions(msgs)


def _decisions(msgs: list) -> list[Decision]:
    return [Decision.model_validate_json(m.data) for m in msgs]


def _ids(decisions: list[Decision]) -> set[str]:
    return {d.transaction_id for d in decisions}


@pytest.fixture
def pipeline(pubsub_emulator: emulators.Emulator, firestore_emulator: emulators.Emulator,
             bigtable_emulator: emulators.Emulator, model_uri: str,
             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    from google.cloud import pubsub_v1

    project = f"txg-{uuid.uuid4().hex[:8]}"
    hosts = {"PUBSUB_EMULATOR_HOST": pubsub_emulator.env_value,
             "FIRESTORE_EMULATOR_HOST": firestore_emulator.env_value,
             "BIGTABLE_EMULATOR_HOST": bigtable_emulator.env_value, "GOOGLE_CLOUD_PROJECT": project}
    for key, value in hosts.items():
        monkeypatch.setenv(key, value)
    ensure_tables(project)
    scoring = start_scoring(tmp_path, model_uri)
    enrich = enrich_process(tmp_path, {**hosts, "SCORING_URL": scoring.url, "SCORING_AUTH": "none",
                                       "HISTORY_STORE": "firestore", "COUNTERPARTY_STORE": "bigtable",
                                       "SCORING_TIMEOUT_S": "5"}, threads=8)
    enrich.start()
    create_topology(project, enrich.url)
    p = Pipeline(project, enrich, scoring, FirestoreHistoryStore(project=project), pubsub_v1.PublisherClient(),
                 pubsub_v1.SubscriberClient())
    try:
        yield p
    finally:
        enrich.stop()
        scoring.stop()
        delete_topology(project)
        drop_tables(project)
        p.subscriber.close()
        p.store.close()
        print(f"\nenrich log: {enrich.log_path}")


def _sequential(txs) -> WalletState:
    state = WalletState()
    for tx in sorted(txs, key=lambda t: t.timestamp):
        apply(state, TxPoint.of(tx))
    return state


def offline_scorer(model_uri: str):
    """The scoring core in process, on the same registry model, for offline expectations."""
    from txguard.contract.settings import ScoringSettings
    from txguard.scoring.service import ScoringService

    service = ScoringService.load(ScoringSettings(MODEL_URI=model_uri))
    assert service.state.champion is not None, service.state.load_error
    return service.state.champion


def test_every_transaction_decided_once_with_offline_features(pipeline: Pipeline, model_uri: str) -> None:
    """Rounds (one transaction per wallet per round) keep each wallet in time order, so the
    online features must equal the offline replay exactly."""
    wallets, rounds = 8, 8
    txs = {(w, r): make_tx(r, wallet=f"wallet-{w}") for w in range(wallets) for r in range(rounds)}
    for r in range(rounds):
        batch = [txs[(w, r)] for w in range(wallets)]
        pipeline.publish_txs(batch)
        want = (r + 1) * wallets
        pipeline.decisions(lambda d, want=want: len(_ids(d)) >= want, settle=0)
    decisions = pipeline.decisions(lambda d: True, settle=2.0)
    all_txs = list(txs.values())
    assert len(decisions) == len(all_txs)  # exactly N: none lost, none duplicated
    assert _ids(decisions) == {tx.transaction_id for tx in all_txs}
    offline = {e.transaction_id: e for e in replay_enriched(all_txs)}
    for tx in all_txs:
        record = pipeline.store.processed(tx.transaction_id)
        assert record["features"] == offline[tx.transaction_id].features.model_dump()
        assert record["counterparty"]["features"] == offline[tx.transaction_id].counterparty.model_dump()
    scorer = offline_scorer(model_uri)
    for d in decisions:  # the decision is the model's answer to the offline-enriched transaction
        expected = scorer.score(offline[d.transaction_id])
        assert (d.outcome, d.model_version, d.reasons) == (expected.outcome, expected.model_version,
                                                            expected.reasons)
        assert d.score == pytest.approx(expected.score, abs=1e-6)


def test_duplicates_are_not_double_counted(pipeline: Pipeline) -> None:
    txs = [make_tx(i, wallet=f"dup-{i % 5}") for i in range(40)]
    pipeline.publish_txs(txs + txs)
    decisions = pipeline.decisions(lambda d: len(d) >= 2 * len(txs), timeout=120)
    assert _ids(decisions) == {tx.transaction_id for tx in txs}
    by_id: dict[str, list[Decision]] = {}
    for d in decisions:
        by_id.setdefault(d.transaction_id, []).append(d)
    assert all(len({d.model_dump_json() for d in v}) == 1 for v in by_id.values()), "duplicates differ"
    for w in range(5):
        wallet = f"dup-{w}"
        assert pipeline.store.wallet_state(wallet) == _sequential([t for t in txs if t.wallet_id == wallet])


def test_malformed_messages_go_to_invalid_with_a_reason(pipeline: Pipeline) -> None:
    good = [make_tx(i, wallet="ok-wallet") for i in range(10)]
    doc = json.loads(good[0].model_dump_json())
    bad = {
        "not-json": b"{this is not json",
        "not-utf8": b'{"transaction_id": "\xff\xfe"}',
        "schema": json.dumps({**doc, "transaction_id": "bad-1", "currency": "ZZZ"}).encode(),
        "nan": json.dumps({**doc, "transaction_id": "bad-2", "amount": float("nan")}).encode(),
        "future": json.dumps({**doc, "transaction_id": "bad-3", "timestamp": "2999-01-01T00:00:00Z"}).encode(),
        "oversized": json.dumps({**doc, "transaction_id": "bad-4", "x": "y" * 70_000}).encode(),
        "empty-json": b"{}",
    }
    for label, data in bad.items():
        pipeline.publish(data, label=label)
    pipeline.publish_txs(good)
    invalid = pipeline.pull(names.INVALID_SUBSCRIPTION, lambda got: len(got) >= len(bad))
    decisions = pipeline.decisions(lambda d: len(d) >= len(good))
    assert len(invalid) == len(bad)
    parked = {m.data: m.attributes for m in invalid}
    assert set(parked) == set(bad.values())  # the original bytes
    for attrs in parked.values():
        assert attrs[names.ATTR_REASON] and attrs[names.ATTR_ERROR_KIND]
        assert attrs[names.ATTR_SOURCE_MESSAGE_ID] not in ("", "unknown")
    assert parked[bad["oversized"]][names.ATTR_ERROR_KIND] == "oversized"
    assert parked[bad["not-utf8"]][names.ATTR_ERROR_KIND] == "encoding"
    assert _ids(decisions) == {tx.transaction_id for tx in good} and len(decisions) == len(good)


def test_scoring_outage_then_recovery_decides_everything_once(pipeline: Pipeline, model_uri: str) -> None:
    pipeline.scoring.stop()
    txs = [make_tx(i, wallet=f"outage-{i % 4}") for i in range(30)]
    pipeline.publish_txs(txs)
    time.sleep(4)  # deliveries fail (500) and are redelivered with backoff
    assert not pipeline.pull(names.DECISIONS_SUBSCRIPTION, lambda got: True, timeout=2, settle=0)
    restarted = start_scoring(pipeline.scoring.workdir, model_uri, port=pipeline.scoring.port)
    pipeline.scoring = restarted
    try:
        decisions = pipeline.decisions(lambda d: len(_ids(d)) >= len(txs), timeout=150, settle=3)
        assert _ids(decisions) == {tx.transaction_id for tx in txs}
        for w in range(4):
            wallet = f"outage-{w}"
            assert pipeline.store.wallet_state(wallet) == _sequential([t for t in txs if t.wallet_id == wallet])
        dead = pipeline.pull(names.DEAD_LETTER_SUBSCRIPTION, lambda got: True, timeout=2, settle=0)
        assert dead == []
        retries = [json.loads(line) for line in pipeline.enrich.log_path.read_text().splitlines()
                   if line.startswith("{") and '"status":"retry"' in line]
        assert retries, "the outage should have made deliveries fail and be retried"
    finally:
        restarted.stop()


def test_published_at_is_passed_through(pipeline: Pipeline) -> None:
    tx = make_tx(1, wallet="latency-wallet")
    pipeline.publish(tx.model_dump_json().encode(), **{names.ATTR_PUBLISHED_AT: "1714564800123"})
    msgs = pipeline.pull(names.DECISIONS_SUBSCRIPTION, lambda got: len(got) >= 1)
    assert msgs[0].attributes[names.ATTR_PUBLISHED_AT] == "1714564800123"
    assert msgs[0].attributes[names.ATTR_TRANSACTION_ID] == tx.transaction_id
    assert msgs[0].attributes[names.ATTR_OUTCOME] in ("allow", "review", "block")
    assert Decision.model_validate_json(msgs[0].data).transaction_id == tx.transaction_id
