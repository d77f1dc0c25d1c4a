"""Counterparty, device and wallet-label aggregates and their point-in-time features.

One implementation online (the enrichment and label functions, through a store) and offline
(training's replay, `CounterpartyBook`). State is a set of integer counters, *cells*, addressed
by (entity, day, column); every update is a list of `Increment`s, so a store only has to add
them (Bigtable's AddToCell, an SQL upsert, a dict) and read back the cells of a few days.

Entities: the counterparty (`c...`), the device (`d...`, when the transaction has one) and the
wallet (`w...`, fraud labels only: its transactions live in the wallet history). Columns of a
day: the day's total (`dn`), each hour's (`h07n`) and each 5-minute slot's (`m123n`), for
transactions (`n`), amount in cents (`a`), wallets paying for the first time (`w`) and known
frauds (`f`, bucketed by the time the label became known, not by the transaction's time).

Point in time: the features of a transaction at T read only buckets that ENDED at or before T
(the last 12 five-minute slots for 1 h, the last 24 hours, the last N days plus today's ended
hours). So a transaction never sees itself, a label counts from the end of the hour in which it
became known (the safety margin), and online and offline agree whatever the order in which
updates of the current bucket land. Staleness: at most 5 minutes (1 h window) or 1 hour.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

from txguard.contract.models import CounterpartyFeatures, Transaction
from txguard.features.wallet import COUNTERPARTY_FEATURES, DAY, HOUR, TxPoint, WalletState

FIVE_MIN = 300.0
SLOTS_PER_DAY = 288
WINDOW_DAYS = 30

# Counters
TX, AMOUNT, NEW_WALLETS, FRAUD = "n", "a", "w", "f"
TX_COUNTERS = (TX, AMOUNT, NEW_WALLETS)
DAY_COLUMNS = {c: "d" + c for c in (TX, AMOUNT, NEW_WALLETS, FRAUD)}
HOUR_COLUMNS = tuple({c: f"h{h:02d}{c}" for c in (TX, AMOUNT, NEW_WALLETS, FRAUD)} for h in range(24))
SLOT_COLUMNS = tuple({c: f"m{m:03d}{c}" for c in TX_COUNTERS} for m in range(SLOTS_PER_DAY))
# Known frauds at a counterparty per wallet slot (hash of the wallet % WALLET_SLOTS), day totals:
# the slots with a positive count estimate how many distinct wallets were defrauded there, which
# tells a compromised counterparty (many victims) from one compromised wallet's frauds (one).
WALLET_SLOTS = 64
WALLET_SLOT_COLUMNS = tuple(f"g{s:02d}" for s in range(WALLET_SLOTS))


class Entity(StrEnum):
    COUNTERPARTY = "c"
    DEVICE = "d"
    WALLET = "w"


@lru_cache(maxsize=1 << 16)
def entity_key(kind: Entity, ident: str) -> str:
    """Kind prefix + a short hash: bounded keys whatever the ids, spread over Bigtable tablets."""
    return kind.value + hashlib.blake2b(ident.encode(), digest_size=8).hexdigest()


def cents(amount: float) -> int:
    """Amounts are summed as integer cents (Bigtable aggregates are int64; sums stay exact)."""
    return int(round(amount * 100))


def day_of(t: float) -> int:
    return int(t // DAY)


@dataclass(frozen=True, slots=True)
class Increment:
    entity: str
    day: int
    column: str
    value: int


View = Mapping[int, Mapping[str, int]]  # day -> column -> value, for one entity
EMPTY: View = {}


@dataclass(frozen=True, slots=True)
class EntityKeys:
    counterparty: str
    wallet: str
    device: str | None

    @classmethod
    def of(cls, wallet_id: str, counterparty_id: str, device_id: str | None) -> EntityKeys:
        return cls(entity_key(Entity.COUNTERPARTY, counterparty_id), entity_key(Entity.WALLET, wallet_id),
                   entity_key(Entity.DEVICE, device_id) if device_id else None)

    def all(self) -> tuple[str, ...]:
        return (self.counterparty, self.wallet) + ((self.device,) if self.device else ())


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The cells of a transaction's entities for the days its features read."""

    counterparty: View = field(default_factory=dict)
    device: View = field(default_factory=dict)
    wallet: View = field(default_factory=dict)


