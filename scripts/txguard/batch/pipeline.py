"""The Beam pipeline of `txguard batch run`: raw Transaction files -> features and/or decisions.

    files --read--> raw chunks --reshuffle--> validate (columns, else per row) --+--> errors output
                                                                                 |
      rows --by wallet shard--> GroupByKey --replay wallets--+--> rows + history, by wallet shard ------+
                                                             +--> family rows, by (family, shard) --+   |
                                                             +--> labels, by transaction shard      |   |
                                      GroupByKey --ledger--> label increments, by (family, shard) --+   |
                                                                                                    |   |
                          Flatten + GroupByKey --replay each family shard--> values, by wallet shard    |
                                                                                          CoGroupByKey (wallet shard)
                                                                     --assemble + score--> decisions, feature table,
                                                                                           training sample

Elements are chunks (Arrow tables or arrays of thousands of rows), not single transactions, so
Beam's per-element cost is paid a few times per chunk. Every stage keys by the entity its state
belongs to, `shards` groups per stage (CRC-32, stable on every worker and run): whole wallets for
the history, whole transactions for the label ledger, whole counterparties, devices and wallets
(labels) for the counterparty family. `txguard.batch.families` says which feature reads which key
and why the split gives every transaction exactly the single-process replay's features. Counters
(read, invalid, featurised, decided) are Beam metrics: the job status reads them on any runner.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from txguard.batch.families import (
    FamilyLabels,
    FamilyRows,
    WalletSide,
    assemble,
    has_device,
    label_increments,
    replay_family,
    shard_of,
)
from txguard.batch.featurize import (
    FEATURE_TABLE_SCHEMA,
    SAMPLE_TABLE_SCHEMA,
    feature_table,
    sample_table,
    transaction_matrix,
)
from txguard.batch.jobs import COUNTERS, JobSpec
from txguard.batch.readers import RawChunk, read_chunks, validate_chunk
from txguard.batch.rows import concat
from txguard.batch.sampling import hard_marks
from txguard.batch.storage import join

NAMESPACE = "txguard"
ERRORS_TAG = "errors"
FEATURES_TAG = "features"
SAMPLE_TAG = "sample"
DECISIONS_TAG = "decisions"
FAMILY_TAG = "family rows"
LABELS_TAG = "labels"


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
    per_wallet = np.fromiter((shard_of(w, shards) for w in encoded.dictionary.to_pylist()),
                             dtype=np.int64, count=len(encoded.dictionary))
    return per_wallet[encoded.indices.to_numpy()]


def split_by_shard(table: pa.Table, shards: int) -> Iterator[tuple[int, pa.Table]]:
    keys = wallet_shards(table, shards)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    bounds = np.flatnonzero(np.diff(sorted_keys)) + 1
    for part in np.split(order, bounds):
        yield int(keys[part[0]]), table.take(pa.array(part))


class ReplayWallets(beam.DoFn):
    """A wallet shard -> (its rows in replay order + history) for the join, its rows for each family
    shard, its label events by transaction shard (`txguard.batch.families`, step 1)."""

    def __init__(self, shards: int) -> None:
        self.shards = shards

    def process(self, element: tuple[int, Iterable[pa.Table]]) -> Iterator[Any]:
        shard, tables = element
        table = concat(list(tables), "transactions")
        if not table.num_rows:
            return
        side = WalletSide.replay(table)
        yield shard, (side.table, side.history)
        for key, rows in side.family_rows(shard, self.shards):
            yield beam.pvalue.TaggedOutput(FAMILY_TAG, (key, rows))
        by_tx: dict[int, list] = {}
        for label in side.label_events():
            by_tx.setdefault(shard_of(label.transaction_id, self.shards), []).append(label)
        for key, labels in by_tx.items():
            yield beam.pvalue.TaggedOutput(LABELS_TAG, (key, labels))


def ledger(element: tuple[int, Iterable[list]], shards: int) -> Iterator[tuple[tuple[str, int], FamilyLabels]]:
    """Every label of a transaction shard -> increments by family shard (step 2)."""
    _shard, batches = element
    yield from label_increments([label for batch in batches for label in batch], shards)


def replay_families(element: tuple[tuple[str, int], Iterable[FamilyRows | FamilyLabels]]) -> Iterator[Any]:
    """A family shard's rows and label increments -> its values, keyed by wallet shard (step 3)."""
    (family, _shard), parts = element
    parts = list(parts)
    rows = [p for p in parts if isinstance(p, FamilyRows)]
    labels = [p for p in parts if isinstance(p, FamilyLabels)]
    yield from replay_family(family, rows, labels)


