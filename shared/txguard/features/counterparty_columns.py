"""The counterparty features of a whole time-ordered table at once: the fast offline twin of
`txguard.features.counterparty_windows` over a `CounterpartyBook`.

Serving (the enrichment function) reads a store's snapshot and calls `counterparty_values` per
transaction. Training's replay (`txguard.features.timeline_columns`) uses this twin, which gives
the same numbers for every row, bit for bit (tests/unit/features/test_columns_parity.py).

Why it can: every cell is an integer counter, so a window's sum does not depend on the order of
its increments, and a window is a range of ended buckets. A transaction's increments are visible
from the end of its own bucket; so is a label's, when it is applied within the hour it is
counted in (the usual case: a fraud label counts from when it became known). The windows are
then ranges over the entity's increments sorted by (entity, bucket), summed by binary search on
cumulative sums. An entity with an increment that does not fit this (a label that moves or
withdraws an earlier count: reversals, a legitimate verdict after a fraud) is replayed through
the reference itself, `CounterpartyBook` + `windows`, for the rows that read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from txguard.contract.models import LabelEvent
from txguard.features.counterparty import (
    DAY_COLUMNS,
    FIVE_MIN,
    FRAUD,
    SLOTS_PER_DAY,
    WALLET_SLOT_COLUMNS,
    WINDOW_DAYS,
    CounterpartyBook,
    EntityKeys,
    Increment,
    increments_at,
)
from txguard.features.counterparty_windows import windows
from txguard.features.label_ledger import transition
from txguard.features.wallet import COUNTERPARTY_FEATURES, DAY, HOUR

N_COUNTERPARTY = len(COUNTERPARTY_FEATURES)
_SLOTS_1H = 12
_DAY_MINUTES = 1440.0  # as counterparty_windows: no transaction in the last 24 hours
_HOUR_FRAUD = {f"h{h:02d}{FRAUD}": h for h in range(24)}
_WALLET_SLOT = {col: s for s, col in enumerate(WALLET_SLOT_COLUMNS)}
_DAY_FRAUD = DAY_COLUMNS[FRAUD]


@dataclass(frozen=True)
class CounterpartyInput:
    """The columns the counterparty features read, rows in time order (ties in replay order).

    Entity codes index `entities`, the entity keys (`counterparty.entity_key`) of counterparties,
    devices and wallets in one vocabulary; `device` is -1 for none; `inflow` is the wallet's id as a
    counterparty (`EntityKeys.inflow`), `payee` the counterparty's id as a wallet (`EntityKeys.payee`). `new_counterparty` and `new_device` are the wallet's marks
    (`counterparty.marks`, or `wallet_columns`).
    """

    ts: np.ndarray
    amount: np.ndarray
    counterparty: np.ndarray
    device: np.ndarray
    wallet: np.ndarray
    new_counterparty: np.ndarray
    new_device: np.ndarray
    entities: Sequence[str]
    inflow: np.ndarray
    payee: np.ndarray


AppliedIncrement = tuple[float, Increment]  # (when the replay applies it, the increment)


def applied_label_increments(labels: Iterable[LabelEvent], until: float) -> list[AppliedIncrement]:
    """The increments the reference replay's labels add, in its order: labels by (known_at,
    label_id), each through the ledger's `transition`, applied at its `known_at` (those known after
    `until`, the last transaction, are never applied)."""
    ledger: dict[str, dict] = {}
    out: list[AppliedIncrement] = []
    for label in sorted(labels, key=lambda lb: (lb.known_at, lb.label_id)):
        at = label.known_at.timestamp()
        if at > until:
            break
        new, outcome = transition(ledger.get(label.transaction_id), label)
        if not outcome.duplicate:
            ledger[label.transaction_id] = new
            out.extend((at, inc) for inc in outcome.increments)
    return out


@dataclass
class _Role:
    """Per row, the window sums of one entity (its counterparty, device or wallet), as `Windows`."""

    slot: np.ndarray  # (n, 3): tx, amount cents, new wallets over the last 12 ended 5-minute slots
    hour: np.ndarray  # (n, 4): tx, amount, new wallets, frauds over the last 24 ended hours
    d7: np.ndarray  # (n, 4)
    d30: np.ndarray  # (n, 4)
    first: np.ndarray  # start of the earliest ended bucket with a transaction (NaN: none)
    fraud_first: np.ndarray  # start of the earliest ended bucket with a known fraud (NaN: none)
    fraud_last: np.ndarray  # end of the latest one
    wallets7: np.ndarray  # wallet slots with known frauds, ended days of the last 7 / 30
    wallets30: np.ndarray
    last_slot: np.ndarray  # end of the latest ended 5-minute slot with a transaction within 24 h (NaN: none)

    @classmethod
    def empty(cls, n: int) -> _Role:
        nan = np.full(n, np.nan)
        return cls(np.zeros((n, 3), np.int64), np.zeros((n, 4), np.int64), np.zeros((n, 4), np.int64),
                   np.zeros((n, 4), np.int64), nan, nan.copy(), nan.copy(), np.zeros(n), np.zeros(n), nan.copy())


class _Buckets:
    """Each row's day, hour and 5-minute slot, computed as the reference computes them."""

    def __init__(self, ts: np.ndarray) -> None:
        self.day = np.floor_divide(ts, DAY).astype(np.int64)
        since = ts - self.day * DAY
        self.hour_of_day = np.floor_divide(since, HOUR).astype(np.int64)
        self.hour = self.day * 24 + self.hour_of_day  # global hour index
        self.slot = self.day * SLOTS_PER_DAY + np.floor_divide(since, FIVE_MIN).astype(np.int64)


