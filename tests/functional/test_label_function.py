"""The label function driven in process through functions-framework, on a real SQLite store.

Covers what the framework and the entry point decide: a raw push body becomes a CloudEvent,
applied and duplicate labels are acked (2xx), a malformed one is parked on `invalid` with its
reason and acked, a retryable failure answers 503 (no traceback), a bug 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import functions_framework
import pytest

from tests.enrich_fakes import FakeOutbox
from txguard.contract import names
from txguard.contract.errors import StoreUnavailableError
from txguard.enrichment import label_applier
from txguard.enrichment.counterparty.sqlite import SqliteCounterpartyStore
from txguard.enrichment.label_applier import LabelApplier
from txguard.features.counterparty import DAY_COLUMNS, FRAUD, EntityKeys

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
SOURCE = str(ROOT / "functions" / "label" / "main.py")
SHOP = EntityKeys.of("w-42", "merchant-7", "dev-1").counterparty


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[tuple[object, SqliteCounterpartyStore, FakeOutbox, LabelApplier]]:
    store, outbox = SqliteCounterpartyStore(tmp_path / "cp.sqlite3"), FakeOutbox()
    applier = LabelApplier(store, outbox)
    label_applier.install(applier)
    app = functions_framework.create_app(target=names.LABEL_ENTRY_POINT, source=SOURCE, signature_type="cloudevent")
    yield app.test_client(), store, outbox, applier
    label_applier.install(None)
    store.close()


def _fixture(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def _shop_frauds(store: SqliteCounterpartyStore) -> int:
    rows = store.db.read("SELECT SUM(value) FROM cp_cells WHERE entity = ? AND col = ?", (SHOP, DAY_COLUMNS[FRAUD]))
    return int(rows[0][0] or 0)


def test_chargeback_then_duplicate_then_reversal(wired) -> None:
    client, store, outbox, applier = wired
    assert client.post("/", json=_fixture("label_push_chargeback.json")).status_code == 200
    assert _shop_frauds(store) == 1
    assert client.post("/", json=_fixture("label_push_chargeback.json")).status_code == 200  # redelivered
    assert _shop_frauds(store) == 1
    assert client.post("/", json=_fixture("label_push_reversal.json")).status_code == 200
    assert _shop_frauds(store) == 0
    assert client.post("/", json=_fixture("label_push_reversal.json")).status_code == 200
    assert _shop_frauds(store) == 0
    assert dict(applier.counts) == {"applied": 2, "duplicate": 2}
    assert not outbox.invalid


@pytest.mark.parametrize(("name", "kind", "reason"), [
    ("label_push_known_before_transaction.json", "schema", "known_at: Value error, is before transaction_time"),
    ("label_push_not_json.json", "json", "(root)"),
])
def test_malformed_label_is_parked_with_its_reason(wired, name: str, kind: str, reason: str) -> None:
    client, store, outbox, _ = wired
    assert client.post("/", json=_fixture(name)).status_code == 200
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
    resp = client.post("/", json=_fixture("label_push_chargeback.json"))
    assert resp.status_code == 503
    assert applier.counts["retry"] == 1
    assert "Traceback" not in capsys.readouterr().err


def test_a_bug_answers_500(wired, monkeypatch: pytest.MonkeyPatch) -> None:
    client, store, _, applier = wired
    monkeypatch.setattr(store, "apply_label", lambda label: 1 / 0)
    assert client.post("/", json=_fixture("label_push_chargeback.json")).status_code == 500
    assert applier.counts["error"] == 1
