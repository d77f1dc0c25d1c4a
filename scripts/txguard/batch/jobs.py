"""A batch job and its status record: queued -> running -> completed | failed, with counts and timings.

The record is `status.json` next to the outputs (a local folder or a gs:// prefix), rewritten at
each state change, so `txguard batch status OUTPUT` answers from anywhere that can read the
outputs, whichever runner ran the job. A job fails on an exception, when the runner does not
report success, or when more than `max_invalid_ratio` of the rows read were invalid (the rows are
in the errors output either way, each with its reason).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from txguard.batch.readers import CHUNK_ROWS
from txguard.batch.storage import exists, join, list_matching, read_bytes, remove, write_bytes

STATUS_FILE = "status.json"
DEFAULT_MAX_INVALID_RATIO = 0.01
COUNTERS = ("read", "invalid", "featurised", "decided", "sampled")
OUTPUT_PREFIXES = ("decisions-", "features-", "sample-", "errors-", STATUS_FILE)


@dataclass(frozen=True)
class JobSpec:
    """What one batch job reads and writes (the status record keeps it)."""

    input: str  # a file or a glob, local or gs://
    output: str  # a folder or gs:// prefix: decisions-*, features-*, errors-*, status.json
    model_uri: str | None = None  # decisions when given
    features: bool = False  # the training feature table, every row
    # The training sample (sample-*.parquet): every row a label touched and this fraction of the
    # other wallet-days, weighted (`txguard.batch.sampling`); 0 writes none.
    sample: float = 0.0
    sample_seed: int = 0
    # Hard negatives: the wallet-days holding a row this model (the production alias) scores at or
    # above its review threshold (with `sample_hard_share`: among the top share of its wallet shard's
    # rows, `txguard.batch.sampling.hard_marks`) are kept with probability `sample_hard` instead
    # (weight 1/sample_hard).
    sample_model: str | None = None
    sample_hard: float = 1.0
    sample_hard_share: float | None = None
    shards: int = 64  # groups per replay stage (wallets, label ledger, each family): `txguard.batch.families`
    chunk_rows: int = CHUNK_ROWS

    def outputs(self) -> dict[str, str]:
        out = {"errors": join(self.output, "errors-*.jsonl")}
        if self.model_uri:
            out["decisions"] = join(self.output, "decisions-*.jsonl")
        if self.features:
            out["features"] = join(self.output, "features-*.parquet")
        if self.sample:
            out["sample"] = join(self.output, "sample-*.parquet")
        return out

    def sample_settings(self) -> dict[str, Any] | None:
        """The sample's settings as the job status records them (None: no sample)."""
        if not self.sample:
            return None
        settings: dict[str, Any] = {"fraction": self.sample, "seed": self.sample_seed}
        if self.sample_model:
            settings |= {"hard_model": self.sample_model, "hard_fraction": self.sample_hard}
            if self.sample_hard_share is not None:
                settings["hard_share"] = self.sample_hard_share
        return settings

    def __post_init__(self) -> None:
        if self.sample:
            from txguard.batch.sampling import check_hard_share, check_sample

            check_sample(self.sample, self.sample_seed, self.sample_hard)
            check_hard_share(self.sample_hard_share)
        if self.sample_model and not self.sample:
            raise ValueError("a sample model marks the hard negatives of a sample: give a sample fraction too")
        if self.sample_hard_share is not None and not self.sample_model:
            raise ValueError("a hard share is the top share of a sample model's scores: give a sample model too")


def has_outputs(output: str) -> bool:
    return bool(list_matching(output, OUTPUT_PREFIXES))


def clear_outputs(output: str) -> None:
    """Remove an earlier job's files from `output` (shard counts differ between runs: never mix them)."""
    for path in list_matching(output, OUTPUT_PREFIXES):
        remove(path)


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class JobStatus:
    job_id: str
    state: JobState
    input: str
    output: str
    runner: str
    workers: int
    outputs: dict[str, str]
    model_uri: str | None = None
    model_version: str | None = None
    files: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    # {"fraction": f, "seed": s} when the job wrote a sample (+ "hard_model", "hard_fraction" when drawn by risk)
    sample: dict[str, Any] | None = None
    timings: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    runner_job_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["state"] = self.state.value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobStatus:
        return cls(**{**data, "state": JobState(data["state"])})


def status_path(output: str) -> str:
    return join(output, STATUS_FILE)


def write_status(status: JobStatus) -> None:
    write_bytes(status_path(status.output), json.dumps(status.to_dict(), indent=2).encode() + b"\n")


