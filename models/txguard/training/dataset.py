"""Training data -> feature matrix, through the very code the serving path runs.

Features are computed by replaying transactions in time order through `shared.features`
(`TxPoint` / `history_values` / `apply` / `transaction_values`), the functions the enrichment
function calls per message, so training and serving cannot disagree (the parity test replays the
online path through a JSON store and compares exactly).

Data comes either from the simulator (streamed, never materialised as a file), from a user's
JSONL / CSV file of Transaction records plus `is_fraud` (and optional `label_time`); every row is
validated with the contract and the first bad row is reported with its line number and field; or
from the feature table a `txguard batch run --features` job wrote (the same replay, already done,
at any scale).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from txguard.contract.errors import DataFileError
from txguard.contract.models import TRANSACTION_ADAPTER, Transaction
from txguard.features.wallet import (
    FEATURE_NAMES,
    TxPoint,
    WalletState,
    apply,
    history_values,
    transaction_values,
)

LABEL_FIELDS = ("is_fraud", "label_time", "scenario")


@dataclass
class Dataset:
    """Feature rows (float64, FEATURE_NAMES order) with labels, times and wallets, in time order."""

    X: np.ndarray
    y: np.ndarray
    ts: np.ndarray
    wallets: np.ndarray
    label_time: np.ndarray  # epoch seconds when the label became known; NaN = at once
    scenarios: list[str] = field(default_factory=list)
    fingerprint: str = ""
    source: str = ""

    def __len__(self) -> int:
        return len(self.y)


def feature_rows(
    records: Iterable[tuple[Transaction, int, float, str]],
) -> Iterator[tuple[tuple[float, ...], Transaction, int, float, str]]:
    """Replay records (already in time order) and yield each one's model input row."""
    states: dict[str, WalletState] = {}
    for tx, label, label_time, scenario in records:
        state = states.get(tx.wallet_id)
        if state is None:
            state = states[tx.wallet_id] = WalletState()
        point = TxPoint.of(tx)
        row = transaction_values(tx.amount, tx.type, tx.channel, point.ts, tx.device_id is not None)
        yield row + history_values(state, point), tx, label, label_time, scenario
        apply(state, point)


def build(records: Iterable[tuple[Transaction, int, float, str]], fingerprint: str, source: str) -> Dataset:
    rows: list[tuple[float, ...]] = []
    y: list[int] = []
    ts: list[float] = []
    wallets: list[str] = []
    label_times: list[float] = []
    scenarios: list[str] = []
    for row, tx, label, label_time, scenario in feature_rows(records):
        rows.append(row)
        y.append(label)
        ts.append(row_ts(tx))
        wallets.append(tx.wallet_id)
        label_times.append(label_time)
        scenarios.append(scenario)
    X = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURE_NAMES))
    return Dataset(
        X=X,
        y=np.asarray(y, dtype=np.int8),
        ts=np.asarray(ts, dtype=np.float64),
        wallets=np.asarray(wallets, dtype=object),
        label_time=np.asarray(label_times, dtype=np.float64),
        scenarios=scenarios,
        fingerprint=fingerprint,
        source=source,
    )


def row_ts(tx: Transaction) -> float:
    return tx.timestamp.timestamp()


# Simulated data --------------------------------------------------------------------------------
def simulated(days: int, wallets: int, seed: int, drift: float = 0.0) -> Dataset:
    from txguard.simulator.core import Simulation

    sim = Simulation(days=days, wallets=wallets, seed=seed, drift=drift)
    params = json.dumps({"generator": "txguard.simulator.core", **sim.params}, sort_keys=True)
    records = ((r.tx, r.is_fraud, math.nan, r.scenario) for r in sim)
    return build(records, hashlib.sha256(params.encode()).hexdigest(), f"simulator {params}")


# User files ----------------------------------------------------------------------------------------
def _bad(path: Path, line: int, fieldname: str, message: str) -> DataFileError:
    return DataFileError(f"{path}: line {line}: field '{fieldname}': {message}")