class Score(beam.DoFn):
    """A wallet shard's rows, history and family values -> feature table, training sample and/or
    decisions (step 4). The sample is drawn here, from the rows the full replay featurised: whole
    wallets are in one shard, so whole wallet-days are too (`txguard.batch.sampling`). With a sample
    model, the rows it scores at or above its review threshold (or among the shard's top share) are
    the hard negatives."""

    def __init__(self, model_uri: str | None, features: bool, sample: float = 0.0, sample_seed: int = 0,
                 sample_model: str | None = None, sample_hard: float = 1.0,
                 sample_hard_share: float | None = None) -> None:
        self.model_uri = model_uri
        self.features = features
        self.sample = sample
        self.sample_seed = sample_seed
        self.sample_model = sample_model
        self.sample_hard = sample_hard
        self.sample_hard_share = sample_hard_share
        self.hard_scorer: Any = None
        self.featurised = _counter("featurised")
        self.decided = _counter("decided")
        self.sampled = _counter("sampled")
        self.scorer: Any = None
        self.rules: Any = None

    def setup(self) -> None:
        if self.model_uri:
            from txguard.scoring.loading import open_rules, open_scorer

            self.scorer = open_scorer(self.model_uri)
            self.rules = open_rules(self.model_uri)  # the rule set of the same alias, as serving applies it
        if self.sample_model:
            from txguard.scoring.loading import open_scorer

            self.hard_scorer = self.scorer if self.sample_model == self.model_uri else open_scorer(self.sample_model)

    def process(self, element: tuple[int, dict[str, Iterable[Any]]]) -> Iterator[Any]:
        _shard, joined = element
        sides = list(joined["wallets"])
        if not sides:
            return
        (table, history), = sides  # one replay per wallet shard
        counterparty = assemble(table.num_rows, joined["families"], has_device(table))
        x = np.hstack([transaction_matrix(table), history, counterparty])
        self.featurised.inc(table.num_rows)
        scores, hard = self.scored(x)
        if self.features or self.sample:
            full = feature_table(table, x)
            if self.features:
                yield beam.pvalue.TaggedOutput(FEATURES_TAG, full)
            if self.sample:
                kept = sample_table(full, self.sample, self.sample_seed, hard, self.sample_hard)
                self.sampled.inc(kept.num_rows)
                if kept.num_rows:
                    yield beam.pvalue.TaggedOutput(SAMPLE_TAG, kept)
        if self.scorer is not None:
            from txguard.batch.decisions import decide

            lines, _tally = decide(self.scorer, x, table.column("transaction_id"), table.column("wallet_id"),
                                   self.rules, table, scores=scores)
            self.decided.inc(table.num_rows)
            yield beam.pvalue.TaggedOutput(DECISIONS_TAG, lines.decode().removesuffix("\n"))


    def scored(self, x: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(the decisions' scores, the sample's hard-negative marks) of a shard's matrix, each None
        without its model: one run of the model when the sample model is the decisions' model."""
        scores = self.scorer.runtime.predict(x) if self.scorer is not None else None
        if self.hard_scorer is None:
            return scores, None
        hard_scores = scores if self.hard_scorer is self.scorer else self.hard_scorer.runtime.predict(x)
        return scores, hard_marks(hard_scores, self.hard_scorer.thresholds.review, self.sample_hard_share)


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
    wallets = (
        validated.rows
        | "by wallet shard" >> beam.FlatMap(split_by_shard, spec.shards)
        | "group wallet shards" >> beam.GroupByKey()
        | "replay wallets" >> beam.ParDo(ReplayWallets(spec.shards)).with_outputs(FAMILY_TAG, LABELS_TAG, main="rows")
    )
    increments = (
        wallets[LABELS_TAG]
        | "group transaction shards" >> beam.GroupByKey()
        | "label ledger" >> beam.FlatMap(ledger, spec.shards)
    )
    families = (
        (wallets[FAMILY_TAG], increments)
        | "rows and labels" >> beam.Flatten()
        | "group family shards" >> beam.GroupByKey()
        | "replay families" >> beam.FlatMap(replay_families)
    )
    scored = (
        {"wallets": wallets.rows, "families": families}
        | "join by wallet shard" >> beam.CoGroupByKey()
        | "score" >> beam.ParDo(Score(spec.model_uri, spec.features, spec.sample, spec.sample_seed,
                                          spec.sample_model, spec.sample_hard,
                                          spec.sample_hard_share)).with_outputs(
            FEATURES_TAG, SAMPLE_TAG, DECISIONS_TAG)
    )
    if spec.model_uri:
        _ = scored[DECISIONS_TAG] | "write decisions" >> beam.io.WriteToText(
            join(spec.output, "decisions"), file_name_suffix=".jsonl")
    if spec.features:
        _ = scored[FEATURES_TAG] | "write features" >> beam.io.WriteToParquetBatched(
            join(spec.output, "features"), schema=FEATURE_TABLE_SCHEMA, file_name_suffix=".parquet")
    if spec.sample:
        _ = scored[SAMPLE_TAG] | "write sample" >> beam.io.WriteToParquetBatched(
            join(spec.output, "sample"), schema=SAMPLE_TABLE_SCHEMA, file_name_suffix=".parquet")


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
