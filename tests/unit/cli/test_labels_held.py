"""`txguard labels held`: list, release and discard labels held for review, on the embedded (SQLite)
stores the label function uses locally (the same code reads Bigtable with COUNTERPARTY_STORE=bigtable)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from txguard.cli.main import main
from txguard.contract.models import TRANSACTION_ADAPTER, LabelEvent, LabelKind, Transaction
from txguard.enrichment.counterparty.sqlite import SqliteCounterpartyStore
from txguard.enrichment.label_review import HeldLabel
from txguard.enrichment.label_review.sqlite import SqliteLabelReview
from txguard.enrichment.transaction_index.sqlite import SqliteTransactionIndex
from txguard.publisher import make_stream

NOW = datetime.now(UTC)


def _tx(n: int, counterparty: str) -> Transaction:
    [message] = make_stream(1, "fraud", seed=n, id_prefix=f"held{n}")
    tx = TRANSACTION_ADAPTER.validate_json(message.data)
    return tx.model_copy(update={"transaction_id": f"t{n}", "wallet_id": f"w{n}", "counterparty_id": counterparty,
                                 "timestamp": NOW - timedelta(hours=2)})


def _label(tx: Transaction, source: str) -> LabelEvent:
    return LabelEvent(label_id=f"{tx.transaction_id}:cb", transaction_id=tx.transaction_id, wallet_id=tx.wallet_id,
                      counterparty_id=tx.counterparty_id, device_id=tx.device_id, transaction_time=tx.timestamp,
                      known_at=NOW - timedelta(minutes=5), kind=LabelKind.CHARGEBACK, is_fraud=True, source=source)


@pytest.fixture()
def held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, LabelEvent]:
    path = tmp_path / "stores.sqlite3"
    monkeypatch.setenv("COUNTERPARTY_STORE", "sqlite")
    monkeypatch.setenv("SQLITE_PATH", str(path))
    txs = [_tx(1, "shop-a"), _tx(2, "shop-a"), _tx(3, "shop-b")]
    index, review = SqliteTransactionIndex(path), SqliteLabelReview(path)
    labels = {"burst": _label(txs[0], "processor:burst"), "burst2": _label(txs[1], "processor:burst"),
              "rogue": _label(txs[2], "processor:rogue")}
    for tx in txs:
        index.record(tx)
    for label in labels.values():
        review.hold(HeldLabel(label, "chargeback", f"source {label.source} above its limit", NOW.timestamp()))
    index.close()
    review.close()
    return {**labels, "path": path}  # type: ignore[dict-item]


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def _frauds(path: Path, counterparty: str) -> int:
    store = SqliteCounterpartyStore(path)
    try:
        view = store.snapshot(Transaction.model_construct(transaction_id="probe", wallet_id="nobody",
                                                          counterparty_id=counterparty, device_id=None, timestamp=NOW))
        return sum(cells.get("df", 0) for cells in view.counterparty.values())
    finally:
        store.close()


def test_list_filters_and_says_why_each_is_held(held: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["labels", "held", "list", "--source", "processor:burst"]) == 0
    *rows, summary = _lines(capsys)
    assert summary == {"action": "list", "held": 2}
    assert {r["label_id"] for r in rows} == {"t1:cb", "t2:cb"}
    assert all(r["reason"] == "source processor:burst above its limit" and r["verdict"] == "fraud" for r in rows)


def test_release_applies_once_and_discard_forgets(held: dict, capsys: pytest.CaptureFixture[str]) -> None:
    path = held["path"]
    assert _frauds(path, "shop-a") == 0
    assert main(["labels", "held", "release", "--counterparty", "shop-a", "--by", "carol"]) == 0
    assert _lines(capsys)[-1] == {"action": "release", "selected": 2, "done": 2, "refused": [], "by": "carol"}
    assert _frauds(path, "shop-a") == 2
    assert main(["labels", "held", "release", "--counterparty", "shop-a", "--by", "carol"]) == 0
    assert _lines(capsys)[-1]["selected"] == 0 and _frauds(path, "shop-a") == 2  # released once, gone from review
    assert main(["labels", "held", "discard", "--source", "processor:rogue", "--why", "a storm"]) == 0
    assert _lines(capsys)[-1]["done"] == 1 and _frauds(path, "shop-b") == 0
    assert main(["labels", "held", "list"]) == 0
    assert _lines(capsys) == [{"action": "list", "held": 0}]


def test_acting_needs_a_selection(held: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["labels", "held", "discard", "--why", "x"]) == 2
    assert "--all" in capsys.readouterr().err
    assert main(["labels", "held", "list"]) == 0 and _lines(capsys)[-1]["held"] == 3  # nothing was touched
