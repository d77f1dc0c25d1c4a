"""The offline replay of a whole table at once: the fast twin of `txguard.features.timeline.replay`.

`timeline.replay` is the reference: transaction by transaction through the very functions the
enrichment and label functions call. Training (`txguard.training.dataset`) and the batch
pipeline replay hundreds of thousands to millions of rows, so they use this twin: the same
model input rows, bit for bit, computed over columns (`wallet_columns`, `counterparty_columns`).
tests/unit/features/test_columns_parity.py compares the two on simulated, Handbook-shaped and
adversarial data (ties, saturated states, reversed labels); the training parity test compares
the twin with the online path.

The table is `TxColumns`: primitives and integer codes, no `Transaction` objects, so a file of
millions of rows is held in a few hundred bytes a row.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from txguard.contract.models import Channel, LabelEvent, Transaction, TxType
from txguard.features.counterparty import Entity, entity_key
from txguard.features.counterparty_columns import (
    CounterpartyInput,
    applied_label_increments,
    counterparty_columns,
)
from txguard.features.wallet import DAY, FEATURE_NAMES, HOUR, TRANSACTION_FEATURES, counterparty_key
from txguard.features.wallet_columns import WalletInput, wallet_columns

TX_TYPES: tuple[TxType, ...] = tuple(TxType)
CHANNELS: tuple[Channel, ...] = tuple(Channel)  # index = `channel_code` of `wallet.transaction_values`
_TYPE_CODE = {t.value: i for i, t in enumerate(TX_TYPES)}
_CHANNEL_CODE = {c.value: i for i, c in enumerate(CHANNELS)}
_N_TX = len(TRANSACTION_FEATURES)


@dataclass
class TxColumns:
    """Transactions as columns: times, amounts, and codes into vocabularies (first seen, first code)."""

    ts: np.ndarray  # float64 epoch seconds
    amount: np.ndarray  # float64, major units
    tx_type: np.ndarray  # int8 index into TX_TYPES
    channel: np.ndarray  # int8 index into CHANNELS
    wallet: np.ndarray  # int32 codes into wallets
    counterparty: np.ndarray
    device: np.ndarray  # -1: none
    country: np.ndarray
    wallets: list[str]
    counterparties: list[str]
    devices: list[str]
    countries: list[str]

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, order: np.ndarray) -> TxColumns:
        """The rows in `order` (vocabularies shared)."""
        return TxColumns(self.ts[order], self.amount[order], self.tx_type[order], self.channel[order],
                         self.wallet[order], self.counterparty[order], self.device[order], self.country[order],
                         self.wallets, self.counterparties, self.devices, self.countries)

    @classmethod
    def of(cls, transactions: Iterable[Transaction]) -> TxColumns:
        builder = ColumnsBuilder()
        for tx in transactions:
            builder.add(tx.timestamp.timestamp(), float(tx.amount), tx.type, tx.channel, tx.wallet_id,
                        tx.counterparty_id, tx.device_id, tx.country)
        return builder.build()


class ColumnsBuilder:
    """Appends transactions one at a time (a file streamed row by row) into compact columns."""

    def __init__(self) -> None:
        self._floats = {"ts": array("d"), "amount": array("d")}
        self._codes = {name: array("i") for name in ("tx_type", "channel", "wallet", "counterparty", "device",
                                                     "country")}
        self._vocab: dict[str, dict[str, int]] = {name: {} for name in ("wallet", "counterparty", "device",
                                                                        "country")}

    def __len__(self) -> int:
        return len(self._floats["ts"])

    def _code(self, vocab: str, value: str) -> int:
        codes = self._vocab[vocab]
        found = codes.get(value)
        if found is None:
            found = codes[value] = len(codes)
        return found

    def add(self, ts: float, amount: float, tx_type: str, channel: str, wallet: str, counterparty: str,
            device: str | None, country: str) -> None:
        self._floats["ts"].append(ts)
        self._floats["amount"].append(amount)
        c = self._codes
        c["tx_type"].append(_TYPE_CODE[tx_type])
        c["channel"].append(_CHANNEL_CODE[channel])
        c["wallet"].append(self._code("wallet", wallet))
        c["counterparty"].append(self._code("counterparty", counterparty))
        c["device"].append(self._code("device", device) if device else -1)
        c["country"].append(self._code("country", country))

    def build(self) -> TxColumns:
        f, c, v = self._floats, self._codes, self._vocab
        return TxColumns(
            ts=np.frombuffer(f["ts"], dtype=np.float64).copy(), amount=np.frombuffer(f["amount"], np.float64).copy(),
            tx_type=np.frombuffer(c["tx_type"], np.int32).astype(np.int8),
            channel=np.frombuffer(c["channel"], np.int32).astype(np.int8),
            **{name: np.frombuffer(c[name], np.int32).copy() for name in ("wallet", "counterparty", "device",
                                                                          "country")},
            wallets=list(v["wallet"]), counterparties=list(v["counterparty"]), devices=list(v["device"]),
            countries=list(v["country"]),
        )


def transaction_matrix(cols: TxColumns) -> np.ndarray:
    """(n, len(TRANSACTION_FEATURES)): `wallet.transaction_values` of every row."""
    out = np.empty((len(cols), _N_TX))
    days, rem = np.divmod(cols.ts, DAY)
    out[:, 0] = cols.amount
    out[:, 1] = [math.log1p(a) for a in cols.amount.tolist()]  # numpy's SIMD log1p may differ in the last bit
    out[:, 2] = cols.tx_type == TX_TYPES.index(TxType.TRANSFER)
    out[:, 3] = cols.tx_type == TX_TYPES.index(TxType.WITHDRAWAL)
    out[:, 4] = cols.tx_type == TX_TYPES.index(TxType.TOP_UP)
    out[:, 5] = cols.channel
    out[:, 6] = np.floor_divide(rem, HOUR)
    out[:, 7] = (days.astype(np.int64) + 3) % 7
    out[:, 8] = cols.device >= 0
    return out


def _codes_of(keys: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Codes of derived keys (equal keys, one code) and the key vocabulary."""
    vocab: dict[str, int] = {}
    return np.asarray([vocab.setdefault(k, len(vocab)) for k in keys], dtype=np.int64), list(vocab)


