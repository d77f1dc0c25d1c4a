"""Simulated wallet transactions with labelled fraud scenarios (training data, demos, load tests).

Modelled on the transaction generator of the *Reproducible Machine Learning for Credit Card
Fraud Detection* handbook (Le Borgne et al.): every wallet has a spending profile (the
handbook's customer profile), counterparties play the part of its terminals, and fraud is
injected as scenarios on top of normal behaviour. Wallet-specific twists: top-up inflows and
mule cash-outs. Legitimate behaviour includes the confounders that make detection non-trivial:
travel, occasional big purchases, new payees, second devices, small coffees.

Scenarios (label `is_fraud=1` on every fraudulent transaction, `scenario` names it):
- account_takeover: a burst of transfers to new counterparties from a new device, often abroad;
- card_testing: many tiny payments (< 5) in minutes, sometimes followed by a big one;
- amount_anomaly: one amount far above the wallet's usual;
- mule: a large top-up quickly transferred out to new counterparties;
- compromised_counterparty and mule_collection span many wallets (counterparty.py): a merchant
  where many wallets are defrauded for a few days, a mule collecting from many victims.

`Simulation.label_events()` says when each fraud became known, as a real feed would (late_labels.py):
analyst verdicts within hours, chargebacks after days to weeks, a few disputes later reversed.

Deterministic given `seed`: each wallet draws from its own RNG seeded by (seed, wallet index).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from txguard.contract.models import LabelEvent, Transaction
from txguard.simulator.counterparty import SCENARIOS as COUNTERPARTY_SCENARIOS
from txguard.simulator.counterparty import inject
from txguard.simulator.fake_shop import ATTACKS, inject_fake_shops
from txguard.simulator.late_labels import label_events

LEGIT = "legit"
SCENARIOS: tuple[str, ...] = ("account_takeover", "card_testing", "amount_anomaly", "mule")  # per wallet
FRAUD_SCENARIOS: tuple[str, ...] = SCENARIOS + COUNTERPARTY_SCENARIOS
_SCENARIO_WEIGHTS = (0.3, 0.25, 0.25, 0.2)
# Incidents per wallet per day: ~5 fraudulent transactions per incident gives ~1% fraud overall.
INCIDENTS_PER_WALLET_DAY = 0.004

_HOMES = (("FR", "EUR", 5), ("DE", "EUR", 5), ("ES", "EUR", 3), ("IT", "EUR", 3), ("NL", "EUR", 2),
          ("BE", "EUR", 1), ("PT", "EUR", 1), ("IE", "EUR", 1), ("GB", "GBP", 3), ("PL", "PLN", 2))
_TRAVEL = ("FR", "DE", "ES", "IT", "GB", "US", "PT", "GR", "CH", "AT", "HR", "NL", "MA", "TR")
_FRAUD_COUNTRIES = ("NG", "RU", "BR", "VN", "ID", "UA", "RO", "US", "CN", "IN")
_MERCHANTS = 6000
_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class LabelledTransaction:
    tx: Transaction
    is_fraud: int
    scenario: str

    def to_row(self) -> dict[str, object]:
        """The Transaction's JSON fields plus `is_fraud` and `scenario`."""
        row: dict[str, object] = self.tx.model_dump(mode="json")
        row["is_fraud"] = self.is_fraud
        row["scenario"] = self.scenario
        return row

    def to_json(self) -> str:
        """One JSONL line (fast path: no dict round trip)."""
        body = self.tx.model_dump_json()
        return f'{body[:-1]},"is_fraud":{self.is_fraud},"scenario":{json.dumps(self.scenario)}}}'


# Event tuple layout: (ts, wallet, counterparty, amount, currency, type, channel, country, device,
# is_fraud, scenario). Plain tuples keep generation fast; Transactions are built while iterating.
Event = tuple[float, str, str, float, str, str, str, str, str | None, int, str]


@dataclass(slots=True)
class _Profile:
    wallet: str
    country: str
    currency: str
    mu: float  # log-amount location
    sigma: float
    rate: float  # transactions per day
    merchants: list[str]
    peers: list[str]
    funding: str
    devices: list[str]
    channel_w: tuple[float, float, float, float]  # app, web, pos, api for payments
    type_w: tuple[float, float, float, float]  # payment, transfer, withdrawal, top_up
    hour_mu: float
    micro: bool  # habit of bursts of tiny payments (transit, vending): card-testing look-alike

    @property
    def mean_amount(self) -> float:
        return math.exp(self.mu + self.sigma * self.sigma / 2)


