"""The wallet history features of a whole time-ordered table at once: the fast offline twin of
`txguard.features.wallet`.

Serving (the enrichment function) uses the reference, `wallet.history_values` / `wallet.apply`
and `counterparty.marks`, one transaction at a time on a stored state. Training's replay
(`txguard.features.timeline_columns`) uses this twin, which computes the same numbers for every
row of a table with numpy, bit for bit: tests/unit/features/test_columns_parity.py compares them.

How it stays exact:
- The state is a function of the wallet's earlier rows: its ring holds the last `RING_SIZE`
  rows applied (wallet positions [q - RING_SIZE, q)), of which a feature reads those strictly
  before the row's time ([ring_lo, e), e = the first of the wallet's rows at the same time).
- Counts are window lengths (binary search on (wallet, time)); float sums are accumulated in the
  reference's order, newest row first, one numpy pass per step back in time (`_newest_first`),
  so every sum sees the same additions in the same order as the loop of `history_values`.
- The counterparty map (`WalletState.counterparties`) is exact as long as it never evicts,
  i.e. for wallets with at most `MAX_COUNTERPARTIES` distinct counterparty keys; the rows of
  the other wallets go through the reference itself (`_reference_rows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from txguard.features.counterparty import marks
from txguard.features.wallet import (
    CAP_SECONDS,
    DAY,
    HISTORY_FEATURES,
    HOUR,
    MAX_COUNTERPARTIES,
    RING_SIZE,
    SMALL_AMOUNT,
    TxPoint,
    WalletState,
    apply,
    history_values,
)

N_HISTORY = len(HISTORY_FEATURES)
_H = {name: i for i, name in enumerate(HISTORY_FEATURES)}


@dataclass
class WalletColumns:
    """What the wallet side of a replay produces for every row (rows in the input's order)."""

    history: np.ndarray  # (n, N_HISTORY) float64, HISTORY_FEATURES order
    new_counterparty: np.ndarray  # bool: first time the wallet pays this counterparty (`marks`)
    new_device: np.ndarray  # bool: first time the wallet uses this device (`marks`)


@dataclass(frozen=True)
class WalletInput:
    """The columns the wallet history reads, rows in time order (ties in replay order).

    Codes index the vocabularies: `cp_key` the counterparty keys (`wallet.counterparty_key` of the
    ids, so ids with one key are one code, as in the reference), `device` the device ids (-1: none).
    """

    ts: np.ndarray  # float64 epoch seconds, non-decreasing
    amount: np.ndarray  # float64
    inflow: np.ndarray  # bool (top-ups)
    wallet: np.ndarray  # int codes
    cp_key: np.ndarray  # int codes into cp_keys
    country: np.ndarray  # int codes into countries
    device: np.ndarray  # int codes into devices, -1 for none
    cp_keys: Sequence[str]
    countries: Sequence[str]
    devices: Sequence[str]


class _Segments:
    """Rows sorted by (wallet, time): the first position of a wallet at or after a time, vectorised
    with one int64 key per row (wallet code, rank of its time among all times)."""

    def __init__(self, wallet: np.ndarray, ts: np.ndarray) -> None:
        self.times = np.unique(ts)
        self.width = np.int64(len(self.times) + 1)
        self.wallet = wallet.astype(np.int64)
        self.keys = self.wallet * self.width + np.searchsorted(self.times, ts)

    def first_at_or_after(self, t: np.ndarray) -> np.ndarray:
        """Per row, the first position of its own wallet whose time is >= t (row-wise)."""
        return np.searchsorted(self.keys, self.wallet * self.width + np.searchsorted(self.times, t, "left"), "left")


def _newest_first(end: np.ndarray, length: np.ndarray, values: Sequence[np.ndarray],
                  next_same: np.ndarray | None = None) -> list[np.ndarray]:
    """Sums of `values` over positions [end - length, end) added newest first (end - 1, end - 2, ...),
    starting from 0.0: exactly the reference loop's order. With `next_same` (the next position of
    the same counterparty), one more array: how many positions have no later occurrence before
    `end` (the distinct counterparties of the window).

    Rows are sorted by length, longest first, so the rows still summing at step k are a prefix.
    """
    n = len(end)
    order = np.argsort(-length, kind="stable")
    ends, lengths = end[order], length[order]
    acc = [np.zeros(n) for _ in range(len(values) + (next_same is not None))]
    steps = int(lengths[0]) if n else 0
    active = np.searchsorted(-lengths, -np.arange(1, steps + 1), "right")  # rows with length >= k
    for k in range(1, steps + 1):
        m = int(active[k - 1])
        j = ends[:m] - k
        for a, v in zip(acc, values, strict=False):
            a[:m] += v[j]
        if next_same is not None:
            acc[-1][:m] += next_same[j] >= ends[:m]
    out = []
    for a in acc:
        s = np.empty(n)
        s[order] = a
        out.append(s)
    return out


def _next_same(group: np.ndarray) -> np.ndarray:
    """For each position, the next position with the same group code (len(group) when none)."""
    n = len(group)
    order = np.argsort(group, kind="stable")
    nxt = np.full(n, n, dtype=np.int64)
    same = group[order[1:]] == group[order[:-1]]
    nxt[order[:-1][same]] = order[1:][same]
    return nxt


def _last_before(group: np.ndarray, valid: np.ndarray, before: np.ndarray) -> np.ndarray:
    """For each position p with valid[p], the last position < before[p] with the same group code
    (-1 when none); -1 where not valid."""
    n = len(group)
    out = np.full(n, -1, dtype=np.int64)
    where = np.flatnonzero(valid)
    if not len(where):
        return out
    g = group[where].astype(np.int64)
    order = np.argsort(g, kind="stable")
    keys = g[order] * np.int64(n + 1) + where[order]
    i = np.searchsorted(keys, g * np.int64(n + 1) + before[where], "left") - 1
    ok = i >= 0
    ok[ok] = keys[i[ok]] // np.int64(n + 1) == g[ok]
    out[where[ok]] = where[order][i[ok]]
    return out


def wallet_columns(cols: WalletInput) -> WalletColumns:
    """Every row's history features and marks, as `history_values` / `marks` on the state the
    reference replay would hold just before that row."""
    n = len(cols.ts)
    history = np.zeros((n, N_HISTORY))
    new_cp = np.zeros(n, dtype=bool)
    new_device = np.zeros(n, dtype=bool)
    if n == 0:
        return WalletColumns(history, new_cp, new_device)

    # Rows grouped by wallet, time order within (the input is in time order: a stable sort).
    order = np.argsort(cols.wallet, kind="stable")
    wallet, ts, amount = cols.wallet[order], cols.ts[order], cols.amount[order]
    inflow, cp, country, device = cols.inflow[order], cols.cp_key[order], cols.country[order], cols.device[order]
    pos = np.arange(n, dtype=np.int64)
    new_wallet = np.ones(n, dtype=bool)
    new_wallet[1:] = wallet[1:] != wallet[:-1]
    start = np.maximum.accumulate(np.where(new_wallet, pos, 0))
    new_time = new_wallet.copy()
    new_time[1:] |= ts[1:] != ts[:-1]
    end = np.maximum.accumulate(np.where(new_time, pos, 0))  # e: rows before it are strictly earlier
    ring_lo = np.maximum(start, pos - RING_SIZE)
    idx = np.maximum(end - ring_lo, 0)  # bisect_left(state.ts, t) in the reference
    seg = _Segments(wallet, ts)

    def window(span: float) -> tuple[np.ndarray, np.ndarray]:
        lo = np.maximum(seg.first_at_or_after(ts - span), ring_lo)
        return lo, np.maximum(end - lo, 0)

    lo30, len30 = window(30 * DAY)
    lo7, len7 = window(7 * DAY)
    lo24, len24 = window(DAY)
    lo1h, len1h = window(HOUR)
    zero = np.zeros(n)
    in_amount = np.where(inflow, amount, zero)
    out_amount = np.where(inflow, zero, amount)
    pair = wallet.astype(np.int64) * np.int64(len(cols.cp_keys) + 1) + cp
    s30, sq30 = _newest_first(end, len30, [amount, amount * amount])
    (s7,) = _newest_first(end, len7, [amount])
    s24, in24, out24, cps24 = _newest_first(end, len24, [amount, in_amount, out_amount], _next_same(pair))
    (s1h,) = _newest_first(end, len1h, [amount])
    # Distinct devices over 7 days: rows without a device get a group of their own, then are taken off.
    no_device = device < 0
    device_pair = np.where(no_device, -1 - pos, wallet.astype(np.int64) * np.int64(len(cols.devices) + 1) + device)
    none7, groups7 = _newest_first(end, len7, [no_device.astype(np.float64)], _next_same(device_pair))
    devices7 = groups7 - none7
    small = np.concatenate([[0], np.cumsum(amount < SMALL_AMOUNT)])
    small1h = (small[end] - small[lo1h]) * (len1h > 0)

    c30, c7, c24, c1h = (x.astype(np.float64) for x in (len30, len7, len24, len1h))
    has30 = c30 > 0
    safe30 = np.where(has30, c30, 1.0)
    mean30 = np.where(has30, s30 / safe30, 0.0)
    std30 = np.where(has30, np.sqrt(np.maximum(sq30 / safe30 - mean30 * mean30, 0.0)), 0.0)
    zscore = np.where(has30, (amount - mean30) / np.maximum(std30, 1.0), 0.0)
    ratio = np.where(has30, amount / np.where(has30, mean30, 1.0), 1.0)

    # The counterparty map (no eviction for these wallets): first time each key was paid.
    _, first_idx, inverse = np.unique(pair, return_index=True, return_inverse=True)
    first_of_pair = first_idx[inverse.reshape(-1)]
    is_new_cp = ts[first_of_pair] >= ts
    cp_known_days = np.where(is_new_cp, 0.0, (ts - ts[first_of_pair]) / DAY)
    is_first = np.zeros(n, dtype=np.int64)
    is_first[first_idx] = 1
    firsts = np.concatenate([[0], np.cumsum(is_first)])
    new_cps24 = (firsts[end] - firsts[seg.first_at_or_after(ts - DAY)]).astype(np.float64)

    has_prev = idx > 0
    prev = np.maximum(end - 1, 0)
    since_last = np.where(has_prev, np.minimum(ts - ts[prev], CAP_SECONDS), CAP_SECONDS)
    country_changed = has_prev & (country[prev] != country)
    device_changed = has_prev & (device >= 0) & (device[prev] >= 0) & (device[prev] != device)
    last_inflow = np.maximum.accumulate(np.where(inflow, pos, -1))[prev]
    inflow_known = has_prev & (last_inflow >= ring_lo)
    since_inflow = np.where(inflow_known, np.minimum(ts - ts[np.maximum(last_inflow, 0)], CAP_SECONDS),
                            CAP_SECONDS)
    out_now = np.where(inflow, out24, out24 + amount)
    first_seen = ts[start]
    age = np.where((pos > start) & (first_seen < ts), (ts - first_seen) / DAY, 0.0)
    seen_device = _last_before(wallet.astype(np.int64) * np.int64(len(cols.devices) + 1) + device, device >= 0, end)
    is_new_device = (device >= 0) & ~(seen_device >= ring_lo)

    out = np.empty((n, N_HISTORY))
    for name, values in (
        ("tx_count_1h", c1h), ("amount_sum_1h", s1h), ("small_tx_count_1h", small1h.astype(np.float64)),
        ("tx_count_24h", c24), ("amount_sum_24h", s24), ("tx_count_7d", c7), ("amount_sum_7d", s7),
        ("amount_mean_7d", np.where(c7 > 0, s7 / np.where(c7 > 0, c7, 1.0), 0.0)),
        ("seconds_since_last", since_last), ("amount_mean_30d", mean30), ("amount_std_30d", std30),
        ("amount_zscore_30d", zscore), ("amount_ratio_30d", ratio), ("distinct_counterparties_24h", cps24),
        ("new_counterparties_24h", new_cps24), ("is_new_counterparty", is_new_cp.astype(np.float64)),
        ("country_changed", country_changed.astype(np.float64)),
        ("device_changed", device_changed.astype(np.float64)), ("is_new_device", is_new_device.astype(np.float64)),
        ("devices_7d", devices7),
        ("inflow_sum_24h", in24),
        ("seconds_since_last_inflow", since_inflow), ("outflow_to_inflow_24h", out_now / np.maximum(in24, 1.0)),
        ("wallet_age_days", age), ("history_len", idx.astype(np.float64)),
        ("counterparty_known_days", cp_known_days),
    ):
        out[:, _H[name]] = values
    history[order] = out
    new_cp[order] = is_new_cp
    new_device[order] = is_new_device

    # Wallets whose counterparty map would evict: the reference, row by row.
    distinct = np.bincount(wallet[first_idx], minlength=int(wallet.max()) + 1)
    crowded = np.flatnonzero(distinct > MAX_COUNTERPARTIES)
    if len(crowded):
        rows = np.flatnonzero(np.isin(cols.wallet, crowded))
        _reference_rows(cols, rows, history, new_cp, new_device)
    return WalletColumns(history, new_cp, new_device)


def _reference_rows(cols: WalletInput, rows: np.ndarray, history: np.ndarray, new_cp: np.ndarray,
                    new_device: np.ndarray) -> None:
    """`history_values`, `marks` and `apply` themselves on these rows (whole wallets, time order)."""
    states: dict[int, WalletState] = {}
    for i in rows.tolist():
        code = int(cols.wallet[i])
        state = states.get(code)
        if state is None:
            state = states[code] = WalletState()
        dev = int(cols.device[i])
        point = TxPoint(float(cols.ts[i]), float(cols.amount[i]), cols.cp_keys[int(cols.cp_key[i])],
                        cols.countries[int(cols.country[i])], cols.devices[dev] if dev >= 0 else "",
                        1 if cols.inflow[i] else 0)
        history[i] = history_values(state, point)
        new_cp[i], new_device[i] = marks(state, point)
        apply(state, point)
