"""Score a file (JSONL, CSV or Parquet; local or gs://) into a JSONL of decisions, in one process.

EnrichedTransactions are scored as they stream: each chunk is validated on columns
(`txguard.batch.readers`), turned into one feature matrix, scored by one onnxruntime call and
written as JSON lines in one buffer (`txguard.batch.decisions`). Raw Transactions need their
history first: the whole file is validated, replayed per wallet in time order
(`txguard.batch.featurize`, the feature code of the functions), then scored the same way. For
files too big for one machine, `txguard batch run` does the same on Apache Beam.

Every bad row is collected with its line, field and reason (`FileReport.errors`, as `txguard batch
run` writes them to errors-*.jsonl). By default one bad row refuses the file; with `skip_invalid` the
valid rows are scored unless more than `max_invalid_ratio` of the rows are bad. The output is
written whole or not at all (`txguard.batch.storage.staged`): a refused file leaves no decisions.
A file without rows (empty, or a CSV header only) is refused too.
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
from txguard.batch.rows import RowError, concat
from txguard.batch.storage import staged
from txguard.contract.errors import DataFileError
from txguard.features.wallet import HISTORY_FEATURES
from txguard.rules.engine import RuleSet
from txguard.scoring.scorer import Scorer

CHUNK = 20_000
KINDS = ("auto", "enriched", "transactions")
DEFAULT_MAX_INVALID_RATIO = 0.01  # as `txguard batch run`


class InvalidRowsError(DataFileError):
    """Rows of a file the contract refuses: every one of them, with the counts."""

    def __init__(self, src: str, errors: list[RowError], rows: int, reason: str) -> None:
        self.src, self.errors, self.rows = src, errors, rows
        first = errors[0].describe()
        more = f" and {len(errors) - 1} more bad row(s)" if len(errors) > 1 else ""
        super().__init__(f"{len(errors)} of {rows} rows of {src} are invalid ({reason}): {first}{more}")


@dataclass
class FileReport:
    transactions: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's CPU time: fairer than wall time on a shared machine
    kind: str = "enriched"
    stages: dict[str, float] = field(default_factory=lambda: {"read_validate": 0.0, "features": 0.0,
                                                                 "score_write": 0.0})
    decisions: dict[str, int] = field(default_factory=dict)
    rows: int = 0  # read, valid or not
    errors: list[RowError] = field(default_factory=list)

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


def _validated(chunks: Iterator[RawChunk], kind: str, report: FileReport) -> Iterator[tuple[pa.Table, int]]:
    for chunk in chunks:
        table, errors = validate_chunk(chunk, kind)
        report.rows += len(chunk)
        report.errors.extend(errors)
        yield table, int(chunk.lines[-1])


def score_file(scorer: Scorer, src: str, dst: str, chunk: int = CHUNK, kind: str = "auto",
               progress: Callable[[int, int], None] | None = None, skip_invalid: bool = False,
               max_invalid_ratio: float = DEFAULT_MAX_INVALID_RATIO,
               rules: RuleSet | None = None) -> FileReport:
    """Score `src` into `dst` (JSONL decisions, input order); `progress(transactions, last line)`.

    Raises InvalidRowsError (nothing written) when a row is bad, or with `skip_invalid` when more
    than `max_invalid_ratio` of them are; DataFileError when the file holds no rows.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    report = FileReport()
    stages = report.stages
    started, cpu_started = time.perf_counter(), time.process_time()
    chunks = read_chunks(src, 0, chunk)
    first = next(chunks, None)
    if first is None:
        raise DataFileError(f"{src} holds no rows, the file is empty or a header only")
    with staged(dst) as out:
        kind = detect_kind(first) if kind == "auto" else kind
        report.kind = kind
        stream = _chain(first, chunks)
        if kind == "enriched":
            _score_enriched(scorer, stream, out, report, progress, rules)
        else:
            _score_transactions(scorer, stream, out, report, chunk, progress, rules)
        _settle(src, report, skip_invalid, max_invalid_ratio)
    report.seconds = time.perf_counter() - started
    report.cpu_seconds = time.process_time() - cpu_started
    stages.update({k: round(v, 6) for k, v in stages.items()})
    return report


def _settle(src: str, report: FileReport, skip_invalid: bool, max_invalid_ratio: float) -> None:
    """Refuse (raise, so nothing is written) a file with bad rows, unless they are skipped and few."""
    bad = len(report.errors)
    if not bad:
        return
    if not skip_invalid:
        raise InvalidRowsError(src, report.errors, report.rows, "one bad row refuses the file")
    if bad / report.rows > max_invalid_ratio:
        raise InvalidRowsError(src, report.errors, report.rows,
                               f"{bad / report.rows:.1%} > the {max_invalid_ratio:.1%} allowed")


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


def _score_enriched(scorer: Scorer, chunks: Iterator[RawChunk], out: Any, report: FileReport,
                    progress: Callable[[int, int], None] | None,
                    rules: RuleSet | None) -> None:
    t0 = time.perf_counter()
    for table, line in _validated(chunks, "enriched", report):
        if not table.num_rows:  # every row of the chunk was bad: reported, nothing to score
            continue
        t1 = time.perf_counter()
        x = given_features(table)
        t2 = time.perf_counter()
        report.stages["read_validate"] += t1 - t0
        report.stages["features"] += t2 - t1
        _write(scorer, table, x, out, report, rules)
        if progress:
            progress(report.transactions, line)
        t0 = time.perf_counter()


def _score_transactions(scorer: Scorer, chunks: Iterator[RawChunk], out: Any, report: FileReport,
                        chunk: int, progress: Callable[[int, int], None] | None,
                        rules: RuleSet | None) -> None:
    """Raw transactions: validate everything, replay the wallets in time order, score in chunks."""
    t0 = time.perf_counter()
    tables = []
    for table, line in _validated(chunks, "transactions", report):
        tables.append(table)
        if progress:
            progress(0, line)
    table = concat(tables, "transactions")
    if not table.num_rows:
        return
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
                       "rows": report.rows, "invalid": len(report.errors),
                       "stages_s": {k: round(v, 3) for k, v in report.stages.items()}})
