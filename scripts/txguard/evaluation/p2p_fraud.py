"""The fraud of a peer-to-peer mobile-money world, as it is reported to happen, and when it becomes known.

Four kinds, each written from published descriptions (docs/evaluation.md cites them):

- **account takeover**: a wallet's PIN is phished, guessed or its SIM swapped (GSMA, *Mitigating
  common fraud risks*, 2020; FBI IC3 on SIM swapping, 2022), or its unlocked phone is stolen; the
  fraudster logs in from their own device (a quarter of the time: the victim's stolen phone), often
  at night, sometimes checks the wallet with an airtime purchase, then drains it to
  mule wallets in a few transfers and may cash some out at a colluding agent. The fraudster reuses
  a device for several victims. The victim notices within hours to days; a few never report.
- **push-payment scam**: the owner is deceived into sending the money themselves (UK Finance,
  *Annual Fraud Report 2024*: purchase scams are two thirds of the cases, for small amounts;
  investment and romance scams are few, large and paid in several instalments; impersonation,
  "I sent you money by mistake", is the most reported mobile-money fraud in GSMA's 2024
  typologies). From the victim's own phone, in daytime, to a payee they never paid before: a
  mule. Reported days to weeks later, a third never.
- **mule ring**: the receiving wallets, a few new accounts and recruited users run by one handler
  (often on the handler's phones), move each inflow on within hours: forward it to another mule,
  cash it out at an agent (Europol, European Money Mule Action: mules "receive and transfer
  illegally obtained money"; PaySim's fraud is a transfer then a cash-out). Most mules are
  recruited customers, or customers renting out their account; the others are accounts opened
  weeks before and used a little. A ring is found days to weeks after its first victim reports,
  then frozen; almost a third are never found.
- **credential testing**: leaked phone numbers and PINs are tried in bulk from one or two devices
  (OWASP Automated Threats, OAT-008 Credential Stuffing); each wallet that opens is confirmed with a
  tiny airtime purchase or transfer, seconds to minutes apart. Some become takeovers hours later.
  Tiny amounts are rarely reported: the campaign is labelled only if it is traced, days later.

Rows carry the kind (`KINDS`) and `label_time`: when the fraud became known, `inf` never.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np

from txguard.evaluation.p2p_world import (
    AGENT,
    APP,
    ATTACKER_DEVICE,
    BILLER,
    DAY,
    HANDLER_DEVICE,
    HOUR,
    PAYMENT,
    PHONE,
    POS,
    TOP_UP,
    TRANSFER,
    USER,
    WITHDRAWAL,
    P,
    Population,
    Rows,
)

KINDS: tuple[str, ...] = ("legit", "account_takeover", "mule_ring", "push_payment_scam", "credential_testing")
LEGIT, TAKEOVER, MULE, SCAM, TESTING = range(5)
NEVER = math.inf


@dataclass(frozen=True)
class FraudRates:
    """Incidents per user and day (a world of 8,000 users over 79 days: about 160 independent
    takeovers, 630 scam victims, 50 testing campaigns)."""

    takeover: float = 1 / 4000
    scam: float = 1 / 1000
    testing: float = 1 / 12000
    takeover_after_testing: float = 0.2  # share of tested wallets taken over hours later


@dataclass
class _Ring:
    mules: list[int]  # party codes
    devices: list[int]
    agents: list[int]
    start: float
    end: float
    reports: list[float] = field(default_factory=list)
    detected: float = NEVER


@dataclass
class _Incident:
    kind: int
    report: float = NEVER  # when the victim (or an investigation) reported it
    rings: set[int] = field(default_factory=set)  # rings its money went to


class FraudWorld:
    """Generates every incident in time order, then when each became known; `add_to` and `frozen`
    give the result (fraud rows, and when each found mule's wallet was frozen)."""

    def __init__(self, rng: np.random.Generator, pop: Population, rates: FraudRates = FraudRates()) -> None:
        self.rng, self.pop, self.rates = rng, pop, rates
        self.end = pop.days * DAY
        self.out: list[tuple] = []  # (ts, wallet, cp, amount, type, channel, device, kind, pattern, incident/ring)
        self.incidents: list[_Incident] = []
        self.rings: list[_Ring] = []
        self.new_accounts = 0
        self.attacker_devices: list[tuple[float, int]] = []  # (last used, code)
        self.setup = Rows()
        self._run()

    # -- helpers -------------------------------------------------------------------------------
    def _u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def _lognormal_days(self, median_days: float, sigma: float, lo_days: float, hi_days: float) -> float:
        return float(np.clip(math.exp(self.rng.normal(math.log(median_days), sigma)), lo_days, hi_days)) * DAY

    def _typical(self, user: int) -> float:
        return float(math.exp(self.pop.mu[user]))

    def _device(self, user: int, t: float) -> int:
        return int(self.pop.device_at(np.array([user]), np.array([int(t // DAY)]))[0])

    def _daytime(self, user: int, day: int) -> float:
        return day * DAY + float(np.clip(self.rng.normal(self.pop.hour_mu[user] % 24, 2.5), 7, 22)) * HOUR

    def _victim(self, t: float) -> int:
        """A user who had joined by `t` (most users are there from the first day)."""
        while True:
            v = int(self.rng.integers(0, self.pop.users))
            if self.pop.join_day[v] * DAY <= max(t, 0.0):
                return v

    def _emit(self, ts: float, wallet: int, cp: int, amount: float, tx_type: int, channel: int, device: int,
              kind: int, owner: int) -> int | None:
        if not 0 <= ts < self.end:
            return None
        self.out.append((ts, wallet, cp, round(max(amount, 1.0), 0), tx_type, channel, device, kind, -1, owner))
        return len(self.out) - 1

    def _attacker_device(self, t: float) -> int:
        recent = [code for used, code in self.attacker_devices if t - used < 7 * DAY]
        if recent and self.rng.random() < 0.4:
            code = recent[int(self.rng.integers(0, len(recent)))]
        else:
            code = ATTACKER_DEVICE + len(self.attacker_devices)
        self.attacker_devices.append((t, code))
        return code

    # -- mule rings ------------------------------------------------------------------------------
    def _ring_at(self, t: float) -> int:
        active = [i for i, r in enumerate(self.rings) if r.start <= t < r.end]
        if len(active) < 2:
            active.append(self._new_ring(t - self._u(0, DAY)))
        return active[int(self.rng.integers(0, len(active)))]

    def _new_ring(self, start: float) -> int:
        rng, pop = self.rng, self.pop
        handlers = [HANDLER_DEVICE + 2 * len(self.rings) + k for k in range(int(rng.integers(1, 3)))]
        mules, devices = [], []
        for _ in range(int(rng.integers(3, 9))):
            if rng.random() < 0.6:  # a recruited user, or one who rents out their account: own wallet and phone
                user = self._victim(start)
                mules.append(USER + user)
                devices.append(self._device(user, start))
                continue
            index = pop.users + self.new_accounts  # an account opened for the purpose, weeks before
            self.new_accounts += 1
            device = handlers[int(rng.integers(0, len(handlers)))] if rng.random() < 0.5 else PHONE + index
            mules.append(USER + index)
            devices.append(device)
            opened = start - self._u(7, 60) * DAY
            agent = int(rng.integers(0, len(pop.agent_region)))
            self.setup.add([opened], USER + index, AGENT + agent, float(rng.choice([100, 200, 500])), TOP_UP, POS,
                           int(pop.agent_device(np.array([agent]), np.array([int(opened // DAY)]))[0]),
                           P["mule_setup"])
            for _ in range(int(rng.integers(1, 5))):  # a little ordinary use before it is put to work
                when = opened + self._u(0.1, (start - opened) / DAY) * DAY
                payee = (BILLER, USER + int(rng.integers(0, pop.users)))[int(rng.random() < 0.4)]
                self.setup.add([when], USER + index, payee, float(rng.choice([20, 50, 100, 200])),
                               PAYMENT if payee == BILLER else TRANSFER, APP, device, P["mule_setup"])
        agents = [AGENT + int(a) for a in rng.integers(0, len(pop.agent_region), int(rng.integers(2, 4)))]
        self.rings.append(_Ring(mules, devices, agents, start, start + self._u(5, 25) * DAY))
        return len(self.rings) - 1

    def _pay_mule(self, ring: int, mule: int, t: float, amount: float, incident: int, move_on: bool = True) -> None:
        """An inflow to a mule: it is forwarded to another mule or cashed out within hours."""
        r = self.rings[ring]
        self.incidents[incident].rings.add(ring)
        if not move_on or amount < 300:
            return
        rng = self.rng
        delay = self._holding()
        holder, at, left = mule, t + delay, amount
        if len(r.mules) > 1 and rng.random() < 0.4:
            other = (holder + 1 + int(rng.integers(0, len(r.mules) - 1))) % len(r.mules)
            left *= self._u(0.9, 1.0)
            self._mule_row(ring, at, holder, r.mules[other], left, TRANSFER)
            holder, at = other, at + self._holding()
        left *= self._u(0.85, 0.98)
        parts = 2 if rng.random() < 0.3 else 1
        for k in range(parts):
            self._mule_row(ring, at + k * self._u(120, 1800), holder, r.agents[int(rng.integers(0, len(r.agents)))],
                           left / parts, WITHDRAWAL)

    def _holding(self) -> float:
        """How long a mule holds money before moving it: two hours typically, ten minutes to two days."""
        return float(np.clip(math.exp(self.rng.normal(math.log(2 * HOUR), 1.2)), 600, 48 * HOUR))

    def _mule_row(self, ring: int, t: float, mule_index: int, cp: int, amount: float, tx_type: int) -> None:
        r = self.rings[ring]
        self._emit(t, r.mules[mule_index], cp, amount, tx_type, APP, r.devices[mule_index], MULE, -1 - ring)

    def _to_mule(self, t: float) -> tuple[int, int]:
        ring = self._ring_at(t)
        return ring, int(self.rng.integers(0, len(self.rings[ring].mules)))

    # -- the kinds -------------------------------------------------------------------------------
    def _takeover(self, t: float, victim: int, device: int | None = None) -> None:
        rng = self.rng
        incident = len(self.incidents)
        self.incidents.append(_Incident(TAKEOVER))
        if device is None:  # a stolen, unlocked phone, or the fraudster's own device
            device = self._device(victim, t) if rng.random() < 0.25 else self._attacker_device(t)
        balance = self._typical(victim) * self._u(3, 12)
        if rng.random() < 0.3:  # is it really open? an airtime purchase first
            self._emit(t, USER + victim, BILLER, float(rng.choice([10, 20, 50])), PAYMENT, APP, device, TAKEOVER,
                       incident)
            t += self._u(30, 600)
        drains = int(rng.integers(1, 4))
        for _ in range(drains):
            ring, mule = self._to_mule(t)
            amount = balance * (0.9 / drains) * self._u(0.8, 1.2)
            self._emit(t, USER + victim, self.rings[ring].mules[mule], amount, TRANSFER, APP, device, TAKEOVER,
                       incident)
            self._pay_mule(ring, mule, t, amount, incident)
            t += self._u(60, 1200)
        if rng.random() < 0.25:  # and cash out at a colluding agent
            agent = int(rng.integers(0, len(self.pop.agent_region)))
            self._emit(t + self._u(600, 3 * 3600), USER + victim, AGENT + agent, round(balance * self._u(0.2, 0.5), -1),
                       WITHDRAWAL, APP, device, TAKEOVER, incident)
        if rng.random() >= 0.1:
            self.incidents[incident].report = t + self._lognormal_days(1.0, 0.9, 2 / 24, 20)

    def _scam(self, t: float, victim: int) -> None:
        rng = self.rng
        incident = len(self.incidents)
        self.incidents.append(_Incident(SCAM))
        scheme = int(rng.choice(4, p=[0.65, 0.2, 0.1, 0.05]))  # purchase, impersonation, investment, romance
        typical = self._typical(victim)
        day = int(t // DAY)
        if scheme == 0:
            times = [self._daytime(victim, day)] + ([self._daytime(victim, day) + self._u(0.5, 6) * HOUR]
                                                    if rng.random() < 0.15 else [])
            amounts = [typical * self._u(1, 4) for _ in times]
        elif scheme == 1:
            first = self._daytime(victim, day)
            times = [first] + ([first + self._u(5, 60) * 60] if rng.random() < 0.5 else [])
            amounts = [typical * self._u(2, 6) for _ in times]
        else:
            n = int(rng.integers(2, 6) if scheme == 2 else rng.integers(3, 9))
            gaps = rng.uniform(1, 7, n) if scheme == 2 else rng.uniform(2, 10, n)
            times = [self._daytime(victim, day + int(g)) for g in np.cumsum(np.concatenate([[0], gaps[1:]]))]
            amounts = [typical * self._u(4, 15) * (1 + 0.3 * k) if scheme == 2 else typical * self._u(2, 8)
                       for k in range(n)]
        ring, mule = self._to_mule(times[0])
        for ts, amount in zip(times, amounts, strict=True):
            if ts >= self.rings[ring].end:
                ring, mule = self._to_mule(ts)
            row = self._emit(ts, USER + victim, self.rings[ring].mules[mule], round(amount, -1), TRANSFER, APP,
                             self._device(victim, ts), SCAM, incident)
            if row is not None:
                self._pay_mule(ring, mule, ts, amount, incident)
        median, never = ((5.0, 0.35), (2.0, 0.25), (14.0, 0.2), (14.0, 0.2))[scheme]
        if rng.random() >= never:
            self.incidents[incident].report = max(times) + self._lognormal_days(median, 0.6, 1, 45)

    def _testing(self, t: float, pending: list) -> None:
        rng = self.rng
        incident = len(self.incidents)
        self.incidents.append(_Incident(TESTING))
        devices = [ATTACKER_DEVICE + 1_000_000 + 2 * incident + k for k in range(int(rng.integers(1, 3)))]
        for k in range(int(rng.integers(5, 31))):
            victim, device = self._victim(t), devices[k % len(devices)]
            if rng.random() < 0.6:
                self._emit(t, USER + victim, BILLER, float(rng.choice([10, 20, 50])), PAYMENT, APP, device, TESTING,
                           incident)
            else:
                ring, mule = self._to_mule(t)
                if self._emit(t, USER + victim, self.rings[ring].mules[mule], float(rng.integers(1, 11) * 10),
                              TRANSFER, APP, device, TESTING, incident) is not None:
                    self._pay_mule(ring, mule, t, 0.0, incident, move_on=False)
            if rng.random() < self.rates.takeover_after_testing:
                later = t + self._u(1, 72) * HOUR
                heapq.heappush(pending, (later, "takeover_after", victim, device if rng.random() < 0.5 else -1))
            t += self._u(15, 240)
        if rng.random() < 0.55:
            self.incidents[incident].report = t + self._lognormal_days(6.0, 0.6, 2, 30)

    # -- the run ---------------------------------------------------------------------------------
    def _starts(self, rate: float, night_share: float) -> np.ndarray:
        n = self.rng.poisson(rate * self.pop.users * self.pop.days)
        day = self.rng.integers(0, self.pop.days, n)
        night = self.rng.random(n) < night_share
        hour = np.where(night, self.rng.uniform(0, 5, n), self.rng.uniform(6, 24, n))
        return day * DAY + hour * HOUR

    def _run(self) -> None:
        pending: list = []
        for name, rate, night in (("takeover", self.rates.takeover, 0.4), ("scam", self.rates.scam, 0.0),
                                  ("testing", self.rates.testing, 0.5)):
            for t in self._starts(rate, night).tolist():
                heapq.heappush(pending, (t, name, -1, -1))
        while pending:
            t, name, victim, device = heapq.heappop(pending)
            if t >= self.end:
                continue
            if name == "takeover":
                self._takeover(t, self._victim(t))
            elif name == "takeover_after":
                self._takeover(t, victim, None if device < 0 else device)
            elif name == "scam":
                self._scam(t, self._victim(t))
            else:
                self._testing(t, pending)
        self._label_rings()

    def _label_rings(self) -> None:
        for incident in self.incidents:
            for ring in incident.rings:
                self.rings[ring].reports.append(incident.report)
        for ring in self.rings:
            first = min(ring.reports, default=NEVER)
            if first < NEVER and self.rng.random() < 0.7:
                ring.detected = first + self._u(3, 21) * DAY

    # -- results ---------------------------------------------------------------------------------
    def frozen(self) -> dict[int, float]:
        """Party code -> when its wallet was frozen (a found ring's new accounts and recruits)."""
        out: dict[int, float] = {}
        for ring in self.rings:
            if ring.detected < NEVER:
                for mule in ring.mules:
                    out[mule] = min(out.get(mule, NEVER), ring.detected)
        return out

    def add_to(self, rows: Rows) -> None:
        """The fraud rows (with their label times) and the mule accounts' set-up rows."""
        if self.out:
            cols = list(zip(*self.out, strict=True))
            owner = np.asarray(cols[9], dtype=np.int64)
            label = np.full(len(self.out), NEVER)
            for k, incident in enumerate(self.incidents):
                label[owner == k] = incident.report
            for k, ring in enumerate(self.rings):
                label[owner == -1 - k] = ring.detected
            rows.add(np.asarray(cols[0]), np.asarray(cols[1], dtype=np.int64), np.asarray(cols[2], dtype=np.int64),
                     np.asarray(cols[3], dtype=np.float64), np.asarray(cols[4]), np.asarray(cols[5]),
                     np.asarray(cols[6], dtype=np.int64), np.asarray(cols[8]), np.asarray(cols[7]), label)
        rows.blocks += self.setup.blocks

    @property
    def accounts(self) -> int:
        """Wallets opened by rings, beyond the population (their indices follow the users')."""
        return self.new_accounts

