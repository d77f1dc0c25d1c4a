"""The baseline of the peer-to-peer design: what a competent data scientist writes in an afternoon.

Rolling features exact to the second, as of each transaction (events strictly before it; its own
amount, type and time are known), for every party the transaction involves, and the known-fraud
counts of each, from the labels known before it (`label_time` < T). Then gradient boosting: the
very learner and hyperparameters txguard trains (`txguard.training.train.fit_model`), so the two
differ only in their features.

- the transaction: amount, its log, type, channel, hour, weekday, device or not;
- the paying wallet's outflows over 1 h / 24 h / 7 d / 30 d, its mean, this amount over the mean,
  time since its last outflow, payees new to it in 24 h, whether this payee is new to it;
- the paying wallet's inflows (transfers it received, cash-ins): count and sum over 24 h, payers
  new to it, time since the last one, its 24 h outflow over its 24 h inflow;
- the payee's inflows over 1 h / 24 h / 7 d, payers new to it over 24 h / 7 d, its age, and its
  own outflows over 24 h (a mule cashing out);
- the device: transactions over 10 min / 1 h / 24 h, wallets new to it over 1 h / 24 h / 7 d, its
  age, whether it is new to this wallet, the wallet's new devices over 30 d;
- known frauds over the last 30 days (by when they became known): sent by this wallet, received
  by it, received by the payee, sent by the payee, on the device.

Nothing here reads a label that was not known before the transaction (a test flips every label
unknown at T and checks the features at T do not move).
"""

from __future__ import annotations

import numpy as np

from txguard.evaluation.p2p_data import P2PData
from txguard.evaluation.p2p_world import CHANNELS, TOP_UP, TX_TYPES

DAY, HOUR, MINUTE = 86400.0, 3600.0, 60.0

BASELINE_FEATURES: tuple[str, ...] = (
    "amount", "amount_log", *(f"type_{t}" for t in TX_TYPES), "channel", "hour", "weekday", "has_device",
    "out_n_1h", "out_n_24h", "out_n_7d", "out_n_30d", "out_sum_24h", "out_sum_30d", "out_mean_30d",
    "amount_over_mean_30d", "since_last_out", "new_payees_24h", "payee_is_new",
    "in_n_24h", "in_sum_24h", "new_payers_in_24h", "since_last_in", "out_over_in_24h",
    "payee_in_n_1h", "payee_in_n_24h", "payee_in_n_7d", "payee_new_payers_24h", "payee_new_payers_7d",
    "payee_age_days", "payee_out_n_24h", "payee_out_sum_24h",
    "device_n_10m", "device_n_1h", "device_n_24h", "device_new_wallets_1h", "device_new_wallets_24h",
    "device_new_wallets_7d", "device_age_days", "device_new_for_wallet", "wallet_new_devices_30d",
    "fraud_sent_30d", "fraud_received_30d", "payee_fraud_received_30d", "payee_fraud_sent_30d", "device_fraud_30d",
)
_NO_EVENT = 30 * DAY  # "never" as a time since


