"""The label core: ack / retry / park / hold per delivery, with real SQLite stores and an in-memory outbox.

Every label is checked against its route and the transaction index before anything counts; what
passes is counted against the limits and held beyond them (txguard.enrichment.label_checks,
label_limits); held labels are released or discarded after review."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.enrich_fakes import FakeOutbox, label_core, make_tx, push_body
from txguard.contract import names
from txguard.contract.errors import LabelRefusedError, PublishError, TransactionNotSeenYetError
from txguard.contract.models import LabelEvent
from txguard.enrichment.label_applier import LabelApplier, LabelStatus, discard, release
from txguard.enrichment.label_limits import Limits
from txguard.features.counterparty import DAY_COLUMNS, FRAUD, EntityKeys

TX = make_tx(3)
CHARGEBACKS, ANALYSTS = names.label_route("chargeback"), names.label_route("analyst")


def label(label_id: str = "cb-1", days: float = 7.0, tx=TX, **over: object) -> LabelEvent:  # noqa: ANN001
    fields = {"label_id": label_id, "transaction_id": tx.transaction_id, "wallet_id": tx.wallet_id,
              "counterparty_id": tx.counterparty_id, "device_id": tx.device_id, "transaction_time": tx.timestamp,
              "known_at": tx.timestamp + timedelta(days=days), "kind": "chargeback", "is_fraud": True, **over}
    return LabelEvent(**fields)


def body(label_id: str = "cb-1", days: float = 7.0, publish_time: str | None = None, **over: object) -> dict:
    extra = {"publish_time": publish_time} if publish_time else {}
    return push_body(label(label_id, days, **over).model_dump_json().encode(), message_id=f"m-{label_id}",
                     subscription=None, **extra)


def analyst(label_id: str = "an-1", days: float = 0.2, **over: object) -> dict:
    return body(label_id, days, **{"kind": "analyst", "source": "analyst:alice", **over})


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def parts(tmp_path: Path):  # noqa: ANN201
    outbox = FakeOutbox()
    applier = label_core(tmp_path / "cp.sqlite3", outbox)
    applier.index.record(TX)  # what enrichment did when it applied TX
    yield applier, applier.store, outbox
    for part in (applier.store, applier.index, applier.review):
        part.close()


def frauds_at(store, tx=TX) -> int:  # noqa: ANN001
    shop = EntityKeys.of(tx.wallet_id, tx.counterparty_id, tx.device_id).counterparty
    rows = store.db.read("SELECT SUM(value) FROM cp_cells WHERE entity = ? AND col = ?", (shop, DAY_COLUMNS[FRAUD]))
    return int(rows[0][0] or 0)


def test_statuses_of_a_label_stream(parts) -> None:
    applier, _, outbox = parts
    assert applier.handle(analyst("an-1"), ANALYSTS).status is LabelStatus.APPLIED
    assert applier.handle(body("cb-1"), CHARGEBACKS).status is LabelStatus.UNCHANGED  # already known fraud
    assert applier.handle(body("cb-1"), CHARGEBACKS).status is LabelStatus.DUPLICATE
    result = applier.handle(body("rv-1", 9, kind="reversal", reverses="an-1", is_fraud=None), CHARGEBACKS)
    # -1 and +1, each in a day and an hour column of 3 entities and the wallet slot of the counterparty
    assert result.status is LabelStatus.APPLIED and result.increments == 2 * (2 * 3 + 1)
    assert not outbox.invalid


def test_same_label_id_other_content_is_parked_as_a_conflict(parts) -> None:
    applier, _, outbox = parts
    applier.handle(body("cb-1"), CHARGEBACKS)
    assert applier.handle(body("cb-1", 8), CHARGEBACKS).status is LabelStatus.REJECTED
    [parked] = outbox.invalid
    assert parked.attributes[names.ATTR_ERROR_KIND] == "conflict"
    # The push body carried no subscription: the label function's own is named.
    assert parked.attributes[names.ATTR_SOURCE_SUBSCRIPTION] == names.LABELS_PUSH_SUBSCRIPTION
    assert parked.attributes[names.ATTR_SOURCE_MESSAGE_ID] == "m-cb-1"


def test_schema_error_names_the_field(parts) -> None:
    applier, _, outbox = parts
    bad = push_body(b'{"label_id": "x", "kind": "chargeback"}', message_id="m-x")
    assert applier.handle(bad, CHARGEBACKS).status is LabelStatus.INVALID
    assert "transaction_id: Field required" in outbox.invalid[0].attributes[names.ATTR_REASON]


def test_data_that_is_not_base64_is_parked_as_sent_with_its_message_id(parts) -> None:
    applier, _, outbox = parts
    bad = push_body(b"", message_id="m-b64")
    bad["message"]["data"] = "not base64!"
    assert applier.handle(bad, CHARGEBACKS).status is LabelStatus.INVALID
    [parked] = outbox.invalid
    assert parked.data == b"not base64!"
    assert parked.attributes[names.ATTR_SOURCE_MESSAGE_ID] == "m-b64"


def test_failure_to_park_is_retryable(parts) -> None:
    applier, _, outbox = parts
    outbox.fail = True
    with pytest.raises(PublishError):
        applier.handle(push_body(b"garbage"), CHARGEBACKS)
    assert applier.counts["retry"] == 1



# -- who sent it: the route -------------------------------------------------------------------------

@pytest.mark.parametrize(("route", "over", "says"), [
    (CHARGEBACKS, {"kind": "analyst", "source": "analyst:alice"}, "kind analyst does not come from the chargeback"),
    (ANALYSTS, {"source": "analyst:alice"}, "kind chargeback does not come from the analyst route"),
    (ANALYSTS, {"kind": "analyst", "source": "issuer-12"}, "source 'issuer-12' is not an analyst"),
    (ANALYSTS, {"kind": "analyst", "source": None}, "source None is not an analyst"),
    (CHARGEBACKS, {"source": "analyst:a1"}, "source analyst:a1 names an analyst, but the label came from the "
                                             "chargeback route"),
])
def test_kind_and_source_must_agree_with_the_route(parts, route, over: dict, says: str) -> None:
    applier, store, outbox = parts
    assert applier.handle(body("x-1", 1, **over), route).status is LabelStatus.REJECTED
    [parked] = outbox.invalid
    assert parked.attributes[names.ATTR_ERROR_KIND] == "source" and says in parked.attributes[names.ATTR_REASON]
    assert frauds_at(store) == 0


# -- what txguard saw: the transaction index ---------------------------------------------------------

@pytest.mark.parametrize(("over", "fields"), [
    ({"counterparty_id": "m00042"}, "counterparty_id of the label disagrees"),
    ({"wallet_id": "w-other"}, "wallet_id of the label disagrees"),
    ({"device_id": None}, "device_id of the label disagrees"),
    ({"device_id": "dev-9", "counterparty_id": "m00042"}, "counterparty_id, device_id of the label disagree"),
])
def test_a_label_that_disagrees_with_the_record_is_parked_and_counts_nothing(parts, over: dict, fields: str) -> None:
    applier, store, outbox = parts
    assert applier.handle(body("cb-x", **over), CHARGEBACKS).status is LabelStatus.REJECTED
    [parked] = outbox.invalid
    assert parked.attributes[names.ATTR_ERROR_KIND] == "mismatch"
    assert fields in parked.attributes[names.ATTR_REASON] and TX.transaction_id in parked.attributes[names.ATTR_REASON]
    assert frauds_at(store) == 0 and frauds_at(store, make_tx(3, counterparty_id="m00042")) == 0


def test_the_transaction_time_must_be_the_records_to_the_millisecond(parts) -> None:
    applier, _, outbox = parts
    shifted = TX.timestamp + timedelta(milliseconds=1)
    status = applier.handle(body("cb-t", transaction_time=shifted, known_at=TX.timestamp + timedelta(days=1)),
                            CHARGEBACKS).status
    assert status is LabelStatus.REJECTED and "transaction_time" in outbox.invalid[0].attributes[names.ATTR_REASON]


def test_an_unknown_transaction_is_retried_while_it_may_still_come_then_parked(tmp_path: Path) -> None:
    clock, outbox = Clock(), FakeOutbox()
    applier = label_core(tmp_path / "cp.sqlite3", outbox, clock=clock, unknown_retry_s=120)
    early = make_tx(9)
    published = datetime.fromtimestamp(clock.now, UTC).isoformat().replace("+00:00", "Z")
    delivery = body("cb-early", tx=early, publish_time=published)
    with pytest.raises(TransactionNotSeenYetError, match="not in the transaction index yet"):
        applier.handle(delivery, CHARGEBACKS)
    clock.now += 60
    with pytest.raises(TransactionNotSeenYetError):
        applier.handle(delivery, CHARGEBACKS)
    assert applier.counts["retry"] == 2 and not outbox.invalid
    applier.index.record(early)  # the transaction arrives within the window: the next redelivery applies
    assert applier.handle(delivery, CHARGEBACKS).status is LabelStatus.APPLIED
    late = body("cb-ghost", tx=make_tx(10, transaction_id="ghost-1"), publish_time=published)
    clock.now += 61  # 121 s after publishing: no more waiting
    assert applier.handle(late, CHARGEBACKS).status is LabelStatus.REJECTED
    assert outbox.invalid[0].attributes[names.ATTR_ERROR_KIND] == "unknown_transaction"
    assert "txguard never applied it" in outbox.invalid[0].attributes[names.ATTR_REASON]


# -- limits, holds and review ------------------------------------------------------------------------

def limited(tmp_path: Path, **limits: int) -> tuple[LabelApplier, FakeOutbox, list]:
    outbox = FakeOutbox()
    applier = label_core(tmp_path / "cp.sqlite3", outbox, Limits(**{"window_s": 3600, "analyst_source": 0,
                                                                     "feed_source": 0, "counterparty_fraud": 0,
                                                                     **limits}))
    txs = [make_tx(i, wallet=f"w-{i}", counterparty_id="shop-1") for i in range(12)]
    for tx in txs:
        applier.index.record(tx)
    return applier, outbox, txs


def test_a_source_past_its_limit_is_held_whole_and_counts_nothing(tmp_path: Path) -> None:
    applier, outbox, txs = limited(tmp_path, feed_source=4)
    statuses = [applier.handle(push_body(label(f"cb-{i}", tx=tx, source="issuer:rogue").model_dump_json().encode(),
                                         message_id=str(i)), CHARGEBACKS).status for i, tx in enumerate(txs[:7])]
    assert statuses == [LabelStatus.APPLIED] * 4 + [LabelStatus.HELD] * 3
    assert frauds_at(applier.store, txs[0]) == 4 and not outbox.invalid
    held = applier.review.held()
    assert [h.label.label_id for h in held] == ["cb-4", "cb-5", "cb-6"]
    assert held[0].route == "chargeback" and "source issuer:rogue sent 5 labels in 60 min, above its limit of 4" \
        in held[0].reason
    # Another source is not affected; an applied label redelivered stays a duplicate, never held.
    other = push_body(label("cb-9", tx=txs[9], source="issuer:bank-2").model_dump_json().encode())
    assert applier.handle(other, CHARGEBACKS).status is LabelStatus.APPLIED
    again = push_body(label("cb-0", tx=txs[0], source="issuer:rogue").model_dump_json().encode())
    assert applier.handle(again, CHARGEBACKS).status is LabelStatus.DUPLICATE


def test_a_burst_of_fraud_labels_on_one_counterparty_is_held(tmp_path: Path) -> None:
    applier, _, txs = limited(tmp_path, counterparty_fraud=3)
    frauds = [applier.handle(analyst(f"an-{i}", tx=tx, source=f"analyst:a{i}"), ANALYSTS).status
              for i, tx in enumerate(txs[:5])]
    assert frauds == [LabelStatus.APPLIED] * 3 + [LabelStatus.HELD] * 2
    # A legitimate verdict is not a fraud label: it still passes.
    assert applier.handle(analyst("ok-5", tx=txs[5], is_fraud=False), ANALYSTS).status is LabelStatus.UNCHANGED
    [first, second] = applier.review.held()
    assert "counterparty shop-1 got 4 fraud labels in 60 min, above its limit of 3" in first.reason
    assert applier.counts["held"] == 2 and frauds_at(applier.store, txs[0]) == 3


def test_held_labels_are_released_exactly_once_or_discarded(tmp_path: Path) -> None:
    applier, _, txs = limited(tmp_path, counterparty_fraud=1)
    for i, tx in enumerate(txs[:4]):
        applier.handle(analyst(f"an-{i}", tx=tx), ANALYSTS)
    held = applier.review.held()
    assert len(held) == 3 and frauds_at(applier.store, txs[0]) == 1
    assert release(held[0], applier.store, applier.index, applier.review, by="carol").changed
    assert frauds_at(applier.store, txs[0]) == 2
    assert release(held[0], applier.store, applier.index, applier.review).duplicate  # a second release: no-op
    assert frauds_at(applier.store, txs[0]) == 2
    discard(held[1], applier.review, by="carol", why="forged")
    assert [h.label.label_id for h in applier.review.held()] == [held[2].label.label_id]
    assert frauds_at(applier.store, txs[0]) == 2
    # A held label whose record no longer says the same is refused on release (checked again).
    forged = held[2].label.model_copy(update={"counterparty_id": "elsewhere"})
    with pytest.raises(LabelRefusedError, match="disagrees"):
        release(type(held[2])(forged, "analyst", "test", 0.0), applier.store, applier.index, applier.review)


def test_a_held_label_redelivered_is_held_once(tmp_path: Path) -> None:
    applier, _, txs = limited(tmp_path, counterparty_fraud=1)
    applier.handle(analyst("an-0", tx=txs[0]), ANALYSTS)
    for _ in range(3):
        assert applier.handle(analyst("an-1", tx=txs[1]), ANALYSTS).status is LabelStatus.HELD
    assert [h.label.label_id for h in applier.review.held()] == ["an-1"]


def test_the_log_line_says_route_source_verdict_and_hold(tmp_path: Path) -> None:
    applier, _, txs = limited(tmp_path, counterparty_fraud=1)
    lines = []
    applier.log_line = (lambda original: lambda result, count: (lines.append(original(result, count)),
                                                                lines[-1])[1])(applier.log_line)
    applier.handle(analyst("an-0", tx=txs[0]), ANALYSTS)
    applier.handle(analyst("an-1", tx=txs[1]), ANALYSTS)
    (_, applied), (_, held) = lines
    assert (applied["route"], applied["source"], applied["verdict"], applied["hold"]) == (
        "analyst", "analyst:alice", "fraud", None)
    assert (held["status"], held["hold"]) == ("held", "counterparty")

