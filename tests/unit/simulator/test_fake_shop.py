"""The fake_shop attack: opt-in (the default worlds are unchanged), and what a simple rule sees in it
(first payments of one fixed price above 100 to shops nobody paid before), not what a model sees."""

from __future__ import annotations

from collections import Counter

import pytest

from txguard.simulator.core import simulate
from txguard.simulator.fake_shop import FAKE_SHOP, PRICES


def test_opt_in_the_default_world_is_unchanged() -> None:
    def key(r: object) -> tuple:  # a transaction without its id (ids are numbered in time order)
        return (r.tx.wallet_id, r.tx.counterparty_id, r.tx.amount, r.tx.timestamp, r.scenario)  # type: ignore[attr-defined]

    plain = list(simulate(days=6, wallets=300, seed=5))
    attacked = list(simulate(days=6, wallets=300, seed=5, attacks=(FAKE_SHOP,)))
    assert not any(r.scenario == FAKE_SHOP for r in plain)
    added = Counter(map(key, attacked)) - Counter(map(key, plain))
    assert Counter(map(key, plain)) - Counter(map(key, attacked)) == Counter()  # nothing of the world moved
    victims = [k for k in added if k[4] == FAKE_SHOP]
    assert victims and sum(added.values()) == 2 * len(victims)  # each victim's payment and its top-up
    with pytest.raises(ValueError, match="unknown attack"):
        simulate(days=1, wallets=10, attacks=("nope",))


def test_first_payments_of_a_fixed_price_to_brand_new_shops() -> None:
    data = list(simulate(days=10, wallets=1500, seed=9, attacks=(FAKE_SHOP,)))
    frauds = [r for r in data if r.scenario == FAKE_SHOP]
    assert len(frauds) >= 15 and all(r.is_fraud == 1 for r in frauds)
    assert all(r.tx.type.value == "payment" and r.tx.amount in PRICES for r in frauds)
    first_paid: dict[str, object] = {}
    for r in data:
        first_paid.setdefault(r.tx.counterparty_id, r.tx.transaction_id)
    assert all(first_paid[r.tx.counterparty_id] in {f.tx.transaction_id for f in frauds} for r in frauds)
    assert max(Counter(r.tx.counterparty_id for r in frauds).values()) <= 2  # shops rotate: no burst on one
    rings = Counter((r.tx.counterparty_id.rsplit("-", 1)[0], r.tx.wallet_id) for r in frauds)
    assert max(rings.values()) == 1  # each victim pays a ring once
