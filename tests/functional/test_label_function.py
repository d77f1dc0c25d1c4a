"""The label function driven in process through functions-framework, on real SQLite stores.

Covers what the framework and the entry point decide: a raw push body becomes a CloudEvent, the
request path names the route (a path that names none answers 404, never acked), applied and
duplicate labels are acked (2xx), a malformed or refused one is parked on `invalid` with its reason
and acked, a retryable failure answers 503 (no traceback), a bug 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import functions_framework
import pytest

from tests.enrich_fakes import FakeOutbox, label_core, make_tx, push_body
from txguard.contract import names
from txguard.contract.errors import StoreUnavailableError
from txguard.contract.models import LabelEvent
from txguard.enrichment import label_applier
from txguard.enrichment.counterparty.sqlite import SqliteCounterpartyStore
from txguard.enrichment.label_applier import LabelApplier
from txguard.features.counterparty import DAY_COLUMNS, FRAUD, EntityKeys

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
SOURCE = str(ROOT / "functions" / "label" / "main.py")
SHOP = EntityKeys.of("w-42", "merchant-7", "dev-1").counterparty
CHARGEBACKS = names.label_route("chargeback").path  # where labels-label-push posts
ANALYSTS = names.label_route("analyst").path
# The transaction the event fixtures label, as enrichment recorded it in the transaction index.
TX = make_tx(1, wallet="w-42", transaction_id="tx-0001", counterparty_id="merchant-7", device_id="dev-1",
             timestamp=datetime(2024, 5, 1, 12, tzinfo=UTC))


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[tuple[object, SqliteCounterpartyStore, FakeOutbox, LabelApplier]]:
    outbox = FakeOutbox()
    applier = label_core(tmp_path / "cp.sqlite3", outbox)
    applier.index.record(TX)
    store = applier.store
    label_applier.install(applier)
    app = functions_framework.create_app(target=names.LABEL_ENTRY_POINT, source=SOURCE, signature_type="cloudevent")
    yield app.test_client(), store, outbox, applier
    label_applier.install(None)
    for part in (applier.store, applier.index, applier.review):
        part.close()


def _fixture(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def _shop_frauds(store: SqliteCounterpartyStore) -> int:
    rows = store.db.read("SELECT SUM(value) FROM cp_cells WHERE entity = ? AND col = ?", (SHOP, DAY_COLUMNS[FRAUD]))
    return int(rows[0][0] or 0)


def test_chargeback_then_duplicate_then_reversal(wired) -> None:
    client, store, outbox, applier = wired
    assert client.post(CHARGEBACKS, json=_fixture("label_push_chargeback.json")).status_code == 200
    assert _shop_frauds(store) == 1
    assert client.post(CHARGEBACKS, json=_fixture("label_push_chargeback.json")).status_code == 200  # redelivered
    assert _shop_frauds(store) == 1
    assert client.post(CHARGEBACKS, json=_fixture("label_push_reversal.json")).status_code == 200
    assert _shop_frauds(store) == 0
    assert client.post(CHARGEBACKS, json=_fixture("label_push_reversal.json")).status_code == 200
    assert _shop_frauds(store) == 0
    assert dict(applier.counts) == {"applied": 2, "duplicate": 2}
    assert not outbox.invalid


@pytest.mark.parametrize(("name", "kind", "reason"), [
    ("label_push_known_before_transaction.json", "schema", "known_at: Value error, is before transaction_time"),
    ("label_push_not_json.json", "json", "(root)"),
])
def test_malformed_label_is_parked_with_its_reason(wired, name: str, kind: str, reason: str) -> None:
    client, store, outbox, _ = wired
    assert client.post(CHARGEBACKS, json=_fixture(name)).status_code == 200
    [parked] = outbox.invalid
    assert parked.attributes[names.ATTR_ERROR_KIND] == kind
    assert reason in parked.attributes[names.ATTR_REASON]
    assert parked.attributes[names.ATTR_SOURCE_SUBSCRIPTION].endswith(names.LABELS_PUSH_SUBSCRIPTION)
    assert parked.attributes[names.ATTR_SOURCE_MESSAGE_ID] in ("2003", "2004")
    assert _shop_frauds(store) == 0


def test_store_down_answers_503_without_a_traceback(wired, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    client, store, _, applier = wired

    def down(label):  # noqa: ANN001, ANN202
        raise StoreUnavailableError("bigtable: unavailable")

    monkeypatch.setattr(store, "apply_label", down)
    resp = client.post(CHARGEBACKS, json=_fixture("label_push_chargeback.json"))
    assert resp.status_code == 503
    assert applier.counts["retry"] == 1
    assert "Traceback" not in capsys.readouterr().err


def test_a_bug_answers_500(wired, monkeypatch: pytest.MonkeyPatch) -> None:
    client, store, _, applier = wired
    monkeypatch.setattr(store, "apply_label", lambda label: 1 / 0)
    assert client.post(CHARGEBACKS, json=_fixture("label_push_chargeback.json")).status_code == 500
    assert applier.counts["error"] == 1


def label(**over: object) -> dict:
    fields = {"label_id": "an-tx-0001", "transaction_id": TX.transaction_id, "wallet_id": TX.wallet_id,
              "counterparty_id": TX.counterparty_id, "device_id": TX.device_id, "transaction_time": TX.timestamp,
              "known_at": TX.timestamp + timedelta(hours=3), "kind": "analyst", "is_fraud": True,
              "source": "analyst:alice", **over}
    return push_body(LabelEvent(**fields).model_dump_json().encode(), message_id=str(fields["label_id"]),
                     subscription=f"projects/txguard-test/subscriptions/{names.ANALYST_LABELS_PUSH_SUBSCRIPTION}")


def test_the_path_is_the_route(wired) -> None:
    """The analyst's verdict is applied on the console's path and refused on the processor feed's; a
    path that names no route is not acked (404: retried, then dead-lettered where an alert sees it)."""
    client, store, outbox, applier = wired
    assert client.post("/", json=label()).status_code == 404
    assert client.post("/sources/elsewhere", json=label()).status_code == 404
    assert client.post(CHARGEBACKS, json=label(label_id="an-2")).status_code == 200  # acked, but parked
    [parked] = outbox.invalid
    assert parked.attributes[names.ATTR_ERROR_KIND] == "source"
    assert "kind analyst does not come from the chargeback route" in parked.attributes[names.ATTR_REASON]
    assert _shop_frauds(store) == 0
    assert client.post(ANALYSTS, json=label()).status_code == 200
    assert _shop_frauds(store) == 1 and applier.counts["applied"] == 1


def test_a_label_of_a_transaction_never_seen_is_parked_and_counts_nothing(wired) -> None:
    client, store, outbox, _ = wired
    forged = label(label_id="an-x", transaction_id="made-up-0001")
    assert client.post(ANALYSTS, json=forged).status_code == 200  # published long ago: no more waiting
    [parked] = outbox.invalid
    assert parked.attributes[names.ATTR_ERROR_KIND] == "unknown_transaction"
    assert _shop_frauds(store) == 0