class _Ranges:
    """Events sorted by (entity, bucket): sums over a bucket range of one entity by binary search."""

    def __init__(self, entity: np.ndarray, bucket: np.ndarray, origin: int, width: int) -> None:
        self.origin, self.width = np.int64(origin), np.int64(width)
        self.keys = entity.astype(np.int64) * self.width + (bucket - self.origin)

    def bounds(self, entity: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        base = entity.astype(np.int64) * self.width - self.origin
        return np.searchsorted(self.keys, base + lo, "left"), np.searchsorted(self.keys, base + hi, "left")


def _cumulative(values: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros((1,) + values.shape[1:], values.dtype), np.cumsum(values, axis=0)])


def counterparty_columns(cols: CounterpartyInput, applied: Sequence[AppliedIncrement] = ()) -> np.ndarray:
    """(n, N_COUNTERPARTY): every row's `counterparty_values` on the book the reference replay
    holds just before it, `applied` being `applied_label_increments` of the replay's labels."""
    n = len(cols.ts)
    if n == 0:
        return np.zeros((0, N_COUNTERPARTY))
    b = _Buckets(cols.ts)
    code = {key: i for i, key in enumerate(cols.entities)}
    fast, slow = _split_labels(applied, code)
    origin = int(b.hour.min()) - 24 * (WINDOW_DAYS + 2)
    width = int(b.hour.max()) - origin + 1

    # Transactions: to their counterparty, and to their device when they have one.
    has_device = cols.device >= 0
    rows = np.concatenate([np.arange(n), np.flatnonzero(has_device)])
    entity = np.concatenate([cols.counterparty, cols.device[has_device]])
    order = np.argsort(entity, kind="stable")  # by entity, time order within
    rows, entity = rows[order], entity[order]
    values = np.column_stack([np.ones(len(rows), np.int64), np.rint(cols.amount[rows] * 100).astype(np.int64),
                              np.concatenate([cols.new_counterparty, cols.new_device[has_device]])[order]])
    tx_sums = _cumulative(values)
    by_hour = _Ranges(entity, b.hour[rows], origin, width)
    slot_origin = int(b.slot.min()) - SLOTS_PER_DAY - 1  # a day back: the latest slot within 24 h
    event_slot = b.slot[rows]
    by_slot = _Ranges(entity, event_slot, slot_origin, int(b.slot.max()) - slot_origin + 1)
    tx_day, tx_hour = b.day[rows], b.hour_of_day[rows]

    # Known frauds (fast entities): hour buckets and wallet slots.
    f_ent, f_hour, f_value = fast["hour"]
    f_order = np.lexsort((f_hour, f_ent))
    f_ent, f_hour, f_value = f_ent[f_order], f_hour[f_order], f_value[f_order]
    keep = f_hour >= origin  # older than any window of any row
    f_ent, f_hour, f_value = f_ent[keep], f_hour[keep], f_value[keep]
    fraud_sums = _cumulative(f_value)
    fraud_by_hour = _Ranges(f_ent, f_hour, origin, width)
    g_ent, g_day, g_slot = fast["slot"]

    def role(ent: np.ndarray, sel: np.ndarray, transactions: bool, wallet_slots: bool) -> _Role:
        out = _Role.empty(n)
        r = np.flatnonzero(sel)
        e, hour, day = ent[r], b.hour[r], b.day[r]
        ranges = {"hour": (hour - 24, hour), "d7": ((day - 7) * 24, hour), "d30": ((day - WINDOW_DAYS) * 24, hour)}
        for name, (lo, hi) in ranges.items():
            target = getattr(out, name)
            if transactions:
                i0, i1 = by_hour.bounds(e, lo, hi)
                target[r, :3] = tx_sums[i1] - tx_sums[i0]
                if name == "d30":
                    found = i0 < i1
                    first = np.minimum(i0, len(tx_day) - 1)
                    fd, fh = tx_day[first], tx_hour[first]
                    start = np.where(fd < day, fd * DAY, fd * DAY + fh * HOUR)
                    out.first[r] = np.where(found, start, np.nan)
            j0, j1 = fraud_by_hour.bounds(e, lo, hi)
            target[r, 3] = fraud_sums[j1] - fraud_sums[j0]
            if name == "d30" and len(f_hour):
                found = j0 < j1
                lo_i, hi_i = np.minimum(j0, len(f_hour) - 1), np.maximum(j1 - 1, 0)
                ld, lh = np.floor_divide(f_hour[lo_i], 24), f_hour[lo_i] % 24
                out.fraud_first[r] = np.where(found, np.where(ld < day, ld * DAY, ld * DAY + lh * HOUR), np.nan)
                hd, hh = np.floor_divide(f_hour[hi_i], 24), f_hour[hi_i] % 24
                out.fraud_last[r] = np.where(found, np.where(hd < day, (hd + 1) * DAY, hd * DAY + hh * HOUR + HOUR),
                                             np.nan)
        if transactions:
            i0, i1 = by_slot.bounds(e, b.slot[r] - _SLOTS_1H, b.slot[r])
            out.slot[r] = tx_sums[i1] - tx_sums[i0]
            j0, j1 = by_slot.bounds(e, b.slot[r] - SLOTS_PER_DAY, b.slot[r])
            latest = event_slot[np.maximum(j1 - 1, 0)] if len(event_slot) else np.zeros(len(r), np.int64)
            out.last_slot[r] = np.where(j1 > j0, (latest + 1) * FIVE_MIN, np.nan)
        if wallet_slots and len(g_ent):
            out.wallets7[r] = _distinct_slots(g_ent, g_day, g_slot, 7, e, day)
            out.wallets30[r] = _distinct_slots(g_ent, g_day, g_slot, WINDOW_DAYS, e, day)
        return out

    everyone = np.ones(n, dtype=bool)
    cp = role(cols.counterparty, everyone, transactions=True, wallet_slots=True)
    device = role(cols.device, has_device, transactions=True, wallet_slots=False)
    wallet = role(cols.wallet, everyone, transactions=False, wallet_slots=False)
    inflow = role(cols.inflow, everyone, transactions=True, wallet_slots=False)
    payee = role(cols.payee, everyone, transactions=False, wallet_slots=False)
    if slow:
        _reference_entities(cols, slow, ((cols.counterparty, cp), (cols.device, device), (cols.wallet, wallet),
                                         (cols.inflow, inflow), (cols.payee, payee)))
    return _values(cols, cp, device, wallet, inflow, payee)


