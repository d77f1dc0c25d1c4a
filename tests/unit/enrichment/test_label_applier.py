"""The label core: ack / retry / park per delivery, with a real SQLite store and an in-memory outbox."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.enrich_fakes import FakeOutbox, make_tx, push_body
from txguard.contract import names
from txguard.contract.errors import PublishError
from txguard.contract.models import LabelEvent
from txguard.enrichment.counterparty.sqlite import SqliteCounterpartyStore
from txguard.enrichment.label_applier import LabelApplier, LabelStatus

TX = make_tx(3)


def body(label_id: str = "cb-1", days: float = 7.0, **over: object) -> dict:
    fields = {"label_id": label_id, "transaction_id": TX.transaction_id, "wallet_id": TX.wallet_id,
              "counterparty_id": TX.counterparty_id, "device_id": TX.device_id, "transaction_time": TX.timestamp,
              "known_at": TX.timestamp + timedelta(days=days), "kind": "chargeback", "is_fraud": True, **over}
    return push_body(LabelEvent(**fields).model_dump_json().encode(), message_id=f"m-{label_id}", subscription=None)


@pytest.fixture
def parts(tmp_path: Path):  # noqa: ANN201
    store, outbox = SqliteCounterpartyStore(tmp_path / "cp.sqlite3"), FakeOutbox()
    yield LabelApplier(store, outbox), store, outbox
    store.close()


def test_statuses_of_a_label_stream(parts) -> None:
    applier, _, outbox = parts
    assert applier.handle(body("an-1", 0.2, kind="analyst")).status is LabelStatus.APPLIED
    assert applier.handle(body("cb-1")).status is LabelStatus.UNCHANGED  # already known fraud
    assert applier.handle(body("cb-1")).status is LabelStatus.DUPLICATE
    result = applier.handle(body("rv-1", 9, kind="reversal", reverses="an-1", is_fraud=None))
    # -1 and +1, each in a day and an hour column of 3 entities and the wallet slot of the counterparty
    assert result.status is LabelStatus.APPLIED and result.increments == 2 * (2 * 3 + 1)
    assert not outbox.invalid


def test_same_label_id_other_content_is_parked_as_a_conflict(parts) -> None:
    applier, _, outbox = parts
    applier.handle(body("cb-1"))
    assert applier.handle(body("cb-1", 8)).status is LabelStatus.REJECTED
    [parked] = outbox.invalid
    assert parked.attributes[names.ATTR_ERROR_KIND] == "conflict"
    # The push body carried no subscription: the label function's own is named.
    assert parked.attributes[names.ATTR_SOURCE_SUBSCRIPTION] == names.LABELS_PUSH_SUBSCRIPTION
    assert parked.attributes[names.ATTR_SOURCE_MESSAGE_ID] == "m-cb-1"


def test_schema_error_names_the_field(parts) -> None:
    applier, _, outbox = parts
    bad = push_body(b'{"label_id": "x", "kind": "chargeback"}', message_id="m-x")
    assert applier.handle(bad).status is LabelStatus.INVALID
    assert "transaction_id: Field required" in outbox.invalid[0].attributes[names.ATTR_REASON]


def test_data_that_is_not_base64_is_parked_as_sent_with_its_message_id(parts) -> None:
    applier, _, outbox = parts
    bad = push_body(b"", message_id="m-b64")
    bad["message"]["data"] = "not base64!"
    assert applier.handle(bad).status is LabelStatus.INVALID
    [parked] = outbox.invalid
    assert parked.data == b"not base64!"
    assert parked.attributes[names.ATTR_SOURCE_MESSAGE_ID] == "m-b64"


def test_failure_to_park_is_retryable(parts) -> None:
    applier, _, outbox = parts
    outbox.fail = True
    with pytest.raises(PublishError):
        applier.handle(push_body(b"garbage"))
    assert applier.counts["retry"] == 1
