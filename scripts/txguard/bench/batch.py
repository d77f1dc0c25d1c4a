"""`txguard bench batch`: the Beam job next to the single-process replay, and score-file's two paths.

Batch jobs (`batch_figures`): for each input size, the same raw transactions are featurised and
scored (a) in this process (validate on columns, replay, score, write: what `score-file` does with
raw transactions), (b) by the Beam pipeline on the DirectRunner with 1 worker (in process) and
(c) with 2 worker processes. Figures: transactions/s (wall), transactions/s per worker core, and
the smallest measured size where Beam on 2 workers beats (a), with the crossing of the straight
lines fitted through the measurements (fixed start-up cost + per-transaction cost) as an estimate.

Score-file (`score_file_figures`): EnrichedTransactions scored by the per-row path (one pydantic
validation and one Decision model per row: the path score-file had before) and by the columnar
path, per CPU-second of this process, and their ratio, in the same run on the same file.

On a shared machine every figure moves with the neighbours' load: compare the ratios of one run.
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Log = Callable[[str], None]


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def ensure_model(workdir: Path, model_uri: str | None, log: Log) -> str:
    """The model to score with: the one given, else a small one trained once into `workdir`."""
    if model_uri:
        return model_uri
    registry = workdir / "registry"
    if not (registry / "aliases").exists():
        from txguard.training.train import TrainConfig, train_and_publish

        log(f"training a small model into {registry}")
        # The default model size (200 trees): inference time is a real part of the per-row cost.
        # A small world (no label-maturity window: 10 days are shorter than the labels' delays); the bench
        # times the model, whatever its quality, so the gate only needs it to rank.
        from txguard.training.gate import GatePolicy

        train_and_publish(TrainConfig(days=10, wallets=600, seed=7, registry=str(registry), label_maturity_days=0.0,
                                      policy=GatePolicy(min_pr_auc=0.3, max_ece=1.0, max_calibration_gap=1.0)))
    return f"{registry}@production"


def simulated_file(path: Path, size: int, log: Log) -> Path:
    """At least `size` simulated raw transactions (with labels), time-ordered JSONL, made once."""
    if path.exists() and sum(1 for _ in path.open()) >= size:
        return path
    from txguard.simulator.core import simulate

    wallets = max(50, size // 45)
    log(f"simulating ~{size:,} transactions")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        for n, row in enumerate(simulate(days=20, wallets=wallets, seed=21)):
            fh.write(row.to_json() + "\n")
            if n + 1 >= size:
                break
    return path


def _prefix(src: Path, dst: Path, size: int) -> Path:
    with src.open() as fin, dst.open("w") as fout:
        for n, line in enumerate(fin):
            if n >= size:
                break
            fout.write(line)
    return dst


def single_process(src: str, out: Path, model_uri: str) -> int:
    """The job's work without Beam: validate, replay, feature table, decisions."""
    import pyarrow.parquet as pq

    from txguard.batch.decisions import decide
    from txguard.batch.featurize import feature_matrix, feature_table
    from txguard.batch.readers import read_chunks, validate_chunk
    from txguard.batch.rows import concat
    from txguard.scoring.loading import open_scorer

    scorer = open_scorer(model_uri)
    table = concat([validate_chunk(c, "transactions")[0] for c in read_chunks(src, 0)], "transactions")
    x = feature_matrix(table)
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(feature_table(table, x), out / "features.parquet")
    lines, _ = decide(scorer, x, table.column("transaction_id"), table.column("wallet_id"))
    (out / "decisions.jsonl").write_bytes(lines)
    return table.num_rows


def _timed(work: Callable[[], Any]) -> tuple[float, float]:
    cpu, wall = _cpu(), time.perf_counter()
    work()
    return time.perf_counter() - wall, _cpu() - cpu


def batch_figures(sizes: list[int], model_uri: str | None, workdir: Path, shards: int, log: Log) -> dict[str, Any]:
    from txguard.batch.jobs import JobSpec, JobState, run_job

    uri = ensure_model(workdir, model_uri, log)
    source = simulated_file(workdir / "raw.jsonl", max(sizes), log)
    rows = []
    for size in sorted(sizes):
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            src = str(_prefix(source, Path(tmp) / "in.jsonl", size))
            figures: dict[str, Any] = {"size": size}
            log(f"{size:,} transactions: single process")
            wall, cpu = _timed(lambda src=src, tmp=tmp: single_process(src, Path(tmp) / "single", uri))
            figures["single"] = {"seconds": round(wall, 3), "cpu_seconds": round(cpu, 3), "tx_per_s": round(size / wall, 1),
                                 "tx_per_s_per_core": round(size / wall, 1), "tx_per_cpu_s": round(size / cpu, 1)}
            for workers in (1, 2):
                log(f"{size:,} transactions: Beam DirectRunner, {workers} worker(s)")
                spec = JobSpec(input=src, output=str(Path(tmp) / f"beam{workers}"), model_uri=uri, features=True,
                               shards=shards)
                result: dict[str, Any] = {}
                wall, cpu = _timed(lambda spec=spec, workers=workers, result=result: result.update(
                    status=run_job(spec, workers=workers)))
                status = result["status"]
                if status.state is not JobState.COMPLETED or status.counts["decided"] != size:
                    raise RuntimeError(f"Beam run failed: {status.error} {status.counts}")
                figures[f"beam{workers}"] = {"seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
                                             "tx_per_s": round(size / wall, 1),
                                             "tx_per_s_per_core": round(size / wall / workers, 1),
                                             "tx_per_cpu_s": round(size / cpu, 1)}
            rows.append(figures)
    return {"sizes": sorted(sizes), "shards": shards, "results": rows, **overtake(rows)}


