"""Model input rows of a normalised table: the transaction's own features and its wallet history.

The history is the replay of `txguard.features.wallet` (`TxPoint`, `history_values`, `apply`: the
functions the enrichment function runs per message), per wallet in time order, ties in file
order: the same order the single-process replay (`txguard.training.dataset`) sorts into. A
wallet's features depend on its own transactions only, so replaying any set of whole wallets (one
Beam shard) gives each transaction the same values as replaying the whole file.

The transaction's own features are computed on columns with numpy; the parity tests compare them
with `transaction_values` and the scoring runtime's `row_of` exactly.

Counterparty features (delayed labels) plug in as a second family keyed by counterparty; see
`txguard.batch.pipeline` for the seam.
"""

from __future__ import annotations

from math import log1p

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from txguard.batch.rows import epoch_seconds, time_order
from txguard.contract.models import Channel, TxType
from txguard.features.wallet import (
    DAY,
    FEATURE_NAMES,
    HISTORY_FEATURES,
    HOUR,
    TRANSACTION_FEATURES,
    TxPoint,
    WalletState,
    apply,
    counterparty_key,
    history_values,
)

N_TX = len(TRANSACTION_FEATURES)
N_HISTORY = len(HISTORY_FEATURES)
_CHANNELS = pa.array([c.value for c in Channel])  # index = the channel code of `features.wallet`
_TOP_UP = TxType.TOP_UP.value


def transaction_matrix(table: pa.Table) -> np.ndarray:
    """(n, 9) features of the transactions themselves, in TRANSACTION_FEATURES order."""
    ts = epoch_seconds(table)
    amount = table.column("amount").to_numpy()
    kind = table.column("type")
    days, rem = np.divmod(ts, DAY)  # numpy's float divmod follows Python's, as `transaction_values` uses
    out = np.empty((table.num_rows, N_TX), dtype=np.float64)
    out[:, 0] = amount
    out[:, 1] = [log1p(a) for a in amount.tolist()]  # numpy's SIMD log1p differs from libm's in the last bit
    out[:, 2] = pc.equal(kind, TxType.TRANSFER.value).to_numpy(zero_copy_only=False)
    out[:, 3] = pc.equal(kind, TxType.WITHDRAWAL.value).to_numpy(zero_copy_only=False)
    out[:, 4] = pc.equal(kind, _TOP_UP).to_numpy(zero_copy_only=False)
    out[:, 5] = pc.index_in(table.column("channel"), _CHANNELS).to_numpy(zero_copy_only=False)
    out[:, 6] = np.floor_divide(rem, HOUR)
    out[:, 7] = (days.astype(np.int64) + 3) % 7
    out[:, 8] = pc.is_valid(table.column("device_id")).to_numpy(zero_copy_only=False)
    return out


def history_matrix(table: pa.Table) -> np.ndarray:
    """(n, 23) wallet history features of every row, as of just before it (rows in input order)."""
    n = table.num_rows
    out = np.empty((n, N_HISTORY), dtype=np.float64)
    if n == 0:
        return out
    ts = epoch_seconds(table).tolist()
    amount = table.column("amount").to_pylist()
    wallet = table.column("wallet_id").to_pylist()
    cp = table.column("counterparty_id").to_pylist()
    country = table.column("country").to_pylist()
    device = table.column("device_id").fill_null("").to_pylist()
    inflow = pc.equal(table.column("type"), _TOP_UP).cast(pa.int8()).to_pylist()
    keys: dict[str, str] = {}
    states: dict[str, WalletState] = {}
    rows: list[tuple[float, ...]] = [()] * n
    for i in time_order(table).tolist():
        key = keys.get(cp[i])
        if key is None:
            key = keys[cp[i]] = counterparty_key(cp[i])
        state = states.get(wallet[i])
        if state is None:
            state = states[wallet[i]] = WalletState()
        point = TxPoint(ts[i], amount[i], key, country[i], device[i], inflow[i])
        rows[i] = history_values(state, point)
        apply(state, point)
    out[:] = rows
    return out


def feature_matrix(table: pa.Table) -> np.ndarray:
    """(n, len(FEATURE_NAMES)): the model's input rows, computed by replay (raw transactions)."""
    return np.hstack([transaction_matrix(table), history_matrix(table)])


def given_features(table: pa.Table) -> np.ndarray:
    """(n, len(FEATURE_NAMES)) of EnrichedTransactions: their own history features, not a replay."""
    history = np.column_stack([table.column(name).to_numpy() for name in HISTORY_FEATURES])
    return np.hstack([transaction_matrix(table), history.reshape(table.num_rows, N_HISTORY)])


def feature_table(table: pa.Table, x: np.ndarray) -> pa.Table:
    """The training feature table: ids, time, labels and one float64 column per model feature."""
    columns = {
        "transaction_id": table.column("transaction_id"),
        "wallet_id": table.column("wallet_id"),
        "counterparty_id": table.column("counterparty_id"),
        "timestamp": table.column("timestamp"),
        "file_index": table.column("file_index"),
        "line": table.column("line"),
        "is_fraud": table.column("is_fraud"),
        "label_time": table.column("label_time"),
        "scenario": table.column("scenario"),
    }
    for j, name in enumerate(FEATURE_NAMES):
        columns[name] = pa.array(x[:, j])
    return pa.table(columns)


FEATURE_TABLE_SCHEMA = feature_table(
    pa.table({name: pa.array([], t) for name, t in (
        ("transaction_id", pa.string()), ("wallet_id", pa.string()), ("counterparty_id", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")), ("file_index", pa.int32()), ("line", pa.int64()),
        ("is_fraud", pa.int8()), ("label_time", pa.float64()), ("scenario", pa.string()))}),
    np.empty((0, len(FEATURE_NAMES))),
).schema
