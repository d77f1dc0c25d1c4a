"""A labelled peer-to-peer mobile-money world: the second design `txguard evaluate` grades on.

`p2p_world` draws the people and their honest traffic, `p2p_fraud` the four kinds of fraud and
when each became known (days to weeks later, some never). This module puts them together: rows
in time order as columns (`P2PData`), written as the JSONL `txguard train --data` reads
(`write_jsonl`) with `is_fraud`, `label_time` (`never` for a fraud nobody reported) and
`scenario` (the kind), so row i is the same in both.

Wallets found to be mules are frozen: none of their transactions, and no payment to them, after
that moment (a payment to a frozen wallet fails).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from txguard.contract.models import LabelEvent, Transaction
from txguard.evaluation.handbook_data import epoch_of, iso_utc
from txguard.evaluation.p2p_fraud import KINDS, FraudRates, FraudWorld
from txguard.evaluation.p2p_world import (
    AGENT,
    AGENT_DEVICE,
    ATTACKER_DEVICE,
    BILLER,
    CHANNELS,
    EMPLOYER,
    HANDLER_DEVICE,
    MERCHANT,
    NEW_PHONE,
    PATTERNS,
    PHONE,
    TX_TYPES,
    USER,
    Rows,
    honest_traffic,
    population,
)

DAY = 86400
_BILLERS = ("B-AIRTIME", "B-POWER", "B-WATER", "B-TV")
_BASE = 10_000_000


@dataclass(frozen=True)
class P2PConfig:
    users: int = 8000
    days: int = 79
    seed: int = 42
    start: str = "2024-01-01T00:00:00+00:00"  # a Monday
    rates: FraudRates = FraudRates()

    def __post_init__(self) -> None:
        if self.users < 50:
            raise ValueError(f"users must be >= 50, got {self.users}")
        if self.days < 1:
            raise ValueError(f"days must be >= 1, got {self.days}")
        epoch_of(self.start)

    @property
    def start_epoch(self) -> int:
        return epoch_of(self.start)


@dataclass
class P2PData:
    """One row per transaction, in time order. `wallet` / `counterparty` index `parties`, `device`
    indexes `devices` (-1: none); `kind` indexes KINDS, `pattern` PATTERNS (-1 on fraud rows)."""

    ts: np.ndarray  # epoch seconds (whole seconds)
    wallet: np.ndarray
    counterparty: np.ndarray
    amount: np.ndarray
    tx_type: np.ndarray
    channel: np.ndarray
    device: np.ndarray
    kind: np.ndarray
    pattern: np.ndarray
    label_time: np.ndarray  # when the fraud became known; NaN on legitimate rows; inf: never
    parties: list[str]
    devices: list[str]
    config: P2PConfig

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def is_fraud(self) -> np.ndarray:
        return (self.kind > 0).astype(np.int8)

    def kind_names(self) -> np.ndarray:
        return np.asarray(KINDS, dtype=object)[self.kind]

    def wallet_ids(self) -> np.ndarray:
        return np.asarray(self.parties, dtype=object)[self.wallet]

    def counts(self) -> dict[str, int]:
        found = np.bincount(self.kind, minlength=len(KINDS))
        return {name: int(n) for name, n in zip(KINDS, found, strict=True)}


def _party_id(code: int) -> str:
    kind, index = divmod(code, _BASE)
    if kind == USER // _BASE:
        return f"U{index:06d}"
    if kind == AGENT // _BASE:
        return f"A{index:05d}"
    if kind == MERCHANT // _BASE:
        return f"M{index:05d}"
    if kind == BILLER // _BASE:
        return _BILLERS[index]
    if kind == EMPLOYER // _BASE:
        return f"E{index:04d}"
    raise ValueError(f"party code {code}")


def _device_id(code: int) -> str:
    kind, index = divmod(code, _BASE)
    prefix = {PHONE: "P", NEW_PHONE: "N", AGENT_DEVICE: "D", ATTACKER_DEVICE: "X", HANDLER_DEVICE: "H"}[kind * _BASE]
    return f"{prefix}{index:07d}"


def _vocabulary(codes: np.ndarray, name: callable) -> tuple[np.ndarray, list[str]]:  # type: ignore[valid-type]
    """Codes as indices into a list of ids, in order of first appearance (no id says what it is
    beyond its kind of party: a mule's wallet is a `U...` like everyone's)."""
    unique, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(unique), dtype=np.int64)
    rank[order] = np.arange(len(unique))
    return rank[inverse.reshape(-1)], [name(int(c)) for c in unique[order]]


def generate(cfg: P2PConfig = P2PConfig()) -> P2PData:
    rng = np.random.default_rng(cfg.seed)
    pop = population(rng, cfg.users, cfg.days)
    rows = Rows()
    honest_traffic(rng, pop, rows)
    fraud = FraudWorld(rng, pop, cfg.rates)
    fraud.add_to(rows)
    c = rows.columns()
    keep = (c["ts"] >= 0) & (c["ts"] < cfg.days * DAY)
    frozen = fraud.frozen()
    if frozen:  # a found mule's wallet: nothing from it, nothing to it, from then on
        party = np.fromiter(frozen, dtype=np.int64)
        since = np.fromiter(frozen.values(), dtype=np.float64)
        order = np.argsort(party)
        party, since = party[order], since[order]
        for side in ("wallet", "counterparty"):
            at = np.minimum(np.searchsorted(party, c[side]), len(party) - 1)
            keep &= ~((party[at] == c[side]) & (c["ts"] >= since[at]))
    c = {k: v[keep] for k, v in c.items()}
    ts = np.floor(c["ts"]).astype(np.int64) + cfg.start_epoch
    order = np.lexsort((c["counterparty"], c["wallet"], ts))
    c = {k: v[order] for k, v in c.items()}
    ts = ts[order]
    kind = c["kind"].astype(np.int8)
    label = np.where(kind > 0, c["label_time"] + cfg.start_epoch, np.nan)
    label = np.where(kind > 0, np.maximum(label, ts), label)  # never before the transaction
    parties, party_ids = _vocabulary(np.concatenate([c["wallet"], c["counterparty"]]).astype(np.int64), _party_id)
    with_device = c["device"] >= 0
    device = np.full(len(ts), -1, dtype=np.int64)
    device_codes, device_ids = _vocabulary(c["device"][with_device].astype(np.int64), _device_id)
    device[with_device] = device_codes
    return P2PData(
        ts=ts.astype(np.float64), wallet=parties[:len(ts)], counterparty=parties[len(ts):],
        amount=np.round(c["amount"].astype(np.float64), 2), tx_type=c["tx_type"].astype(np.int8),
        channel=c["channel"].astype(np.int8), device=device, kind=kind, pattern=c["pattern"].astype(np.int16),
        label_time=label, parties=party_ids, devices=device_ids, config=cfg,
    )


def write_jsonl(data: P2PData, path: str | Path) -> Path:
    """Transaction fields + is_fraud + label_time (`never`: not reported) + scenario, time order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = data.config.seed
    ids = np.asarray(data.parties, dtype=object)
    device_ids = np.asarray([*data.devices, None], dtype=object)[data.device]  # -1 -> None
    labels = iso_utc(data.label_time)
    with open(path, "w", encoding="utf-8") as out:
        rows = zip(ids[data.wallet].tolist(), ids[data.counterparty].tolist(), data.amount.tolist(),
                   data.tx_type.tolist(), data.channel.tolist(), device_ids.tolist(), iso_utc(data.ts),
                   data.kind.tolist(), data.label_time.tolist(), labels, strict=True)
        for i, (w, cp, amount, tx_type, channel, dev, when, kind, lt, known) in enumerate(rows):
            device = "null" if dev is None else f'"{dev}"'
            label = "" if kind == 0 else (',"label_time":"never"' if math.isinf(lt) else f',"label_time":"{known}"')
            out.write(
                f'{{"transaction_id":"mm{seed}-{i:08d}","wallet_id":"{w}","counterparty_id":"{cp}",'
                f'"amount":{amount},"currency":"KES","type":"{TX_TYPES[tx_type]}","channel":"{CHANNELS[channel]}",'
                f'"country":"KE","device_id":{device},"timestamp":"{when}","is_fraud":{1 if kind else 0}{label},'
                f'"scenario":"{KINDS[kind]}"}}\n'
            )
    return path