def _label(path: Path, line: int, raw: dict[str, Any]) -> tuple[int, float, str]:
    value = raw.pop("is_fraud", None)
    if isinstance(value, str):
        value = value.strip().lower()
        value = {"0": 0, "1": 1, "true": 1, "false": 0}.get(value, value)
    if isinstance(value, bool):
        value = int(value)
    if value not in (0, 1) or isinstance(value, float) and not value.is_integer():
        raise _bad(path, line, "is_fraud", f"must be 0 or 1, got {value!r}")
    label_time = raw.pop("label_time", None)
    lt = math.nan
    if label_time not in (None, ""):
        try:
            parsed = datetime.fromisoformat(str(label_time).replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                raise ValueError("no timezone")
            lt = parsed.timestamp()
        except ValueError as exc:
            raise _bad(path, line, "label_time", f"not a timezone-aware ISO 8601 time ({exc})") from None
    scenario = str(raw.pop("scenario", "") or "")
    return int(value), lt, scenario


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            for raw in reader:
                row: dict[str, Any] = {k: v for k, v in raw.items() if k is not None}
                if None in raw:
                    raise _bad(path, reader.line_num, "(row)", "more values than header columns")
                if row.get("device_id") == "":
                    row["device_id"] = None
                yield reader.line_num, row
        return
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _bad(path, line_no, "(row)", f"not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise _bad(path, line_no, "(row)", "not a JSON object")
            yield line_no, row


def from_file(path: str | Path) -> Dataset:
    """Validate every row with the contract; raise DataFileError naming the first bad row."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"training data file {path} not found")
    records: list[tuple[Transaction, int, float, str]] = []
    for line_no, raw in _rows(path):
        label, label_time, scenario = _label(path, line_no, raw)
        try:
            tx = TRANSACTION_ADAPTER.validate_python(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "(row)"
            raise _bad(path, line_no, where, err["msg"]) from None
        records.append((tx, label, label_time, scenario))
    if not records:
        raise DataFileError(f"training data file {path} has no rows")
    records.sort(key=lambda r: r[0].timestamp)  # stable: file order breaks ties
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return build(records, digest, str(path))


# Feature tables (txguard batch run --features) -----------------------------------------------------
def from_feature_table(pattern: str) -> Dataset:
    """The Parquet feature table of a batch job (a file, a glob, or the job's output folder)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from txguard.batch.readers import expand
    from txguard.batch.storage import open_binary

    if not pattern.endswith((".parquet", ".pq")) and "*" not in pattern:
        pattern = pattern.rstrip("/") + "/features-*.parquet"
    tables = []
    for path in expand(pattern):
        with open_binary(path, "r") as fh:
            tables.append(pq.read_table(fh))
    table = pa.concat_tables(tables) if tables else None
    if table is None or table.num_rows == 0:
        raise DataFileError(f"feature table {pattern} has no rows")
    missing = [c for c in (*FEATURE_NAMES, "timestamp", "wallet_id", "is_fraud", "label_time") if c not in table.column_names]
    if missing:
        raise DataFileError(f"feature table {pattern} lacks columns {missing[:5]}: not written by txguard batch run")
    micros = table.column("timestamp").cast(pa.int64()).to_numpy()
    order = np.lexsort((table.column("line").to_numpy(), table.column("file_index").to_numpy(), micros))
    table = table.take(pa.array(order))
    y = table.column("is_fraud").to_numpy()
    unknown = int((y < 0).sum())
    if unknown:
        raise DataFileError(f"feature table {pattern}: {unknown} rows have no is_fraud label (the input had none)")
    X = np.column_stack([table.column(name).to_numpy() for name in FEATURE_NAMES]).astype(np.float64)
    digest = hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest()
    return Dataset(
        X=X,
        y=y.astype(np.int8),
        ts=micros[order].astype(np.float64) / 1e6,
        wallets=np.asarray(table.column("wallet_id").to_pylist(), dtype=object),
        label_time=table.column("label_time").to_numpy().astype(np.float64),
        scenarios=table.column("scenario").to_pylist(),
        fingerprint=digest,
        source=f"feature table {pattern}",
    )
