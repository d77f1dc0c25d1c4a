"""Point-in-time wallet history features: one code path, online (serving) and offline (training).

A wallet's state is bounded whatever its history length: the last `RING_SIZE` transactions
(kept sorted by timestamp, as parallel lists so the state is one Firestore document) and the
first/last-seen times of its `MAX_COUNTERPARTIES` most recent counterparties. Applying a
transaction is O(RING_SIZE) = O(1).

Features of a transaction only look at state entries strictly *before* its timestamp, so a
transaction delivered late (after a newer one of the same wallet) still gets its own snapshot.
Windows are exact while a wallet has fewer than `RING_SIZE` transactions in 30 days; beyond
that they cover the last `RING_SIZE` transactions (the state saturates, it never grows).
"""

from __future__ import annotations

import hashlib
import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from txguard.contract.models import (
    Channel,
    CounterpartyFeatures,
    EnrichedTransaction,
    HistoryFeatures,
    Transaction,
    TxType,
)

RING_SIZE = 128
MAX_COUNTERPARTIES = 128
STATE_VERSION = 1

HOUR = 3600.0
DAY = 24 * HOUR
CAP_SECONDS = 30 * DAY  # "never" is reported as 30 days
SMALL_AMOUNT = 5.0  # card-testing probes

HISTORY_FEATURES: tuple[str, ...] = tuple(HistoryFeatures.model_fields)
TRANSACTION_FEATURES: tuple[str, ...] = (
    "amount",
    "amount_log",
    "is_transfer",
    "is_withdrawal",
    "is_top_up",
    "channel_code",
    "hour_of_day",
    "day_of_week",
    "has_device",
)
COUNTERPARTY_FEATURES: tuple[str, ...] = tuple(CounterpartyFeatures.model_fields)  # features.counterparty
# The model's input contract: a model records these names in this order, serving checks them.
FEATURE_NAMES: tuple[str, ...] = TRANSACTION_FEATURES + HISTORY_FEATURES + COUNTERPARTY_FEATURES

_CHANNEL_CODE = {c: float(i) for i, c in enumerate(Channel)}


def counterparty_key(counterparty_id: str) -> str:
    """Short stable hash: bounds the state's size whatever the ids look like."""
    return hashlib.blake2b(counterparty_id.encode(), digest_size=6).hexdigest()


@dataclass(slots=True)
class TxPoint:
    """The part of a transaction the history needs, as primitives (fast offline replay)."""

    ts: float
    amount: float
    cp: str
    country: str
    device: str
    inflow: int

    @classmethod
    def of(cls, tx: Transaction) -> TxPoint:
        return cls(
            ts=tx.timestamp.timestamp(),
            amount=float(tx.amount),
            cp=counterparty_key(tx.counterparty_id),
            country=tx.country,
            device=tx.device_id or "",
            inflow=1 if tx.type is TxType.TOP_UP else 0,
        )


