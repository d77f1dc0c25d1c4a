"""The Beam pipeline of `txguard batch run`: raw Transaction files -> features and/or decisions.

    files --read--> raw chunks --reshuffle--> validate (columns, else per row) --+--> errors output
                                                                                 |
        rows --split by wallet shard--> GroupByKey(shard) --replay + score--> decisions output
                                                                           \\--> feature table (Parquet)

Elements are chunks (Arrow tables of thousands of rows), not single transactions, so Beam's
per-element cost is paid a few times per chunk. A shard holds whole wallets (a stable hash of the
wallet id), so replaying a shard in time order gives every transaction exactly the features the
single-process replay gives it (`txguard.batch.featurize`). Counters (read, invalid, featurised,
decided) are Beam metrics: the job status reads them on any runner.

The features include a counterparty family (`txguard.features.counterparty`): a counterparty's
aggregates depend on every wallet paying it, and the counts of first payers on each wallet's
history, so the replay runs over every row at once (one replay group, whatever `shards` says);
scoring and writing stay parallel. To parallelise the replay: replay wallet shards first, emitting
(transaction id, history values, first-payer marks); key those and the label events by
counterparty shard, GroupByKey, replay the counterparty family in time order; join both by
transaction id (CoGroupByKey) before scoring. A counterparty shard must then hold whole
counterparties and the device and wallet-label entities they need.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from txguard.batch.featurize import FEATURE_TABLE_SCHEMA, feature_matrix, feature_table
from txguard.batch.jobs import COUNTERS, JobSpec
from txguard.batch.readers import RawChunk, read_chunks, validate_chunk
from txguard.batch.rows import concat
from txguard.batch.storage import join

NAMESPACE = "txguard"
REPLAY_GROUPS = 1  # the counterparty family needs every row in one replay (module docstring)
ERRORS_TAG = "errors"
FEATURES_TAG = "features"
DECISIONS_TAG = "decisions"


def _counter(name: str) -> Any:
    return Metrics.counter(NAMESPACE, name)


class ReadFile(beam.DoFn):
    """(file index, path) -> raw chunks of that file, with their line numbers."""

    def __init__(self, chunk_rows: int) -> None:
        self.chunk_rows = chunk_rows

    def process(self, element: tuple[int, str]) -> Iterator[RawChunk]:
        index, path = element
        yield from read_chunks(path, index, self.chunk_rows)


class Validate(beam.DoFn):
    """Raw chunk -> its valid rows (main output) and one errors-output line per bad row."""

    def __init__(self) -> None:
        self.read = _counter("read")
        self.invalid = _counter("invalid")

    def process(self, chunk: RawChunk) -> Iterator[Any]:
        table, errors = validate_chunk(chunk, "transactions")
        self.read.inc(len(chunk))
        if errors:
            self.invalid.inc(len(errors))
            for error in errors:
                yield beam.pvalue.TaggedOutput(ERRORS_TAG, json.dumps(error.to_dict(), ensure_ascii=False))
        if table.num_rows:
            yield table


def wallet_shards(table: pa.Table, shards: int) -> np.ndarray:
    """A stable shard number per row (CRC-32 of the wallet id): the same on every worker and run."""
    encoded = pc.dictionary_encode(table.column("wallet_id")).combine_chunks()
    per_wallet = np.fromiter((zlib.crc32(w.encode()) % shards for w in encoded.dictionary.to_pylist()),
                             dtype=np.int64, count=len(encoded.dictionary))
    return per_wallet[encoded.indices.to_numpy()]


def split_by_shard(table: pa.Table, shards: int) -> Iterator[tuple[int, pa.Table]]:
    keys = wallet_shards(table, shards)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    bounds = np.flatnonzero(np.diff(sorted_keys)) + 1
    for part in np.split(order, bounds):
        yield int(keys[part[0]]), table.take(pa.array(part))


class Replay(beam.DoFn):
    """All the rows of one wallet shard -> feature table and/or decisions (JSON lines)."""

    def __init__(self, model_uri: str | None, features: bool) -> None:
        self.model_uri = model_uri
        self.features = features
        self.featurised = _counter("featurised")
        self.decided = _counter("decided")
        self.scorer: Any = None

    def setup(self) -> None:
        if self.model_uri:
            from txguard.scoring.runtime import ModelRuntime
            from txguard.scoring.scorer import Scorer

            self.scorer = Scorer(ModelRuntime.from_uri(self.model_uri))

    def process(self, element: tuple[int, list[pa.Table]]) -> Iterator[Any]:
        _shard, tables = element
        table = concat(list(tables), "transactions")
        if not table.num_rows:
            return
        x = feature_matrix(table)
        self.featurised.inc(table.num_rows)
        if self.features:
            yield beam.pvalue.TaggedOutput(FEATURES_TAG, feature_table(table, x))
        if self.scorer is not None:
            from txguard.batch.decisions import decide

            lines, _tally = decide(self.scorer, x, table.column("transaction_id"), table.column("wallet_id"))
            self.decided.inc(table.num_rows)
            yield beam.pvalue.TaggedOutput(DECISIONS_TAG, lines.decode().removesuffix("\n"))


def build(pipeline: beam.Pipeline, spec: JobSpec, files: list[str]) -> None:
    """Add the job's transforms to `pipeline` (files already expanded, in replay tie order)."""
    validated = (
        pipeline
        | "files" >> beam.Create(list(enumerate(files)))
        | "read" >> beam.ParDo(ReadFile(spec.chunk_rows))
        | "spread chunks" >> beam.Reshuffle()
        | "validate" >> beam.ParDo(Validate()).with_outputs(ERRORS_TAG, main="rows")
    )
    _ = validated[ERRORS_TAG] | "write errors" >> beam.io.WriteToText(
        join(spec.output, "errors"), file_name_suffix=".jsonl")
    replayed = (
        validated.rows
        | "one replay group" >> beam.FlatMap(split_by_shard, REPLAY_GROUPS)  # module docstring
        | "group shards" >> beam.GroupByKey()
        | "replay" >> beam.ParDo(Replay(spec.model_uri, spec.features)).with_outputs(FEATURES_TAG, DECISIONS_TAG)
    )
    if spec.model_uri:
        _ = replayed[DECISIONS_TAG] | "write decisions" >> beam.io.WriteToText(
            join(spec.output, "decisions"), file_name_suffix=".jsonl")
    if spec.features:
        _ = replayed[FEATURES_TAG] | "write features" >> beam.io.WriteToParquetBatched(
            join(spec.output, "features"), schema=FEATURE_TABLE_SCHEMA, file_name_suffix=".parquet")


def pipeline_options(runner: str, workers: int, extra: list[str]) -> PipelineOptions:
    """DirectRunner: in memory for one worker, one process per worker beyond (threads share one GIL, so
    `multi_threading` never uses more than one core; docs/batch.md has both measured); other runners
    as given. Options after `--` come last and win (`-- --direct_running_mode=multi_threading`)."""
    flags = [f"--runner={runner}"]
    if runner == "DirectRunner":
        mode = "in_memory" if workers <= 1 else "multi_processing"
        flags += [f"--direct_num_workers={max(workers, 1)}", f"--direct_running_mode={mode}"]
    return PipelineOptions([*flags, *extra])  # the caller's options come last: they win


def counters(result: Any) -> dict[str, int]:
    """The job's counters from the runner's metrics (committed values, attempted where unsupported)."""
    from apache_beam.metrics.metric import MetricsFilter

    out = dict.fromkeys(COUNTERS, 0)
    query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    for item in query["counters"]:
        name = item.key.metric.name
        if name in out:
            try:
                value = item.committed
            except Exception:  # some runners only report attempted values
                value = None
            out[name] += int(value if value is not None else item.attempted or 0)
    return out
