"""The counterparty checks of `txguard reliability` on real SQLite stores: aggregates against the replay
(a transaction added twice or never is caught), counterparty features against the replay with the
differences explained by the late lines the enrichment logged, and the hot-counterparty stream."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from tests.enrich_fakes import FakeOutbox, FakeScorer, event_data
from txguard.contract.logs import JsonFormatter
from txguard.contract.models import TRANSACTION_ADAPTER
from txguard.enrichment.counterparty.sqlite import SqliteCounterpartyStore
from txguard.enrichment.history.sqlite import SqliteHistoryStore
from txguard.enrichment.pipeline import Enricher
from txguard.enrichment.transaction_index.sqlite import SqliteTransactionIndex
from txguard.ops.late_updates import parse
from txguard.publisher import make_stream
from txguard.reliability.context import own_entities
from txguard.reliability.counterparty import HOT_COUNTERPARTY, hot_counterparty
from txguard.reliability.counterparty_check import check_aggregates, check_counterparty_features, open_leases


@pytest.fixture(scope="module")
def txs() -> list:
    messages = own_entities(make_stream(150, "fraud", seed=9, id_prefix="chk"), "chk-")
    return [TRANSACTION_ADAPTER.validate_json(m.data) for m in messages]


def _run(tmp_path: Path, order: list) -> tuple[SqliteHistoryStore, SqliteCounterpartyStore, list]:
    history, counterparties = SqliteHistoryStore(tmp_path / "h.sqlite3"), SqliteCounterpartyStore(tmp_path / "h.sqlite3")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger(f"check-{id(stream)}")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    enricher = Enricher(history, FakeScorer(), FakeOutbox(), counterparties,
                        SqliteTransactionIndex(tmp_path / "h.sqlite3"), log)
    for i, tx in enumerate(order):
        enricher.handle(event_data(tx, f"m{i}"))
    late = [line for raw in stream.getvalue().splitlines() if (line := parse(json.loads(raw))) is not None]
    return history, counterparties, late


def test_in_order_everything_equals_the_replay(tmp_path: Path, txs: list) -> None:
    history, counterparties, late = _run(tmp_path, sorted(txs, key=lambda t: t.timestamp))
    try:
        features = check_counterparty_features(txs, [], history.processed, late)
        aggregates = check_aggregates(txs, [], counterparties.entity_cells)
        leases = open_leases(history.processed(t.transaction_id) for t in txs)
    finally:
        history.close()
        counterparties.close()
    assert (features.compared, features.differing, features.late_updates) == (len(txs), 0, 0)
    assert aggregates.cells > len(txs) and aggregates.cells_differing == 0 and leases == 0


def test_updates_held_back_are_late_and_explain_every_difference(tmp_path: Path, txs: list) -> None:
    ordered = sorted(txs, key=lambda t: t.timestamp)
    # One wallet's transactions held back until the end (its wallet order kept), as a killed worker does:
    # a wallet paying a counterparty that other wallets pay later.
    held = next(t.wallet_id for i, t in enumerate(ordered) if any(
        o.counterparty_id == t.counterparty_id and o.wallet_id != t.wallet_id
        and o.timestamp.timestamp() - t.timestamp.timestamp() > 600 for o in ordered[i + 1:]))
    order = [t for t in ordered if t.wallet_id != held] + [t for t in ordered if t.wallet_id == held]
    history, counterparties, late = _run(tmp_path, order)
    try:
        features = check_counterparty_features(txs, [], history.processed, late)
        aggregates = check_aggregates(txs, [], counterparties.entity_cells)
    finally:
        history.close()
        counterparties.close()
    assert features.late_updates > 0 and all(line.transaction_id.startswith("chk") for line in late)
    assert features.differing > 0 and features.unexplained == 0, features
    assert features.lag_s["max"] is not None and features.lag_s["max"] > 0
    assert aggregates.cells_differing == 0  # the state ends exact all the same
    # Without the late lines nothing explains them.
    assert check_counterparty_features(txs, [], lambda tid: _processed(tmp_path, tid), []).unexplained == features.differing


def _processed(tmp_path: Path, transaction_id: str) -> dict | None:
    store = SqliteHistoryStore(tmp_path / "h.sqlite3")
    try:
        return store.processed(transaction_id)
    finally:
        store.close()


def test_a_transaction_added_twice_or_never_is_caught(tmp_path: Path, txs: list) -> None:
    history, counterparties, _ = _run(tmp_path, sorted(txs, key=lambda t: t.timestamp))
    history.close()
    twice, never = txs[3], txs[4]
    counterparties.settle_transaction(twice)  # the marker gone: a second application would count again
    assert counterparties.apply_transaction(twice, True, True).added
    with counterparties.db.transaction() as conn:  # an update the store lost
        conn.execute("DELETE FROM cp_cells WHERE entity IN (SELECT entity FROM cp_cells LIMIT 1)")
    result = check_aggregates([t for t in txs if t is not never] + [never], [], counterparties.entity_cells)
    counterparties.close()
    assert result.cells_differing > 0 and result.entities_differing >= 2


def test_the_hot_counterparty_takes_its_share_of_the_stream(txs: list) -> None:
    messages = own_entities(make_stream(400, "fraud", seed=31, id_prefix="hot"), "hot-")
    moved, n = hot_counterparty(messages, 0.3, "hot-")
    hot = [m for m in moved if json.loads(m.data)["counterparty_id"] == f"hot-{HOT_COUNTERPARTY}"]
    assert len(hot) == n and 0.25 < n / len(messages) < 0.35
    assert hot_counterparty(messages, 0.3, "hot-")[0] == moved  # the same ones every run
