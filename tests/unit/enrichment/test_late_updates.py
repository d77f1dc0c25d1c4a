"""Late counterparty, device and wallet-label updates: when one is late, that the SQLite store says so
exactly, and that the enrichment and label functions log one line per late entity.

The Bigtable store runs the same cases on the emulator (tests/integration/test_counterparty_bigtable.py).
"""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.enrich_fakes import (
    FakeOutbox,
    FakeScorer,
    event_data,
    label_core,
    make_tx,
    published_now,
    push_body,
)
from txguard.contract.logs import EVENT_KEY, LATE_UPDATE_EVENT, JsonFormatter
from txguard.contract.models import LabelEvent, Transaction
from txguard.contract.names import label_route_of_kind
from txguard.enrichment.counterparty.lateness import EntityKind, Update, find_late
from txguard.enrichment.counterparty.sqlite import SqliteCounterpartyStore
from txguard.enrichment.history.sqlite import SqliteHistoryStore
from txguard.enrichment.pipeline import DeliveryStatus, Enricher
from txguard.enrichment.transaction_index.sqlite import SqliteTransactionIndex
from txguard.features.counterparty import (
    EntityKeys,
    bucket_end,
    first_read,
    fraud_increments,
    transaction_increments,
)

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def tx_at(minutes: float, wallet: str, counterparty: str = "shop", device: str | None = None, i: int = 0) -> Transaction:
    return make_tx(i, wallet=wallet, counterparty_id=counterparty, device_id=device,
                   timestamp=T0 + timedelta(minutes=minutes), transaction_id=f"{wallet}-{minutes}-{i}")


def label_for(tx: Transaction, known_minutes: float, label_id: str = "cb", **over: object) -> LabelEvent:
    fields = {"label_id": f"{tx.transaction_id}:{label_id}", "transaction_id": tx.transaction_id,
              "wallet_id": tx.wallet_id, "counterparty_id": tx.counterparty_id, "device_id": tx.device_id,
              "transaction_time": tx.timestamp, "known_at": T0 + timedelta(minutes=known_minutes),
              "kind": "chargeback", "is_fraud": True, **over}
    return LabelEvent.model_validate(fields)


@pytest.fixture
def store(tmp_path: Path) -> SqliteCounterpartyStore:
    s = SqliteCounterpartyStore(tmp_path / "cp.sqlite3")
    yield s
    s.close()


# when an update is visible -------------------------------------------------------------------------
def test_a_cell_is_read_from_the_end_of_its_bucket() -> None:
    day = 20_000
    assert bucket_end(day, "m000n") == day * 86400 + 300
    assert bucket_end(day, "h23a") == (day + 1) * 86400
    assert bucket_end(day, "dn") == bucket_end(day, "g07") == (day + 1) * 86400


def test_a_transaction_is_visible_from_the_end_of_its_slot_and_a_label_from_its_hour_once_known() -> None:
    tx = tx_at(2.5, "w-a", device="dev")
    keys = EntityKeys.of(tx.wallet_id, tx.counterparty_id, tx.device_id)
    update = Update.of_transaction(tx, transaction_increments(tx, True, True))
    slot_end = (T0 + timedelta(minutes=5)).timestamp()
    assert update.visible_from() == {keys.counterparty: slot_end, keys.device: slot_end}
    label = label_for(tx, 30)
    assert Update.of_label(label, ()).visible_from() == {}  # a label that changed nothing
    fraud = tuple(fraud_increments(keys.all(), label.known_at.timestamp(), +1))
    hour_end = (T0 + timedelta(hours=1)).timestamp()
    assert set(Update.of_label(label, fraud).visible_from().values()) == {hour_end}
    # A withdrawal from buckets that ended long ago counts from the moment it became known.
    withdrawn = tuple(fraud_increments(keys.all(), (T0 - timedelta(days=2)).timestamp(), -1))
    known = (T0 + timedelta(minutes=30)).timestamp()
    assert set(first_read(withdrawn, known).values()) == {known}


def test_late_only_when_a_read_reached_past_the_moment_the_update_became_visible() -> None:
    tx = tx_at(2.5, "w-a")
    key = EntityKeys.of(tx.wallet_id, tx.counterparty_id, None).counterparty
    update = Update.of_transaction(tx, transaction_increments(tx, True, False))
    slot = (T0 + timedelta(minutes=5)).timestamp()  # the first slot whose reads include it
    assert find_late(update, {}) == ()
    assert find_late(update, {key: slot - 300}) == ()  # read in its own slot: could not see it yet
    (late,) = find_late(update, {key: slot})
    assert (late.kind, late.entity_id, late.transaction_id, late.label_id) == (
        EntityKind.COUNTERPARTY, "shop", tx.transaction_id, None)
    assert (late.visible_from, late.read_through) == (slot, slot + 300)
    assert late.lag_s == pytest.approx(slot + 300 - tx.timestamp.timestamp())
    fields = late.log_fields()
    assert fields[EVENT_KEY] == LATE_UPDATE_EVENT and fields["counterparty_id"] == "shop"
    assert fields["event_time"] == "2026-03-02T10:02:30.000Z" and fields["read_through"] == "2026-03-02T10:10:00.000Z"


