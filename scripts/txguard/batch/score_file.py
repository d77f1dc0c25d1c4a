"""Score a file of EnrichedTransactions (JSONL or CSV, local or gs://) into a JSONL of decisions.

The vectorised path in chunks: a chunk of JSONL lines is validated in one pydantic call (the
lines joined into a JSON array, parsed and validated in Rust), turned into one feature matrix
and scored by one onnxruntime call. A bad row stops the run with an error naming its line and
field (DataFileError), before anything of its chunk is written.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pydantic import TypeAdapter, ValidationError

from txguard.contract.errors import DataFileError
from txguard.contract.models import (
    ENRICHED_ADAPTER,
    CounterpartyFeatures,
    EnrichedTransaction,
    HistoryFeatures,
)
from txguard.scoring.scorer import Scorer
from txguard.scoring.vectorize import matrix_of

CHUNK = 5000
LIST_ADAPTER: TypeAdapter[list[EnrichedTransaction]] = TypeAdapter(list[EnrichedTransaction])
_FEATURES = tuple(HistoryFeatures.model_fields)
_COUNTERPARTY = tuple(CounterpartyFeatures.model_fields)


@dataclass
class FileReport:
    transactions: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's CPU time: fairer than wall time on a shared machine
    stages: dict[str, float] = field(default_factory=lambda: {"read_validate": 0.0, "vectorize": 0.0,
                                                                 "score": 0.0, "write": 0.0})
    decisions: dict[str, int] = field(default_factory=dict)

    @property
    def tx_per_s(self) -> float:
        return self.transactions / self.seconds if self.seconds else 0.0

    @property
    def tx_per_cpu_s(self) -> float:
        return self.transactions / self.cpu_seconds if self.cpu_seconds else 0.0


@contextmanager
def open_binary(path: str, mode: str) -> Iterator[IO[bytes]]:
    """A local file or a gs:// object (google-cloud-storage, imported only then) as a binary stream."""
    if path.startswith("gs://"):
        from google.cloud import storage  # CLI only, never the serving path

        from txguard.registry.store import split_gs

        bucket, name = split_gs(path)
        with storage.Client().bucket(bucket).blob(name).open(mode + "b") as fh:
            yield fh
    else:
        if "w" in mode:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, mode + "b") as fh:
            yield fh


def _bad(path: str, line: int, exc: ValidationError) -> DataFileError:
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(row)"
    return DataFileError(f"{path}: line {line}: field '{loc}': {err['msg']}")


def _first_bad_line(path: str, lines: list[tuple[int, bytes]]) -> DataFileError:
    for number, raw in lines:
        try:
            ENRICHED_ADAPTER.validate_json(raw)
        except ValidationError as exc:
            return _bad(path, number, exc)
    return DataFileError(f"{path}: invalid data near line {lines[0][0]}")


def jsonl_chunks(path: str, fh: IO[bytes], chunk: int) -> Iterator[tuple[list[EnrichedTransaction], int]]:
    """Validated transactions, `chunk` at a time, with the bytes read so far."""
    pending: list[tuple[int, bytes]] = []
    read = 0

    def flush() -> list[EnrichedTransaction]:
        try:
            return LIST_ADAPTER.validate_json(b"[" + b",".join(raw for _, raw in pending) + b"]")
        except ValidationError:
            raise _first_bad_line(path, pending) from None

    for number, raw in enumerate(fh, start=1):
        read += len(raw)
        raw = raw.strip()
        if not raw:
            continue
        pending.append((number, raw))
        if len(pending) >= chunk:
            yield flush(), read
            pending = []
    if pending:
        yield flush(), read


def _csv_row(row: dict[str, str]) -> dict[str, Any]:
    """Flat CSV columns -> the nested contract shape (features as bare, `features.` or
    `counterparty.` names)."""
    tx: dict[str, Any] = {}
    feats: dict[str, Any] = {}
    counterparty: dict[str, Any] = {}
    for key, value in row.items():
        name = key.removeprefix("features.").removeprefix("counterparty.") if key else key
        if name in _FEATURES:
            feats[name] = value
        elif name in _COUNTERPARTY:
            counterparty[name] = value
        elif key is not None:
            tx[key] = None if (key == "device_id" and value == "") else value
    tx["features"] = feats
    tx["counterparty"] = counterparty
    return tx


def csv_chunks(path: str, fh: IO[bytes], chunk: int) -> Iterator[tuple[list[EnrichedTransaction], int]]:
    text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
    reader = csv.DictReader(text)
    pending: list[tuple[int, dict[str, Any]]] = []

    def flush() -> list[EnrichedTransaction]:
        try:
            return LIST_ADAPTER.validate_python([row for _, row in pending])
        except ValidationError as exc:
            index = exc.errors()[0]["loc"][0]
            one = ValidationError.from_exception_data(exc.title, [
                {**e, "loc": e["loc"][1:]} for e in exc.errors() if e["loc"][0] == index][:1])
            raise _bad(path, pending[int(index)][0], one) from None

    for row in reader:
        pending.append((reader.line_num, _csv_row(row)))
        if len(pending) >= chunk:
            yield flush(), 0
            pending = []
    if pending:
        yield flush(), 0


def score_file(scorer: Scorer, src: str, dst: str, chunk: int = CHUNK,
               progress: Callable[[int, int], None] | None = None) -> FileReport:
    """Score `src` into `dst` (JSONL decisions, input order); `progress(transactions, bytes_read)`."""
    fmt = "csv" if src.lower().endswith((".csv", ".csv.gz")) else "jsonl"
    report = FileReport()
    stages = report.stages
    started, cpu_started = time.perf_counter(), time.process_time()
    with open_binary(src, "r") as fin, open_binary(dst, "w") as fout:
        chunks = csv_chunks(src, fin, chunk) if fmt == "csv" else jsonl_chunks(src, fin, chunk)
        t0 = time.perf_counter()
        for txs, read in chunks:
            t1 = time.perf_counter()
            x = matrix_of(txs)
            t2 = time.perf_counter()
            decisions = scorer.decide_matrix(x, [t.transaction_id for t in txs], [t.wallet_id for t in txs],
                                             timings=False)
            t3 = time.perf_counter()
            fout.write(b"".join(d.model_dump_json().encode() + b"\n" for d in decisions))
            for d in decisions:
                report.decisions[d.outcome.value] = report.decisions.get(d.outcome.value, 0) + 1
            t4 = time.perf_counter()
            stages["read_validate"] += t1 - t0
            stages["vectorize"] += t2 - t1
            stages["score"] += t3 - t2
            stages["write"] += t4 - t3
            report.transactions += len(txs)
            if progress:
                progress(report.transactions, read)
            t0 = time.perf_counter()
    report.seconds = time.perf_counter() - started
    report.cpu_seconds = time.process_time() - cpu_started
    return report


def dumps_report(report: FileReport) -> str:
    return json.dumps({"transactions": report.transactions, "seconds": round(report.seconds, 3),
                       "tx_per_s": round(report.tx_per_s, 1), "cpu_seconds": round(report.cpu_seconds, 3),
                       "tx_per_cpu_s": round(report.tx_per_cpu_s, 1), "decisions": report.decisions,
                       "stages_s": {k: round(v, 3) for k, v in report.stages.items()}})
