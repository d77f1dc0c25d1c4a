"""The label ledger: a verdict counts once per transaction, reversals undo, duplicates change
nothing, and the final counters depend on the set of labels, not on their arrival order."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from tests.enrich_fakes import make_tx
from txguard.contract.errors import ConflictingLabelError
from txguard.contract.models import LabelEvent
from txguard.features.counterparty import DAY_COLUMNS, FRAUD, CounterpartyBook, EntityKeys, day_of
from txguard.features.label_ledger import apply_label

T0 = datetime(2026, 3, 10, tzinfo=UTC)
TX = make_tx(0, start=T0, counterparty_id="shop")
KEYS = EntityKeys.of(TX.wallet_id, TX.counterparty_id, TX.device_id)


def label(label_id: str, days: float, kind: str = "chargeback", **over) -> LabelEvent:  # noqa: ANN003
    fields = {"label_id": label_id, "transaction_id": TX.transaction_id, "wallet_id": TX.wallet_id,
              "counterparty_id": TX.counterparty_id, "device_id": TX.device_id, "transaction_time": TX.timestamp,
              "known_at": T0 + timedelta(days=days), "kind": kind}
    if kind != "reversal":
        fields["is_fraud"] = True
    return LabelEvent(**{**fields, **over})


def frauds(book: CounterpartyBook, entity: str = KEYS.counterparty) -> dict[int, int]:
    """Known frauds per day of an entity (the day totals)."""
    return {d: c[DAY_COLUMNS[FRAUD]] for d, c in book.cells.get(entity, {}).items() if c.get(DAY_COLUMNS[FRAUD])}


def day(days: float) -> int:
    return day_of((T0 + timedelta(days=days)).timestamp())


def test_a_fraud_counts_once_for_each_entity_where_it_became_known() -> None:
    book = CounterpartyBook()
    outcome = apply_label(book, label("cb", 7))
    assert outcome.changed and not outcome.duplicate
    for entity in KEYS.all():
        assert frauds(book, entity) == {day(7): 1}
    assert apply_label(book, label("an", 9, kind="analyst")).increments == ()  # already known: unchanged
    assert frauds(book) == {day(7): 1}


def test_duplicate_changes_nothing_and_returns_the_stored_increments() -> None:
    book = CounterpartyBook()
    first = apply_label(book, label("cb", 7))
    again = apply_label(book, label("cb", 7))
    assert again.duplicate and again.increments == first.increments
    assert frauds(book) == {day(7): 1}
    with pytest.raises(ConflictingLabelError):
        apply_label(book, label("cb", 8))  # same id, other content


def test_reversal_withdraws_and_a_legit_verdict_overrides() -> None:
    book = CounterpartyBook()
    apply_label(book, label("an", 1, kind="analyst"))
    apply_label(book, label("cb", 7))
    assert frauds(book) == {day(1): 1}  # known since the analyst's verdict
    apply_label(book, label("rv", 9, kind="reversal", reverses="an"))
    assert frauds(book) == {day(7): 1}  # still known fraud, since the chargeback
    apply_label(book, label("ok", 12, kind="analyst", is_fraud=False))
    assert frauds(book) == {}  # the latest verdict says legitimate
    assert apply_label(book, label("rv", 9, kind="reversal", reverses="an")).duplicate


def test_final_counters_do_not_depend_on_arrival_order() -> None:
    labels = [label("an", 1, kind="analyst"), label("cb", 7), label("rv", 9, kind="reversal", reverses="an"),
              label("ok", 3, kind="analyst", is_fraud=False)]
    results = set()
    for order in itertools.permutations(labels):
        book = CounterpartyBook()
        for lb in order:
            apply_label(book, lb)
        results.add(tuple(sorted(frauds(book).items())))
        assert all(v >= 0 for v in frauds(book).values())
    assert results == {((day(7), 1),)}


def test_label_contract_names_the_field() -> None:
    with pytest.raises(ValidationError, match=r"is_fraud\n  Value error, required when kind is chargeback"):
        label("x", 1, is_fraud=None)
    with pytest.raises(ValidationError, match=r"reverses\n  Value error, required when kind is reversal"):
        label("x", 1, kind="reversal")
    with pytest.raises(ValidationError, match=r"known_at\n  Value error, is before transaction_time"):
        label("x", -1)
    with pytest.raises(ValidationError, match=r"is_fraud\n  Value error, must be absent when kind is reversal"):
        label("x", 1, kind="reversal", reverses="y", is_fraud=True)
    with pytest.raises(ValidationError, match="known_at"):
        label("x", 1, known_at=datetime(2999, 1, 1, tzinfo=UTC))
    with pytest.raises(ValidationError, match="a label cannot reverse itself"):
        label("x", 1, kind="reversal", reverses="x")
