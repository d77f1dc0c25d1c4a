"""Training data -> feature matrix, through the very code the serving path runs.

Features are computed by replaying transactions at their time and label events at the time they
became known. The reference replay is `txguard.features.timeline.replay` (the functions the
enrichment and label functions call per message; `feature_rows` here); datasets are built with
its columnar twin, `txguard.features.timeline_columns.replay_columns`, which yields the same rows
bit for bit (tests/unit/features/test_columns_parity.py) at tens of thousands of rows a second.
The parity tests replay the online path through the real stores and compare exactly.

Data comes either from the simulator (streamed, never materialised as a file), from a user's
JSONL / CSV file of Transaction records plus `is_fraud` (and optional `label_time`, `scenario`),
with an optional file of LabelEvents (`--labels`): a fraud row with a `label_time` is a label event
known at that time (a chargeback), `label_time: never` a fraud nobody reported (graded as fraud,
never known to the features nor to training: `txguard.training.split`); every row and label is validated with the contract and the
first bad one is reported with its line number and field. A file is streamed: each row is
validated, then kept as a few columns (`TxColumns`), never as a `Transaction`. Or data comes from
the feature table a `txguard batch run --features` job wrote (the same replay, already done, at
any scale).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import TypeAdapter, ValidationError

from txguard.contract.errors import DataFileError
from txguard.contract.models import TRANSACTION_ADAPTER, LabelEvent, Transaction
from txguard.features.timeline import NEVER, replay, row_label_event
from txguard.features.timeline_columns import ColumnsBuilder, TxColumns, replay_columns
from txguard.features.wallet import FEATURE_NAMES

LABEL_FIELDS = ("is_fraud", "label_time", "scenario")


@dataclass
class Dataset:
    """Feature rows (FEATURE_NAMES order; float64 from a replay, float32 from a feature table) with
    labels, times and wallets, in time order; with weights when the rows are a training sample."""

    X: np.ndarray
    y: np.ndarray
    ts: np.ndarray
    wallets: np.ndarray
    label_time: np.ndarray  # epoch seconds when the label became known; NaN = at once, inf = never
    scenarios: list[str] = field(default_factory=list)
    fingerprint: str = ""
    source: str = ""
    # How many rows of the full history each row stands for (`txguard.batch.sampling`); None: all 1.
    weight: np.ndarray | None = None
    # A sample's: the first and last transaction times (epoch s) of the full history it was drawn
    # from, which the time split reads instead of the sample's own; None: the rows' own span.
    span: tuple[float, float] | None = None

    def __len__(self) -> int:
        return len(self.y)


Record = tuple[Transaction, int, float, str]  # transaction, is_fraud, label_time (NaN: at once, inf: never), scenario


def feature_rows(
    records: Iterable[Record], labels: Iterable[LabelEvent] = (),
) -> Iterator[tuple[tuple[float, ...], Transaction, int, float, str]]:
    """Replay records (already in time order) and labels, yield each record's model input row."""
    for (tx, label, label_time, scenario), row in replay(records, labels, tx_of=lambda r: r[0]):
        yield row, tx, label, label_time, scenario


def build(records: Iterable[Record], fingerprint: str, source: str, labels: Iterable[LabelEvent] = ()) -> Dataset:
    """The dataset of records already in time order (the simulator's), through the columnar replay."""
    builder = ColumnsBuilder()
    y: list[int] = []
    label_times: list[float] = []
    scenarios: list[str] = []
    for tx, label, label_time, scenario in records:
        builder.add(tx.timestamp.timestamp(), float(tx.amount), tx.type, tx.channel, tx.wallet_id,
                    tx.counterparty_id, tx.device_id, tx.country)
        y.append(label)
        label_times.append(label_time)
        scenarios.append(scenario)
    return _dataset(builder.build(), np.asarray(y, dtype=np.int8), np.asarray(label_times, dtype=np.float64),
                    scenarios, fingerprint, source, labels)


def _dataset(cols: TxColumns, y: np.ndarray, label_time: np.ndarray, scenarios: list[str], fingerprint: str,
             source: str, labels: Iterable[LabelEvent]) -> Dataset:
    return Dataset(
        X=replay_columns(cols, labels),
        y=y,
        ts=cols.ts,
        wallets=np.asarray(cols.wallets, dtype=object)[cols.wallet] if len(cols) else np.zeros(0, dtype=object),
        label_time=label_time,
        scenarios=scenarios,
        fingerprint=fingerprint,
        source=source,
    )