def _profile(rng: random.Random, index: int, drift: float) -> _Profile:
    country, currency, _ = rng.choices(_HOMES, weights=[h[2] for h in _HOMES])[0]
    wallet = f"w{index:06d}"
    app, web, pos = rng.uniform(1, 6), rng.uniform(0.3, 2.5) + 3 * drift, rng.uniform(0.5, 4)
    pay, transfer, withdraw, top_up = rng.uniform(5, 9), rng.uniform(0.5, 2.5), rng.uniform(0.1, 1), rng.uniform(0.6, 1.5)
    return _Profile(
        wallet=wallet,
        country=country,
        currency=currency,
        mu=rng.uniform(math.log(8), math.log(70)) + math.log1p(drift),
        sigma=rng.uniform(0.4, 0.9),
        rate=rng.uniform(0.4, 4.0),
        merchants=[f"m{rng.randrange(_MERCHANTS):05d}" for _ in range(rng.randint(4, 20))],
        peers=[f"p{index:06d}-{k}" for k in range(rng.randint(1, 6))],
        funding=f"bank-{index:06d}",
        devices=[f"d{index:06d}-{k}" for k in range(rng.choice((1, 1, 2)))],
        channel_w=(app, web, pos, rng.uniform(0, 1.0)),
        type_w=(pay, transfer, withdraw, top_up),
        hour_mu=rng.uniform(10, 19),
        micro=rng.random() < 0.15,
    )


def _legit(rng: random.Random, p: _Profile, ts: float, drift: float) -> Event:
    kind = rng.choices(("payment", "transfer", "withdrawal", "top_up"), weights=p.type_w)[0]
    amount = rng.lognormvariate(p.mu, p.sigma)
    if rng.random() < 0.004:  # the occasional big legitimate purchase
        amount *= rng.uniform(4, 12)
    country = p.country
    if rng.random() < 0.02 + 0.1 * drift:  # travel
        country = rng.choice(_TRAVEL)
    device: str | None = p.devices[0] if rng.random() < 0.9 or len(p.devices) == 1 else p.devices[1]
    if rng.random() < 0.003 + 0.02 * drift:  # new phone
        device = f"d{p.wallet[1:]}-n{rng.randrange(1000)}"
    if kind == "payment":
        channel = rng.choices(("app", "web", "pos", "api"), weights=p.channel_w)[0]
        cp = rng.choice(p.merchants) if rng.random() < 0.88 else f"m{rng.randrange(_MERCHANTS):05d}"
        if channel in ("pos", "api"):
            device = None  # card present, or merchant-initiated (subscriptions): no wallet device
    elif kind == "transfer":
        channel = "app" if rng.random() < 0.8 else "web"
        cp = rng.choice(p.peers) if rng.random() < 0.85 else f"p{rng.randrange(10**6):06d}-x"
        amount *= rng.uniform(1, 3)
    elif kind == "withdrawal":
        channel, device = "atm", None
        cp = f"atm-{country}-{rng.randrange(200):03d}"
        amount = max(20.0, round(amount * 2, -1))
    else:
        channel = "api" if rng.random() < 0.6 else "app"
        cp = p.funding if rng.random() < 0.92 else f"src{rng.randrange(10**8):08d}"  # gifts, refunds
        amount = max(10.0, round(p.mean_amount * rng.uniform(3, 10), -1))
    return (ts, p.wallet, cp, round(max(amount, 0.5), 2), p.currency, kind, channel, country, device, 0, LEGIT)


def _micro_burst(rng: random.Random, p: _Profile, ts: float) -> list[Event]:
    """Legitimate: a few tiny payments in minutes (transit gates, vending, parking)."""
    merchant = rng.choice(p.merchants) if rng.random() < 0.5 else f"m{rng.randrange(_MERCHANTS):05d}"
    out: list[Event] = []
    for _ in range(rng.randint(2, 6)):
        out.append((ts, p.wallet, merchant, round(rng.uniform(0.5, 5.0), 2), p.currency, "payment", "app",
                    p.country, p.devices[0], 0, LEGIT))
        ts += rng.uniform(20, 900)
    return out