def overtake(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Smallest measured size where Beam x2 is faster (wall) than one process, and the fitted crossing."""
    measured = next((r["size"] for r in rows if r["beam2"]["seconds"] < r["single"]["seconds"]), None)
    estimate = None
    if len(rows) >= 2:
        n = np.array([r["size"] for r in rows], dtype=float)
        b_single, a_single = np.polyfit(n, [r["single"]["seconds"] for r in rows], 1)
        b_beam, a_beam = np.polyfit(n, [r["beam2"]["seconds"] for r in rows], 1)
        if b_beam < b_single:
            estimate = max(0, int((a_beam - a_single) / (b_single - b_beam)))
    return {"beam2_overtakes_at": measured, "beam2_overtakes_at_estimate": estimate}


def enriched_file(raw: Path, dst: Path, log: Log) -> Path:
    """The raw file's transactions with their replayed features, as EnrichedTransaction JSONL."""
    if dst.exists():
        return dst
    from txguard.contract.models import TRANSACTION_ADAPTER
    from txguard.features.timeline import replay_enriched

    log(f"enriching {raw} by replay")
    txs = []
    for line in raw.open("rb"):
        row = json.loads(line)
        for key in ("is_fraud", "scenario", "label_time"):
            row.pop(key, None)
        txs.append(TRANSACTION_ADAPTER.validate_python(row))
    with dst.open("w") as fh:
        for enriched in replay_enriched(txs):
            fh.write(enriched.model_dump_json() + "\n")
    return dst


def per_row_path(scorer: Any, src: Path, dst: Path, chunk: int = 5000) -> int:
    """score-file as it was: one pydantic validation per row, one Decision model per row."""
    from txguard.contract.models import ENRICHED_ADAPTER
    from txguard.scoring.vectorize import matrix_of

    n = 0
    with src.open("rb") as fin, dst.open("wb") as fout:
        pending: list[bytes] = []
        for line in [*fin, None]:
            if line is not None and line.strip():
                pending.append(line)
            if pending and (line is None or len(pending) >= chunk):
                txs = [ENRICHED_ADAPTER.validate_json(raw) for raw in pending]
                decisions = scorer.decide_matrix(matrix_of(txs), [t.transaction_id for t in txs],
                                                 [t.wallet_id for t in txs], timings=False)
                fout.write(b"".join(d.model_dump_json().encode() + b"\n" for d in decisions))
                n += len(txs)
                pending = []
    return n


def score_file_figures(size: int, model_uri: str | None, workdir: Path, log: Log) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from txguard.batch.readers import read_chunks, validate_chunk
    from txguard.batch.rows import concat
    from txguard.batch.score_file import score_file
    from txguard.scoring.loading import open_scorer

    uri = ensure_model(workdir, model_uri, log)
    raw = _prefix(simulated_file(workdir / "raw.jsonl", size, log), workdir / f"raw-{size}.jsonl", size)
    src = enriched_file(raw, workdir / f"enriched-{size}.jsonl", log)
    parquet = workdir / f"enriched-{size}.parquet"
    if not parquet.exists():
        table = concat([validate_chunk(c, "enriched")[0] for c in read_chunks(str(src), 0)], "enriched")
        pq.write_table(table.drop_columns(["file_index", "line", "is_fraud", "label_time", "scenario"]), parquet)
    scorer = open_scorer(uri)
    out: dict[str, Any] = {"size": size, "model": scorer.version}
    for name, work in (
        ("per_row_jsonl", lambda: per_row_path(scorer, src, workdir / "per-row.jsonl")),
        ("columnar_jsonl", lambda: score_file(scorer, str(src), str(workdir / "columnar.jsonl"))),
        ("columnar_parquet", lambda: score_file(scorer, str(parquet), str(workdir / "columnar-pq.jsonl"))),
    ):
        log(f"score-file, {name}: {size:,} enriched transactions")
        wall, cpu = _timed(work)
        out[name] = {"seconds": round(wall, 3), "cpu_seconds": round(cpu, 3), "tx_per_cpu_s": round(size / cpu, 1)}
    same = (workdir / "per-row.jsonl").read_bytes() == (workdir / "columnar.jsonl").read_bytes()
    out["identical_output"] = same and (workdir / "columnar.jsonl").read_bytes() == (
        workdir / "columnar-pq.jsonl").read_bytes()
    out["speedup_jsonl"] = round(out["per_row_jsonl"]["cpu_seconds"] / out["columnar_jsonl"]["cpu_seconds"], 2)
    return out
