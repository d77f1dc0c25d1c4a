"""The enrich function driven in process through functions-framework, with in-memory fakes.

Covers what only the framework decides: a raw Pub/Sub push body is converted to a CloudEvent,
returning acks (2xx), a retryable failure answers 503 (no traceback), a bug 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import functions_framework
import pytest

from tests.enrich_fakes import FakeOutbox, FakeScorer, event_data, make_tx
from txguard.contract import names
from txguard.contract.trace import TraceContext
from txguard.enrichment import pipeline as enrichment
from txguard.enrichment.counterparty.sqlite import SqliteCounterpartyStore
from txguard.enrichment.history.sqlite import SqliteHistoryStore
from txguard.enrichment.pipeline import Enricher
from txguard.enrichment.transaction_index.sqlite import SqliteTransactionIndex

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
SOURCE = str(ROOT / "functions" / "enrich" / "main.py")


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[tuple[object, FakeScorer, FakeOutbox, SqliteHistoryStore]]:
    store = SqliteHistoryStore(tmp_path / "h.sqlite3")
    counterparties = SqliteCounterpartyStore(tmp_path / "h.sqlite3")
    scorer, outbox = FakeScorer(), FakeOutbox()
    enrichment.install(Enricher(store, scorer, outbox, counterparties, SqliteTransactionIndex(tmp_path / "h.sqlite3")))
    app = functions_framework.create_app(target=names.ENRICH_ENTRY_POINT, source=SOURCE,
                                         signature_type="cloudevent")
    yield app.test_client(), scorer, outbox, store
    enrichment.install(None)
    store.close()
    counterparties.close()


def _fixture(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_raw_push_body_is_decided(wired) -> None:
    client, _, outbox, _ = wired
    resp = client.post("/", json=_fixture("pubsub_push_valid.json"))
    assert resp.status_code == 200, resp.data
    [decision] = outbox.decided()
    assert decision.transaction_id == "tx-0001"
    assert outbox.decisions[0].attributes[names.ATTR_PUBLISHED_AT] == "1714564800000"


@pytest.mark.parametrize("header", ["traceparent", "X-Cloud-Trace-Context"])
def test_the_push_requests_trace_reaches_scoring_and_the_decision(wired, header: str) -> None:
    """Cloud Run sets both headers on the push request; either one is the transaction's trace."""
    client, scorer, outbox, _ = wired
    pushed = TraceContext.new()
    value = pushed.traceparent if header == "traceparent" else pushed.cloud_trace_context
    resp = client.post("/", json=_fixture("pubsub_push_valid.json"), headers={header: value})
    assert resp.status_code == 200, resp.data
    (sent,) = scorer.traces
    assert sent.trace_id == pushed.trace_id
    assert outbox.decisions[0].attributes[names.ATTR_TRACEPARENT] == sent.traceparent


def test_push_to_topic_path_is_decided(wired) -> None:
    """Push endpoints may carry the topic in the path; the framework reads the topic from it."""
    client, _, outbox, _ = wired
    resp = client.post("/projects/txguard-test/topics/transactions", json=_fixture("pubsub_push_valid.json"))
    assert resp.status_code == 200
    assert len(outbox.decisions) == 1


def test_structured_cloudevent_is_decided(wired) -> None:
    client, _, outbox, _ = wired
    resp = client.post("/", data=json.dumps(_fixture("cloudevent_pubsub_valid.json")),
                       headers={"Content-Type": "application/cloudevents+json"})
    assert resp.status_code == 200, resp.data
    assert outbox.decided()[0].transaction_id == "tx-0002"


def test_binary_cloudevent_is_decided(wired) -> None:
    client, _, outbox, _ = wired
    event = _fixture("cloudevent_pubsub_valid.json")
    headers = {f"ce-{k}": v for k, v in event.items() if k not in ("data", "datacontenttype")}
    resp = client.post("/", json=event["data"], headers=headers)
    assert resp.status_code == 200, resp.data
    assert len(outbox.decisions) == 1


@pytest.mark.parametrize(
    "fixture",
    sorted(p.name for p in EVENTS.glob("pubsub_push_*.json") if p.name != "pubsub_push_valid.json"),
)
def test_malformed_fixtures_are_parked_and_acked(wired, fixture: str) -> None:
    client, scorer, outbox, _ = wired
    resp = client.post("/", json=_fixture(fixture))
    assert resp.status_code == 200
    [parked] = outbox.invalid
    assert parked.attributes[names.ATTR_REASON]
    assert parked.attributes[names.ATTR_SOURCE_MESSAGE_ID] == _fixture(fixture)["message"]["messageId"]
    assert not outbox.decisions and scorer.calls == 0


def test_scoring_down_answers_503_then_redelivery_is_decided_once(wired, caplog) -> None:
    client, scorer, outbox, store = wired
    tx = make_tx(9)
    scorer.down = True
    assert client.post("/", json=event_data(tx)).status_code == 503
    assert client.post("/", json=event_data(tx)).status_code == 503
    # The enricher logged each retry as one line; the framework adds no traceback for a 503.
    assert not [r for r in caplog.records if r.exc_info]
    scorer.down = False
    assert client.post("/", json=event_data(tx)).status_code == 200
    assert [d.transaction_id for d in outbox.decided()] == [tx.transaction_id]
    assert len(store.wallet_state(tx.wallet_id).ts) == 1


def test_publish_failure_answers_503(wired) -> None:
    client, _, outbox, _ = wired
    outbox.fail = True
    assert client.post("/", json=event_data(make_tx(1))).status_code == 503


def test_push_without_data_field_is_refused_by_the_framework(wired) -> None:
    """A message with attributes only is not recognised as a push body: 400 (then dead-lettered)."""
    client, _, outbox, _ = wired
    body = {"message": {"attributes": {"a": "b"}, "messageId": "5"}, "subscription": "s"}
    assert client.post("/", json=body).status_code == 400
    assert not outbox.invalid and not outbox.decisions


def test_an_unexpected_error_answers_500_and_is_retried(wired, monkeypatch) -> None:
    """A bug is not acked either: 500 (with its traceback in the log), so Pub/Sub redelivers it."""
    client, scorer, outbox, _ = wired

    def broken(_tx: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(scorer, "score", broken)
    assert client.post("/", json=event_data(make_tx(2))).status_code == 500
    assert not outbox.decisions