def read_status(output: str) -> JobStatus:
    path = output if output.endswith(".json") else status_path(output)
    if not exists(path):
        raise FileNotFoundError(f"no batch job status at {path}")
    return JobStatus.from_dict(json.loads(read_bytes(path)))


def new_status(spec: JobSpec, runner: str, workers: int) -> JobStatus:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return JobStatus(
        job_id=f"batch-{stamp}-{uuid.uuid4().hex[:6]}", state=JobState.QUEUED, input=spec.input,
        output=spec.output, runner=runner, workers=workers, outputs=spec.outputs(), model_uri=spec.model_uri,
        timings={"queued_at": _now()},
        sample=spec.sample_settings(),
    )


# What Beam's DirectRunner workers log on every local run, harmless and not the user's to act on:
# no staging folder for pickled schemas (none are registered), and the runner's own flags that the
# workers' option parser does not know.
_BEAM_NOISE = ("No semi_persistent_directory found", "Discarding unparseable args")


class _BeamNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not any(noise in text for noise in _BEAM_NOISE)


def quiet_beam() -> None:
    """Drop the DirectRunner's routine worker warnings (idempotent); every other warning stays."""
    for name in ("apache_beam.runners.portability.local_job_service", "apache_beam.runners.worker.sdk_worker_main",
                 "apache_beam.options.pipeline_options"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _BeamNoise) for f in logger.filters):
            logger.addFilter(_BeamNoise())


def run_job(spec: JobSpec, runner: str = "DirectRunner", workers: int = 1, beam_args: list[str] | None = None,
            max_invalid_ratio: float = DEFAULT_MAX_INVALID_RATIO,
            log: Callable[[str], None] = lambda _msg: None) -> JobStatus:
    """Run the job to its end (the runner's wait), keeping the status record current."""
    import apache_beam as beam

    from txguard.batch.pipeline import build, counters, pipeline_options
    from txguard.batch.readers import expand

    quiet_beam()
    status = new_status(spec, runner, workers)
    write_status(status)
    log(f"job {status.job_id} queued; status at {status_path(spec.output)}")
    started = time.perf_counter()
    try:
        if spec.model_uri:
            # Every check serving runs (checksum, features, ONNX signature, the parity smoke test),
            # here, before any worker starts: a model serving would refuse fails the job at once.
            # Each worker opens it again through the same checks (txguard.batch.pipeline).
            from txguard.scoring.loading import open_scorer

            status.model_version = open_scorer(spec.model_uri).version
        files = expand(spec.input)
        status.files = len(files)
        pipeline = beam.Pipeline(options=pipeline_options(runner, workers, list(beam_args or [])))
        build(pipeline, spec, files)
        status.state = JobState.RUNNING
        status.timings["started_at"] = _now()
        write_status(status)
        log(f"running on {runner} ({workers} worker(s)): {len(files)} file(s) from {spec.input}")
        result = pipeline.run()
        job_id = getattr(result, "job_id", None)
        status.runner_job_id = job_id() if callable(job_id) else None
        if status.runner_job_id:  # a remote runner: say which job to look at while it runs
            write_status(status)
            log(f"runner job {status.runner_job_id} submitted")
        final = result.wait_until_finish()
        status.counts = counters(result)
        _settle(status, str(final), max_invalid_ratio)
    except KeyboardInterrupt:
        status.state = JobState.FAILED
        status.error = "interrupted" + (f" (runner job {status.runner_job_id} may still be running)"
                                        if status.runner_job_id else "")
        _finish(status, started)
        raise
    except Exception as exc:  # the record must say failed whatever went wrong; the CLI shows it
        status.state = JobState.FAILED
        status.error = f"{type(exc).__name__}: {exc}"
    _finish(status, started)
    return status


def _finish(status: JobStatus, started: float) -> None:
    status.timings["finished_at"] = _now()
    status.timings["seconds"] = round(time.perf_counter() - started, 3)
    write_status(status)


def _settle(status: JobStatus, runner_state: str, max_invalid_ratio: float) -> None:
    read, invalid = status.counts["read"], status.counts["invalid"]
    if not runner_state.endswith("DONE"):
        status.state = JobState.FAILED
        status.error = f"the runner finished in state {runner_state}"
    elif read and invalid / read > max_invalid_ratio:
        status.state = JobState.FAILED
        status.error = (f"{invalid} of {read} rows invalid ({invalid / read:.1%} > {max_invalid_ratio:.1%}); "
                        f"each with its reason in {status.outputs['errors']}")
    elif read == 0:
        status.state = JobState.FAILED
        status.error = "no rows read"
    else:
        status.state = JobState.COMPLETED
