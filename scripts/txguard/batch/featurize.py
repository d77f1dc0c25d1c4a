"""Model input rows of a normalised table: the transaction's own features, its wallet history and
its counterparty's aggregates.

The history and counterparty families are one replay in time order, ties in file order (the order
the single-process replay, `txguard.training.dataset`, sorts into), through the functions the
enrichment and label functions run per message: `history_values` / `apply` on the wallet state,
the counterparty snapshot / `counterparty_values` / `increments_at`, and the label ledger for
each fraud row's `label_time` (a chargeback known then, as `from_file` reads it). A wallet's
history depends on its own transactions only; a counterparty's aggregates on every wallet paying
it, so this replay needs every row of the input (`txguard.batch.pipeline`).

The transaction's own features are computed on columns with numpy; the parity tests compare them
with `transaction_values` and the scoring runtime's `row_of` exactly.
"""

from __future__ import annotations

from math import log1p

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from txguard.batch.rows import epoch_seconds, time_order
from txguard.contract.models import Channel, LabelEvent, LabelKind, TxType
from txguard.features.counterparty import (
    WINDOW_DAYS,
    CounterpartyBook,
    EntityKeys,
    day_of,
    increments_at,
    marks,
)
from txguard.features.counterparty_windows import counterparty_values
from txguard.features.labels import apply_label
from txguard.features.wallet import (
    COUNTERPARTY_FEATURES,
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
N_COUNTERPARTY = len(COUNTERPARTY_FEATURES)
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


def _label_events(table: pa.Table, ts: list[float]) -> list[LabelEvent]:
    """Each fraud row's `label_time` as the chargeback it stands for (`dataset.row_label_event`)."""
    from datetime import UTC, datetime

    from txguard.training.dataset import row_label_id

    fraud = table.column("is_fraud").to_numpy(zero_copy_only=False)
    known = table.column("label_time").to_numpy(zero_copy_only=False)
    rows = np.flatnonzero((fraud == 1) & np.isfinite(known))
    if not len(rows):
        return []
    tx_id, wallet, cp = (table.column(c).to_pylist() for c in ("transaction_id", "wallet_id", "counterparty_id"))
    device = table.column("device_id").to_pylist()
    out = []
    for i in rows.tolist():
        if known[i] < ts[i]:  # from_file refuses such a row; here it stands for no label
            continue
        out.append(LabelEvent.model_construct(
            label_id=row_label_id(tx_id[i]), transaction_id=tx_id[i], wallet_id=wallet[i], counterparty_id=cp[i],
            device_id=device[i], transaction_time=datetime.fromtimestamp(ts[i], UTC),
            known_at=datetime.fromtimestamp(float(known[i]), UTC), kind=LabelKind.CHARGEBACK, is_fraud=True,
            reverses=None, source=None, note=None))
    out.sort(key=lambda lb: (lb.known_at, lb.label_id))
    return out


def replay_matrices(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """((n, 23) wallet history, (n, len(COUNTERPARTY_FEATURES)) counterparty) features of every row
    as of just before it (rows in input order), labels applied when they became known."""
    n = table.num_rows
    history = np.empty((n, N_HISTORY), dtype=np.float64)
    counterparty = np.empty((n, N_COUNTERPARTY), dtype=np.float64)
    if n == 0:
        return history, counterparty
    ts = epoch_seconds(table).tolist()
    amount = table.column("amount").to_pylist()
    wallet = table.column("wallet_id").to_pylist()
    cp = table.column("counterparty_id").to_pylist()
    country = table.column("country").to_pylist()
    device_ids = table.column("device_id").to_pylist()
    inflow = pc.equal(table.column("type"), _TOP_UP).cast(pa.int8()).to_pylist()
    labels = _label_events(table, ts)
    next_label = 0
    cp_keys: dict[str, str] = {}
    states: dict[str, WalletState] = {}
    book = CounterpartyBook()
    pruned_day = None
    h_rows: list[tuple[float, ...]] = [()] * n
    c_rows: list[tuple[float, ...]] = [()] * n
    for i in time_order(table).tolist():
        t = ts[i]
        while next_label < len(labels) and labels[next_label].known_at.timestamp() <= t:
            apply_label(book, labels[next_label])
            next_label += 1
        day = day_of(t)
        if day != pruned_day:
            book.prune(day - WINDOW_DAYS - 1)
            pruned_day = day
        key = cp_keys.get(cp[i])
        if key is None:
            key = cp_keys[cp[i]] = counterparty_key(cp[i])
        state = states.get(wallet[i])
        if state is None:
            state = states[wallet[i]] = WalletState()
        point = TxPoint(t, amount[i], key, country[i], device_ids[i] or "", inflow[i])
        keys = EntityKeys.of(wallet[i], cp[i], device_ids[i])
        h_rows[i] = history_values(state, point)
        c_rows[i] = counterparty_values(book.snapshot_at(keys, t), amount[i], t)
        new_cp, new_device = marks(state, point)
        apply(state, point)
        book.add(increments_at(keys, t, amount[i], new_cp, new_device))
    history[:] = h_rows
    counterparty[:] = c_rows
    return history, counterparty


def feature_matrix(table: pa.Table) -> np.ndarray:
    """(n, len(FEATURE_NAMES)): the model's input rows, computed by replay (raw transactions)."""
    return np.hstack([transaction_matrix(table), *replay_matrices(table)])


def given_features(table: pa.Table) -> np.ndarray:
    """(n, len(FEATURE_NAMES)) of EnrichedTransactions: their own features, not a replay."""
    n = table.num_rows
    history = np.column_stack([table.column(name).to_numpy() for name in HISTORY_FEATURES]).reshape(n, N_HISTORY)
    cp = np.column_stack([table.column(name).to_numpy() for name in COUNTERPARTY_FEATURES]).reshape(n, N_COUNTERPARTY)
    return np.hstack([transaction_matrix(table), history, cp])


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