# Simulated data --------------------------------------------------------------------------------
def simulated(days: int, wallets: int, seed: int, drift: float = 0.0) -> Dataset:
    """The simulator's transactions and its delayed label events; a fraud's training label is known
    when its first label event is (`label_time`), like the labels the model is served with."""
    from txguard.simulator.core import Simulation

    sim = Simulation(days=days, wallets=wallets, seed=seed, drift=drift)
    params = json.dumps({"generator": "txguard.simulator.core", **sim.params}, sort_keys=True)
    labels = list(sim.label_events())
    known = first_known(labels)
    records = ((r.tx, r.is_fraud, known.get(r.tx.transaction_id, math.nan) if r.is_fraud else math.nan, r.scenario)
               for r in sim)
    return build(records, hashlib.sha256(params.encode()).hexdigest(), f"simulator {params}", labels)


def first_known(labels: Iterable[LabelEvent]) -> dict[str, float]:
    """transaction id -> when a fraud label for it first became known."""
    out: dict[str, float] = {}
    for lb in labels:
        if lb.is_fraud:
            t = lb.known_at.timestamp()
            if t < out.get(lb.transaction_id, math.inf):
                out[lb.transaction_id] = t
    return out


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
    if isinstance(label_time, str) and label_time.strip().lower() == NEVER:
        lt = math.inf
    elif label_time not in (None, ""):
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


