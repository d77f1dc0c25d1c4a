"""Point-in-time counterparty features from the cells of a `Snapshot` (see `counterparty`).

The features of a transaction at T read only buckets that ENDED at or before T (the last 12
five-minute slots for 1 h, the last 24 hours, the last N days plus today's ended hours). So a
transaction never sees itself, a label counts from the end of the hour in which it became known
(the safety margin), and online and offline agree whatever the order in which updates of the
current bucket land. Staleness: at most 5 minutes (1 h window) or 1 hour.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from txguard.contract.models import CounterpartyFeatures, Transaction
from txguard.features.counterparty import (
    AMOUNT,
    DAY_COLUMNS,
    FIVE_MIN,
    FRAUD,
    HOUR_COLUMNS,
    NEW_WALLETS,
    SLOT_COLUMNS,
    SLOTS_PER_DAY,
    TX,
    WINDOW_DAYS,
    Snapshot,
    View,
    day_of,
)
from txguard.features.wallet import COUNTERPARTY_FEATURES, DAY, HOUR

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
_DAY_MINUTES = 1440.0  # "no transaction in the last 24 hours" as minutes since the latest


@dataclass(slots=True)
class Windows:
    """Sums of one entity's counters over the windows of the features, from ended buckets only.

    `slot`: the last 12 ended 5-minute slots (1 h); `hour`: the last 24 ended hours; `d7`/`d30`:
    the last 7/30 ended days plus today's ended hours. Each is [tx, amount cents, new wallets, frauds]
    (slots carry no frauds). `first`: start of the earliest ended bucket with a transaction;
    `fraud_first` / `fraud_last`: start of the earliest / end of the latest with a known fraud;
    `last_slot`: end of the latest ended 5-minute slot with a transaction within the last 24 hours.
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
    last_slot: float | None = None

    def saw_slot(self, end: float) -> None:
        if self.last_slot is None or end > self.last_slot:
            self.last_slot = end


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
                        continue
                    if c == _N and value > 0 and idx >= slot_now:  # within 24 h: yesterday's later slots
                        w.saw_slot(day * DAY + (idx + 1) * FIVE_MIN)
                    if idx >= slot_floor_yesterday:
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
            elif idx < slot_now:
                if c == _N and value > 0:
                    w.saw_slot(day * DAY + (idx + 1) * FIVE_MIN)
                if idx >= slot_now - _SLOTS_1H:
                    slot[c] += value
    return w


_NONE = Windows()


def counterparty_values(snap: Snapshot, amount: float, t: float) -> tuple[float, ...]:
    """The features of a transaction of `amount` at `t`, in `COUNTERPARTY_FEATURES` order."""
    cp = windows(snap.counterparty, t) if snap.counterparty else _NONE
    dev = windows(snap.device, t) if snap.device else _NONE
    wallet = windows(snap.wallet, t) if snap.wallet else _NONE
    inflow = windows(snap.inflow, t) if snap.inflow else _NONE
    payee = windows(snap.payee, t) if snap.payee else _NONE
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
        float(dev.slot[_N]),
        float(dev.slot[_W]),
        float(dev.hour[_N]),
        float(dev.hour[_W]),
        float(dev.d7[_W]),
        (t - dev.first) / DAY if dev.first is not None else 0.0,
        float(max(dev.d30[_F], 0)),
        float(inflow.slot[_N]),
        inflow.slot[_A] / 100.0,
        float(inflow.hour[_N]),
        inflow.hour[_A] / 100.0,
        amount / max(inflow.hour[_A] / 100.0, 1.0),
        float(inflow.hour[_W]),
        (t - inflow.last_slot) / 60.0 if inflow.last_slot is not None else _DAY_MINUTES,
        float(max(inflow.d30[_F], 0)),
        float(max(wallet.d30[_F], 0)),
        float(max(payee.d30[_F], 0)),
    )


def counterparty_features(snap: Snapshot, tx: Transaction) -> CounterpartyFeatures:
    values = counterparty_values(snap, float(tx.amount), tx.timestamp.timestamp())
    return CounterpartyFeatures.model_construct(**dict(zip(COUNTERPARTY_FEATURES, values, strict=True)))
