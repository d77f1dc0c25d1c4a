"""The label_poisoning scenario's plan (pure): each attack is what it claims to be, checked with the label
function's own checks against a transaction index of the scenario's transactions, and sized against the
limits the reliability stack runs with."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from txguard.contract import names
from txguard.contract.errors import LabelRefusedError, TransactionNotSeenYetError
from txguard.contract.models import TRANSACTION_ADAPTER, LabelKind
from txguard.enrichment.label_checks import (
    KIND_MISMATCH,
    KIND_SOURCE,
    KIND_UNKNOWN,
    check_route,
    verified_record,
)
from txguard.enrichment.transaction_index.sqlite import SqliteTransactionIndex
from txguard.publisher import make_stream
from txguard.reliability.context import own_entities
from txguard.reliability.label_poisoning import (
    BURST,
    BURST_SHOP,
    COUNTERPARTY_LIMIT,
    FEED_LIMIT,
    LABEL_SETTINGS,
    PREFIX,
    STORM,
    _on_burst_shop,
    plan,
)

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def txs() -> list:
    messages = _on_burst_shop(own_entities(make_stream(240, "fraud", seed=31, id_prefix=PREFIX), f"{PREFIX}-"), BURST)
    return [TRANSACTION_ADAPTER.validate_json(m.data) for m in messages]


@pytest.fixture(scope="module")
def sets(txs: list) -> dict:
    return plan(txs, NOW, forged=40)


@pytest.fixture()
def index(tmp_path: Path, txs: list) -> SqliteTransactionIndex:
    index = SqliteTransactionIndex(tmp_path / "index.sqlite3")
    for tx in txs:
        index.record(tx)
    yield index
    index.close()


def refusal(label, index, topic: str | None = None) -> str | None:
    """The label function's verdict on a label that came by `topic` (default its kind's): None if accepted."""
    route = next(r for r in names.LABEL_ROUTES if r.topic == (topic or names.label_route_of_kind(label.kind.value).topic))
    try:
        check_route(label, route)
        verified_record(label, index, NOW.timestamp() - 3600, NOW.timestamp(), 45)
    except LabelRefusedError as exc:
        return exc.kind
    return None


def test_genuine_storm_and_burst_labels_pass_every_check(sets: dict, index) -> None:
    for key in ("genuine", "storm", "burst"):
        assert sets[key] and all(refusal(lb, index) is None for lb in sets[key]), key


def test_each_attack_is_refused_for_its_own_reason(sets: dict, index) -> None:
    assert {refusal(lb, index) for lb in sets["forged"]} == {KIND_UNKNOWN}
    assert {refusal(lb, index) for lb in sets["mismatched"]} == {KIND_MISMATCH}
    assert {refusal(lb, index, topic) for lb, topic in sets["wrong_route_topics"]} == {KIND_SOURCE}
    # Within the retry window, an unknown transaction is retried (it may still come), not refused.
    with pytest.raises(TransactionNotSeenYetError):
        verified_record(sets["forged"][0], index, NOW.timestamp() - 5, NOW.timestamp(), 45)


def test_the_forger_names_the_victim_and_the_storm_spares_it(sets: dict) -> None:
    victim = sets["victim"]
    assert {lb.counterparty_id for lb in sets["forged"]} == {victim}
    assert all(lb.is_fraud and lb.kind is LabelKind.ANALYST for lb in sets["forged"])
    assert victim not in {lb.counterparty_id for lb in sets["storm"]}
    assert any(lb.is_fraud for lb in sets["genuine"] if lb.counterparty_id == victim)


def test_storm_and_burst_go_past_their_limits_and_genuine_sources_stay_below(sets: dict) -> None:
    assert len(sets["storm"]) == STORM > FEED_LIMIT and {lb.source for lb in sets["storm"]} == {"processor:rogue"}
    assert len(sets["burst"]) == BURST > COUNTERPARTY_LIMIT
    assert {lb.counterparty_id for lb in sets["burst"]} == {BURST_SHOP}
    per_source = Counter(lb.source for lb in sets["genuine"])
    assert per_source["analyst:g7"] < int(LABEL_SETTINGS["LABEL_ANALYST_SOURCE_LIMIT"])
    assert per_source["processor:acme"] < FEED_LIMIT
    frauds = Counter(lb.counterparty_id for lb in sets["genuine"] if lb.is_fraud)
    assert max(frauds.values()) < COUNTERPARTY_LIMIT
    every = [lb.label_id for key in ("genuine", "forged", "wrong_route", "mismatched", "storm", "burst")
             for lb in sets[key]]
    assert len(every) == len(set(every))  # one label id, one fate