def _split_labels(applied: Sequence[AppliedIncrement], code: dict[str, int]) -> tuple[dict, dict]:
    """Label increments of entities some row reads: (fast arrays by kind of column, slow entities'
    increments in order). An entity is slow when one of its increments is negative or applied after
    the hour it counts in: then visibility is not a bucket range."""
    slow_entities: set[str] = set()
    for at, inc in applied:
        if inc.entity not in code:
            continue
        applied_day = int(at // DAY)
        applied_hour = applied_day * 24 + int((at - applied_day * DAY) // HOUR)
        late_hour = inc.column in _HOUR_FRAUD and inc.day * 24 + _HOUR_FRAUD[inc.column] != applied_hour
        late_day = inc.column in _WALLET_SLOT and inc.day != applied_day
        if inc.value < 0 or late_hour or late_day:
            slow_entities.add(inc.entity)
    hour: tuple[list[int], list[int], list[int]] = ([], [], [])
    slot: tuple[list[int], list[int], list[int]] = ([], [], [])
    slow: dict[str, list[AppliedIncrement]] = {e: [] for e in slow_entities}
    for at, inc in applied:
        if inc.entity not in code:
            continue
        if inc.entity in slow_entities:
            slow[inc.entity].append((at, inc))
        elif inc.column in _HOUR_FRAUD:
            for lst, v in zip(hour, (code[inc.entity], inc.day * 24 + _HOUR_FRAUD[inc.column], inc.value), strict=True):
                lst.append(v)
        elif inc.column in _WALLET_SLOT:
            for lst, v in zip(slot, (code[inc.entity], inc.day, _WALLET_SLOT[inc.column]), strict=True):
                lst.append(v)
        elif inc.column != _DAY_FRAUD:
            raise ValueError(f"unexpected label increment column {inc.column!r}")
    fast = {"hour": tuple(np.asarray(x, dtype=np.int64) for x in hour),
            "slot": tuple(np.asarray(x, dtype=np.int64) for x in slot)}
    return fast, slow


def _distinct_slots(g_ent: np.ndarray, g_day: np.ndarray, g_slot: np.ndarray, days: int, ent: np.ndarray,
                    day: np.ndarray) -> np.ndarray:
    """Per query (ent, day): distinct wallet slots among the known frauds of days [day - days, day)."""
    offsets = np.arange(1, days + 1)
    e = np.repeat(g_ent, days)
    d = np.repeat(g_day, days) + np.tile(offsets, len(g_ent))  # the query days this fraud day is within
    s = np.repeat(g_slot, days)
    d0 = int(min(d.min(), day.min()))
    span = np.int64(max(int(d.max()), int(day.max())) - d0 + 1)
    pair = e * span + (d - d0)
    keys, counts = np.unique(np.unique(pair * 64 + s) // 64, return_counts=True)
    q = ent.astype(np.int64) * span + (day - d0)
    i = np.minimum(np.searchsorted(keys, q), len(keys) - 1)
    return np.where(keys[i] == q, counts[i], 0).astype(np.float64)


def _reference_entities(cols: CounterpartyInput, slow: dict[str, list[AppliedIncrement]],
                        roles: Sequence[tuple[np.ndarray, _Role]]) -> None:
    """The rows reading a slow entity, through `CounterpartyBook` and `windows` themselves. `roles`:
    each view's entity code per row (-1: none) and the sums to fill."""
    code = {key: i for i, key in enumerate(cols.entities)}
    slow_codes = np.asarray(sorted(code[e] for e in slow), dtype=np.int64)
    reads = np.zeros(len(cols.ts), dtype=bool)
    for ent, _ in roles:
        reads |= np.isin(ent, slow_codes)
    pending = sorted((at, k, inc) for k, (at, inc) in enumerate(x for incs in slow.values() for x in incs))
    book = CounterpartyBook()
    nxt = 0
    for r in np.flatnonzero(reads).tolist():
        t = float(cols.ts[r])
        while nxt < len(pending) and pending[nxt][0] <= t:
            book.add([pending[nxt][2]])
            nxt += 1
        for ent, role in roles:
            c = int(ent[r])
            if c >= 0 and cols.entities[c] in slow:
                _fill(role, r, windows(book.view(cols.entities[c], t), t))
        dev = int(cols.device[r])
        keys = EntityKeys(cols.entities[int(cols.counterparty[r])], cols.entities[int(cols.wallet[r])],
                          cols.entities[dev] if dev >= 0 else None)
        book.add(inc for inc in increments_at(keys, t, float(cols.amount[r]), bool(cols.new_counterparty[r]),
                                               bool(cols.new_device[r])) if inc.entity in slow)


def _fill(role: _Role, r: int, w) -> None:  # noqa: ANN001 (a counterparty_windows.Windows)
    role.slot[r] = w.slot[:3]
    role.hour[r], role.d7[r], role.d30[r] = w.hour, w.d7, w.d30
    role.first[r] = np.nan if w.first is None else w.first
    role.fraud_first[r] = np.nan if w.fraud_first is None else w.fraud_first
    role.fraud_last[r] = np.nan if w.fraud_last is None else w.fraud_last
    role.wallets7[r] = sum(1 for v in w.wallets7.values() if v > 0)
    role.wallets30[r] = sum(1 for v in w.wallets30.values() if v > 0)
    role.last_slot[r] = np.nan if w.last_slot is None else w.last_slot


def _values(cols: CounterpartyInput, cp: _Role, device: _Role, wallet: _Role, inflow: _Role,
            payee: _Role) -> np.ndarray:
    """`counterparty_values` on the window sums, column by column (same float operations)."""
    t, amount = cols.ts, cols.amount
    tx_7d, tx_30d = cp.d7[:, 0].astype(np.float64), cp.d30[:, 0].astype(np.float64)
    fraud_7d = np.maximum(cp.d7[:, 3], 0).astype(np.float64)
    fraud_30d = np.maximum(cp.d30[:, 3], 0).astype(np.float64)
    amount_30d = cp.d30[:, 1] / 100.0
    has_mean = (tx_30d > 0) & (amount_30d > 0)
    mean = np.where(has_mean, amount_30d / np.where(has_mean, tx_30d, 1.0), 1.0)
    known = fraud_30d > 0
    columns = (
        cp.slot[:, 0], cp.slot[:, 1] / 100.0, cp.hour[:, 0], cp.slot[:, 2], cp.hour[:, 2], tx_7d, tx_30d,
        np.where(has_mean, amount / mean, 1.0),
        np.where(np.isnan(cp.first), 0.0, (t - cp.first) / DAY),
        np.maximum(cp.hour[:, 3], 0), fraud_7d, fraud_30d,
        fraud_7d / np.maximum(tx_7d, 1.0), fraud_30d / np.maximum(tx_30d, 1.0),
        np.where(known & ~np.isnan(cp.fraud_first), (t - cp.fraud_first) / DAY, 0.0),
        np.where(known & ~np.isnan(cp.fraud_last), (t - cp.fraud_last) / DAY, WINDOW_DAYS + 1.0),
        cp.wallets7, cp.wallets30,
        device.slot[:, 0], device.slot[:, 2], device.hour[:, 0], device.hour[:, 2], device.d7[:, 2],
        np.where(np.isnan(device.first), 0.0, (t - device.first) / DAY), np.maximum(device.d30[:, 3], 0),
        inflow.slot[:, 0], inflow.slot[:, 1] / 100.0, inflow.hour[:, 0], inflow.hour[:, 1] / 100.0,
        amount / np.maximum(inflow.hour[:, 1] / 100.0, 1.0), inflow.hour[:, 2],
        np.where(np.isnan(inflow.last_slot), _DAY_MINUTES, (t - inflow.last_slot) / 60.0),
        np.maximum(inflow.d30[:, 3], 0), np.maximum(wallet.d30[:, 3], 0), np.maximum(payee.d30[:, 3], 0),
    )
    out = np.empty((len(t), N_COUNTERPARTY))
    for j, values in enumerate(columns):
        out[:, j] = values
    return out
