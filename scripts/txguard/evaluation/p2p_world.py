"""The honest side of a peer-to-peer mobile-money world: people, agents, merchants and their traffic.

A mobile-money service as the GSMA describes it (*State of the Industry Report on Mobile Money*;
*Mobile money fraud typologies and mitigation strategies*, 2024): people hold a wallet on their
phone, turn cash into e-money and back at **agents** (cash-in is keyed in by the agent on the
agent's device, cash-out by the customer on their own phone), send money to each other, pay
merchants and buy airtime. PaySim (Lopez-Rojas, Elmir and Axelsson, *PaySim: a financial mobile
money simulator for fraud detection*, EMSS 2016) modelled the same service from an operator's logs
with the same five transaction types.

Every fraud kind in `p2p_fraud` has honest traffic here that looks like it, because that is what a
detector is up against:

- an agent's device keys in cash for dozens of customers an hour, registers new ones with a
  first small deposit, and pays airtime and bills for customers who hand over their phone number
  and PIN (assisted transactions and PIN sharing are common among new and less literate users:
  CGAP, *Doing Digital Finance Right*, 2015; GSMA 2024) (credential testing: one device, many
  wallets, small payments, minutes apart);
- people change phones, or use two, and then transact as usual, some at night; agents replace
  their phones too (account takeover: a device new to the wallet; credential testing: a new device);
- money sent home is withdrawn within hours by whoever receives it (the remittance use that made
  M-Pesa: Jack and Suri, *Risk sharing and transactions costs*, American Economic Review, 2014);
  small traders take payments from many customers, most of them first-time payers, and cash out at
  an agent every evening; salaries arrive and are withdrawn the same day (mule rings: money in,
  cash out fast);
- a seller paid a large amount by a first-time buyer cashes much of it out the same day;
- people pay a new payee a large amount (rent, goods), and groups collect contributions to one
  wallet within a day (savings groups, fundraising for a funeral or a hospital bill) (push-payment
  scams: many first-time payers sending one wallet money).

Everything is drawn with numpy from one generator: same config, same rows. `pattern` names the
honest behaviour of each row (`PATTERNS`), so the top of a ranking can be read by cause.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DAY = 86400
HOUR = 3600
TX_TYPES: tuple[str, ...] = ("payment", "transfer", "withdrawal", "top_up")
PAYMENT, TRANSFER, WITHDRAWAL, TOP_UP = range(4)
CHANNELS: tuple[str, ...] = ("app", "web", "pos", "api")
APP, WEB, POS, API = range(4)
PATTERNS: tuple[str, ...] = (
    "transfer", "merchant", "airtime", "bill", "cash_in", "cash_out", "onboarding", "new_payee_large",
    "group_contribution", "group_payout", "trader_sale", "trader_cash_out", "trader_supplier", "salary",
    "salary_cash_out", "salary_remittance", "mule_setup", "assisted_payment", "sale_cash_out",
    "remittance_cash_out",
)
P = {name: i for i, name in enumerate(PATTERNS)}

# Party codes: one integer space, a base per kind of party (ids are made from them at the end).
USER, AGENT, MERCHANT, BILLER, EMPLOYER = (k * 10_000_000 for k in range(5))
BILLERS = 4  # airtime first, then power, water, tv
# Device codes, likewise: a user's phone, their next phone, an agent's device, a fraudster's.
PHONE, NEW_PHONE, AGENT_DEVICE, ATTACKER_DEVICE, HANDLER_DEVICE = (k * 10_000_000 for k in range(5))
NO_DEVICE = -1
SECOND_PHONE = 5_000_000  # offset of a user's second phone among the NEW_PHONE codes


@dataclass
class Population:
    """Who is in the world. Users are 0..users-1; lists are padded (n_* holds each row's length)."""

    users: int
    days: int
    region: np.ndarray
    mu: np.ndarray  # log of the user's typical transfer (KES)
    sigma: np.ndarray
    rate: np.ndarray  # transactions a day
    hour_mu: np.ndarray
    join_day: np.ndarray
    phone: np.ndarray  # device code of the first phone (a shared household phone is the head's)
    switch_day: np.ndarray  # day the user moves to a new phone (days: never)
    two_phones: np.ndarray  # also uses a second phone, one day in three
    contacts: np.ndarray
    n_contacts: np.ndarray
    merchants: np.ndarray
    n_merchants: np.ndarray
    agents: np.ndarray  # agent indices the user visits
    n_agents: np.ndarray
    trader: np.ndarray
    salaried: np.ndarray
    employer: np.ndarray
    pay_day: np.ndarray  # day of the 30-day cycle a salary arrives
    agent_region: np.ndarray
    merchant_region: np.ndarray
    agent_switch_day: np.ndarray  # day an agent replaces its device (days: never)

    def device_at(self, user: np.ndarray, day: np.ndarray) -> np.ndarray:
        phone = np.where(day >= self.switch_day[user], NEW_PHONE + user, self.phone[user])
        return np.where(self.two_phones[user] & ((day + user) % 3 == 0), NEW_PHONE + SECOND_PHONE + user, phone)

    def agent_device(self, agent: np.ndarray, day: np.ndarray) -> np.ndarray:
        return AGENT_DEVICE + np.where(day >= self.agent_switch_day[agent], len(self.agent_region), 0) + agent

    def pick(self, rng: np.random.Generator, lists: np.ndarray, counts: np.ndarray, user: np.ndarray) -> np.ndarray:
        return lists[user, (rng.random(len(user)) * counts[user]).astype(np.int64)]

    def in_region(self, rng: np.random.Generator, region: np.ndarray) -> np.ndarray:
        """A random user of each given region (users are spread evenly over regions)."""
        regions = int(self.region.max()) + 1
        per = self.users // regions
        return np.minimum(region + regions * (rng.random(len(region)) * per).astype(np.int64), self.users - 1)


def population(rng: np.random.Generator, users: int, days: int) -> Population:
    regions = max(1, users // 400)
    region = np.arange(users) % regions
    agents, merchants = max(2, users // 40), max(5, users // 10)
    employers = max(1, users // 200)
    agent_region, merchant_region = np.arange(agents) % regions, np.arange(merchants) % regions
    night = rng.random(users) < 0.05
    hour_mu = np.where(night, rng.uniform(21, 26, users) % 24, rng.normal(14, 2.5, users))
    join_day = np.where(rng.random(users) < 0.85, 0, rng.integers(1, max(days, 2), users))
    phone = PHONE + np.arange(users)
    shared = rng.random(users) < 0.12  # a household phone: the head's (someone of the same region)
    heads = (region + regions * (rng.random(users) * (users // regions)).astype(np.int64)).clip(0, users - 1)
    phone = np.where(shared & (heads != np.arange(users)), PHONE + heads, phone)
    switch_day = np.where(rng.random(users) < 1 - np.exp(-0.001 * days), rng.integers(0, max(days, 1), users), days)

    def lists(k_lo: int, k_hi: int, same_share: float, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Per user, k_lo..k_hi members of a population of `size` spread over the regions (member
        j is in region j % regions), `same_share` of them in the user's own region."""
        counts = rng.integers(k_lo, k_hi + 1, users)
        per = max(1, size // regions)
        local = region[:, None] + regions * (rng.random((users, k_hi)) * per).astype(np.int64)
        anywhere = (rng.random((users, k_hi)) * size).astype(np.int64)
        return np.where(rng.random((users, k_hi)) < same_share, local, anywhere).clip(0, size - 1), counts

    contacts, n_contacts = lists(2, 10, 0.7, users)
    contacts = np.where(contacts == np.arange(users)[:, None], (contacts + 1) % users, contacts)
    merch, n_merch = lists(3, 8, 0.9, merchants)
    ag, n_ag = lists(1, 3, 1.0, agents)
    salaried = rng.random(users) < 0.3
    return Population(
        users=users, days=days, region=region, mu=rng.uniform(np.log(150), np.log(2500), users),
        sigma=rng.uniform(0.5, 0.9, users), rate=np.exp(rng.normal(np.log(0.8), 0.6, users)).clip(0.1, 6.0),
        hour_mu=hour_mu, join_day=join_day, phone=phone, switch_day=switch_day, contacts=contacts,
        n_contacts=n_contacts, merchants=merch, n_merchants=n_merch, agents=ag, n_agents=n_ag,
        trader=rng.random(users) < 0.03, salaried=salaried, employer=rng.integers(0, employers, users),
        pay_day=rng.integers(0, 30, users), agent_region=agent_region, merchant_region=merchant_region,
        two_phones=rng.random(users) < 0.1,
        agent_switch_day=np.where(rng.random(agents) < 0.15, rng.integers(0, max(days, 1), agents), days),
    )


class Rows:
    """Columns appended block by block (numpy arrays), concatenated once."""

    FIELDS = ("ts", "wallet", "counterparty", "amount", "tx_type", "channel", "device", "kind", "pattern", "label_time")

    def __init__(self) -> None:
        self.blocks: list[dict[str, np.ndarray]] = []

    def add(self, ts, wallet, counterparty, amount, tx_type, channel, device, pattern, kind=0,  # noqa: ANN001
            label_time=np.nan) -> None:
        ts = np.asarray(ts, dtype=np.float64)
        n = len(ts)
        if n == 0:
            return
        block = {"ts": ts, "wallet": wallet, "counterparty": counterparty, "amount": amount, "tx_type": tx_type,
                 "channel": channel, "device": device, "kind": kind, "pattern": pattern, "label_time": label_time}
        self.blocks.append({k: np.broadcast_to(np.asarray(v), (n,)).copy() for k, v in block.items()})

    def columns(self) -> dict[str, np.ndarray]:
        if not self.blocks:
            return {k: np.zeros(0) for k in self.FIELDS}
        return {k: np.concatenate([b[k] for b in self.blocks]) for k in self.FIELDS}


def _times(rng: np.random.Generator, pop: Population, user: np.ndarray, day: np.ndarray,
           business: bool = False) -> np.ndarray:
    """Seconds since the start: around the user's usual hour; agents only serve 07:00-21:00."""
    hour = rng.normal(pop.hour_mu[user], 3.0) % 24
    if business:
        hour = hour.clip(7, 20.9)
    return day * DAY + hour * HOUR


def _amount(rng: np.random.Generator, mu: np.ndarray, sigma: np.ndarray, shift: float = 0.0,
            round_to: float = 1.0, least: float = 10.0) -> np.ndarray:
    raw = np.exp(rng.normal(mu + shift, sigma))
    return np.maximum(np.round(raw / round_to) * round_to, least)


def _daily(rng: np.random.Generator, pop: Population, share: float) -> tuple[np.ndarray, np.ndarray]:
    """(user, day) of a Poisson number of events a user-day at `share` of the user's rate."""
    counts = rng.poisson(np.repeat(pop.rate * share, pop.days).reshape(pop.users, pop.days))
    counts[np.arange(pop.days)[None, :] < pop.join_day[:, None]] = 0
    user = np.repeat(np.repeat(np.arange(pop.users), pop.days), counts.ravel())
    day = np.repeat(np.tile(np.arange(pop.days), pop.users), counts.ravel())
    return user, day


def honest_traffic(rng: np.random.Generator, pop: Population, rows: Rows) -> None:
    """Everyday use, and the honest behaviours that resemble each fraud kind."""
    _everyday(rng, pop, rows)
    _assisted(rng, pop, rows)
    _new_payee_large(rng, pop, rows)
    _group_collections(rng, pop, rows)
    _traders(rng, pop, rows)
    _salaries(rng, pop, rows)


def _everyday(rng: np.random.Generator, pop: Population, rows: Rows) -> None:
    # Transfers to people the user knows; 6 % to someone new (a seller, a new acquaintance).
    u, d = _daily(rng, pop, 0.32)
    known = rng.random(len(u)) < 0.94
    payee = np.where(known, pop.pick(rng, pop.contacts, pop.n_contacts, u), rng.integers(0, pop.users, len(u)))
    payee = np.where(payee == u, (payee + 1) % pop.users, payee)
    ts, amount = _times(rng, pop, u, d), _amount(rng, pop.mu[u], pop.sigma[u])
    rows.add(ts, USER + u, USER + payee, amount, TRANSFER, np.where(rng.random(len(u)) < 0.95, APP, WEB),
             pop.device_at(u, d), P["transfer"])
    # Money sent to family is often withdrawn within hours at the recipient's agent.
    home = known & (rng.random(len(u)) < 0.3) & (pop.join_day[payee] <= d)
    later = ts[home] + rng.uniform(0.5, 12, int(home.sum())) * HOUR
    rows.add(later, USER + payee[home], AGENT + pop.agents[payee[home], 0],
             np.maximum(np.round(amount[home] * rng.uniform(0.5, 1.0, int(home.sum())), -1), 50.0), WITHDRAWAL, APP,
             pop.device_at(payee[home], (later // DAY).astype(np.int64)), P["remittance_cash_out"])
    # Merchants: the user's usual shops, sometimes another one.
    u, d = _daily(rng, pop, 0.25)
    usual = pop.pick(rng, pop.merchants, pop.n_merchants, u)
    shop = np.where(rng.random(len(u)) < 0.9, usual, rng.integers(0, len(pop.merchant_region), len(u)))
    rows.add(_times(rng, pop, u, d), USER + u, MERCHANT + shop, _amount(rng, pop.mu[u], pop.sigma[u], -0.7),
             PAYMENT, APP, pop.device_at(u, d), P["merchant"])
    # Airtime (tiny, the most frequent purchase) and bills.
    u, d = _daily(rng, pop, 0.18)
    airtime = rng.random(len(u)) < 0.75
    amount = np.where(airtime, rng.choice([10.0, 20.0, 50.0, 100.0, 200.0, 500.0], len(u),
                                          p=[0.15, 0.25, 0.3, 0.18, 0.08, 0.04]),
                      np.round(np.exp(rng.normal(np.log(1500), 0.5, len(u)))))
    biller = np.where(airtime, 0, rng.integers(1, BILLERS, len(u)))
    rows.add(_times(rng, pop, u, d), USER + u, BILLER + biller, amount, PAYMENT, APP, pop.device_at(u, d),
             np.where(airtime, P["airtime"], P["bill"]))
    # Cash-in, keyed in on the agent's device; cash-out, from the customer's phone.
    u, d = _daily(rng, pop, 0.12)
    agent = pop.pick(rng, pop.agents, pop.n_agents, u)
    rows.add(_times(rng, pop, u, d, business=True), USER + u, AGENT + agent,
             _amount(rng, pop.mu[u], pop.sigma[u], 0.7, 10.0, 50.0), TOP_UP, POS, pop.agent_device(agent, d),
             P["cash_in"])
    u, d = _daily(rng, pop, 0.13)
    agent = pop.pick(rng, pop.agents, pop.n_agents, u)
    rows.add(_times(rng, pop, u, d, business=True), USER + u, AGENT + agent,
             _amount(rng, pop.mu[u], pop.sigma[u], 0.5, 10.0, 50.0), WITHDRAWAL, APP, pop.device_at(u, d),
             P["cash_out"])
    # New customers are registered by an agent, with a first small deposit on the agent's device.
    joiners = np.flatnonzero(pop.join_day > 0)
    agent = pop.pick(rng, pop.agents, pop.n_agents, joiners)
    day = pop.join_day[joiners]
    rows.add(day * DAY + rng.uniform(8, 18, len(joiners)) * HOUR - 1800, USER + joiners, AGENT + agent,
             rng.choice([50.0, 100.0, 200.0, 500.0], len(joiners)), TOP_UP, POS, pop.agent_device(agent, day),
             P["onboarding"])


def _assisted(rng: np.random.Generator, pop: Population, rows: Rows) -> None:
    """Airtime and bills an agent pays for customers on the agent's own device, with the customer's
    number and PIN: a few a day per agent, minutes apart when there is a queue."""
    agents = len(pop.agent_region)
    per_day = rng.poisson(4.0, (agents, pop.days))
    agent = np.repeat(np.repeat(np.arange(agents), pop.days), per_day.ravel())
    day = np.repeat(np.tile(np.arange(pop.days), agents), per_day.ravel())
    customer = pop.in_region(rng, pop.agent_region[agent])
    ok = pop.join_day[customer] <= day
    agent, day, customer = agent[ok], day[ok], customer[ok]
    queue = rng.uniform(8, 19, len(agent))  # a queue: several customers served back to back
    airtime = rng.random(len(agent)) < 0.7
    amount = np.where(airtime, rng.choice([20.0, 50.0, 100.0, 200.0], len(agent)),
                      np.round(np.exp(rng.normal(np.log(1200), 0.5, len(agent)))))
    rows.add(day * DAY + queue * HOUR + rng.uniform(0, 900, len(agent)), USER + customer,
             BILLER + np.where(airtime, 0, rng.integers(1, BILLERS, len(agent))), amount, PAYMENT, APP,
             pop.agent_device(agent, day), P["assisted_payment"])


def _new_payee_large(rng: np.random.Generator, pop: Population, rows: Rows) -> None:
    """Rent, a motorbike, school fees paid to a person: a large transfer to a first-time payee;
    half the time the payee (a seller) withdraws most of it within the day."""
    n = rng.poisson(0.004 * pop.days, pop.users)
    u = np.repeat(np.arange(pop.users), n)
    d = np.maximum(rng.integers(0, pop.days, len(u)), pop.join_day[u])
    ok = d < pop.days
    u, d = u[ok], d[ok]
    payee = rng.integers(0, pop.users, len(u))
    payee = np.where(payee == u, (payee + 1) % pop.users, payee)
    ts = _times(rng, pop, u, d)
    amount = np.round(_amount(rng, pop.mu[u], pop.sigma[u]) * rng.uniform(4, 15, len(u)), -1)
    rows.add(ts, USER + u, USER + payee, amount, TRANSFER, APP, pop.device_at(u, d), P["new_payee_large"])
    sells = rng.random(len(u)) < 0.5
    later = ts[sells] + rng.uniform(1, 24, int(sells.sum())) * HOUR
    seller = payee[sells]
    rows.add(later, USER + seller, AGENT + pop.agents[seller, 0],
             np.round(amount[sells] * rng.uniform(0.5, 1.0, len(seller)), -1), WITHDRAWAL, APP,
             pop.device_at(seller, (later // DAY).astype(np.int64)), P["sale_cash_out"])


def _group_collections(rng: np.random.Generator, pop: Population, rows: Rows) -> None:
    """A savings group or a fundraising (harambee) collects from 10-40 people within a day; the
    organiser pays it out a day or two later (cash, or the hospital / school directly)."""
    for _ in range(rng.poisson(pop.users / 4000 * pop.days)):
        organiser = int(rng.integers(0, pop.users))
        day = int(rng.integers(max(int(pop.join_day[organiser]), 0), pop.days))
        t0 = day * DAY + rng.uniform(7, 20) * HOUR
        k = int(rng.integers(10, 41))
        friends = pop.contacts[organiser, :pop.n_contacts[organiser]]
        near = pop.in_region(rng, np.full(k, pop.region[organiser]))
        circle = np.concatenate([friends, pop.contacts[friends].ravel()])
        payers = np.where(rng.random(k) < 0.6, rng.choice(circle, k), near)
        payers = payers[(payers != organiser) & (pop.join_day[payers] <= day)]
        ts = t0 + rng.uniform(0, 30 * HOUR, len(payers))
        amount = np.round(np.exp(rng.normal(np.log(500), 0.6, len(payers))), -1).clip(50)
        rows.add(ts, USER + payers, USER + organiser, amount, TRANSFER, APP,
                 pop.device_at(payers, (ts // DAY).astype(np.int64)), P["group_contribution"])
        when = t0 + rng.uniform(30, 72) * HOUR
        if when < pop.days * DAY and len(payers):
            total = float(amount.sum()) * rng.uniform(0.6, 1.0)
            agent = int(pop.agents[organiser, 0])
            cash = rng.random() < 0.6
            payee = AGENT + agent if cash else MERCHANT + int(rng.integers(0, len(pop.merchant_region)))
            rows.add([when], USER + organiser, payee, np.round(total, -1), WITHDRAWAL if cash else PAYMENT, APP,
                     pop.device_at(np.array([organiser]), np.array([int(when // DAY)])), P["group_payout"])


def _traders(rng: np.random.Generator, pop: Population, rows: Rows) -> None:
    """Small traders: paid by many customers (most of them first-time payers), cash out at an agent
    every evening and pay a supplier most mornings."""
    traders = np.flatnonzero(pop.trader)
    if not len(traders):
        return
    regulars = pop.in_region(rng, np.repeat(pop.region[traders], 20)).reshape(len(traders), 20)
    counts = rng.poisson(6.0, (len(traders), pop.days))
    counts[np.arange(pop.days)[None, :] < pop.join_day[traders][:, None]] = 0
    who = np.repeat(np.repeat(np.arange(len(traders)), pop.days), counts.ravel())
    day = np.repeat(np.tile(np.arange(pop.days), len(traders)), counts.ravel())
    trader = traders[who]
    payer = np.where(rng.random(len(who)) < 0.3, regulars[who, rng.integers(0, 20, len(who))],
                     pop.in_region(rng, pop.region[trader]))
    ok = (payer != trader) & (pop.join_day[payer] <= day)
    who, day, trader, payer = who[ok], day[ok], trader[ok], payer[ok]
    amount = np.round(np.exp(rng.normal(np.log(250), 0.8, len(who)))).clip(10)
    rows.add(day * DAY + rng.uniform(7, 20, len(who)) * HOUR, USER + payer, USER + trader, amount, TRANSFER, APP,
             pop.device_at(payer, day), P["trader_sale"])
    # The day's takings: cashed out in one or two withdrawals in the evening, a supplier paid.
    cell = who * pop.days + day
    takings = np.bincount(cell, weights=amount, minlength=len(traders) * pop.days)
    open_days = np.flatnonzero(takings > 0)
    t_who, t_day = np.divmod(open_days, pop.days)
    t_trader, t_takings = traders[t_who], takings[open_days]
    device = pop.device_at(t_trader, t_day)
    for part in range(2):
        go = rng.random(len(open_days)) < (1.0 if part == 0 else 0.5)
        rows.add(t_day[go] * DAY + (19.5 + part) * HOUR + rng.uniform(0, 1800, int(go.sum())), USER + t_trader[go],
                 AGENT + pop.agents[t_trader[go], 0],
                 np.maximum(np.round(t_takings[go] * rng.uniform(0.25, 0.45, int(go.sum())), -1), 50.0),
                 WITHDRAWAL, APP, device[go], P["trader_cash_out"])
    go = rng.random(len(open_days)) < 0.7
    rows.add(t_day[go] * DAY + rng.uniform(8, 12, int(go.sum())) * HOUR, USER + t_trader[go],
             USER + pop.contacts[t_trader[go], 0],
             np.maximum(np.round(t_takings[go] * rng.uniform(0.3, 0.6, int(go.sum())), -1), 50.0), TRANSFER, APP,
             device[go], P["trader_supplier"])


def _salaries(rng: np.random.Generator, pop: Population, rows: Rows) -> None:
    """A salary paid in by the employer (no device), mostly withdrawn and sent home the same day."""
    salaried = np.flatnonzero(pop.salaried)
    cycles = np.arange(0, pop.days, 30)
    u = np.repeat(salaried, len(cycles))
    day = pop.pay_day[u] + np.tile(cycles, len(salaried))
    ok = (day < pop.days) & (day >= pop.join_day[u])
    u, day = u[ok], day[ok]
    n = len(u)
    t = day * DAY + rng.uniform(6, 10, n) * HOUR
    pay = np.round(np.exp(pop.mu[u]) * rng.uniform(10, 30, n), -2)
    rows.add(t, USER + u, EMPLOYER + pop.employer[u], pay, TOP_UP, API, NO_DEVICE, P["salary"])
    device = pop.device_at(u, day)
    rows.add(t + rng.uniform(1, 6, n) * HOUR, USER + u, AGENT + pop.agents[u, 0],
             np.round(pay * rng.uniform(0.3, 0.6, n), -1), WITHDRAWAL, APP, device, P["salary_cash_out"])
    rows.add(t + rng.uniform(1, 24, n) * HOUR, USER + u, USER + pop.contacts[u, 0],
             np.round(pay * rng.uniform(0.1, 0.3, n), -1), TRANSFER, APP, device, P["salary_remittance"])