def replay_columns(cols: TxColumns, labels: Iterable[LabelEvent] = ()) -> np.ndarray:
    """(n, len(FEATURE_NAMES)): each row's model input, as `timeline.replay` yields it for the same
    transactions (in this order, which must be time order) and labels."""
    n = len(cols)
    if n and bool(np.any(np.diff(cols.ts) < 0)):
        first = int(np.flatnonzero(np.diff(cols.ts) < 0)[0]) + 1
        raise ValueError(f"transactions must be in time order (row {first} goes back in time)")
    cp_key, cp_keys = _codes_of([counterparty_key(c) for c in cols.counterparties])
    wallet = wallet_columns(WalletInput(
        ts=cols.ts, amount=cols.amount, inflow=cols.tx_type == TX_TYPES.index(TxType.TOP_UP),
        wallet=cols.wallet.astype(np.int64), cp_key=cp_key[cols.counterparty], country=cols.country.astype(np.int64),
        device=cols.device.astype(np.int64), cp_keys=cp_keys, countries=cols.countries, devices=cols.devices,
    ))
    entity_codes, entities = _codes_of(
        [entity_key(Entity.COUNTERPARTY, c) for c in cols.counterparties]
        + [entity_key(Entity.DEVICE, d) for d in cols.devices]
        + [entity_key(Entity.WALLET, w) for w in cols.wallets]
        + [entity_key(Entity.COUNTERPARTY, w) for w in cols.wallets]  # the wallets' inflows
        + [entity_key(Entity.WALLET, c) for c in cols.counterparties])  # the payees' own labels
    n_cp, n_dev, n_w = len(cols.counterparties), len(cols.devices), len(cols.wallets)
    payee_codes = entity_codes[n_cp + n_dev + 2 * n_w:]
    device_entity = np.where(cols.device >= 0, entity_codes[n_cp:n_cp + n_dev][np.maximum(cols.device, 0)]
                             if n_dev else -1, -1)
    counterparty = counterparty_columns(
        CounterpartyInput(ts=cols.ts, amount=cols.amount, counterparty=entity_codes[:n_cp][cols.counterparty],
                          device=device_entity, wallet=entity_codes[n_cp + n_dev:n_cp + n_dev + n_w][cols.wallet],
                          new_counterparty=wallet.new_counterparty, new_device=wallet.new_device,
                          entities=entities, inflow=entity_codes[n_cp + n_dev + n_w:n_cp + n_dev + 2 * n_w][cols.wallet],
                          payee=payee_codes[cols.counterparty]),
        applied_label_increments(labels, float(cols.ts[-1]) if n else -math.inf),
    )
    out = np.hstack([transaction_matrix(cols), wallet.history, counterparty])
    assert out.shape[1] == len(FEATURE_NAMES)
    return out