def read_days(t: float) -> range:
    """The days whose cells the features at `t` read: the last WINDOW_DAYS and today."""
    d = day_of(t)
    return range(d - WINDOW_DAYS, d + 1)


# Updates ---------------------------------------------------------------------------------------
def marks(state: WalletState, p: TxPoint) -> tuple[bool, bool]:
    """(first time this wallet pays this counterparty, first time it uses this device), from its
    history before `p`: what the `w` counters of the counterparty and the device count."""
    seen = state.counterparties.get(p.cp)
    new_cp = seen is None or seen[0] >= p.ts
    new_device = False
    if p.device:
        idx = bisect_left(state.ts, p.ts)
        new_device = p.device not in state.device[:idx]
    return new_cp, new_device


def transaction_increments(tx: Transaction, new_for_cp: bool, new_for_device: bool) -> list[Increment]:
    """What a transaction adds to its counterparty (and device): count, amount, first-time payers."""
    t = tx.timestamp.timestamp()
    day = day_of(t)
    hour = HOUR_COLUMNS[int((t - day * DAY) // HOUR)]
    slot = SLOT_COLUMNS[int((t - day * DAY) // FIVE_MIN)]
    amount = cents(tx.amount)
    keys = EntityKeys.of(tx.wallet_id, tx.counterparty_id, tx.device_id)
    out: list[Increment] = []
    targets = [(keys.counterparty, new_for_cp)]
    if keys.device:
        targets.append((keys.device, new_for_device))
    for entity, new in targets:
        for counter, value in ((TX, 1), (AMOUNT, amount), (NEW_WALLETS, 1 if new else 0)):
            if value:
                out.append(Increment(entity, day, DAY_COLUMNS[counter], value))
                out.append(Increment(entity, day, hour[counter], value))
                out.append(Increment(entity, day, slot[counter], value))
    return out


def fraud_increments(entities: Iterable[str], at: float, sign: int) -> list[Increment]:
    """A known fraud (sign +1) or its withdrawal (-1) in the buckets of the time `at` it became known;
    the counterparty also counts it in its wallet's slot (`WALLET_SLOT_COLUMNS`)."""
    day = day_of(at)
    hour = HOUR_COLUMNS[int((at - day * DAY) // HOUR)][FRAUD]
    entities = list(entities)
    out = []
    for entity in entities:
        out.append(Increment(entity, day, DAY_COLUMNS[FRAUD], sign))
        out.append(Increment(entity, day, hour, sign))
    wallet = next((e for e in entities if e.startswith(Entity.WALLET.value)), None)
    if wallet is not None:
        slot = WALLET_SLOT_COLUMNS[int(wallet[1:], 16) % WALLET_SLOTS]
        out += [Increment(e, day, slot, sign) for e in entities if e.startswith(Entity.COUNTERPARTY.value)]
    return out


# Features --------------------------------------------------------------------------------------
_N, _A, _W, _F = range(4)
_COUNTER_INDEX = {TX: _N, AMOUNT: _A, NEW_WALLETS: _W, FRAUD: _F}
_HOUR, _SLOT = 1, 2
# column -> (granularity, hour or slot index, counter index): one lookup classifies a cell.
_INFO: dict[str, tuple[int, int, int]] = {
    **{col: (_HOUR, h, _COUNTER_INDEX[c]) for h, cols in enumerate(HOUR_COLUMNS) for c, col in cols.items()},
    **{col: (_SLOT, m, _COUNTER_INDEX[c]) for m, cols in enumerate(SLOT_COLUMNS) for c, col in cols.items()},
}
_DAY_N, _DAY_A, _DAY_W, _DAY_F = (DAY_COLUMNS[c] for c in (TX, AMOUNT, NEW_WALLETS, FRAUD))
_SLOTS_1H = 12


@dataclass(slots=True)
class Windows:
    """Sums of one entity's counters over the windows of the features, from ended buckets only.

    `slot`: the last 12 ended 5-minute slots (1 h); `hour`: the last 24 ended hours; `d7`/`d30`:
    the last 7/30 ended days plus today's ended hours. Each is [tx, amount cents, new wallets, frauds]
    (slots carry no frauds). `first`: start of the earliest ended bucket with a transaction;
    `fraud_first` / `fraud_last`: start of the earliest / end of the latest with a known fraud.
    """

    def saw_fraud(self, start: float, end: float) -> None:
        if self.fraud_first is None or start < self.fraud_first:
            self.fraud_first = start
        if self.fraud_last is None or end > self.fraud_last:
            self.fraud_last = end

    slot: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    hour: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    d7: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    d30: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    first: float | None = None
    fraud_first: float | None = None  # start of the earliest ended bucket with a known fraud
    fraud_last: float | None = None  # end of the latest one
    wallets7: dict[str, int] = field(default_factory=dict)  # known frauds per wallet slot, ended days
    wallets30: dict[str, int] = field(default_factory=dict)


def windows(view: View, t: float) -> Windows:
    """One pass over the cells of the window's days (sparse: only what exists is visited)."""
    w = Windows()
    d = day_of(t)
    since = t - d * DAY
    hour_now = int(since // HOUR)
    slot_now = int(since // FIVE_MIN)
    # The 1 h window crosses midnight when fewer than 12 slots of today have ended.
    slot_floor_yesterday = SLOTS_PER_DAY - (_SLOTS_1H - slot_now) if slot_now < _SLOTS_1H else SLOTS_PER_DAY
    slot, hour, d7, d30 = w.slot, w.hour, w.d7, w.d30
    for day, cells in view.items():
        if day < d - WINDOW_DAYS or day > d:
            continue
        if day < d:
            sums = (cells.get(_DAY_N, 0), cells.get(_DAY_A, 0), cells.get(_DAY_W, 0), cells.get(_DAY_F, 0))
            for i in range(4):
                d30[i] += sums[i]
                if day >= d - 7:
                    d7[i] += sums[i]
            if sums[_N] > 0 and (w.first is None or day * DAY < w.first):
                w.first = day * DAY
            if sums[_F] > 0:
                w.saw_fraud(day * DAY, (day + 1) * DAY)
            if sums[_F]:  # the wallet slots sit in the rows of the days frauds became known
                for col, value in cells.items():
                    if col[0] == "g":
                        w.wallets30[col] = w.wallets30.get(col, 0) + value
                        if day >= d - 7:
                            w.wallets7[col] = w.wallets7.get(col, 0) + value
            if day == d - 1:  # the part of the 24 h and 1 h windows that lies in yesterday
                for col, value in cells.items():
                    info = _INFO.get(col)
                    if info is None:
                        continue
                    kind, idx, c = info
                    if kind == _HOUR:
                        if idx >= hour_now:
                            hour[c] += value
                    elif idx >= slot_floor_yesterday:
                        slot[c] += value
            continue
        for col, value in cells.items():  # today: ended hours and slots only
            info = _INFO.get(col)
            if info is None:
                continue
            kind, idx, c = info
            if kind == _HOUR:
                if idx < hour_now:
                    hour[c] += value
                    d7[c] += value
                    d30[c] += value
                    if value > 0 and c in (_N, _F):
                        start = day * DAY + idx * HOUR
                        if c == _F:
                            w.saw_fraud(start, start + HOUR)
                        elif w.first is None or start < w.first:
                            w.first = start
            elif slot_now - _SLOTS_1H <= idx < slot_now:
                slot[c] += value
    return w


_NONE = Windows()


def counterparty_values(snap: Snapshot, amount: float, t: float) -> tuple[float, ...]:
    """The features of a transaction of `amount` at `t`, in `COUNTERPARTY_FEATURES` order."""
    cp = windows(snap.counterparty, t) if snap.counterparty else _NONE
    dev = windows(snap.device, t) if snap.device else _NONE
    wallet = windows(snap.wallet, t) if snap.wallet else _NONE
    tx_7d, tx_30d = float(cp.d7[_N]), float(cp.d30[_N])
    fraud_7d, fraud_30d = float(max(cp.d7[_F], 0)), float(max(cp.d30[_F], 0))
    amount_30d = cp.d30[_A] / 100.0
    return (
        float(cp.slot[_N]),
        cp.slot[_A] / 100.0,
        float(cp.hour[_N]),
        float(cp.slot[_W]),
        float(cp.hour[_W]),
        tx_7d,
        tx_30d,
        amount / (amount_30d / tx_30d) if tx_30d > 0 and amount_30d > 0 else 1.0,
        (t - cp.first) / DAY if cp.first is not None else 0.0,
        float(max(cp.hour[_F], 0)),
        fraud_7d,
        fraud_30d,
        fraud_7d / max(tx_7d, 1.0),
        fraud_30d / max(tx_30d, 1.0),
        (t - cp.fraud_first) / DAY if cp.fraud_first is not None and fraud_30d > 0 else 0.0,
        (t - cp.fraud_last) / DAY if cp.fraud_last is not None and fraud_30d > 0 else WINDOW_DAYS + 1.0,
        float(sum(1 for v in cp.wallets7.values() if v > 0)),
        float(sum(1 for v in cp.wallets30.values() if v > 0)),
        float(dev.hour[_N]),
        float(dev.hour[_W]),
        float(max(dev.d30[_F], 0)),
        float(max(wallet.d30[_F], 0)),
    )


def counterparty_features(snap: Snapshot, tx: Transaction) -> CounterpartyFeatures:
    values = counterparty_values(snap, float(tx.amount), tx.timestamp.timestamp())
    return CounterpartyFeatures.model_construct(**dict(zip(COUNTERPARTY_FEATURES, values, strict=True)))


# The in-memory state -----------------------------------------------------------------------------
class CounterpartyBook:
    """Cells in dicts: the offline replay's state, and the reference the stores are tested against.

    Not thread-safe and not durable: training and tests only. The label ledger that decides what
    a label counts is `txguard.features.labels`; `apply_label` there takes a book.
    """

    def __init__(self) -> None:
        self.cells: dict[str, dict[int, dict[str, int]]] = {}
        self.ledger: dict[str, dict] = {}

    def add(self, increments: Iterable[Increment]) -> None:
        for inc in increments:
            days = self.cells.get(inc.entity)
            if days is None:
                days = self.cells[inc.entity] = {}
            cells = days.get(inc.day)
            if cells is None:
                cells = days[inc.day] = {}
            cells[inc.column] = cells.get(inc.column, 0) + inc.value

    def view(self, entity: str | None, t: float) -> View:
        if entity is None:
            return EMPTY
        # All the days kept (`prune` bounds them): `windows` skips those outside the window.
        return self.cells.get(entity) or EMPTY

    def snapshot(self, tx: Transaction) -> Snapshot:
        keys = EntityKeys.of(tx.wallet_id, tx.counterparty_id, tx.device_id)
        t = tx.timestamp.timestamp()
        return Snapshot(self.view(keys.counterparty, t), self.view(keys.device, t), self.view(keys.wallet, t))

    def prune(self, before_day: int) -> None:
        """Drop days no feature reads any more (the stores' TTL): keeps a long replay's memory flat."""
        for days in self.cells.values():
            for d in [d for d in days if d < before_day]:
                del days[d]