class Events:
    """Events (group, time, values) sorted by (group, time): sums over [t - w, t) for any (group, t)."""

    def __init__(self, group: np.ndarray, ts: np.ndarray, **values: np.ndarray) -> None:
        self.t0 = float(ts.min()) if len(ts) else 0.0
        self.span = (float(ts.max()) - self.t0 if len(ts) else 0.0) + 400 * DAY
        order = np.lexsort((ts, group))
        self.keys = group[order].astype(np.float64) * self.span + (ts[order] - self.t0 + 200 * DAY)
        self.ts = ts[order]
        self.cum = {name: np.concatenate([[0.0], np.cumsum(v[order].astype(np.float64))]) for name, v in values.items()}
        self.cum["n"] = np.arange(len(ts) + 1, dtype=np.float64)

    def _at(self, group: np.ndarray, t: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.keys, group.astype(np.float64) * self.span + (t - self.t0 + 200 * DAY), "left")

    def window(self, name: str, group: np.ndarray, t: np.ndarray, width: float) -> np.ndarray:
        cum = self.cum[name]
        return cum[self._at(group, t)] - cum[self._at(group, t - width)]

    def since_last(self, group: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Seconds since the group's last event before t (30 days when none)."""
        hi = self._at(group, t)
        lo = self._at(group, t - _NO_EVENT)
        last = self.ts[np.maximum(hi - 1, 0)] if len(self.ts) else np.zeros(len(t))
        return np.where(hi > lo, t - last, _NO_EVENT)

    def first_before(self, group: np.ndarray, t: np.ndarray, no_event: float) -> np.ndarray:
        """Seconds since the group's first event before t (`no_event` when none)."""
        start = np.searchsorted(self.keys, group.astype(np.float64) * self.span, "left")
        hi = self._at(group, t)
        first = self.ts[np.minimum(start, len(self.ts) - 1)] if len(self.ts) else np.zeros(len(t))
        return np.where(hi > start, t - first, no_event)


def _first_of_pair(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """1.0 on the first row (in row order) of each (a, b) pair."""
    pair = a.astype(np.int64) * np.int64(n + 1) + b.astype(np.int64)
    _, first = np.unique(pair, return_index=True)
    out = np.zeros(len(a))
    out[first] = 1.0
    return out


def baseline_features(data: P2PData) -> np.ndarray:
    """(rows, len(BASELINE_FEATURES)) float64, rows in the data's (time) order."""
    t, amount, wallet, payee, device = data.ts, data.amount, data.wallet, data.counterparty, data.device
    n_parties = len(data.parties)
    top_up = data.tx_type == TOP_UP
    # Outflows: every row but a cash-in, by its wallet. Inflows: payments and transfers by their
    # payee, cash-ins by their wallet. New pairs: the first time a wallet pays a payee (and so the
    # first time the payee is paid by it), the first time a device carries a wallet.
    new_pair = _first_of_pair(wallet, payee, n_parties)
    out = ~top_up
    outflow = Events(wallet[out], t[out], amount=amount[out], new=new_pair[out])
    in_party = np.where(top_up, wallet, payee)
    inflow = Events(in_party, t, amount=amount, new=new_pair)
    has_device = device >= 0
    new_device_pair = np.zeros(len(t))
    new_device_pair[has_device] = _first_of_pair(device[has_device], wallet[has_device], n_parties)
    by_device = Events(device[has_device], t[has_device], new=new_device_pair[has_device])
    wallet_devices = Events(wallet[has_device], t[has_device], new=new_device_pair[has_device])
    # Known frauds, by when they became known (never-reported frauds are never known).
    known = (data.kind > 0) & np.isfinite(data.label_time)
    lt = data.label_time[known]
    sent = Events(wallet[known], lt)
    received = Events(in_party[known], lt)
    on_device = Events(device[known & has_device], data.label_time[known & has_device])

    days, rem = np.divmod(t, DAY)
    out_30d = outflow.window("n", wallet, t, 30 * DAY)
    out_sum_30d = outflow.window("amount", wallet, t, 30 * DAY)
    mean_30d = np.where(out_30d > 0, out_sum_30d / np.maximum(out_30d, 1), 0.0)
    in_24h = inflow.window("amount", wallet, t, DAY)
    out_24h = outflow.window("amount", wallet, t, DAY)
    dev = np.where(has_device, device, -1)
    columns = [
        amount, np.log1p(amount), *((data.tx_type == k).astype(np.float64) for k in range(len(TX_TYPES))),
        data.channel.astype(np.float64), rem // HOUR, (days.astype(np.int64) + 3) % 7, has_device.astype(np.float64),
        outflow.window("n", wallet, t, HOUR), outflow.window("n", wallet, t, DAY),
        outflow.window("n", wallet, t, 7 * DAY), out_30d, out_24h, out_sum_30d, mean_30d,
        np.where(mean_30d > 0, amount / np.maximum(mean_30d, 1e-9), 1.0), outflow.since_last(wallet, t),
        outflow.window("new", wallet, t, DAY), new_pair,
        inflow.window("n", wallet, t, DAY), in_24h, inflow.window("new", wallet, t, DAY),
        inflow.since_last(wallet, t), (out_24h + np.where(top_up, 0.0, amount)) / np.maximum(in_24h, 1.0),
        inflow.window("n", payee, t, HOUR), inflow.window("n", payee, t, DAY), inflow.window("n", payee, t, 7 * DAY),
        inflow.window("new", payee, t, DAY), inflow.window("new", payee, t, 7 * DAY),
        inflow.first_before(payee, t, 0.0) / DAY, outflow.window("n", payee, t, DAY),
        outflow.window("amount", payee, t, DAY),
        *(np.where(has_device, by_device.window("n", dev, t, w), 0.0) for w in (10 * MINUTE, HOUR, DAY)),
        *(np.where(has_device, by_device.window("new", dev, t, w), 0.0) for w in (HOUR, DAY, 7 * DAY)),
        np.where(has_device, by_device.first_before(dev, t, 0.0) / DAY, 0.0),
        np.where(has_device, new_device_pair, 0.0), wallet_devices.window("new", wallet, t, 30 * DAY),
        sent.window("n", wallet, t, 30 * DAY), received.window("n", wallet, t, 30 * DAY),
        received.window("n", payee, t, 30 * DAY), sent.window("n", payee, t, 30 * DAY),
        np.where(has_device, on_device.window("n", dev, t, 30 * DAY), 0.0),
    ]
    out_matrix = np.column_stack(columns).astype(np.float64)
    assert out_matrix.shape[1] == len(BASELINE_FEATURES) and len(CHANNELS) == 4
    return out_matrix
