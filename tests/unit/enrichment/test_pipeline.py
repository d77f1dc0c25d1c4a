"""Error mapping of the pipeline (ack vs retry) with a real SQLite store and in-memory fakes."""

from __future__ import annotations

import base64
import io
import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from tests.enrich_fakes import FakeOutbox, FakeScorer, event_data, make_tx, push_body
from txguard.contract import names
from txguard.contract.errors import PublishError, ScoringUnavailableError, StoreUnavailableError
from txguard.contract.logs import JsonFormatter
from txguard.contract.trace import SPAN_KEY, TRACE_KEY, TraceContext
from txguard.enrichment.counterparty.sqlite import SqliteCounterpartyStore
from txguard.enrichment.history.sqlite import SqliteHistoryStore
from txguard.enrichment.pipeline import ACKED, DeliveryStatus, Enricher
from txguard.enrichment.transaction_index.sqlite import SqliteTransactionIndex
from txguard.features.timeline import replay_enriched


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Enricher, SqliteHistoryStore, FakeScorer, FakeOutbox]:
    store = SqliteHistoryStore(tmp_path / "h.sqlite3")
    counterparties = SqliteCounterpartyStore(tmp_path / "h.sqlite3")
    scorer, outbox = FakeScorer(), FakeOutbox()
    yield Enricher(store, scorer, outbox, counterparties, SqliteTransactionIndex(tmp_path / "h.sqlite3")), store, scorer, outbox
    store.close()
    counterparties.close()


def _online(store: SqliteHistoryStore, transaction_id: str) -> tuple[dict, dict]:
    record = store.processed(transaction_id)
    return record["features"], record["counterparty"]["features"]


def test_decides_and_publishes_with_attributes(parts) -> None:
    enricher, store, _, outbox = parts
    tx = make_tx(1)
    result = enricher.handle(event_data(tx, attributes={names.ATTR_PUBLISHED_AT: "123"}))
    assert result.status is DeliveryStatus.DECIDED
    [published] = outbox.decisions
    assert published.ordering_key == tx.wallet_id
    assert published.attributes[names.ATTR_TRANSACTION_ID] == tx.transaction_id
    assert published.attributes[names.ATTR_PUBLISHED_AT] == "123"
    assert published.attributes[names.ATTR_MODEL_VERSION] == "fake-1"
    assert store.processed(tx.transaction_id)["decision"]["transaction_id"] == tx.transaction_id
    assert {"validation_us", "store_ms", "scoring_ms", "publish_ms", "total_ms"} <= set(result.timings)


