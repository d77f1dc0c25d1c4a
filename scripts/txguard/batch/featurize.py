"""Model input rows of a normalised table: the transaction's own features, its wallet history and
its counterparty's aggregates.

The history and counterparty families are a replay in time order, ties in file order (the order
the single-process replay, `txguard.training.dataset`, sorts into), through the functions the
enrichment and label functions run per message: `history_values` / `apply` on the wallet state,
the counterparty snapshot / `counterparty_values` / `increments_at`, and the label ledger for
each fraud row's `label_time` (a chargeback known then, as `from_file` reads it). That replay is
split by family (`txguard.batch.families`): here it runs in one group (score-file, benchmarks),
in the Beam job in `shards` groups per family (`txguard.batch.pipeline`).

The transaction's own features are computed on columns with numpy; the parity tests compare them
with `transaction_values` and the scoring runtime's `row_of` exactly.
"""

from __future__ import annotations

from math import log1p

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from txguard.batch.rows import epoch_seconds
from txguard.contract.models import Channel, TxType
from txguard.features.wallet import (
    COUNTERPARTY_FEATURES,
    DAY,
    FEATURE_NAMES,
    HISTORY_FEATURES,
    HOUR,
    TRANSACTION_FEATURES,
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


def replay_matrices(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """((n, 23) wallet history, (n, len(COUNTERPARTY_FEATURES)) counterparty) features of every row
    as of just before it (rows in input order), labels applied when they became known: the replay
    split by family (`txguard.batch.families`) run in one group, as the Beam job runs it in many."""
    from txguard.batch.families import replay_one_group

    return replay_one_group(table)


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
    for name in TEXT_COLUMNS:  # what rules test besides the features (txguard rules backtest)
        columns[name] = table.column(name).cast(pa.string()) if name in table.column_names else pa.nulls(
            table.num_rows, pa.string())
    for j, name in enumerate(FEATURE_NAMES):
        columns[name] = pa.array(x[:, j])
    return pa.table(columns)


def sample_table(features: pa.Table, fraction: float, seed: int, hard: np.ndarray | None = None,
                 hard_fraction: float = 1.0) -> pa.Table:
    """The rows of a feature table the training sample keeps, each with its weight
    (`txguard.batch.sampling`; `hard`: the rows that look like fraud, drawn at `hard_fraction`) and the
    time span of every row of `features` (`SPAN_COLUMNS`). The rows are taken from `features` as they
    are: a sample never changes a feature's value."""
    import pyarrow.compute as pc

    from txguard.batch.sampling import SPAN_COLUMNS, WEIGHT_COLUMN, sample_weights

    weights = sample_weights(features.column("wallet_id").to_numpy(zero_copy_only=False), epoch_seconds(features),
                             features.column("is_fraud").to_numpy(), fraction, seed, hard, hard_fraction)
    kept = np.flatnonzero(weights > 0)
    sample = features.take(pa.array(kept)).append_column(WEIGHT_COLUMN, pa.array(weights[kept]))
    span = pc.min_max(features.column("timestamp"))  # every row's, kept or not: the history's span
    for name, edge in zip(SPAN_COLUMNS, (span["min"], span["max"]), strict=True):
        sample = sample.append_column(name, pa.repeat(edge, len(kept)))
    return sample


def resample_table(sample: pa.Table, fraction: float, hard_fraction: float, to_fraction: float,
                   to_hard_fraction: float, seed: int) -> pa.Table:
    """A sample table (`sample_table`, drawn at `fraction` and `hard_fraction` with `seed`) redrawn at
    smaller chances: the rows and weights `sample_table` keeps from the full table at those chances
    (`txguard.batch.sampling.resample_weights`), each row's features and history span unchanged."""
    from txguard.batch.sampling import WEIGHT_COLUMN, resample_weights

    weights = resample_weights(sample.column("wallet_id").to_numpy(zero_copy_only=False), epoch_seconds(sample),
                               sample.column("is_fraud").to_numpy(), sample.column(WEIGHT_COLUMN).to_numpy(),
                               fraction, hard_fraction, to_fraction, to_hard_fraction, seed)
    kept = np.flatnonzero(weights > 0)
    column = sample.schema.get_field_index(WEIGHT_COLUMN)
    return sample.take(pa.array(kept)).set_column(column, WEIGHT_COLUMN, pa.array(weights[kept]))


TEXT_COLUMNS = ("type", "channel", "country", "currency", "device_id")
FEATURE_TABLE_SCHEMA = feature_table(
    pa.table({name: pa.array([], t) for name, t in (
        ("transaction_id", pa.string()), ("wallet_id", pa.string()), ("counterparty_id", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")), ("file_index", pa.int32()), ("line", pa.int64()),
        ("is_fraud", pa.int8()), ("label_time", pa.float64()), ("scenario", pa.string()))}),
    np.empty((0, len(FEATURE_NAMES))),
).schema
SAMPLE_TABLE_SCHEMA = (FEATURE_TABLE_SCHEMA.append(pa.field("weight", pa.float64()))
                       .append(pa.field("history_start", pa.timestamp("us", tz="UTC")))
                       .append(pa.field("history_end", pa.timestamp("us", tz="UTC"))))