def records(data: P2PData) -> Iterator[tuple[Transaction, int, float, str]]:
    """The rows as `txguard.training.dataset.Record`s (transaction, is_fraud, label time, kind),
    the transactions `write_jsonl` writes: for tests that drive the online path with this world."""
    ids = np.asarray(data.parties, dtype=object)
    devices = np.asarray([*data.devices, None], dtype=object)[data.device]
    for i, (w, cp, amount, tx_type, channel, dev, ts, kind, lt) in enumerate(zip(
            ids[data.wallet].tolist(), ids[data.counterparty].tolist(), data.amount.tolist(), data.tx_type.tolist(),
            data.channel.tolist(), devices.tolist(), data.ts.tolist(), data.kind.tolist(), data.label_time.tolist(),
            strict=True)):
        tx = Transaction(transaction_id=f"mm{data.config.seed}-{i:08d}", wallet_id=w, counterparty_id=cp,
                         amount=amount, currency="KES", type=TX_TYPES[tx_type], channel=CHANNELS[channel],
                         country="KE", device_id=dev, timestamp=datetime.fromtimestamp(ts, UTC))
        yield tx, int(kind > 0), lt, KINDS[kind]


def online_inputs(data: P2PData) -> tuple[list[Transaction], list[LabelEvent]]:
    """The transactions and the label events the online path would receive: each reported fraud's
    label, as `from_file` reads it (`row_label_event`), known by the last transaction, in the order
    they became known (as a label feed delivers them)."""
    from txguard.features.timeline import row_label_event

    rows = list(records(data))
    txs = [tx for tx, *_ in rows]
    last = data.ts[-1] if len(data) else -math.inf
    labels = [row_label_event(tx, lt) for tx, fraud, lt, _ in rows if fraud and lt <= last]
    return txs, sorted(labels, key=lambda lb: (lb.known_at, lb.label_id))


def describe(data: P2PData) -> dict[str, object]:
    """Sizes, fraud share, rows per kind, how many frauds were never reported, honest patterns."""
    fraud = data.kind > 0
    never = fraud & np.isinf(data.label_time)
    delay = (data.label_time - data.ts)[fraud & ~never] / DAY
    params = asdict(data.config)
    return {
        **{k: v for k, v in params.items() if k != "rates"}, "rates": params["rates"],
        "transactions": len(data), "wallets": len(np.unique(data.wallet)),
        "devices": len(data.devices), "fraud": int(fraud.sum()),
        "fraud_rate": round(float(fraud.mean()), 5) if len(data) else 0.0,
        "kinds": data.counts(),
        "never_reported": {KINDS[k]: int((never & (data.kind == k)).sum()) for k in range(1, len(KINDS))},
        "label_delay_days_median": round(float(np.median(delay)), 2) if len(delay) else None,
        "patterns": {name: int((data.pattern == i).sum()) for i, name in enumerate(PATTERNS)},
    }