def _json_lines(enricher: Enricher) -> io.StringIO:
    """The enricher's log lines, as JSON in a buffer (the process-wide handler writes to the real stdout)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    enricher.log = logging.getLogger(f"pipeline-test-{id(stream)}")
    enricher.log.addHandler(handler)
    enricher.log.propagate = False
    enricher.log.setLevel(logging.INFO)
    return stream


def test_one_trace_follows_the_delivery(parts) -> None:
    """The push request's trace: on the log line, the scoring call and the decision's attributes."""
    enricher, _, scorer, outbox = parts
    out = _json_lines(enricher)
    pushed = TraceContext.new()
    enricher.handle(event_data(make_tx(1)), pushed)
    (sent,) = scorer.traces
    assert sent.trace_id == pushed.trace_id and sent.span_id != pushed.span_id  # enrichment's own span
    (published,) = outbox.decisions
    assert published.attributes[names.ATTR_TRACEPARENT] == sent.traceparent
    line = json.loads(out.getvalue().strip().splitlines()[-1])
    assert line["status"] == "decided"
    assert line[TRACE_KEY] == f"projects/txguard-local/traces/{pushed.trace_id}"
    assert line[SPAN_KEY] == sent.span_id


def test_a_delivery_without_a_trace_gets_its_own(parts) -> None:
    enricher, _, scorer, outbox = parts
    out = _json_lines(enricher)
    enricher.handle(event_data(make_tx(1)))
    enricher.handle(push_body(b"not json"))
    first = scorer.traces[0]
    assert first is not None and len(first.trace_id) == 32
    assert outbox.decisions[0].attributes[names.ATTR_TRACEPARENT] == first.traceparent
    parked = outbox.invalid[0].attributes[names.ATTR_TRACEPARENT]
    assert parked.split("-")[1] != first.trace_id  # another delivery, another trace
    lines = [json.loads(x) for x in out.getvalue().strip().splitlines()]
    assert [x["status"] for x in lines] == ["decided", "invalid"]
    assert lines[0][TRACE_KEY].endswith(first.trace_id) and lines[1][TRACE_KEY].endswith(parked.split("-")[1])


def test_features_match_offline_replay(parts) -> None:
    """Out-of-order delivery still gives each transaction its point-in-time features."""
    enricher, store, _, outbox = parts
    txs = [make_tx(i) for i in range(30)]
    order = txs[::2] + txs[1::2]  # every odd transaction arrives late
    for i, tx in enumerate(order):
        assert enricher.handle(event_data(tx, message_id=str(i))).status is DeliveryStatus.DECIDED
    offline = {e.transaction_id: (e.features.model_dump(), e.counterparty.model_dump())
               for e in replay_enriched(txs)}
    online = {tx.transaction_id: _online(store, tx.transaction_id) for tx in txs}
    # The even ones were enriched before the odd ones existed: only compare where history agrees.
    # (Counterparty volumes agree too; which transaction was a wallet's first with a counterparty,
    # the `new_wallets` counts, follows the arrival order: docs/counterparty.md, parity.)
    for tx in txs[::2][:1] + txs[1::2][-1:]:
        (wallet, cp), (wallet_off, cp_off) = online[tx.transaction_id], offline[tx.transaction_id]
        assert wallet == wallet_off
        assert (cp["cp_tx_24h"], cp["device_tx_24h"]) == (cp_off["cp_tx_24h"], cp_off["device_tx_24h"])
    assert len(outbox.decisions) == 30


def test_a_transaction_arriving_after_a_later_one_is_flagged_late(parts) -> None:
    """Skew made visible: the late one's decision, its stored record and its log line say so."""
    enricher, store, scorer, outbox = parts
    early, later = make_tx(1), make_tx(2)
    assert enricher.handle(event_data(later, "m1")).late is False
    result = enricher.handle(event_data(early, "m2"))
    assert result.status is DeliveryStatus.DECIDED and result.late is True
    decisions = {d.transaction_id: d for d in outbox.decided()}
    assert decisions[early.transaction_id].late is True and decisions[later.transaction_id].late is False
    assert '"late":true' in outbox.decisions[-1].data.decode()
    assert store.processed(early.transaction_id)["late"] is True
    assert enricher.counts["late"] == 1
    # A redelivery (duplicate) republishes the stored decision, flag included, and counts nothing new.
    again = enricher.handle(event_data(early, "m3"))
    assert again.status is DeliveryStatus.DUPLICATE and again.late is True
    assert outbox.decided()[-1].late is True and enricher.counts["late"] == 1
    # Its own features are exact: only entries before it count.
    offline = {e.transaction_id: e.features for e in replay_enriched([early, later])}
    assert store.processed(early.transaction_id)["features"] == offline[early.transaction_id].model_dump()


def test_late_survives_a_scoring_outage_between_enrichment_and_decision(parts) -> None:
    enricher, store, scorer, outbox = parts
    early, later = make_tx(5), make_tx(6)
    enricher.handle(event_data(later, "m1"))
    scorer.down = True
    with pytest.raises(ScoringUnavailableError):
        enricher.handle(event_data(early, "m2"))
    scorer.down = False
    result = enricher.handle(event_data(early, "m3"))  # features reused from the record, then scored
    assert result.status is DeliveryStatus.DUPLICATE and result.late is True
    assert outbox.decided()[-1].late is True


def test_in_order_features_equal_offline_replay(parts) -> None:
    enricher, store, _, _ = parts
    txs = [make_tx(i, wallet=f"w-{i % 3}") for i in range(45)]
    for i, tx in enumerate(txs):
        assert enricher.handle(event_data(tx, message_id=str(i))).late is False
    for e in replay_enriched(txs):
        assert _online(store, e.transaction_id) == (e.features.model_dump(), e.counterparty.model_dump())
    assert any(e.counterparty.cp_tx_24h > 0 for e in replay_enriched(txs))  # the counterparty view is not empty


def test_duplicate_reuses_features_and_decision(parts) -> None:
    enricher, store, scorer, outbox = parts
    tx = make_tx(3)
    first = enricher.handle(event_data(tx, "a"))
    second = enricher.handle(event_data(tx, "b"))
    assert (first.status, second.status) == (DeliveryStatus.DECIDED, DeliveryStatus.DUPLICATE)
    assert scorer.calls == 1
    assert outbox.decided()[0] == outbox.decided()[1]
    assert store.wallet_state(tx.wallet_id).ts == [tx.timestamp.timestamp()]