def _top_up_and_pay(rng: random.Random, p: _Profile, ts: float) -> list[Event]:
    """Legitimate: a large top-up soon paid out (rent, a car): mule look-alike."""
    amount = round(rng.uniform(400, 4000), -1)
    cp = rng.choice(p.peers) if rng.random() < 0.5 else f"p{rng.randrange(10**6):06d}-x"
    later = ts + rng.uniform(600, 6 * 3600)
    return [
        (ts, p.wallet, p.funding, amount, p.currency, "top_up", "api", p.country, p.devices[0], 0, LEGIT),
        (later, p.wallet, cp, round(amount * rng.uniform(0.8, 1.0), 2), p.currency, "transfer", "app",
         p.country, p.devices[0], 0, LEGIT),
    ]


def _hour_ts(rng: random.Random, day_start: float, hour_mu: float) -> float:
    hour = min(max(rng.gauss(hour_mu, 3.5), 0.0), 23.99)
    return day_start + hour * 3600 + rng.uniform(0, 59.0)


def _fraud(rng: random.Random, p: _Profile, ts: float, scenario: str) -> list[Event]:
    w, cur, out = p.wallet, p.currency, []
    new_device = f"x{rng.randrange(10**8):08d}"
    abroad = rng.choice(_FRAUD_COUNTRIES) if rng.random() < 0.6 else p.country
    if scenario == "account_takeover":
        channel = "web" if rng.random() < 0.6 else "app"
        device = p.devices[0] if rng.random() < 0.25 else new_device  # hijacked session vs new phone
        t = ts
        for _ in range(rng.randint(2, 8)):
            amount = p.mean_amount * rng.uniform(1.5, 10)
            out.append((t, w, f"f{rng.randrange(10**8):08d}", round(amount, 2), cur, "transfer", channel,
                        abroad, device, 1, scenario))
            t += rng.uniform(30, 1200)
    elif scenario == "card_testing":
        device = None if rng.random() < 0.4 else new_device if rng.random() < 0.7 else p.devices[0]
        channel = "api" if device is None else rng.choice(("web", "app"))
        merchant = f"m{rng.randrange(_MERCHANTS):05d}"
        t = ts
        for _ in range(rng.randint(3, 12)):
            cp = merchant if rng.random() < 0.5 else f"m{rng.randrange(_MERCHANTS):05d}"
            out.append((t, w, cp, round(rng.uniform(0.5, 4.99), 2), cur, "payment", channel, abroad, device, 1,
                        scenario))
            t += rng.uniform(5, 180)
        if rng.random() < 0.5:
            out.append((t + rng.uniform(60, 1800), w, f"m{rng.randrange(_MERCHANTS):05d}",
                        round(rng.uniform(200, 2500), 2), cur, "payment", channel, abroad, device, 1, scenario))
    elif scenario == "amount_anomaly":
        cp = f"m{rng.randrange(_MERCHANTS):05d}" if rng.random() < 0.7 else rng.choice(p.merchants)
        device = new_device if rng.random() < 0.5 else p.devices[0]
        kind = "payment" if rng.random() < 0.8 else "transfer"
        out.append((ts, w, cp, round(p.mean_amount * rng.uniform(4, 30), 2), cur, kind,
                    "web" if rng.random() < 0.5 else "app", p.country, device, 1, scenario))
    else:  # mule
        inflow = round(rng.uniform(800, 8000), -1)
        device = p.devices[0] if rng.random() < 0.5 else new_device
        out.append((ts, w, f"src{rng.randrange(10**8):08d}", inflow, cur, "top_up", "api", p.country, device, 1,
                    scenario))
        t, left = ts, inflow * rng.uniform(0.9, 1.0)
        n = rng.randint(2, 5)
        for k in range(n):
            t += rng.uniform(60, 3600)
            part = left if k == n - 1 else left * rng.uniform(0.2, 0.6)
            left -= part
            out.append((t, w, f"f{rng.randrange(10**8):08d}", round(max(part, 1.0), 2), cur, "transfer",
                        "app", p.country, device, 1, scenario))
    return out