@dataclass(slots=True)
class WalletState:
    ts: list[float] = field(default_factory=list)
    amount: list[float] = field(default_factory=list)
    cp: list[str] = field(default_factory=list)
    country: list[str] = field(default_factory=list)
    device: list[str] = field(default_factory=list)
    inflow: list[int] = field(default_factory=list)
    counterparties: dict[str, list[float]] = field(default_factory=dict)  # key -> [first, last]
    first_seen: float | None = None

    # Serialisation: a flat dict of scalars, lists of scalars and one map (Firestore-friendly).
    def to_dict(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "ts": list(self.ts),
            "amount": list(self.amount),
            "cp": list(self.cp),
            "country": list(self.country),
            "device": list(self.device),
            "inflow": list(self.inflow),
            "counterparties": {k: list(v) for k, v in self.counterparties.items()},
            "first_seen": self.first_seen,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> WalletState:
        if not data:
            return cls()
        return cls(
            ts=[float(x) for x in data.get("ts", [])],
            amount=[float(x) for x in data.get("amount", [])],
            cp=list(data.get("cp", [])),
            country=list(data.get("country", [])),
            device=list(data.get("device", [])),
            inflow=[int(x) for x in data.get("inflow", [])],
            counterparties={k: [float(v[0]), float(v[1])] for k, v in (data.get("counterparties") or {}).items()},
            first_seen=None if data.get("first_seen") is None else float(data["first_seen"]),
        )


def history_values(state: WalletState, p: TxPoint) -> tuple[float, ...]:
    """The history features of `p` from `state`, in `HISTORY_FEATURES` order."""
    t = p.ts
    idx = bisect_left(state.ts, t)  # entries [0, idx) are strictly before t
    ts, amount, cp, inflow = state.ts, state.amount, state.cp, state.inflow

    c1h = s1h = small1h = 0.0
    c24 = s24 = in24 = out24 = 0.0
    c7 = s7 = 0.0
    c30 = s30 = sq30 = 0.0
    cps24: set[str] = set()
    devices7: set[str] = set()
    last_inflow = -1.0
    lo1h, lo24, lo7, lo30 = t - HOUR, t - DAY, t - 7 * DAY, t - 30 * DAY
    j = idx - 1
    while j >= 0:
        tj = ts[j]
        if tj < lo30:
            break
        a = amount[j]
        c30 += 1.0
        s30 += a
        sq30 += a * a
        if inflow[j] and last_inflow < 0:
            last_inflow = tj
        if tj >= lo7:
            c7 += 1.0
            s7 += a
            if state.device[j]:
                devices7.add(state.device[j])
            if tj >= lo24:
                c24 += 1.0
                s24 += a
                cps24.add(cp[j])
                if inflow[j]:
                    in24 += a
                else:
                    out24 += a
                if tj >= lo1h:
                    c1h += 1.0
                    s1h += a
                    if a < SMALL_AMOUNT:
                        small1h += 1.0
        j -= 1
    if last_inflow < 0:  # an inflow older than 30 days still counts for "time since"
        for k in range(j, -1, -1):
            if inflow[k]:
                last_inflow = ts[k]
                break

    if c30 > 0:
        mean30 = s30 / c30
        std30 = math.sqrt(max(sq30 / c30 - mean30 * mean30, 0.0))
        zscore = (p.amount - mean30) / max(std30, 1.0)
        ratio = p.amount / mean30
    else:
        mean30 = std30 = zscore = 0.0
        ratio = 1.0

    seen = state.counterparties.get(p.cp)
    is_new_cp = 1.0 if seen is None or seen[0] >= t else 0.0
    cp_known_days = 0.0 if is_new_cp else (t - seen[0]) / DAY
    new_cps24 = 0.0
    for first, _last in state.counterparties.values():
        if lo24 <= first < t:
            new_cps24 += 1.0

    is_new_device = 1.0 if p.device and p.device not in state.device[:idx] else 0.0
    if idx > 0:
        since_last = min(t - ts[idx - 1], CAP_SECONDS)
        country_changed = 1.0 if state.country[idx - 1] != p.country else 0.0
        prev_dev = state.device[idx - 1]
        device_changed = 1.0 if (p.device and prev_dev and prev_dev != p.device) else 0.0
    else:
        since_last = CAP_SECONDS
        country_changed = device_changed = 0.0
    since_inflow = min(t - last_inflow, CAP_SECONDS) if last_inflow >= 0 else CAP_SECONDS
    out_now = out24 + (0.0 if p.inflow else p.amount)
    age_days = (t - state.first_seen) / DAY if state.first_seen is not None and state.first_seen < t else 0.0

    return (
        c1h,
        s1h,
        small1h,
        c24,
        s24,
        c7,
        s7,
        s7 / c7 if c7 else 0.0,
        since_last,
        mean30,
        std30,
        zscore,
        ratio,
        float(len(cps24)),
        new_cps24,
        is_new_cp,
        country_changed,
        device_changed,
        is_new_device,
        float(len(devices7)),
        in24,
        since_inflow,
        out_now / max(in24, 1.0),
        age_days,
        float(idx),
        cp_known_days,
    )


def applied_after(state: WalletState, ts: float) -> int:
    """How many applied transactions of the wallet happened after `ts`.

    Non-zero means the transaction at `ts` arrives late: those later transactions were scored on a
    history without it (its own features, computed from the entries before `ts`, are still exact).
    Delivery in order per wallet keeps this at zero; a redriven dead letter or a publisher that
    sent a wallet's transactions out of order does not.
    """
    return len(state.ts) - bisect_right(state.ts, ts)


def apply(state: WalletState, p: TxPoint) -> None:
    """Add `p` to `state` in place; the state keeps its bounds (oldest entries fall off)."""
    pos = bisect_right(state.ts, p.ts)
    state.ts.insert(pos, p.ts)
    state.amount.insert(pos, p.amount)
    state.cp.insert(pos, p.cp)
    state.country.insert(pos, p.country)
    state.device.insert(pos, p.device)
    state.inflow.insert(pos, p.inflow)
    if len(state.ts) > RING_SIZE:
        for lst in (state.ts, state.amount, state.cp, state.country, state.device, state.inflow):
            del lst[0]
    seen = state.counterparties.get(p.cp)
    if seen is None:
        state.counterparties[p.cp] = [p.ts, p.ts]
        if len(state.counterparties) > MAX_COUNTERPARTIES:
            oldest = min(state.counterparties.items(), key=lambda kv: (kv[1][1], kv[0]))[0]
            del state.counterparties[oldest]
    else:
        seen[0] = min(seen[0], p.ts)
        seen[1] = max(seen[1], p.ts)
    state.first_seen = p.ts if state.first_seen is None else min(state.first_seen, p.ts)


def history_features(state: WalletState, tx: Transaction, point: TxPoint | None = None) -> HistoryFeatures:
    """`point` when the caller already has `TxPoint.of(tx)` (the store's step: built once per delivery)."""
    values = history_values(state, TxPoint.of(tx) if point is None else point)
    return HistoryFeatures.model_construct(**dict(zip(HISTORY_FEATURES, values, strict=True)))


def transaction_values(
    amount: float, tx_type: TxType | str, channel: Channel | str, ts: float, has_device: bool
) -> tuple[float, ...]:
    """The transaction's own features, in `TRANSACTION_FEATURES` order."""
    tx_type = TxType(tx_type)
    days, rem = divmod(ts, DAY)
    return (
        amount,
        math.log1p(amount),
        1.0 if tx_type is TxType.TRANSFER else 0.0,
        1.0 if tx_type is TxType.WITHDRAWAL else 0.0,
        1.0 if tx_type is TxType.TOP_UP else 0.0,
        _CHANNEL_CODE[Channel(channel)],
        float(int(rem // HOUR)),
        float((int(days) + 3) % 7),  # 1970-01-01 was a Thursday; Monday = 0
        1.0 if has_device else 0.0,
    )


def vectorize(tx: EnrichedTransaction) -> list[float]:
    """The model's input row for an enriched transaction, in `FEATURE_NAMES` order."""
    f = tx.features
    row = list(
        transaction_values(tx.amount, tx.type, tx.channel, tx.timestamp.timestamp(), tx.device_id is not None)
    )
    row.extend(getattr(f, name) for name in HISTORY_FEATURES)
    c = tx.counterparty
    row.extend(getattr(c, name) for name in COUNTERPARTY_FEATURES)
    return row


def replay(transactions: Iterable[Transaction]) -> Iterator[tuple[Transaction, HistoryFeatures]]:
    """Offline path of the wallet history alone: replay in time order, yielding each transaction's
    history features (`features.timeline.replay` adds the counterparty features and labels)."""
    states: dict[str, WalletState] = {}
    for tx in sorted(transactions, key=lambda t: t.timestamp):
        state = states.setdefault(tx.wallet_id, WalletState())
        point = TxPoint.of(tx)
        values = history_values(state, point)
        yield tx, HistoryFeatures.model_construct(**dict(zip(HISTORY_FEATURES, values, strict=True)))
        apply(state, point)
