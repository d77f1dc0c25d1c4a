"""A feature table (`txguard batch run --features`, Beam locally or on Dataflow) -> a backtest sample.

Reads the Parquet table (a file, a glob or the job's output folder), scores every row with the
model serving would use (`open_scorer`: the same checks as serving) and keeps what the backtest
needs (txguard.rules.backtest): rows, time, labels and when they became known, scenarios, the
transactions' text fields, the scores and the model's thresholds.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from txguard.batch.featurize import TEXT_COLUMNS
from txguard.batch.readers import expand
from txguard.batch.storage import open_binary
from txguard.contract.errors import DataFileError
from txguard.features.wallet import FEATURE_NAMES
from txguard.rules.backtest import BacktestSample
from txguard.scoring.scorer import Scorer


def read_feature_table(pattern: str) -> pa.Table:
    if not pattern.endswith((".parquet", ".pq")) and "*" not in pattern:
        pattern = pattern.rstrip("/") + "/features-*.parquet"
    tables = []
    for path in expand(pattern):
        with open_binary(path, "r") as fh:
            tables.append(pq.read_table(fh))
    if not tables or sum(t.num_rows for t in tables) == 0:
        raise DataFileError(f"feature table {pattern}, no rows there, "
                            f"write one with `txguard batch run --input FILES --output RUN --features`")
    table = pa.concat_tables(tables, promote_options="default")
    missing = [c for c in (*FEATURE_NAMES, "timestamp", "is_fraud", "label_time", "wallet_id", "counterparty_id")
               if c not in table.column_names]
    if missing:
        raise DataFileError(f"feature table {pattern}, it lacks columns {missing[:5]}, "
                            f"it was not written by `txguard batch run --features`")
    micros = table.column("timestamp").cast(pa.int64()).to_numpy()
    return table.take(pa.array(np.argsort(micros, kind="stable")))


def sample_of(table: pa.Table, scorer: Scorer, source: str) -> BacktestSample:
    x = np.column_stack([table.column(name).to_numpy() for name in FEATURE_NAMES]).astype(np.float64)
    texts = {"wallet_id": np.asarray(table.column("wallet_id").to_pylist(), dtype=str),
             "counterparty_id": np.asarray(table.column("counterparty_id").to_pylist(), dtype=str)}
    for name in TEXT_COLUMNS:
        if name in table.column_names and table.column(name).null_count < table.num_rows:
            values = table.column(name).fill_null("").to_pylist()
            texts[name] = np.asarray(values, dtype=str)
    scenario = (np.asarray(table.column("scenario").fill_null("").to_pylist(), dtype=str)
                if "scenario" in table.column_names else None)
    return BacktestSample(
        x=x, ts=table.column("timestamp").cast(pa.int64()).to_numpy().astype(np.float64) / 1e6,
        is_fraud=table.column("is_fraud").to_numpy().astype(np.int8),
        label_time=table.column("label_time").to_numpy().astype(np.float64),
        scores=scorer.runtime.predict(x), review=scorer.thresholds.review, block=scorer.thresholds.block,
        model_version=scorer.version, texts=texts, scenario=scenario, source=source)