@pytest.mark.parametrize("fixture_payload", [b"not json", b"\xff\xfe", b'{"transaction_id": 1}'])
def test_malformed_is_parked_with_original_bytes_and_acked(parts, fixture_payload: bytes) -> None:
    enricher, _, scorer, outbox = parts
    result = enricher.handle(push_body(fixture_payload, message_id="m-7"))
    assert result.status is DeliveryStatus.INVALID and result.status in ACKED
    [parked] = outbox.invalid
    assert parked.data == fixture_payload
    assert parked.attributes[names.ATTR_SOURCE_MESSAGE_ID] == "m-7"
    assert parked.attributes[names.ATTR_ERROR_KIND] in ("json", "encoding", "schema")
    assert parked.attributes[names.ATTR_REASON]
    assert scorer.calls == 0 and not outbox.decisions


def test_not_base64_parks_the_data_string(parts) -> None:
    enricher, _, _, outbox = parts
    body = push_body(b"")
    body["message"]["data"] = "%%% not base64 %%%"
    assert enricher.handle(body).status is DeliveryStatus.INVALID
    assert outbox.invalid[0].data == b"%%% not base64 %%%"
    assert outbox.invalid[0].attributes[names.ATTR_ERROR_KIND] == "encoding"


def test_bad_envelope_is_parked(parts) -> None:
    enricher, _, _, outbox = parts
    assert enricher.handle({"unexpected": True}).status is DeliveryStatus.INVALID
    assert outbox.invalid[0].attributes[names.ATTR_ERROR_KIND] == "envelope"
    assert outbox.invalid[0].attributes[names.ATTR_SOURCE_SUBSCRIPTION] == names.ENRICH_PUSH_SUBSCRIPTION


