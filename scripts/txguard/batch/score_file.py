"""Score a file (JSONL, CSV or Parquet; local or gs://) into a JSONL of decisions, in one process.

EnrichedTransactions are scored as they stream: each chunk is validated on columns
(`txguard.batch.readers`), turned into one feature matrix, scored by one onnxruntime call and
written as JSON lines in one buffer (`txguard.batch.decisions`). Raw Transactions need their
history first: the whole file is validated, replayed per wallet in time order
(`txguard.batch.featurize`, the feature code of the functions), then scored the same way. For
files too big for one machine, `txguard batch run` does the same on Apache Beam.

A bad row stops the run with an error naming its line and field (DataFileError); the decisions of
the chunks before it are written, none of its own chunk.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from txguard.batch.decisions import decide
from txguard.batch.featurize import feature_matrix, given_features
from txguard.batch.readers import RawChunk, read_chunks, validate_chunk
from txguard.batch.rows import concat
from txguard.batch.storage import open_binary
from txguard.contract.errors import DataFileError
from txguard.features.wallet import HISTORY_FEATURES
from txguard.rules.engine import RuleSet
from txguard.scoring.scorer import Scorer

CHUNK = 20_000
KINDS = ("auto", "enriched", "transactions")


@dataclass
class FileReport:
    transactions: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's CPU time: fairer than wall time on a shared machine
    kind: str = "enriched"
    stages: dict[str, float] = field(default_factory=lambda: {"read_validate": 0.0, "features": 0.0,
                                                                 "score_write": 0.0})
    decisions: dict[str, int] = field(default_factory=dict)

    @property
    def tx_per_s(self) -> float:
        return self.transactions / self.seconds if self.seconds else 0.0

    @property
    def tx_per_cpu_s(self) -> float:
        return self.transactions / self.cpu_seconds if self.cpu_seconds else 0.0


def detect_kind(chunk: RawChunk) -> str:
    """`enriched` when the first row carries history features, else `transactions`."""
    if chunk.fmt == "jsonl":
        return "enriched" if b'"features"' in chunk.payload.split(b"\n", 1)[0] else "transactions"
    names = set(chunk.header) if chunk.fmt == "csv" else set(chunk.payload.column_names)
    flat = {n for n in names if n.removeprefix("features.") in HISTORY_FEATURES}
    return "enriched" if flat or "features" in names else "transactions"


def _validated(src: str, chunks: Iterator[RawChunk], kind: str) -> Iterator[tuple[pa.Table, int]]:
    for chunk in chunks:
        table, errors = validate_chunk(chunk, kind)
        if errors:
            raise DataFileError(errors[0].describe())
        yield table, int(chunk.lines[-1])


def score_file(scorer: Scorer, src: str, dst: str, chunk: int = CHUNK, kind: str = "auto",
               progress: Callable[[int, int], None] | None = None, rules: RuleSet | None = None) -> FileReport:
    """Score `src` into `dst` (JSONL decisions, input order); `progress(transactions, last line)`."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    report = FileReport()
    stages = report.stages
    started, cpu_started = time.perf_counter(), time.process_time()
    chunks = read_chunks(src, 0, chunk)
    first = next(chunks, None)
    with open_binary(dst, "w") as out:
        if first is not None:
            kind = detect_kind(first) if kind == "auto" else kind
            report.kind = kind
            stream = _chain(first, chunks)
            if kind == "enriched":
                _score_enriched(scorer, src, stream, out, report, progress, rules)
            else:
                _score_transactions(scorer, src, stream, out, report, chunk, progress, rules)
    report.seconds = time.perf_counter() - started
    report.cpu_seconds = time.process_time() - cpu_started
    stages.update({k: round(v, 6) for k, v in stages.items()})
    return report


def _chain(first: RawChunk, rest: Iterator[RawChunk]) -> Iterator[RawChunk]:
    yield first
    yield from rest


def _write(scorer: Scorer, table: pa.Table, x: Any, out: Any, report: FileReport, rules: RuleSet | None) -> None:
    t0 = time.perf_counter()
    lines, tally = decide(scorer, x, table.column("transaction_id"), table.column("wallet_id"), rules, table)
    out.write(lines)
    for outcome, n in tally.items():
        report.decisions[outcome] = report.decisions.get(outcome, 0) + n
    report.transactions += table.num_rows
    report.stages["score_write"] += time.perf_counter() - t0


def _score_enriched(scorer: Scorer, src: str, chunks: Iterator[RawChunk], out: Any, report: FileReport,
                    progress: Callable[[int, int], None] | None, rules: RuleSet | None) -> None:
    t0 = time.perf_counter()
    for table, line in _validated(src, chunks, "enriched"):
        t1 = time.perf_counter()
        x = given_features(table)
        t2 = time.perf_counter()
        report.stages["read_validate"] += t1 - t0
        report.stages["features"] += t2 - t1
        _write(scorer, table, x, out, report, rules)
        if progress:
            progress(report.transactions, line)
        t0 = time.perf_counter()


def _score_transactions(scorer: Scorer, src: str, chunks: Iterator[RawChunk], out: Any, report: FileReport,
                        chunk: int, progress: Callable[[int, int], None] | None, rules: RuleSet | None) -> None:
    """Raw transactions: validate everything, replay the wallets in time order, score in chunks."""
    t0 = time.perf_counter()
    tables = []
    for table, line in _validated(src, chunks, "transactions"):
        tables.append(table)
        if progress:
            progress(0, line)
    table = concat(tables, "transactions")
    t1 = time.perf_counter()
    x = feature_matrix(table)
    t2 = time.perf_counter()
    report.stages["read_validate"] += t1 - t0
    report.stages["features"] += t2 - t1
    for start in range(0, table.num_rows, chunk):
        part = table.slice(start, chunk)
        _write(scorer, part, x[start:start + chunk], out, report, rules)
        if progress:
            progress(report.transactions, int(part.column("line")[-1].as_py()))


def dumps_report(report: FileReport) -> str:
    return json.dumps({"transactions": report.transactions, "kind": report.kind, "seconds": round(report.seconds, 3),
                       "tx_per_s": round(report.tx_per_s, 1), "cpu_seconds": round(report.cpu_seconds, 3),
                       "tx_per_cpu_s": round(report.tx_per_cpu_s, 1), "decisions": report.decisions,
                       "stages_s": {k: round(v, 3) for k, v in report.stages.items()}})
