"""The normalised table every batch stage passes on: validated rows as Arrow columns.

One schema whatever the input format (JSONL, CSV, Parquet) and whichever path validated the rows
(the vectorised checks of `txguard.batch.columns` or the per-row contract path): the Transaction
fields, the timestamp as microseconds since the epoch (UTC), where the row came from (file index
and line, which also break timestamp ties in file order), the optional labels of a training file,
and for EnrichedTransactions the history and counterparty features as flat columns.

An Arrow table pickles cheaply (Beam moves it between workers as one element), concatenates
without copying row by row, and writes to Parquet as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from txguard.contract.models import Transaction
from txguard.features.wallet import COUNTERPARTY_FEATURES, HISTORY_FEATURES

TX_FIELDS: tuple[str, ...] = tuple(Transaction.model_fields)
LABEL_FIELDS: tuple[str, ...] = ("is_fraud", "label_time", "scenario")
UNKNOWN_LABEL = -1  # is_fraud of a row whose file carries no labels
TIMESTAMP = pa.timestamp("us", tz="UTC")

TX_SCHEMA = pa.schema([
    ("transaction_id", pa.string()),
    ("wallet_id", pa.string()),
    ("counterparty_id", pa.string()),
    ("amount", pa.float64()),
    ("currency", pa.string()),
    ("type", pa.string()),
    ("channel", pa.string()),
    ("country", pa.string()),
    ("device_id", pa.string()),
    ("timestamp", TIMESTAMP),
    ("file_index", pa.int32()),
    ("line", pa.int64()),
    ("is_fraud", pa.int8()),
    ("label_time", pa.float64()),  # epoch seconds the label became known; NaN = at once
    ("scenario", pa.string()),
])
FEATURE_COLUMNS = pa.schema([(name, pa.float64()) for name in HISTORY_FEATURES])
COUNTERPARTY_COLUMNS = pa.schema([(name, pa.float64()) for name in COUNTERPARTY_FEATURES])
ENRICHED_SCHEMA = pa.schema(list(TX_SCHEMA) + list(FEATURE_COLUMNS) + list(COUNTERPARTY_COLUMNS))
# The nested objects of an EnrichedTransaction and their flat column names (bare or prefixed).
NESTED_FEATURES: dict[str, tuple[str, ...]] = {"features": HISTORY_FEATURES, "counterparty": COUNTERPARTY_FEATURES}


def schema_of(kind: str) -> pa.Schema:
    return ENRICHED_SCHEMA if kind == "enriched" else TX_SCHEMA


@dataclass(frozen=True)
class RowError:
    """One bad input row: where it is, the contract's field and message, and the row itself."""

    source: str
    line: int
    field: str
    message: str
    raw: str

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "line": self.line, "field": self.field, "message": self.message,
                "raw": self.raw}

    def describe(self) -> str:
        return f"{self.source}: line {self.line}: field '{self.field}': {self.message}"


def empty(kind: str) -> pa.Table:
    return schema_of(kind).empty_table()


def concat(tables: Sequence[pa.Table], kind: str) -> pa.Table:
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return empty(kind)
    return pa.concat_tables(tables).combine_chunks()


def epoch_seconds(table: pa.Table) -> np.ndarray:
    """Timestamps as float seconds, equal to `datetime.timestamp()` of the validated model.

    `datetime.timestamp()` divides whole microseconds by 10**6 with correct rounding; an int64
    below 2**53 converts to float64 exactly and IEEE division rounds correctly too: same float.
    """
    micros = table.column("timestamp").cast(pa.int64()).to_numpy()
    return micros.astype(np.float64) / 1e6


def time_order(table: pa.Table) -> np.ndarray:
    """Row indices in replay order: timestamp, then file order (the single-process replay's stable sort)."""
    micros = table.column("timestamp").cast(pa.int64()).to_numpy()
    return np.lexsort((table.column("line").to_numpy(), table.column("file_index").to_numpy(), micros))