# the SQLite store ----------------------------------------------------------------------------------
def test_an_update_applied_after_a_later_read_of_its_counterparty_and_device_is_late(store) -> None:
    early, later = tx_at(2, "w-a", device="dev-1"), tx_at(7, "w-b", device="dev-1")
    store.read_before(later)  # w-b's transaction is scored first: it reads through 10:05
    applied = store.apply_transaction(early, True, True)
    assert applied.added
    assert {(u.kind, u.entity_id) for u in applied.late} == {(EntityKind.COUNTERPARTY, "shop"),
                                                            (EntityKind.DEVICE, "dev-1")}
    # The state is exact all the same: a read now sees it.
    assert store.snapshot(later).counterparty[later.timestamp.timestamp() // 86400]["dn"] == 1
    # A redelivery that takes the update over reports it again (the first delivery may have died
    # before it could), though it adds nothing.
    again = store.apply_transaction(early, True, True)
    assert not again.added and again.late == applied.late


def test_reads_of_the_same_slot_or_earlier_and_plain_snapshots_do_not_make_it_late(store) -> None:
    early = tx_at(2, "w-a", device="dev-1")
    store.read_before(tx_at(4.9, "w-b", device="dev-1"))  # same slot as `early`: cannot include it
    store.read_before(tx_at(1, "w-c", counterparty="other", device="dev-1"))
    store.snapshot(tx_at(60, "w-d"))  # inspection (the console's manual scoring) records nothing
    assert store.apply_transaction(early, True, True).late == ()


def test_a_read_more_than_the_window_later_does_not_count(store) -> None:
    early = tx_at(2, "w-a")
    store.read_before(tx_at(2 + 31 * 24 * 60, "w-b"))  # 31 days later: its features no longer read that day
    assert store.apply_transaction(early, True, False).late == ()


def test_a_label_known_before_transactions_that_read_without_it_is_late_at_each_entity_they_read(store) -> None:
    victim = tx_at(0, "w-v", device="dev-9")
    store.apply_transaction(victim, True, True)
    store.read_before(tx_at(50, "w-x"))  # before the label's hour ended: could not count it anyway
    assert store.apply_label(label_for(victim, 30, "early")).late == ()
    other = tx_at(1, "w-v2", device="dev-9")
    store.apply_transaction(other, True, True)
    # Transactions after 11:00 read the counterparty, the device and the victim's wallet (paying elsewhere).
    store.read_before(tx_at(70, "w-y", device="dev-9"))
    store.read_before(tx_at(75, "w-v2", counterparty="elsewhere"))
    applied = store.apply_label(label_for(other, 40))
    assert applied.outcome.changed
    assert {(u.kind, u.entity_id) for u in applied.late} == {(EntityKind.COUNTERPARTY, "shop"),
                                                            (EntityKind.DEVICE, "dev-9"), (EntityKind.WALLET, "w-v2")}
    assert {u.label_id for u in applied.late} == {f"{other.transaction_id}:cb"}
    assert store.apply_label(label_for(other, 40)).late == ()  # a duplicate adds nothing, reports nothing


# the functions log it --------------------------------------------------------------------------------
def _capture(logger_name: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger(f"{logger_name}-{id(stream)}")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    return log, stream


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_enrichment_logs_one_line_per_late_entity_and_counts_them_on_the_delivery_line(tmp_path: Path) -> None:
    history = SqliteHistoryStore(tmp_path / "h.sqlite3")
    counterparties = SqliteCounterpartyStore(tmp_path / "h.sqlite3")
    log, stream = _capture("late-enrich")
    enricher = Enricher(history, FakeScorer(), FakeOutbox(), counterparties,
                        SqliteTransactionIndex(tmp_path / "h.sqlite3"), log)
    early, later = tx_at(2, "w-a", device="dev-1"), tx_at(7, "w-b", device="dev-1")
    try:
        assert enricher.handle(event_data(later, "m1")).late_updates == 0
        result = enricher.handle(event_data(early, "m2"))
    finally:
        history.close()
        counterparties.close()
    assert result.status is DeliveryStatus.DECIDED and result.late_updates == 2 and result.late is False
    lines = _lines(stream)
    late = [e for e in lines if e.get(EVENT_KEY) == LATE_UPDATE_EVENT]
    assert {(e["entity"], e.get("counterparty_id") or e.get("device_id")) for e in late} == {
        ("counterparty", "shop"), ("device", "dev-1")}
    assert all(e["transaction_id"] == early.transaction_id and e["severity"] == "WARNING" and e["source"] == "transaction"
               and e["visible_from"] == "2026-03-02T10:05:00.000Z" and e["read_through"] == "2026-03-02T10:10:00.000Z"
               for e in late)
    (delivery,) = [e for e in lines if e.get("status") == "decided" and e["transaction_id"] == early.transaction_id]
    assert delivery["late_updates"] == 2


def test_the_label_function_logs_a_late_label(tmp_path: Path) -> None:
    log, stream = _capture("late-label")
    applier = label_core(tmp_path / "cp.sqlite3", logger=log)
    store = applier.store
    victim = tx_at(0, "w-v")
    applier.index.record(victim)  # as the enrichment does before its counterparty update
    store.apply_transaction(victim, True, False)
    store.read_before(tx_at(70, "w-y"))
    label = label_for(victim, 30)
    try:
        result = applier.handle(push_body(label.model_dump_json().encode(), "l1", subscription=None,
                                          publish_time=published_now()), label_route_of_kind(label.kind.value))
    finally:
        store.close()
    assert result.status.value == "applied" and result.late_updates == 1
    (late,) = [e for e in _lines(stream) if e.get(EVENT_KEY) == LATE_UPDATE_EVENT]
    assert (late["entity"], late["counterparty_id"], late["label_id"], late["source"]) == (
        "counterparty", "shop", label.label_id, "label")
    assert late["event_time"] == "2026-03-02T10:30:00.000Z" and late["visible_from"] == "2026-03-02T11:00:00.000Z"