def _wallet_events(seed: int, index: int, days: int, start: float, drift: float) -> list[Event]:
    rng = random.Random(f"{seed}:{index}")
    p = _profile(rng, index, drift)
    events: list[Event] = []
    for day in range(days):
        day_start = start + day * _DAY
        n = _poisson(rng, p.rate)
        for _ in range(n):
            events.append(_legit(rng, p, _hour_ts(rng, day_start, p.hour_mu), drift))
        if p.micro and rng.random() < 0.3:
            events.extend(_micro_burst(rng, p, _hour_ts(rng, day_start, p.hour_mu)))
        if rng.random() < 0.015:
            events.extend(_top_up_and_pay(rng, p, _hour_ts(rng, day_start, p.hour_mu)))
    if days > 0 and rng.random() < 1 - math.exp(-INCIDENTS_PER_WALLET_DAY * days):
        scenario = rng.choices(SCENARIOS, weights=_SCENARIO_WEIGHTS)[0]
        ts = start + rng.uniform(min(1.0, days * 0.2), days - 0.1) * _DAY
        events.extend(_fraud(rng, p, ts, scenario))
    return events


def _poisson(rng: random.Random, lam: float) -> int:
    threshold, k, prod = math.exp(-lam), 0, rng.random()
    while prod > threshold:
        k += 1
        prod *= rng.random()
    return k


class Simulation:
    """All events generated up front (sorted in time), Transactions built lazily while iterating."""

    def __init__(
        self,
        days: int = 30,
        wallets: int = 3000,
        seed: int = 42,
        start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
        drift: float = 0.0,
        id_prefix: str | None = None,
        attacks: tuple[str, ...] = (),
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        unknown = set(attacks) - set(ATTACKS)
        if unknown:
            raise ValueError(f"unknown attack(s) {sorted(unknown)}; choose from {', '.join(ATTACKS)}")
        t0 = start.timestamp()
        events: list[Event] = []
        for i in range(wallets):
            events.extend(_wallet_events(seed, i, days, t0, drift))

        def profile_of(index: int) -> _Profile:  # the wallet's own profile: its RNG's first draws
            return _profile(random.Random(f"{seed}:{index}"), index, drift)

        events = inject(events, seed, days, t0, wallets, profile_of, _MERCHANTS)
        if attacks:  # new attacks (fake_shop.py): opt-in, so the default worlds stay as they were
            events = inject_fake_shops(events, seed, days, t0, wallets, profile_of)
        events = [e for e in events if e[0] < t0 + days * _DAY]
        events.sort(key=lambda e: (e[0], e[1]))
        self.events = events
        self.id_prefix = id_prefix or f"s{seed}"
        self.seed = seed
        self.params = {"days": days, "wallets": wallets, "seed": seed, "start": start.isoformat(),
                       "drift": drift, "id_prefix": self.id_prefix}
        if attacks:
            self.params["attacks"] = list(attacks)

    def label_events(self, until: datetime | None = None) -> Iterator[LabelEvent]:
        """The labels of these transactions known by `until` (default now), in the order they became known."""
        return label_events(self.events, self.id_prefix, self.seed, until)

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Iterator[LabelledTransaction]:
        prefix = self.id_prefix
        for n, (ts, wallet, cp, amount, cur, kind, channel, country, device, fraud, scenario) in enumerate(
            self.events
        ):
            tx = Transaction(
                transaction_id=f"{prefix}-{n:09d}",
                wallet_id=wallet,
                counterparty_id=cp,
                amount=amount,
                currency=cur,
                type=kind,
                channel=channel,
                country=country,
                device_id=device,
                timestamp=datetime.fromtimestamp(round(ts, 3), UTC),
            )
            yield LabelledTransaction(tx, fraud, scenario)


def simulate(
    days: int = 30,
    wallets: int = 3000,
    seed: int = 42,
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    drift: float = 0.0,
    id_prefix: str | None = None,
    attacks: tuple[str, ...] = (),
) -> Iterator[LabelledTransaction]:
    """Labelled transactions of `wallets` wallets over `days` days, in time order."""
    return iter(Simulation(days, wallets, seed, start, drift, id_prefix, attacks))


def quick_stream(
    count: int, seed: int = 0, start: datetime | None = None, drift: float = 0.0, id_prefix: str | None = None,
    attacks: tuple[str, ...] = (),
) -> Iterator[LabelledTransaction]:
    """About `count` transactions quickly (publisher, load tests): 2 days of enough wallets.

    `start` defaults to two days before now so the timestamps are recent and never in the future.
    """
    from itertools import islice

    wallets = max(20, count // 4)
    if start is None:
        now = datetime.now(UTC).timestamp()
        start = datetime.fromtimestamp(math.floor(now / _DAY) * _DAY - 2 * _DAY, UTC)
    return islice(simulate(days=2, wallets=wallets, seed=seed, start=start, drift=drift, id_prefix=id_prefix,
                           attacks=attacks), count)
