"""Counterparty features: ended buckets only, checked against a naive count over raw events."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from tests.enrich_fakes import make_tx
from txguard.contract.models import LabelEvent
from txguard.features.counterparty import (
    FIVE_MIN,
    WALLET_SLOTS,
    CounterpartyBook,
    EntityKeys,
    marks,
    transaction_increments,
)
from txguard.features.counterparty_windows import counterparty_values
from txguard.features.label_ledger import apply_label
from txguard.features.wallet import COUNTERPARTY_FEATURES, DAY, HOUR, TxPoint, WalletState, apply

T0 = datetime(2026, 3, 10, tzinfo=UTC)
IX = {name: i for i, name in enumerate(COUNTERPARTY_FEATURES)}


def features(book: CounterpartyBook, tx) -> dict[str, float]:  # noqa: ANN001
    return dict(zip(COUNTERPARTY_FEATURES, counterparty_values(book.snapshot(tx), tx.amount,
                                                               tx.timestamp.timestamp()), strict=True))


def add(book: CounterpartyBook, tx, new_cp: bool = True, new_device: bool = False) -> None:  # noqa: ANN001
    book.add(transaction_increments(tx, new_cp, new_device))


def label(i: int, tx, known: datetime, **over) -> LabelEvent:  # noqa: ANN001
    fields = {"label_id": f"L{i}", "transaction_id": tx.transaction_id, "wallet_id": tx.wallet_id,
              "counterparty_id": tx.counterparty_id, "device_id": tx.device_id,
              "transaction_time": tx.timestamp, "known_at": known, "kind": "chargeback", "is_fraud": True}
    return LabelEvent(**{**fields, **over})


def test_a_transaction_counts_only_once_its_bucket_has_ended() -> None:
    book = CounterpartyBook()
    first = make_tx(0, start=T0, counterparty_id="shop", timestamp=T0 + timedelta(minutes=1))
    add(book, first)
    same_slot = make_tx(1, start=T0, counterparty_id="shop", timestamp=T0 + timedelta(minutes=4))
    next_slot = make_tx(2, start=T0, counterparty_id="shop", timestamp=T0 + timedelta(minutes=5))
    next_hour = make_tx(3, start=T0, counterparty_id="shop", timestamp=T0 + timedelta(hours=1))
    assert features(book, same_slot)["cp_tx_1h"] == 0  # the slot of 00:00-00:05 has not ended
    assert features(book, next_slot)["cp_tx_1h"] == 1
    assert features(book, next_slot)["cp_tx_24h"] == 0  # ... nor has the hour
    assert features(book, next_hour)["cp_tx_24h"] == 1 and features(book, next_hour)["cp_tx_7d"] == 1
    assert features(book, next_hour)["cp_amount_1h"] == pytest.approx(first.amount)  # slots 00:00-01:00
    after = make_tx(4, start=T0, counterparty_id="shop", timestamp=T0 + timedelta(hours=1, minutes=5))
    assert features(book, after)["cp_tx_1h"] == 0  # slots 00:05-01:05: the first slot left the window
    gone = make_tx(5, start=T0, counterparty_id="shop", timestamp=T0 + timedelta(days=31, hours=1))
    assert features(book, gone)["cp_tx_30d"] == 0 and features(book, gone)["cp_age_days"] == 0


def test_a_label_counts_from_the_end_of_the_hour_it_became_known() -> None:
    book = CounterpartyBook()
    tx = make_tx(0, start=T0, counterparty_id="shop", timestamp=T0)
    add(book, tx)
    apply_label(book, label(1, tx, T0 + timedelta(days=3, minutes=10)))
    probe = lambda at: features(book, make_tx(10, start=T0, counterparty_id="shop", timestamp=at))  # noqa: E731
    assert probe(T0 + timedelta(days=3, minutes=50))["cp_fraud_30d"] == 0
    at = probe(T0 + timedelta(days=3, hours=1))
    assert (at["cp_fraud_1d"], at["cp_fraud_7d"], at["cp_fraud_30d"]) == (1, 1, 1)
    assert at["wallet_fraud_30d"] == 1 and at["device_fraud_30d"] == 0  # probe uses another device
    late = probe(T0 + timedelta(days=5))
    assert (late["cp_fraud_1d"], late["cp_fraud_7d"]) == (0, 1)
    assert late["cp_fraud_rate_7d"] == pytest.approx(1.0)


def test_the_payees_own_known_frauds_as_a_payer_count_once_known() -> None:
    """`cp_wallet_fraud_30d`: frauds the counterparty committed as a paying wallet (a mule's forwarding
    or cash-outs), from the end of the hour their label became known, for 30 days, withdrawn by a
    reversal; frauds paid *to* it are `cp_fraud_30d`, not this."""
    book = CounterpartyBook()
    sent = make_tx(0, wallet="mule", start=T0, counterparty_id="agent", timestamp=T0)
    add(book, sent)
    apply_label(book, label(1, sent, T0 + timedelta(days=2, minutes=10)))
    probe = lambda at, **o: features(book, make_tx(10, wallet="alice", start=T0, counterparty_id="mule",  # noqa: E731
                                                   timestamp=at, **o))
    assert probe(T0 + timedelta(days=2, minutes=50))["cp_wallet_fraud_30d"] == 0  # known, its hour not ended
    at = probe(T0 + timedelta(days=2, hours=1))
    assert at["cp_wallet_fraud_30d"] == 1 and at["cp_fraud_30d"] == 0 and at["wallet_fraud_30d"] == 0
    # The mule paying on: its own label counts as the wallet's, and its payee ("agent") never paid.
    own = features(book, make_tx(11, wallet="mule", start=T0, counterparty_id="agent",
                                 timestamp=T0 + timedelta(days=2, hours=1)))
    assert own["wallet_fraud_30d"] == 1 and own["cp_wallet_fraud_30d"] == 0 and own["cp_fraud_30d"] == 1
    assert probe(T0 + timedelta(days=33))["cp_wallet_fraud_30d"] == 0  # out of the 30-day window
    assert probe(T0 + timedelta(days=3))["cp_wallet_fraud_30d"] == 1
    apply_label(book, label(2, sent, T0 + timedelta(days=4), kind="reversal", is_fraud=None, reverses="L1"))
    assert probe(T0 + timedelta(days=4, hours=1))["cp_wallet_fraud_30d"] == 0


def _naive(events: list[tuple[float, float, bool]], t: float) -> dict[str, float]:
    """Counts over the ended buckets, computed from raw (time, amount, new wallet) events."""
    slot, hour, day = int(t // FIVE_MIN), int(t // HOUR), int(t // DAY)

    def ended_days(n: int):  # noqa: ANN202
        return [e for e in events if day - n <= int(e[0] // DAY) < day or
                (int(e[0] // DAY) == day and int(e[0] // HOUR) < hour)]

    in_1h = [e for e in events if slot - 12 <= int(e[0] // FIVE_MIN) < slot]
    in_24h = [e for e in events if hour - 24 <= int(e[0] // HOUR) < hour]
    d30 = ended_days(30)
    return {
        "cp_tx_1h": len(in_1h), "cp_amount_1h": round(sum(round(e[1] * 100) for e in in_1h) / 100, 2),
        "cp_tx_24h": len(in_24h), "cp_new_wallets_1h": sum(e[2] for e in in_1h),
        "cp_new_wallets_24h": sum(e[2] for e in in_24h), "cp_tx_7d": len(ended_days(7)), "cp_tx_30d": len(d30),
    }


def test_windows_equal_a_naive_count_over_raw_events() -> None:
    rng = random.Random(5)
    book, events = CounterpartyBook(), []
    for i in range(600):
        at = T0 + timedelta(seconds=rng.uniform(0, 20 * DAY))
        tx = make_tx(i, start=T0, counterparty_id="hot", timestamp=at)
        new = rng.random() < 0.3
        add(book, tx, new_cp=new)
        events.append((at.timestamp(), tx.amount, new))
    for k in range(300):
        at = T0 + timedelta(seconds=rng.uniform(0, 25 * DAY))
        got = features(book, make_tx(1000 + k, start=T0, counterparty_id="hot", timestamp=at))
        want = _naive(events, at.timestamp())
        assert {name: round(got[name], 2) for name in want} == want


def test_marks_say_first_payment_to_a_counterparty_and_first_use_of_a_device() -> None:
    state = WalletState()
    first = make_tx(0, start=T0, counterparty_id="shop", device_id="dev-a")
    assert marks(state, TxPoint.of(first)) == (True, True)
    apply(state, TxPoint.of(first))
    again = make_tx(1, start=T0, counterparty_id="shop", device_id="dev-a")
    assert marks(state, TxPoint.of(again)) == (False, False)
    other = make_tx(2, start=T0, counterparty_id="other", device_id="dev-b")
    assert marks(state, TxPoint.of(other)) == (True, True)
    # A transaction delivered late: what came after it does not count as "before".
    early = make_tx(3, start=T0, counterparty_id="shop", device_id="dev-a", timestamp=T0 - timedelta(hours=1))
    assert marks(state, TxPoint.of(early)) == (True, True)


def test_distinct_defrauded_wallets_tell_a_compromised_counterparty_from_one_compromised_wallet() -> None:
    book = CounterpartyBook()
    victims = [make_tx(i, wallet=f"victim-{i}", start=T0, counterparty_id="skimmer") for i in range(6)]
    one = [make_tx(i, wallet="taken-over", start=T0, counterparty_id="grocer") for i in range(6)]
    for i, tx in enumerate(victims + one):
        apply_label(book, label(i, tx, T0 + timedelta(days=2)))
    at = T0 + timedelta(days=4)
    skimmer = features(book, make_tx(50, start=T0, counterparty_id="skimmer", timestamp=at))
    grocer = features(book, make_tx(51, start=T0, counterparty_id="grocer", timestamp=at))
    slots = [int(EntityKeys.of(tx.wallet_id, "x", None).wallet[1:], 16) % WALLET_SLOTS for tx in victims]
    assert skimmer["cp_fraud_30d"] == grocer["cp_fraud_30d"] == 6
    # Six wallets in a 64-slot estimate: exact unless two share a slot.
    assert (skimmer["cp_fraud_wallets_7d"], grocer["cp_fraud_wallets_7d"]) == (len(set(slots)), 1)
    # A reversal takes its wallet out again; the slots count days that have ended only.
    apply_label(book, label(99, victims[0], T0 + timedelta(days=3), kind="reversal", is_fraud=None, reverses="L0"))
    after = features(book, make_tx(52, start=T0, counterparty_id="skimmer", timestamp=at))
    assert after["cp_fraud_wallets_30d"] == len(set(slots[1:]))
    same_day = features(book, make_tx(53, start=T0, counterparty_id="skimmer", timestamp=T0 + timedelta(days=2, hours=5)))
    assert same_day["cp_fraud_30d"] == 5 and same_day["cp_fraud_wallets_30d"] == 0
