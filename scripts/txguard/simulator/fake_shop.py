"""A new attack the models were never trained on: fake shops, each paid once by many wallets.

A fraud ring advertises a too-good offer (concert tickets, a phone deal) to people who spend that
kind of money. Within a few hours, many wallets top up from their own bank and pay one fixed price
above 100 minutes later, from their usual phone, each to a shop nobody has paid before: the ring
rotates its shop every second payment, so no counterparty gathers the burst of new payers that
betrays a mule or a compromised merchant, and the price is within the victims' habits, so no
amount stands out. To a model trained on history each payment is a customer paying a new shop an
ordinary amount. What is new is the pattern across wallets: first payments of one fixed amount to
shops younger than a day. The victims' payments are fraud (`scenario` = `fake_shop`), their
top-ups are not.

It is opt-in (`Simulation(attacks=("fake_shop",))`, `txguard simulate --attack fake_shop`, the
`fake_shop` stream of the publisher and the demo) so that training data and every figure measured
on the default worlds stay as they were: the point is an attack that starts after the model was
trained, which a simple rule catches before any label exists (docs/rules.md):

    type == 'payment' && amount > 100 && is_new_counterparty == 1 && cp_age_days < 1
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

FAKE_SHOP = "fake_shop"
ATTACKS: tuple[str, ...] = (FAKE_SHOP,)
SHOPS_PER_WALLET_DAY = 2e-4  # plus one: every world with the attack has at least one shop
PRICES = (119.0, 129.0, 149.0)  # concert tickets, a phone deal: a fixed price a victim may well spend
MIN_MEAN_AMOUNT = 40.0  # the ad reaches people who spend that much (a price far above a wallet's habit is the model's)
_HOMES = (("FR", "EUR"), ("DE", "EUR"), ("ES", "EUR"), ("IT", "EUR"), ("GB", "GBP"), ("PL", "PLN"))
_DAY = 86400.0


def inject_fake_shops(events: list[Any], seed: int, days: int, t0: float, wallets: int,
                      profile_of: Callable[[int], Any]) -> list[Any]:
    """`events` (core.Event tuples) with fake shops added (a new list, not sorted)."""
    rng = random.Random(f"{seed}:{FAKE_SHOP}")
    out = list(events)
    shops = 1 + sum(1 for _ in range(wallets * max(days, 1)) if rng.random() < SHOPS_PER_WALLET_DAY)
    for _ in range(shops):
        ring = rng.randrange(10**6)
        price = rng.choice(PRICES)
        start = t0 + rng.uniform(0.2, max(days * 0.75 - 0.3, 0.25)) * _DAY  # ends inside a short stream too
        span = rng.uniform(2.0, 10.0) * 3600
        spenders = [i for i in rng.sample(range(wallets), min(wallets, 400))
                    if profile_of(i).mean_amount >= MIN_MEAN_AMOUNT]
        victims = spenders[:rng.randint(15, 40)]
        for k, index in enumerate(victims):
            p = profile_of(index)
            shop = f"shop-{ring:06d}-{k // 2}"  # a new shop every second payment
            pay_at = start + span * (k + rng.random()) / len(victims)
            top_up_at = pay_at - rng.uniform(300, 3600)
            device = p.devices[0]
            out.append((top_up_at, p.wallet, p.funding, price, p.currency, "top_up", "api", p.country, device, 0,
                        "legit"))
            out.append((pay_at, p.wallet, shop, price, p.currency, "payment", rng.choice(("app", "web")), p.country,
                        device, 1, FAKE_SHOP))
    return out
