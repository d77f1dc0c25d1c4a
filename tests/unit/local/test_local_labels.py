"""Labels in the local stack: the demo's label plan, the ledger's label accounting, the log tail."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from txguard.contract import names
from txguard.contract.models import LABEL_ADAPTER, LabelKind
from txguard.local.label_feed import demo_labels
from txguard.local.ledger import Ledger
from txguard.local.logtail import LogTail
from txguard.local.router import Router
from txguard.publisher import make_stream
from txguard.publisher.label_sources import from_label


@pytest.fixture(scope="module")
def stream() -> list:
    return make_stream(600, "burst", seed=7, invalid_fraction=0.02, id_prefix="s7")


def test_every_fraud_of_the_stream_gets_a_label_on_the_demo_clock(stream: list) -> None:
    plan = demo_labels(stream, seed=7, seconds_per_day=0.5)
    frauds = {m.transaction_id for m in stream if m.expected_valid and m.is_fraud}
    labelled = {draft.item.transaction_id for _, draft in plan}
    assert frauds and frauds <= labelled  # the simulator labels every fraud, some legitimate ones too
    assert not labelled - {m.transaction_id for m in stream if m.expected_valid}  # never an invalid message's
    delays = [delay for delay, _ in plan]
    assert delays == sorted(delays) and min(delays) > 0
    assert max(delays) <= 45 * 0.5 + 20 * 0.5  # chargebacks <= 45 days, a reversal up to 20 days after
    for delay, draft in plan:
        assert delay == pytest.approx(draft.delay_s / 86400 * 0.5)
        if draft.kind is LabelKind.ANALYST:
            assert delay < 0.5  # within hours: within half a second
    assert plan == demo_labels(stream, seed=7, seconds_per_day=0.5)  # reproducible
    by_tx = {m.transaction_id: json.loads(m.data) for m in stream if m.expected_valid}
    now = datetime.now(UTC)
    for _, draft in plan[:20]:
        label = draft.event(known_at=now)  # published on the demo's clock: known now
        assert label.known_at == now and label.label_id == draft.label_id
        tx = by_tx[label.transaction_id]
        assert (label.wallet_id, label.counterparty_id, label.device_id) == (
            tx["wallet_id"], tx["counterparty_id"], tx.get("device_id"))


def test_the_ledger_accounts_labels_applied_parked_dead_lettered_and_lost(stream: list) -> None:
    ledger = Ledger("stream")
    router = Router()
    router.add(ledger)
    now = datetime.now(UTC)
    plan = [draft.event(known_at=now) for _, draft in demo_labels(stream, seed=7)][:4]
    messages = [from_label(label) for label in plan]
    bad = from_label(plan[0])
    bad = type(bad)(b"{not a label", "", 0.0, expected_valid=False)
    for m in [*messages, messages[0], bad]:  # the first label published twice
        ledger.labels.sent(m)
        ledger.labels.confirmed(m, None)
    assert ledger.pending() == 5 and not ledger.settled()
    router.on_label_status(plan[0].label_id, "applied")
    router.on_label_status(plan[0].label_id, "duplicate")
    router.on_label_status(plan[1].label_id, "unchanged")
    router.on_label_status("someone-else:cb", "applied")  # another stream's: unmatched
    router.on_invalid(b"{not a label", {names.ATTR_REASON: "not JSON"})
    router.on_label_dead_letter(messages[2].data, {})
    summary = ledger.summary()
    assert {k: summary[k] for k in ("labels_sent", "labels_published", "labels_applied", "labels_invalid",
                                    "labels_dead_lettered", "labels_lost")} == {
        "labels_sent": 6, "labels_published": 5, "labels_applied": 2, "labels_invalid": 1,
        "labels_dead_lettered": 1, "labels_lost": 1}
    assert summary["label_statuses"] == {"applied": 1, "duplicate": 1, "unchanged": 1}
    assert router.unmatched == {"label_status": 1}
    assert ledger.pending() == 1 and not ledger.settled()  # plan[3] is still waiting
    router.on_label_status(plan[3].label_id, "applied")
    assert ledger.settled() and ledger.summary()["labels_lost"] == 0
    assert not router.dead_letters  # a label dead letter is never queued for the transactions redrive


def test_a_transactions_ledger_with_no_labels_reports_zero_labels(stream: list) -> None:
    summary = Ledger("empty").summary()
    assert summary["labels_published"] == summary["labels_applied"] == summary["labels_lost"] == 0


def test_log_tail_hands_over_complete_json_lines_once(tmp_path: Path) -> None:
    log = tmp_path / "label.log"
    seen: list[dict] = []
    tail = LogTail(log, seen.append)
    assert tail.poll() == 0  # no file yet
    log.write_bytes(b"[INFO] Booting worker with pid: 12\n" + b'{"status":"applied","label_id":"a"}\n{"status":"dup')
    assert tail.poll() == 1 and seen == [{"status": "applied", "label_id": "a"}]
    with log.open("ab") as fh:
        fh.write(b'licate","label_id":"a"}\nnot json\n')
    assert tail.poll() == 1 and seen[-1] == {"status": "duplicate", "label_id": "a"}
    assert tail.poll() == 0 and tail.lines == 2


def test_labels_published_by_the_demo_pass_the_contract(stream: list) -> None:
    for _, draft in demo_labels(stream, seed=7)[:10]:
        LABEL_ADAPTER.validate_json(from_label(draft.event(known_at=datetime.now(UTC))).data)


def test_a_held_label_is_settled_but_neither_applied_nor_lost(stream: list) -> None:
    """`held` (over a limit, kept for review) ends a label's delivery: the drain does not wait for it, and
    the summary counts it apart from the applied ones; the kind of a refusal on `invalid` is kept."""
    ledger = Ledger("stream")
    now = datetime.now(UTC)
    plan = [draft.event(known_at=now) for _, draft in demo_labels(stream, seed=7)][:3]
    messages = [from_label(label) for label in plan]
    for m in messages:
        ledger.labels.sent(m)
        ledger.labels.confirmed(m, None)
    ledger.labels.on_status(plan[0].label_id, "held")
    ledger.labels.on_status(plan[1].label_id, "applied")
    ledger.labels.on_invalid(messages[2].data, {names.ATTR_REASON: "transaction t is unknown",
                                                names.ATTR_ERROR_KIND: "unknown_transaction"})
    summary = ledger.summary()
    assert (summary["labels_held"], summary["labels_applied"], summary["labels_invalid"], summary["labels_lost"]) == (
        1, 1, 1, 0)
    assert ledger.settled()
    assert ledger.labels.invalid_kinds() == {plan[2].label_id: ["unknown_transaction"]}


def test_each_label_is_published_on_its_sources_topic() -> None:
    from txguard.publisher.label_sources import label_topic

    now = datetime.now(UTC)
    base = {"label_id": "t1:x", "transaction_id": "t1", "wallet_id": "w", "counterparty_id": "c",
            "transaction_time": now.isoformat(), "known_at": now.isoformat()}
    analyst = LABEL_ADAPTER.validate_python({**base, "kind": "analyst", "is_fraud": True, "source": "analyst:a1"})
    chargeback = LABEL_ADAPTER.validate_python({**base, "kind": "chargeback", "is_fraud": True})
    assert label_topic(from_label(analyst).data) == names.ANALYST_LABELS_TOPIC
    assert label_topic(from_label(chargeback).data) == names.LABELS_TOPIC
    # Bytes naming no known kind go to the processor feed's topic, where the label function parks them.
    assert label_topic(b"{not json") == label_topic(b'{"kind": "refund"}') == names.LABELS_TOPIC


def test_a_dead_lettered_label_goes_back_to_the_route_it_came_by() -> None:
    """Redrive follows the subscription Pub/Sub says it was dead-lettered from, never the label's own claim:
    an analyst label dead-lettered from the processor feed's route stays there (and is refused there)."""
    from txguard.ops.redrive import SOURCE_SUBSCRIPTION_ATTRIBUTE, label_topic_of

    analyst_route = {SOURCE_SUBSCRIPTION_ATTRIBUTE: names.ANALYST_LABELS_PUSH_SUBSCRIPTION}
    assert label_topic_of(analyst_route) == names.ANALYST_LABELS_TOPIC
    assert label_topic_of({SOURCE_SUBSCRIPTION_ATTRIBUTE: f"projects/p/subscriptions/{names.LABELS_PUSH_SUBSCRIPTION}"}
                          ) == names.LABELS_TOPIC
    assert label_topic_of({}) == names.LABELS_TOPIC
