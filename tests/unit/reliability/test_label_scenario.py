"""The labels scenario's pure parts: its label corpus, and the store-vs-replay counter comparison on a
real SQLite counterparty store (the same comparison the scenario runs on Bigtable)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from txguard.contract.errors import ConflictingLabelError, InvalidEventError
from txguard.contract.models import TRANSACTION_ADAPTER, LabelKind
from txguard.enrichment.counterparty.sqlite import SqliteCounterpartyStore
from txguard.enrichment.envelope import parse_label
from txguard.features.counterparty import CounterpartyBook
from txguard.features.label_ledger import apply_label
from txguard.publisher import make_stream
from txguard.reliability import label_events
from txguard.reliability.context import own_entities
from txguard.reliability.label_scenario import compare_counters

NOW = datetime.now(UTC)  # the comparison reads the store as of now (the last 30 days)


@pytest.fixture(scope="module")
def txs() -> list:
    messages = own_entities(make_stream(120, "fraud", seed=30, id_prefix="lab"), "lab-")
    return [TRANSACTION_ADAPTER.validate_json(m.data) for m in messages]


@pytest.fixture(scope="module")
def corpus(txs: list) -> label_events.Corpus:
    return label_events.corpus(txs, NOW, "lab")


def test_the_corpus_has_every_kind_the_scenario_claims(corpus: label_events.Corpus) -> None:
    kinds = Counter(m.corruption for m in corpus.first_wave + corpus.conflicts)
    for kind in ("chargeback", "analyst", "legit", "chargeback_after_legit", "reversal", "reversal_first",
                 "duplicate", "not_seen_yet", "unknown_transaction", "conflict", *label_events.MALFORMED):
        assert kinds[kind] > 0, kind
    assert corpus.held_back and kinds["unknown_transaction"] == label_events.GHOSTS
    # Labels of transactions nobody saw are refused (by the index), so never in the replay set.
    ghosts = {parse_label(m.data).transaction_id for m in corpus.first_wave if m.corruption == "unknown_transaction"}
    assert not ghosts & {lb.transaction_id for lb in corpus.valid}


def test_each_label_comes_from_a_source_its_route_carries_and_none_nears_the_limits(corpus) -> None:
    from txguard.contract import names
    from txguard.enrichment.label_checks import check_route
    from txguard.reliability.label_poisoning import LABEL_SETTINGS

    for label in corpus.valid:
        check_route(label, names.label_route_of_kind(label.kind.value))  # raises if the route refuses it
    per_source = Counter(lb.source for lb in corpus.valid)
    limits = {True: int(LABEL_SETTINGS["LABEL_ANALYST_SOURCE_LIMIT"]), False: int(LABEL_SETTINGS["LABEL_FEED_SOURCE_LIMIT"])}
    for source, n in per_source.items():
        # Copies may be counted twice when they race: a third of the labels are sent twice.
        assert n * 4 / 3 < limits[source.startswith("analyst")] / 2, source
    frauds = Counter(lb.counterparty_id for lb in corpus.valid if lb.is_fraud)
    assert max(frauds.values()) * 2 < int(LABEL_SETTINGS["LABEL_COUNTERPARTY_FRAUD_LIMIT"])


def test_valid_messages_parse_and_copies_are_byte_identical(corpus: label_events.Corpus) -> None:
    valid = [m for m in corpus.first_wave if m.expected_valid]
    by_id = {lb.label_id: lb for lb in corpus.valid}
    assert len(by_id) == len(corpus.valid)  # a label once in the replay set, whatever its copies
    for m in valid:
        assert parse_label(m.data) == by_id[parse_label(m.data).label_id]
    copies = Counter(m.data for m in valid)
    assert sum(n - 1 for n in copies.values()) == sum(1 for m in valid if m.corruption == "duplicate")


@pytest.mark.parametrize("kind", label_events.MALFORMED)
def test_every_malformed_label_is_refused_with_a_reason(corpus: label_events.Corpus, kind: str) -> None:
    [bad] = [m for m in corpus.first_wave if m.corruption == kind]
    assert not bad.expected_valid
    with pytest.raises(InvalidEventError) as err:
        parse_label(bad.data)
    assert str(err.value)


def test_conflicts_reuse_an_applied_label_id_and_are_refused(corpus: label_events.Corpus) -> None:
    book = CounterpartyBook()
    for label in corpus.valid:
        apply_label(book, label)
    for m in corpus.conflicts:
        with pytest.raises(ConflictingLabelError):
            apply_label(book, parse_label(m.data))


def test_labels_of_held_back_transactions_are_marked_not_seen_yet(corpus: label_events.Corpus) -> None:
    early = {parse_label(m.data).transaction_id for m in corpus.first_wave if m.corruption == "not_seen_yet"}
    assert early and early <= corpus.held_back


class _Stack:
    def __init__(self, path: Path) -> None:
        self.path = path

    def counterparty_store(self) -> SqliteCounterpartyStore:
        return SqliteCounterpartyStore(self.path)


def test_the_store_equals_the_replay_whatever_the_order_and_copies(tmp_path: Path, corpus, txs) -> None:
    store = SqliteCounterpartyStore(tmp_path / "cp.sqlite3")
    shuffled = [*corpus.valid, *corpus.valid[::3]]
    random.Random(4).shuffle(shuffled)
    for label in shuffled:
        store.apply_label(label)
    store.close()
    result = compare_counters(_Stack(tmp_path / "cp.sqlite3"), corpus.valid, txs)
    assert result["labels_double_counted"] == 0 and result["labels_missing"] == 0
    assert result["label_frauds_replayed"] > 0 and result["label_counters_compared"] > result["label_entities"] > 0


def test_a_label_counted_twice_or_never_is_found(tmp_path: Path, corpus, txs) -> None:
    fraud = next(lb for lb in corpus.valid if lb.kind is LabelKind.CHARGEBACK and lb.transaction_id not in
                 {x.transaction_id for x in corpus.valid if x.kind is not LabelKind.CHARGEBACK})
    store = SqliteCounterpartyStore(tmp_path / "cp.sqlite3")
    for label in corpus.valid:
        if label is not fraud:
            store.apply_label(label)
    store.close()
    missing = compare_counters(_Stack(tmp_path / "cp.sqlite3"), corpus.valid, txs)
    assert missing["labels_missing"] > 0 and missing["labels_double_counted"] == 0

    store = SqliteCounterpartyStore(tmp_path / "cp.sqlite3")
    store.apply_label(fraud)
    # A store that keyed its ledger wrongly would count the same fraud again under another key.
    store.apply_label(fraud.model_copy(update={"transaction_id": fraud.transaction_id + "-again"}))
    store.close()
    double = compare_counters(_Stack(tmp_path / "cp.sqlite3"), corpus.valid, txs)
    assert double["labels_double_counted"] > 0 and double["labels_missing"] == 0
