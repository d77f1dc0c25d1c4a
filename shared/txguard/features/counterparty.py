"""Counterparty, device and wallet-label aggregates and their point-in-time features.

One implementation online (the enrichment and label functions, through a store) and offline
(training's replay, `CounterpartyBook`). State is a set of integer counters, *cells*, addressed
by (entity, day, column); every update is a list of `Increment`s, so a store only has to add
them (Bigtable's AddToCell, an SQL upsert, a dict) and read back the cells of a few days.

Entities: the counterparty (`c...`), the device (`d...`, when the transaction has one) and the
wallet (`w...`, fraud labels only: its transactions live in the wallet history). A wallet is also
paid by others (peer-to-peer transfers): those payments are the cells of its id as a counterparty
(`c...` of the wallet id), which the features read as the wallet's *inflow*. A counterparty that is
itself a wallet also pays others: its own known frauds as a payer are the label cells of its id as
a wallet (`w...` of the counterparty id), which the features read as the *payee*'s. Columns of a
day: the day's total (`dn`), each hour's (`h07n`) and each 5-minute slot's (`m123n`), for
transactions (`n`), amount in cents (`a`), wallets paying for the first time (`w`) and known
frauds (`f`, bucketed by the time the label became known, not by the transaction's time).

The features computed from these cells, point in time, are in `counterparty_windows`.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

from txguard.contract.models import Transaction
from txguard.features.wallet import DAY, HOUR, TxPoint, WalletState

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
    inflow: str = ""  # the wallet's id as a counterparty: what others paid it ("" : not read)
    payee: str = ""  # the counterparty's id as a wallet: its own known frauds as a payer ("" : not read)

    @classmethod
    def of(cls, wallet_id: str, counterparty_id: str, device_id: str | None) -> EntityKeys:
        return cls(entity_key(Entity.COUNTERPARTY, counterparty_id), entity_key(Entity.WALLET, wallet_id),
                   entity_key(Entity.DEVICE, device_id) if device_id else None,
                   entity_key(Entity.COUNTERPARTY, wallet_id), entity_key(Entity.WALLET, counterparty_id))

    def all(self) -> tuple[str, ...]:
        """The entities a transaction's label counts on (the inflow is its payer's, not its own)."""
        return (self.counterparty, self.wallet) + ((self.device,) if self.device else ())

    def read(self) -> tuple[str, ...]:
        """The entities a snapshot reads, each once."""
        return tuple(dict.fromkeys(k for k in (self.counterparty, self.device, self.wallet, self.inflow, self.payee)
                                   if k))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The cells of a transaction's entities for the days its features read."""

    counterparty: View = field(default_factory=dict)
    device: View = field(default_factory=dict)
    wallet: View = field(default_factory=dict)
    inflow: View = field(default_factory=dict)
    payee: View = field(default_factory=dict)

    @classmethod
    def of(cls, keys: EntityKeys, views: Mapping[str, View]) -> Snapshot:
        """The snapshot of `keys` from views by entity key (a store's read)."""
        return cls(views.get(keys.counterparty, EMPTY), views.get(keys.device, EMPTY) if keys.device else EMPTY,
                   views.get(keys.wallet, EMPTY), views.get(keys.inflow, EMPTY) if keys.inflow else EMPTY,
                   views.get(keys.payee, EMPTY) if keys.payee else EMPTY)


def read_days(t: float) -> range:
    """The days whose cells the features at `t` read: the last WINDOW_DAYS and today."""
    d = day_of(t)
    return range(d - WINDOW_DAYS, d + 1)


def slot_start(t: float) -> float:
    """Start of the 5-minute slot of `t`: a read at `t` sees every bucket that ended by then (the finest
    bucket is a slot), so a read is recorded at this precision without losing anything."""
    return (t // FIVE_MIN) * FIVE_MIN


def bucket_end(day: int, column: str) -> float:
    """When the bucket a cell counts in ends, and the features start reading it: its 5-minute slot
    (`m...`), its hour (`h...`) or its day (day totals `d...` and wallet slots `g..`)."""
    start = day * DAY
    if column[0] == "m":
        return start + (int(column[1:4]) + 1) * FIVE_MIN
    if column[0] == "h":
        return start + (int(column[1:3]) + 1) * HOUR
    return start + DAY


def first_read(increments: Iterable[Increment], event_time: float) -> dict[str, float]:
    """Per entity, the earliest event time whose features include these increments: the end of the
    first of their buckets to end, and never before the update itself (the offline replay applies a
    label when it became known, even to buckets that ended earlier, as a reversal's withdrawal)."""
    out: dict[str, float] = {}
    for inc in increments:
        end = bucket_end(inc.day, inc.column)
        if end < out.get(inc.entity, end + 1):
            out[inc.entity] = end
    return {entity: max(end, event_time) for entity, end in out.items()}


# Updates ---------------------------------------------------------------------------------------
def marks(state: WalletState, p: TxPoint) -> tuple[bool, bool]:
    """(first time this wallet pays this counterparty, first time it uses this device), from its
    history before `p`: what the `w` counters of the counterparty and the device count (the same
    tests as the history's `is_new_counterparty` and `is_new_device`)."""
    seen = state.counterparties.get(p.cp)
    new_cp = seen is None or seen[0] >= p.ts
    new_device = False
    if p.device:
        idx = bisect_left(state.ts, p.ts)
        new_device = p.device not in state.device[:idx]
    return new_cp, new_device


def transaction_increments(tx: Transaction, new_for_cp: bool, new_for_device: bool) -> list[Increment]:
    """What a transaction adds to its counterparty (and device): count, amount, first-time payers."""
    keys = EntityKeys.of(tx.wallet_id, tx.counterparty_id, tx.device_id)
    return increments_at(keys, tx.timestamp.timestamp(), float(tx.amount), new_for_cp, new_for_device)


def increments_at(keys: EntityKeys, t: float, amount_major: float, new_for_cp: bool,
                  new_for_device: bool) -> list[Increment]:
    """`transaction_increments` on primitives (the batch replay has columns, not Transactions)."""
    day = day_of(t)
    hour = HOUR_COLUMNS[int((t - day * DAY) // HOUR)]
    slot = SLOT_COLUMNS[int((t - day * DAY) // FIVE_MIN)]
    amount = cents(amount_major)
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


# The in-memory state -----------------------------------------------------------------------------
class CounterpartyBook:
    """Cells in dicts: the offline replay's state, and the reference the stores are tested against.

    Not thread-safe and not durable: training and tests only. The label ledger that decides what
    a label counts is `txguard.features.label_ledger`; `apply_label` there takes a book.
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
        return self.snapshot_at(keys, tx.timestamp.timestamp())

    def snapshot_at(self, keys: EntityKeys, t: float) -> Snapshot:
        return Snapshot(self.view(keys.counterparty, t), self.view(keys.device, t), self.view(keys.wallet, t),
                        self.view(keys.inflow or None, t), self.view(keys.payee or None, t))

    def prune(self, before_day: int) -> None:
        """Drop days no feature reads any more (the stores' TTL): keeps a long replay's memory flat."""
        for days in self.cells.values():
            for d in [d for d in days if d < before_day]:
                del days[d]