def test_scoring_down_retries_without_double_apply(parts) -> None:
    enricher, store, scorer, outbox = parts
    tx = make_tx(2)
    scorer.down = True
    for _ in range(3):
        with pytest.raises(ScoringUnavailableError):
            enricher.handle(event_data(tx))
    scorer.down = False
    assert enricher.handle(event_data(tx)).status is DeliveryStatus.DUPLICATE  # features reused, now scored
    assert len(store.wallet_state(tx.wallet_id).ts) == 1
    assert len(outbox.decisions) == 1
    assert enricher.counts["retry"] == 3
    # The counterparty counted it once, and the failed first delivery released its lease.
    assert store.processed(tx.transaction_id)["counterparty"]["applied"] is True
    assert enricher.counterparties.snapshot(make_tx(2, timestamp=tx.timestamp + timedelta(days=1))).counterparty[
        int(tx.timestamp.timestamp() // 86400)]["dn"] == 1
    assert enricher.counterparties.pending_markers() == 0


def test_counterparty_store_down_hands_the_lease_back_and_counts_once(parts, monkeypatch: pytest.MonkeyPatch) -> None:
    enricher, store, _, outbox = parts
    tx = make_tx(9, device_id=None)
    real = enricher.counterparties.apply_transaction

    def half_then_down(t, new_cp, new_dev):  # noqa: ANN001, ANN202 - the counterparty row lands, then an outage
        real(t, new_cp, new_dev)
        raise StoreUnavailableError("bigtable: unavailable")

    monkeypatch.setattr(enricher.counterparties, "apply_transaction", half_then_down)
    with pytest.raises(StoreUnavailableError):
        enricher.handle(event_data(tx, "a"))
    monkeypatch.setattr(enricher.counterparties, "apply_transaction", real)
    # The immediate redelivery is not held back by the lease, and the marker keeps the count at one.
    assert enricher.handle(event_data(tx, "b")).status is DeliveryStatus.DUPLICATE
    probe = make_tx(9, timestamp=tx.timestamp + timedelta(days=1))
    assert enricher.counterparties.snapshot(probe).counterparty[int(tx.timestamp.timestamp() // 86400)]["dn"] == 1
    assert len(outbox.decisions) == 1 and enricher.counterparties.pending_markers() == 0


def test_publish_failure_retries_and_reuses_stored_decision(parts) -> None:
    enricher, _, scorer, outbox = parts
    tx = make_tx(4)
    outbox.fail = True
    with pytest.raises(PublishError):
        enricher.handle(event_data(tx))
    outbox.fail = False
    assert enricher.handle(event_data(tx)).status is DeliveryStatus.DUPLICATE
    assert scorer.calls == 1  # the decision stored by the failed delivery was reused


def test_failure_to_park_is_retryable(parts) -> None:
    enricher, _, _, outbox = parts
    outbox.fail = True
    with pytest.raises(PublishError):
        enricher.handle(push_body(b"garbage"))
    assert enricher.counts["retry"] == 1 and not enricher.counts["invalid"]  # logged as a retry, as labels are


@pytest.mark.parametrize("status", [400, 422])
def test_scoring_rejection_is_parked(parts, status: int) -> None:
    enricher, _, scorer, outbox = parts
    scorer.reject_status = status
    tx = make_tx(5)
    assert enricher.handle(event_data(tx)).status is DeliveryStatus.REJECTED
    assert outbox.invalid[0].attributes[names.ATTR_ERROR_KIND] == "rejected"
    assert base64.b64decode(event_data(tx)["message"]["data"]) == outbox.invalid[0].data


def test_same_id_other_content_is_a_conflict(parts) -> None:
    enricher, _, _, outbox = parts
    enricher.handle(event_data(make_tx(6)))
    other = make_tx(6, amount=999.0)
    assert enricher.handle(event_data(other)).status is DeliveryStatus.REJECTED
    assert outbox.invalid[0].attributes[names.ATTR_ERROR_KIND] == "conflict"


def test_store_unavailable_propagates(parts, monkeypatch: pytest.MonkeyPatch) -> None:
    enricher, store, _, _ = parts

    def down(tx, counterparty):
        raise StoreUnavailableError("locked")

    monkeypatch.setattr(store, "enrich_once", down)
    with pytest.raises(StoreUnavailableError):
        enricher.handle(event_data(make_tx(7)))
    assert enricher.counts["retry"] == 1


def test_unexpected_errors_propagate(parts, monkeypatch: pytest.MonkeyPatch) -> None:
    enricher, _, scorer, _ = parts
    monkeypatch.setattr(scorer, "score", lambda tx: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        enricher.handle(event_data(make_tx(8)))
    assert enricher.counts["error"] == 1


def test_the_counterparty_update_and_the_scoring_call_overlap(parts, monkeypatch: pytest.MonkeyPatch) -> None:
    """The two do not depend on each other: neither waits for the other (a barrier both must reach
    at once), the decision is recorded only after both, and the counterparty markers are dropped
    while the decision is published."""
    import threading

    enricher, store, scorer, outbox = parts
    barrier = threading.Barrier(2, timeout=10)
    real_apply, real_score = enricher.counterparties.apply_transaction, scorer.score
    applied: list[str] = []

    def apply(t, new_cp, new_dev):  # noqa: ANN001, ANN202
        barrier.wait()
        done = real_apply(t, new_cp, new_dev)
        applied.append(t.transaction_id)
        return done

    def score(tx):  # noqa: ANN001, ANN202
        barrier.wait()
        return real_score(tx)

    monkeypatch.setattr(enricher.counterparties, "apply_transaction", apply)
    monkeypatch.setattr(scorer, "score", score)
    tx = make_tx(11)
    result = enricher.handle(event_data(tx))
    assert result.status is DeliveryStatus.DECIDED
    assert applied == [tx.transaction_id] and len(outbox.decisions) == 1
    record = store.processed(tx.transaction_id)
    assert record["counterparty"]["applied"] and record["decision"] is not None
    assert enricher.counterparties.pending_markers() == 0


def test_scoring_down_while_the_counterparty_update_lands_still_counts_once(parts) -> None:
    """Scoring fails while the update (run beside it) succeeds: the update is recorded applied at
    once, the redelivery scores without applying it again."""
    enricher, store, scorer, outbox = parts
    tx = make_tx(12, device_id=None)
    scorer.down = True
    with pytest.raises(ScoringUnavailableError):
        enricher.handle(event_data(tx, "a"))
    assert store.processed(tx.transaction_id)["counterparty"]["applied"]
    scorer.down = False
    assert enricher.handle(event_data(tx, "b")).status is DeliveryStatus.DUPLICATE
    probe = make_tx(12, timestamp=tx.timestamp + timedelta(days=1))
    assert enricher.counterparties.snapshot(probe).counterparty[int(tx.timestamp.timestamp() // 86400)]["dn"] == 1
    assert len(outbox.decisions) == 1 and enricher.counterparties.pending_markers() == 0
