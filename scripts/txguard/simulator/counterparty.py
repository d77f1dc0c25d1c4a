"""Fraud that only a counterparty's view can see: compromised merchants and mules collecting.

Each wallet's own events are generated independently (core.py); these scenarios span many wallets,
so they are injected afterwards with an RNG of their own (same seed, same output):

- compromised_counterparty: a merchant is compromised for a few days. Its regular customers'
  payments there are fraudulent (an overcharging, hijacked checkout) and so are the payments of
  many other wallets whose stolen credentials are used at that merchant: a burst of first-time
  payers spread over the window. On a regular payer's history these look normal; what betrays them
  is the merchant (new payers, and frauds reported there once their labels are known).
- mule_collection: a mule account collects transfers from many victim wallets within a few hours to
  days (scams: fake sellers, investment fraud). Each victim pays a new, person-like counterparty
  once; together they are a burst of new payers at one counterparty.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

COMPROMISED = "compromised_counterparty"
MULE_COLLECTION = "mule_collection"
SCENARIOS: tuple[str, ...] = (COMPROMISED, MULE_COLLECTION)

# Incidents per wallet-day of the population: with 2000 wallets over 30 days about 10 compromised
# merchants and 6 mules, i.e. roughly a third of the frauds (the share the data had).
COMPROMISES_PER_WALLET_DAY = 1.7e-4
MULES_PER_WALLET_DAY = 1e-4
_DAY = 86400.0

Event = tuple  # core.Event: (ts, wallet, counterparty, amount, currency, type, channel, country, device, fraud, scenario)


def _poisson(rng: random.Random, lam: float) -> int:
    n, t = 0, rng.expovariate(1.0) if lam > 0 else 1.0
    while lam > 0 and t < lam:
        n += 1
        t += rng.expovariate(1.0)
    return n


def inject(events: list[Event], seed: int, days: int, t0: float, wallets: int,
           profile_of: Callable[[int], Any], merchants: int) -> list[Event]:
    """`events` with the counterparty scenarios applied (a new list, not sorted)."""
    if days < 2 or wallets < 20:
        return events
    rng = random.Random(f"{seed}:counterparty")
    out = list(events)
    exposure = wallets * days
    for _ in range(_poisson(rng, COMPROMISES_PER_WALLET_DAY * exposure)):
        _compromise(rng, out, t0, days, wallets, profile_of, f"m{rng.randrange(merchants):05d}")
    for _ in range(_poisson(rng, MULES_PER_WALLET_DAY * exposure)):
        _mule(rng, out, t0, days, wallets, profile_of)
    return out


def _compromise(rng: random.Random, out: list[Event], t0: float, days: int, wallets: int,
                profile_of: Callable[[int], Any], merchant: str) -> None:
    start = t0 + rng.uniform(0.5, days - 1.0) * _DAY
    end = start + rng.uniform(2.0, 10.0) * _DAY
    for i, e in enumerate(out):  # regular customers' payments there during the window
        if e[2] == merchant and start <= e[0] < end and e[5] == "payment" and not e[9]:
            out[i] = (*e[:3], round(e[3] * rng.uniform(1.0, 1.6), 2), *e[4:9], 1, COMPROMISED)
    for _ in range(rng.randint(15, 60)):  # stolen credentials used there
        p = profile_of(rng.randrange(wallets))
        device = None if rng.random() < 0.5 else f"x{rng.randrange(10**8):08d}"
        channel = "api" if device is None else "web"
        ts = rng.uniform(start, end)
        for _ in range(rng.choice((1, 1, 2, 3))):
            amount = round(p.mean_amount * rng.uniform(0.8, 4.0), 2)
            out.append((ts, p.wallet, merchant, amount, p.currency, "payment", channel, p.country, device, 1,
                        COMPROMISED))
            ts += rng.uniform(60, 6 * 3600)


def _mule(rng: random.Random, out: list[Event], t0: float, days: int, wallets: int,
          profile_of: Callable[[int], Any]) -> None:
    mule = f"p{rng.randrange(10**6):06d}-x"  # looks like any person-to-person payee
    start = t0 + rng.uniform(0.5, days - 0.5) * _DAY
    span = rng.uniform(0.2, 3.0) * _DAY
    for _ in range(rng.randint(10, 50)):
        p = profile_of(rng.randrange(wallets))
        amount = round(p.mean_amount * rng.uniform(2.0, 8.0), 2)
        out.append((rng.uniform(start, start + span), p.wallet, mule, amount, p.currency, "transfer", "app",
                    p.country, p.devices[0], 1, MULE_COLLECTION))