def _validate(adapter: TypeAdapter[Any], raw: dict[str, Any], path: Path, line_no: int) -> Any:
    try:
        return adapter.validate_python(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(row)"
        raise _bad(path, line_no, where, err["msg"]) from None


def read_labels(path: str | Path) -> list[LabelEvent]:
    """LabelEvents from a JSONL / CSV file, each validated; the first bad row is named."""
    from txguard.publisher.label_sources import parse_labels

    if not Path(path).is_file():
        raise DataFileError(f"labels file {path} not found")
    try:
        return parse_labels(path)
    except ValueError as exc:
        raise DataFileError(str(exc)) from None


def _file_digest(*paths: str | Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def from_file(path: str | Path, labels_path: str | Path | None = None) -> Dataset:
    """Validate every row with the contract; raise DataFileError naming the first bad row.

    Label events for the features: each fraud row with a `label_time` (not `never`), plus the
    `labels_path` file. A fraud row without `label_time` takes it from its first fraud label event,
    if any, else it counts as known at once.
    Rows are streamed into columns; the dataset is in time order, ties in file order.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"training data file {path} not found")
    builder = ColumnsBuilder()
    y = array("b")
    label_times = array("d")
    scenario_codes = array("i")
    scenario_names: dict[str, int] = {}
    labels: list[LabelEvent] = []
    unlabelled_frauds: dict[int, str] = {}  # row -> transaction id: fraud rows without label_time
    for line_no, raw in _rows(path):
        label, label_time, scenario = _label(path, line_no, raw)
        tx = _validate(TRANSACTION_ADAPTER, raw, path, line_no)
        if label:
            if math.isnan(label_time):
                unlabelled_frauds[len(builder)] = tx.transaction_id
            elif not math.isinf(label_time):  # `never`: no label event, ever
                if label_time < tx.timestamp.timestamp():
                    raise _bad(path, line_no, "label_time", "is before the transaction's timestamp")
                labels.append(row_label_event(tx, label_time))
        builder.add(tx.timestamp.timestamp(), float(tx.amount), tx.type, tx.channel, tx.wallet_id,
                    tx.counterparty_id, tx.device_id, tx.country)
        y.append(label)
        label_times.append(label_time)
        scenario_codes.append(scenario_names.setdefault(scenario, len(scenario_names)))
    if not len(builder):
        raise DataFileError(f"training data file {path} has no rows")
    label_time = np.frombuffer(label_times, dtype=np.float64).copy()
    if labels_path is not None:
        extra = read_labels(labels_path)
        known = first_known(extra)
        for row, transaction_id in unlabelled_frauds.items():
            label_time[row] = known.get(transaction_id, math.nan)
        labels += extra
    cols = builder.build()
    order = np.argsort(cols.ts, kind="stable")  # time order, file order breaks ties
    names = np.asarray(list(scenario_names), dtype=object)
    scenarios = names[np.frombuffer(scenario_codes, dtype=np.int32)[order]].tolist()
    digest = _file_digest(path, *([labels_path] if labels_path is not None else []))
    source = str(path) + (f" + labels {labels_path}" if labels_path else "")
    return _dataset(cols.take(order), np.frombuffer(y, dtype=np.int8)[order], label_time[order], scenarios, digest,
                    source, labels)


# Feature tables (txguard batch run --features / --sample) ----------------------------------------
_TABLE_COLUMNS = ("timestamp", "file_index", "line", "wallet_id", "is_fraud", "label_time", "scenario")


def table_files(pattern: str) -> list[str]:
    """The Parquet files of a feature table: a file, a glob, or a job's output folder (its sample when
    the job wrote one, else its full table: name `features-*.parquet` to train on the full one)."""
    from txguard.batch.readers import expand

    if pattern.endswith((".parquet", ".pq")) or "*" in pattern:
        return expand(pattern)
    folder = pattern.rstrip("/")
    for name in ("sample-*.parquet", "features-*.parquet"):
        try:
            files = expand(f"{folder}/{name}")
        except DataFileError:
            files = []
        if files:
            return files
    raise DataFileError(f"feature table {pattern}: no sample-*.parquet nor features-*.parquet there")


def from_feature_table(pattern: str) -> Dataset:
    """The Parquet feature table (or training sample) of a batch job, read a row group at a time.

    Memory: the model's matrix is allocated once, in float32 (what ONNX serves and the trees are
    fitted on), and each row group's feature columns are written straight into their rows in time
    order; no float64 matrix, no second copy. Beside it, per row: time, label time, weight (8 B
    each), label, and a wallet code (the wallet ids are kept once each). So the bound is
    ~(4 x features + 40) bytes a row of the table read: a sample's rows, whatever the size of the
    history it was drawn from.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from txguard.batch.sampling import SPAN_COLUMNS, WEIGHT_COLUMN
    from txguard.batch.storage import open_binary

    files = table_files(pattern)
    metas = []
    for path in files:
        with open_binary(path, "r") as fh:
            metas.append(pq.ParquetFile(fh).schema_arrow)
    names = set(metas[0].names) if metas else set()
    missing = [c for c in (*FEATURE_NAMES, *_TABLE_COLUMNS) if c not in names]
    if not files or missing:
        raise DataFileError(f"feature table {pattern} lacks columns {missing[:5]}: not written by txguard batch run"
                            if files else f"feature table {pattern} has no files")
    weighted = WEIGHT_COLUMN in names
    spanned = all(c in names for c in SPAN_COLUMNS)  # a sample written since it records its history's span
    # Pass 1: the small columns, to learn the row count and the time order (the span: its edges only).
    small = []
    starts: list[float] = []
    ends: list[float] = []
    for path in files:
        with open_binary(path, "r") as fh:
            part = pq.read_table(fh, columns=[*_TABLE_COLUMNS, *([WEIGHT_COLUMN] if weighted else []),
                                              *(SPAN_COLUMNS if spanned else [])])
        if spanned and part.num_rows:
            starts.append(pc.min(part.column(SPAN_COLUMNS[0])).value / 1e6)
            ends.append(pc.max(part.column(SPAN_COLUMNS[1])).value / 1e6)
        small.append(part.drop_columns(list(SPAN_COLUMNS)) if spanned else part)
    table = pa.concat_tables(small) if small else None
    if table is None or table.num_rows == 0:
        raise DataFileError(f"feature table {pattern} has no rows")
    micros = table.column("timestamp").cast(pa.int64()).to_numpy()
    order = np.lexsort((table.column("line").to_numpy(), table.column("file_index").to_numpy(), micros))
    y = table.column("is_fraud").to_numpy()[order]
    unknown = int((y < 0).sum())
    if unknown:
        raise DataFileError(f"feature table {pattern}: {unknown} rows have no is_fraud label (the input had none)")
    position = np.empty(len(order), dtype=np.int64)  # where each row of the files goes in time order
    position[order] = np.arange(len(order))
    # Pass 2: the feature columns, a row group at a time, into their rows of the one float32 matrix.
    X = np.empty((len(order), len(FEATURE_NAMES)), dtype=np.float32)
    digest = hashlib.sha256()
    offset = 0
    for path in files:
        with open_binary(path, "r") as fh:
            reader = pq.ParquetFile(fh)
            for group in range(reader.num_row_groups):
                part = reader.read_row_group(group, columns=list(FEATURE_NAMES))
                rows = position[offset:offset + part.num_rows]
                block = np.empty((part.num_rows, len(FEATURE_NAMES)), dtype=np.float32)
                for j, name in enumerate(FEATURE_NAMES):
                    block[:, j] = part.column(name).to_numpy()
                X[rows] = block
                digest.update(block.tobytes())
                offset += part.num_rows
    wallet_ids = pc.dictionary_encode(table.column("wallet_id").combine_chunks())
    wallets = np.asarray(wallet_ids.dictionary.to_pylist(), dtype=object)[wallet_ids.indices.to_numpy()[order]]
    weight = table.column(WEIGHT_COLUMN).to_numpy()[order].astype(np.float64) if weighted else None
    digest.update(y.tobytes())
    return Dataset(
        X=X,
        y=y.astype(np.int8),
        ts=micros[order].astype(np.float64) / 1e6,
        wallets=wallets,
        label_time=table.column("label_time").to_numpy()[order].astype(np.float64),
        scenarios=np.asarray(table.column("scenario").to_pylist(), dtype=object)[order].tolist(),
        fingerprint=digest.hexdigest(),
        source=f"{'training sample' if weighted else 'feature table'} {pattern}",
        weight=weight,
        span=(min(starts), max(ends)) if starts else None,
    )
