"""`txguard bench train`: what training costs as the history doubles, full table against training sample.

For each history size N (a doubling series), in one run:

1. simulate N raw transactions (20 days, wallets in proportion, each fraud with its `label_time`)
   and run the Beam job on them (DirectRunner) writing the full feature table and the training
   sample side by side (`--features --sample f`): the features seconds (wall and CPU) of the Beam path;
2. `txguard train --features <sample>` in its own process: its peak RSS (the kernel's high-water
   mark of that process, `wait4`), training seconds and gate;
3. up to `full_up_to` rows, `txguard train --features <full table>` the same way, for comparison;
4. both published models scored on the **full** held-out period of the full table: PR-AUC,
   recall at 1 % FPR and the review alert rate at each model's own thresholds, and their deltas.

The sample's fraction halves as the history doubles (`fraction = sample_rows / N`, at most 1): a
team keeps its training set at a size its machine holds, and the sample's rows are then every
wallet-day a fraud touched plus a constant number of drawn ones. Peak RSS follows the sample's rows,
not the history's. Timings move with the machine's load: the run records the load average.

The sample is the one the product recommends: hard negatives drawn (`--sample-hard-model
--sample-hard-share 0.05`), the wallet-days holding a row among the top `hard_share` (5 %) of the
production model's scores kept with a chance of their own, `hard_boost` times the fraction, at most 1
(`hard_chance`): 1 from a 5 % sample up with the default 20, and below that the hard stratum
shrinks with the fraction, so that its rows stay constant as the drawn ones do (all of it would grow
with the history: it is a share of the traffic). Why 5 % and not the review band (the model's top
~2 %, what `txguard evaluate sample` draws): recall at 1 % FPR is decided among the legitimate rows
the new model ranks in its top 1 %, and the production model's review band misses part of them
(docs/batch.md, "Training on a sample as the history doubles"). The production model is a
stand-in, what a team retraining has at hand, never the full-data model: `txguard train --features`
on the plain sample of another seed (sample seed 1) of the same history, then (`stand_in_rounds`, 2)
again on that seed's sample drawn by the first fit, as the team's last retrain drew it. The features
seconds are the measured job's, the one a team runs. `hard_boost=None` draws the plain sample (no
stand-in, one Beam job).

Past `world_rows` the history is simulated as worlds that share no entity, one Beam job each
(`history_files`): the DirectRunner holds a job's shuffles in memory. The stand-in is fitted on the
first world (its sample of ~`sample_rows` drawn rows) and the sample is the union of the worlds'
samples. Past the full model (`full_up_to`) the sizes are one series over shared worlds
(`world_series`): each world's job runs once, and each size's sample is its worlds' samples redrawn at
its own fraction, graded on the first world's held-out period.

One draw's luck moves a small held-out period's recall by about the bound (at 50,000 transactions,
one of ~120 held-out frauds is 0.0085), so with `draws` > 1 the sizes graded against the full model
draw their sample again with other seeds (each a Beam job writing the sample only: the features are the same rows) and trained again:
the quality and its deltas are the draws' mean, each draw's figures beside it. The bound is about
what sampling costs on average; a single draw's spread around it is reported, not hidden.
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from txguard.batch.sampling import HARD_SHARE

Log = Callable[[str], None]
DAYS = 20
ROWS_PER_WALLET = 45  # the simulator's transactions per wallet over DAYS days (about)
# The benchmark measures what training costs, not whether a version passes: every model is
# published (the gate's verdict is still recorded) so both can be graded on the full period.
GATE_OFF = ("--min-pr-auc", "0", "--max-ece", "1", "--max-calibration-gap", "1", "--max-regression", "1")


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime


def labelled_file(path: Path, size: int, seed: int, log: Log, entity_prefix: str = "") -> int:
    """~`size` simulated raw transactions over DAYS days, fraud rows with their `label_time`; made once.

    `entity_prefix` goes before every wallet, counterparty and device id, so that worlds written with
    different prefixes share no entity (`history_files`)."""
    if path.exists():
        return sum(1 for _ in path.open())
    from txguard.simulator.core import Simulation
    from txguard.training.dataset import first_known

    sim = Simulation(days=DAYS, wallets=max(50, size // ROWS_PER_WALLET), seed=seed)
    log(f"simulating ~{size:,} transactions ({sim.params.get('wallets')} wallets, {DAYS} days)")
    known = first_known(sim.label_events())
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w") as fh:
        for r in sim:
            row = r.to_row()
            if entity_prefix:
                for key in ENTITY_KEYS:
                    if row.get(key) is not None:
                        row[key] = f"{entity_prefix}{row[key]}"
            if r.is_fraud and r.tx.transaction_id in known:
                row["label_time"] = datetime.fromtimestamp(known[r.tx.transaction_id], UTC).isoformat()
            fh.write(json.dumps(row) + "\n")
            n += 1
    return n


ENTITY_KEYS = ("wallet_id", "counterparty_id", "device_id")  # what every feature is keyed by


def history_files(folder: Path, size: int, seed: int, world_rows: int | None, log: Log) -> list[tuple[Path, int]]:
    """The history of ~`size` transactions as files, each one Beam job's input, with their rows.

    Up to `world_rows` (or with None) one world, `tx.jsonl`. Past it, `ceil(size / world_rows)` worlds
    of equal size, `tx-K.jsonl`: world K simulated with seed `seed + K` and, from K = 1, its entity ids
    prefixed `kK.`. The worlds share no wallet, counterparty or device, and every feature is computed per
    entity, so each world's features are what one job over all of them would compute (a test proves it):
    one job per world keeps the DirectRunner's in-memory shuffles to a world's size. World 0 is the
    one-world history of `seed`."""
    worlds = 1 if world_rows is None else max(1, math.ceil(size / world_rows))
    if worlds == 1:
        return [(folder / "tx.jsonl", labelled_file(folder / "tx.jsonl", size, seed, log))]
    return world_files(folder, worlds, size // worlds, seed, log)


def world_files(folder: Path, count: int, rows: int, seed: int, log: Log) -> list[tuple[Path, int]]:
    """`count` worlds of ~`rows` transactions, `tx-K.jsonl` with their rows: world K simulated with seed
    `seed + K` and, from K = 1, its entity ids prefixed `kK.` (made once)."""
    return [(folder / f"tx-{k}.jsonl", labelled_file(folder / f"tx-{k}.jsonl", rows, seed + k, log,
                                                    entity_prefix=f"k{k}." if k else ""))
            for k in range(count)]


def high_water_kb(pid: int) -> int | None:
    """The process's peak resident memory so far (VmHWM, kB), None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def measured_train(table: str, registry: Path, log_path: Path, poll_s: float = 0.05,
                   label_maturity_days: float | None = None) -> dict[str, Any]:
    """`txguard train --features TABLE` in its own process: its report, peak RSS and seconds.

    The peak is the child's own VmHWM, read while it runs (monotonic; the last read is the peak
    but for its final `poll_s`). Not `wait4`'s ru_maxrss: on Linux that keeps the high-water mark
    of the memory the child was forked from, so it would report this process's size."""
    argv = [sys.executable, "-m", "txguard.cli.main", "train", "--features", table, "--registry", str(registry),
            "--no-pictures", *GATE_OFF]
    if label_maturity_days is not None:  # else training's estimate from the labels known at the cut
        argv += ["--label-maturity-days", str(label_maturity_days)]
    out_path = log_path.with_suffix(".json")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    peak = 0
    with log_path.open("w") as err, out_path.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, text=True)
        while proc.poll() is None:
            peak = max(peak, high_water_kb(proc.pid) or 0)
            time.sleep(poll_s)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [line for line in out_path.read_text().splitlines() if line.startswith("{")]
    if proc.returncode not in (0, 3) or not lines:
        raise RuntimeError(f"txguard train --features {table} exited {proc.returncode}; see {log_path}")
    report = json.loads(lines[-1])
    return {"report": report, "peak_rss_mb": round(peak / 1024, 1),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime, 2),
            "seconds": round(time.perf_counter() - started, 2), "gate": report.get("gate")}


def training_figures(done: dict[str, Any]) -> dict[str, Any]:
    """What a run keeps of one `measured_train`: peak RSS, CPU and wall seconds, gate, the fit's seconds."""
    return {**{k: done[k] for k in ("peak_rss_mb", "cpu_seconds", "seconds", "gate")},
            "train_seconds": done["report"].get("train_seconds")}


def graded_on_full(full_table: str, registries: dict[str, Path]) -> dict[str, dict[str, float]]:
    """Each published model on the full held-out period of the full table, at its own thresholds."""
    from txguard.registry import open_registry
    from txguard.training import metrics
    from txguard.training.dataset import from_feature_table
    from txguard.training.train import TrainConfig, onnx_scores, time_split

    data = from_feature_table(full_table)
    test = time_split(data, TrainConfig.test_fraction, 0.0).test  # the test period does not depend on it
    y, X = data.y[test], data.X[test]
    out = {}
    for name, registry in registries.items():
        loaded = open_registry(str(registry)).load("staging")
        served = onnx_scores(loaded.artifact, X)
        alerts = metrics.alerts(served, loaded.metadata.thresholds)
        out[name] = {"pr_auc": round(metrics.pr_auc(y, served), 6),
                     "recall_at_1pct_fpr": round(metrics.recall_at_fpr(y, served, 0.01), 6),
                     "review_alert_rate": round(alerts["review"] / len(y), 6),
                     "review_fpr": round(float(np.mean(served[y == 0] >= loaded.metadata.thresholds.review)), 6)}
    return out


STAND_IN_SAMPLE_SEED = 1  # the stand-in's plain sample: another seed than every measured sample's
HARD_BOOST = 20.0  # the hard wallet-days' chance over the fraction's: 1 from a 5 % sample up


def hard_chance(fraction: float, boost: float = HARD_BOOST) -> float:
    """The hard wallet-days' chance to be kept (`--sample-hard`): `boost` times the fraction, at most 1,
    at least the fraction (the sampling rule's floor: a hard wallet-day is never rarer than another)."""
    return min(1.0, max(fraction, boost * fraction))


def hard_draw(spec: Any, model: str, boost: float, share: float | None) -> Any:
    """`spec` with its hard negatives drawn by `model`: the top `share` of its scores (None: its review
    band) kept at `hard_chance` of the spec's fraction."""
    return replace(spec, sample_model=model, sample_hard=hard_chance(spec.sample, boost), sample_hard_share=share)


def draw_seeds(draws: int) -> list[int]:
    """The measured samples' seeds: 0, then 2, 3, ... (never the stand-in's)."""
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    seeds: list[int] = []
    seed = 0
    while len(seeds) < draws:
        if seed != STAND_IN_SAMPLE_SEED:
            seeds.append(seed)
        seed += 1
    return seeds


QUALITY = ("pr_auc", "recall_at_1pct_fpr", "review_alert_rate")


def mean_quality(by_draw: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each graded figure's mean over the draws."""
    keys = next(iter(by_draw.values())).keys()
    return {k: round(float(np.mean([q[k] for q in by_draw.values()])), 6) for k in keys}


def beam_job(spec: Any, workers: int) -> tuple[Any, float, float]:
    """Run one Beam job on a clean output folder: its status, wall and CPU seconds (children included)."""
    from txguard.batch.jobs import JobState, run_job

    shutil.rmtree(spec.output, ignore_errors=True)
    cpu0, wall0 = _cpu_children(), time.perf_counter()
    status = run_job(spec, workers=workers)
    wall, cpu = time.perf_counter() - wall0, _cpu_children() - cpu0
    if status.state is not JobState.COMPLETED:
        raise RuntimeError(f"Beam job failed: {status.error}")
    return status, wall, cpu


STAND_IN_ROUNDS = 2  # the production stand-in's retrains: a plain sample, then a sample drawn by its own model


def beam_worlds(spec: Any, inputs: list[Path], workers: int, all_features: bool) -> tuple[int, float, float, str, str]:
    """`spec` run on each world of `inputs` (one job each; the worlds' outputs are `spec.output`/wK):
    rows sampled in all, wall and CPU seconds summed, the sample's glob, the full table's glob. With
    several worlds only world 0 writes the full table (what the grading reads) unless `all_features`."""
    if len(inputs) == 1:
        status, wall, cpu = beam_job(replace(spec, input=str(inputs[0])), workers)
        return status.counts["sampled"], wall, cpu, f"{spec.output}/sample-*.parquet", f"{spec.output}/features-*.parquet"
    shutil.rmtree(spec.output, ignore_errors=True)
    sampled, wall, cpu = 0, 0.0, 0.0
    for k, path in enumerate(inputs):
        status, w, c = beam_job(replace(spec, input=str(path), output=f"{spec.output}/w{k}",
                                        features=spec.features and (all_features or k == 0)), workers)
        sampled, wall, cpu = sampled + status.counts["sampled"], wall + w, cpu + c
    features = f"{spec.output}/w*/features-*.parquet" if all_features else f"{spec.output}/w0/features-*.parquet"
    return sampled, wall, cpu, f"{spec.output}/w*/sample-*.parquet", features


def rows_by_weight(sample_glob: str) -> dict[str, int]:
    """A sample's rows counted by their weight (one over the row's chance), heaviest last: weight 1 is
    what the sample keeps whole (the wallet-days holding a fraud or a label, and the hard stratum when
    its chance is 1), the others the hard stratum's and the plain draw's."""
    import pyarrow.parquet as pq

    from txguard.batch.readers import expand
    from txguard.batch.sampling import WEIGHT_COLUMN

    counts: dict[float, int] = {}
    for path in expand(sample_glob):
        values, n = np.unique(np.round(pq.read_table(path, columns=[WEIGHT_COLUMN])[WEIGHT_COLUMN].to_numpy(), 3),
                              return_counts=True)
        for value, count in zip(values.tolist(), n.tolist(), strict=True):
            counts[value] = counts.get(value, 0) + count
    return {f"{w:g}": counts[w] for w in sorted(counts)}


def stand_in_model(folder: Path, history: tuple[Path, int], sample_rows: int, shards: int, workers: int, log: Log,
                   label_maturity_days: float | None, rounds: int = STAND_IN_ROUNDS, hard_boost: float = HARD_BOOST,
                   hard_share: float | None = HARD_SHARE) -> tuple[str, dict[str, Any]]:
    """The production model hard negatives are drawn by (a `registry@staging` URI) and its figures,
    fitted on `history` (a file and its rows: the first world) sampled at ~`sample_rows` drawn rows.

    Round 1 is a team's first retrain: `txguard train --features` on the plain sample of seed
    STAND_IN_SAMPLE_SEED. Each later round is the next retrain as the product recommends it: the sample
    of the same seed with its hard negatives drawn by the previous round's model (the same `hard_boost`
    and `hard_share` as the measured samples). So with `rounds` >= 2 the stand-in is what a team running
    txguard has in production: a model itself trained on a hard-negative sample, never the full-data
    model. `txguard.evaluation.sample` fits its stand-in the first way only."""
    from txguard.batch.jobs import JobSpec

    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    path, rows = history
    fraction = min(1.0, sample_rows / rows)
    log(f"{rows:,} transactions: the production stand-in's plain sample at fraction {fraction:.4f}")
    out = folder / "out-stand-in"
    registry = folder / "registry-stand-in"
    model: str | None = None
    sizes: list[int] = []
    trained: dict[str, Any] = {}
    for n in range(rounds):
        spec = JobSpec(input=str(path), output=str(out), features=False, sample=fraction,
                       sample_seed=STAND_IN_SAMPLE_SEED, shards=shards)
        if model is not None:
            spec = hard_draw(spec, model, hard_boost, hard_share)
        status, _, _ = beam_job(spec, workers)
        sizes.append(status.counts["sampled"])
        log(f"production stand-in, round {n + 1} of {rounds}: training on the "
            f"{'plain sample' if model is None else 'sample drawn by round ' + str(n)} of seed "
            f"{STAND_IN_SAMPLE_SEED} ({sizes[-1]:,} rows)")
        # each round publishes to its own registry (the next round's job reads the previous one's)
        round_registry = registry if n == rounds - 1 else folder / f"registry-stand-in-{n + 1}"
        trained = measured_train(str(out / "sample-*.parquet"), round_registry, folder / f"train-stand-in-{n + 1}.log",
                                 label_maturity_days=label_maturity_days)
        if model is not None:
            shutil.rmtree(model.removesuffix("@staging"), ignore_errors=True)
        model = f"{round_registry}@staging"
    assert model is not None
    return model, {"sample_seed": STAND_IN_SAMPLE_SEED, "rounds": rounds, "sample_rows": sizes[-1],
                   "round_sample_rows": sizes, "review_threshold": trained["report"]["thresholds"]["review"]}


def series_sizes(sizes: list[int], full_up_to: int, world_rows: int | None) -> list[int]:
    """The sizes `world_series` runs: past `full_up_to`, with worlds. Each must be a number of worlds."""
    series = [n for n in sizes if world_rows is not None and n > full_up_to]
    odd = [n for n in series if world_rows is not None and n % world_rows]
    if odd:
        raise ValueError(f"past the full model each size is a number of worlds: {odd} are not multiples of {world_rows}")
    return series


def world_series(sizes: list[int], sample_rows: int, workdir: Path, shards: int, workers: int, seed: int, log: Log,
                 world_rows: int, label_maturity_days: float | None = None, hard_boost: float | None = HARD_BOOST,
                 hard_share: float | None = HARD_SHARE, stand_in_rounds: int = STAND_IN_ROUNDS) -> list[dict[str, Any]]:
    """The sizes past the full model, as one series of worlds: each Beam job run once for every size.

    A size of N transactions is the first N / `world_rows` worlds of `workdir`/worlds-`world_rows`-seed
    (world K: `world_rows` rows simulated with seed + K, its ids prefixed `kK.` from K = 1: `world_files`).
    Each world's job draws its sample at the largest fraction any size holding it
    needs (that of the smallest such size), and each size's sample is its worlds' samples redrawn at the
    size's own fraction (`resample_table`): the rows and weights a job at that fraction draws, row for
    row (tests/unit/batch/test_batch_sample.py), since the draw is a hash of (seed, wallet, day) below a
    chance that only shrinks with the fraction. So a doubling series to 20 M costs the jobs of its
    largest size, not of every size. A size's features seconds are the sum of its worlds' jobs; the
    redraw is timed apart. The stand-in is fitted once, on world 0 (its ~`sample_rows` drawn rows); every
    size is graded on world 0's held-out period (world 0 writes the full table)."""
    import pyarrow.parquet as pq

    from txguard.batch.featurize import resample_table
    from txguard.batch.jobs import JobSpec

    sizes = sorted(series_sizes(sizes, 0, world_rows))
    folder = workdir / f"worlds-{world_rows}-seed{seed}"
    worlds = world_files(folder, sizes[-1] // world_rows, world_rows, seed, log)
    history = {n: sum(rows for _, rows in worlds[: n // world_rows]) for n in sizes}
    fraction = {n: min(1.0, sample_rows / history[n]) for n in sizes}
    load = os.getloadavg()[0]
    registries: dict[str, Path] = {}
    stand_in: dict[str, Any] | None = None
    model = ""
    if hard_boost is not None:
        model, stand_in = stand_in_model(folder, worlds[0], sample_rows, shards, workers, log,
                                         label_maturity_days, stand_in_rounds, hard_boost, hard_share)
        registries["stand_in"] = folder / "registry-stand-in"
    jobs: list[Any] = []
    seconds: list[tuple[float, float]] = []
    for k, (path, rows) in enumerate(worlds):
        # the smallest size holding world k needs the largest fraction of it
        first = min(n for n in sizes if n // world_rows > k)
        job = JobSpec(input=str(path), output=str(folder / "out" / f"w{k}"), features=k == 0, sample=fraction[first],
                      shards=shards)
        if hard_boost is not None:
            job = hard_draw(job, model, hard_boost, hard_share)
        log(f"world {k + 1} of {len(worlds)} ({rows:,} transactions): Beam {'features + ' if k == 0 else ''}sample "
            f"at fraction {job.sample:.6f}" + ("" if hard_boost is None else f", hard negatives at {job.sample_hard:.4f}"))
        _, wall, cpu = beam_job(job, workers)
        jobs.append(job)
        seconds.append((wall, cpu))
    # each world's sample read once and redrawn at the fraction of every size holding it
    redraw = dict.fromkeys(sizes, 0.0)
    for n in sizes:
        shutil.rmtree(workdir / f"n{n}", ignore_errors=True)
        (workdir / f"n{n}").mkdir(parents=True)
    for k, job in enumerate(jobs):
        drawn = pq.read_table(sorted(str(f) for f in Path(job.output).glob("sample-*.parquet")))
        for n in (n for n in sizes if n // world_rows > k):
            started = time.perf_counter()
            to_hard = job.sample_hard if hard_boost is None else hard_chance(fraction[n], hard_boost)
            pq.write_table(resample_table(drawn, job.sample, job.sample_hard, fraction[n], to_hard, job.sample_seed),
                           workdir / f"n{n}" / f"sample-w{k}.parquet")
            redraw[n] += time.perf_counter() - started
    results = []
    for n in sizes:
        count = n // world_rows
        out = workdir / f"n{n}"
        sample_glob = str(out / "sample-*.parquet")
        weights = rows_by_weight(sample_glob)
        sampled = sum(weights.values())
        log(f"{history[n]:,} transactions ({count} worlds): training on the sample at fraction {fraction[n]:.6f} "
            f"({sampled:,} rows)")
        registries[f"sampled:{n}"] = out / "registry-sampled"
        done = measured_train(sample_glob, registries[f"sampled:{n}"], out / "train-sampled.log",
                              label_maturity_days=label_maturity_days)
        figures: dict[str, Any] = {
            "history_rows": history[n], "fraction": round(fraction[n], 6), "load_1m": round(load, 2),
            "worlds": {"count": count, "rows": [rows for _, rows in worlds[:count]],
                       "fractions": [round(job.sample, 6) for job in jobs[:count]]},
            "features_seconds": round(sum(w for w, _ in seconds[:count]), 2),
            "features_cpu_seconds": round(sum(c for _, c in seconds[:count]), 2),
            "redraw_seconds": round(redraw[n], 2), "sample_rows_by_weight": weights, "sample_rows": sampled,
            "sampled": training_figures(done)}
        if stand_in is not None:
            figures["stand_in"] = stand_in
        results.append(figures)
    log(f"grading every size on the first world's held-out period ({worlds[0][1]:,} transactions)")
    graded = graded_on_full(str(folder / "out" / "w0" / "features-*.parquet"), registries)
    for n, figures in zip(sizes, results, strict=True):
        figures["quality"] = {"sampled": graded[f"sampled:{n}"],
                              **({"stand_in": graded["stand_in"]} if "stand_in" in graded else {})}
    for registry in registries.values():  # the models are not needed past their figures
        shutil.rmtree(registry, ignore_errors=True)
    shutil.rmtree(folder / "out-stand-in", ignore_errors=True)
    return results


def train_figures(sizes: list[int], sample_rows: int, workdir: Path, shards: int, workers: int, full_up_to: int,
                  seed: int, log: Log, label_maturity_days: float | None = None,
                  hard_boost: float | None = HARD_BOOST, draws: int = 1,
                  hard_share: float | None = HARD_SHARE, stand_in_rounds: int = STAND_IN_ROUNDS,
                  world_rows: int | None = None) -> dict[str, Any]:
    """`hard_boost`: the hard wallet-days' chance over the fraction (`hard_chance`), None for the plain draw;
    `hard_share`: the top share of the stand-in's scores marked hard (None: its review band);
    `draws`: samples drawn and trained per size graded against the full model (`draw_seeds`), graded by
    their mean (past `full_up_to`, one);
    `stand_in_rounds`: the production stand-in's retrains (`stand_in_model`);
    `world_rows`: up to `full_up_to`, a history past this many rows is simulated and computed as worlds
    (`history_files`); past it, the sizes are multiples of `world_rows` and one series of worlds (`world_series`)."""
    from txguard.batch.jobs import JobSpec

    seeds = draw_seeds(draws)
    results = []
    one_draw: list[float] = []  # every |delta| of a single draw, over the sizes graded against the full model
    # past the full model, with worlds, the sizes are one series of world jobs (`world_series`)
    series = series_sizes(sizes, full_up_to, world_rows)
    for size in sorted(n for n in sizes if n not in series):
        folder = workdir / f"n{size}"
        inputs = history_files(folder, size, seed, world_rows, log)
        rows = sum(n for _, n in inputs)
        fraction = min(1.0, sample_rows / rows)
        with_full = rows <= full_up_to
        registries: dict[str, Path] = {}
        load = os.getloadavg()[0]
        stand_in: dict[str, Any] | None = None
        spec = JobSpec(input=str(inputs[0][0]), output=str(folder / "out"), features=True, sample=fraction, shards=shards)
        if hard_boost is not None:
            # the stand-in's sample draws ~sample_rows rows of the first world (of the one world: the fraction)
            model, stand_in = stand_in_model(folder, inputs[0], sample_rows, shards, workers, log,
                                             label_maturity_days, stand_in_rounds, hard_boost, hard_share)
            registries["stand_in"] = folder / "registry-stand-in"
            spec = hard_draw(spec, model, hard_boost, hard_share)
        figures: dict[str, Any] = {"history_rows": rows, "fraction": round(fraction, 6), "load_1m": round(load, 2)}
        if len(inputs) > 1:
            figures["worlds"] = {"count": len(inputs), "rows": [n for _, n in inputs]}
        if stand_in is not None:
            figures["stand_in"] = stand_in
        samples: dict[str, int] = {}
        trained: dict[str, dict[str, Any]] = {}
        full_table = ""
        # more draws average out one draw's luck in the deltas against the full model: without it, one draw
        drawn = seeds if with_full else seeds[:1]
        for n, draw in enumerate(drawn):
            # the first draw's jobs write the full table beside their sample (their seconds are the features');
            # the others write their sample only
            job = spec if n == 0 else replace(spec, output=str(folder / f"out-draw{draw}"), features=False,
                                              sample_seed=draw)
            log(f"{rows:,} transactions: Beam {'features + ' if n == 0 else ''}sample of seed {draw} at fraction "
                f"{fraction:.6f}" + ("" if hard_boost is None else f", hard negatives at {job.sample_hard:.4f}")
                + (f", {len(inputs)} worlds" if len(inputs) > 1 else ""))
            sampled, wall, cpu, sample_glob, features_glob = beam_worlds(job, [p for p, _ in inputs], workers,
                                                                         all_features=with_full)
            if n == 0:
                figures.update(features_seconds=round(wall, 2), features_cpu_seconds=round(cpu, 2),
                               sample_rows_by_weight=rows_by_weight(sample_glob))
                full_table = features_glob
            samples[str(draw)] = sampled
            registries[f"sampled:{draw}"] = folder / f"registry-sampled-{draw}"
            log(f"{rows:,} transactions: training on the sample of seed {draw} ({sampled:,} rows)")
            done = measured_train(sample_glob, registries[f"sampled:{draw}"],
                                  folder / f"train-sampled-{draw}.log", label_maturity_days=label_maturity_days)
            trained[str(draw)] = training_figures(done)
        first = str(drawn[0])
        figures["sample_rows"] = samples[first]
        figures["sampled"] = {**trained[first], "peak_rss_mb": max(t["peak_rss_mb"] for t in trained.values())}
        if len(drawn) > 1:
            figures["draws"] = {"seeds": drawn, "sample_rows": samples,
                                "peak_rss_mb": {d: t["peak_rss_mb"] for d, t in trained.items()}}
        if with_full:
            registries["full"] = folder / "registry-full"
            log(f"{rows:,} transactions: training on the full table")
            full = measured_train(full_table, registries["full"],
                                  folder / "train-full.log", label_maturity_days=label_maturity_days)
            figures["full"] = training_figures(full)
        # the full held-out period: of every world with the full model, else of the first world
        log(f"{rows:,} transactions: grading on the full held-out period"
            + ("" if with_full or len(inputs) == 1 else " of the first world"))
        graded = graded_on_full(full_table, registries)
        by_draw = {name.split(":")[1]: graded.pop(name) for name in list(graded) if name.startswith("sampled:")}
        figures["quality"] = {"sampled": mean_quality(by_draw), **graded}
        if len(drawn) > 1:
            figures["draws"]["quality"] = by_draw
        if "full" in graded:
            figures["quality_deltas"] = {k: round(figures["quality"]["sampled"][k] - graded["full"][k], 6)
                                         for k in QUALITY}
            each = {d: {k: round(q[k] - graded["full"][k], 6) for k in QUALITY} for d, q in by_draw.items()}
            one_draw += [abs(v) for deltas in each.values() for v in deltas.values()]
            if len(drawn) > 1:
                figures["draws"]["quality_deltas"] = each
        results.append(figures)
        for registry in registries.values():  # the models and extra samples are not needed past their figures
            shutil.rmtree(registry, ignore_errors=True)
        shutil.rmtree(folder / "out-stand-in", ignore_errors=True)
        for draw in drawn[1:]:
            shutil.rmtree(folder / f"out-draw{draw}", ignore_errors=True)
    if series:
        assert world_rows is not None
        results += world_series(series, sample_rows, workdir, shards, workers, seed, log, world_rows,
                                label_maturity_days, hard_boost, hard_share, stand_in_rounds)
    rss = [r["sampled"]["peak_rss_mb"] for r in results]
    return {"sizes": sorted(sizes), "sample_rows_target": sample_rows, "hard_boost": hard_boost,
            "hard_share": None if hard_boost is None else hard_share,
            "stand_in_rounds": None if hard_boost is None else stand_in_rounds, "world_rows": world_rows,
            "shards": shards,
            "workers": workers, "draws": len(seeds),
            "results": results, "sampled_peak_rss_mb_range": [min(rss), max(rss)] if rss else None,
            "max_abs_quality_delta": max((abs(v) for r in results for v in r.get("quality_deltas", {}).values()),
                                         default=None),
            "max_abs_quality_delta_one_draw": max(one_draw, default=None)}


def merged(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs' JSON lines as one report for `picture`: every size's result, by history rows; the
    other fields are the first report's (the recorded series, then the run at the largest history)."""
    if not reports:
        raise ValueError("no report to merge")
    results = sorted((r for report in reports for r in report["results"]), key=lambda r: r["history_rows"])
    return {**reports[0], "results": results}


def _on_first_world(result: dict[str, Any]) -> bool:
    """A size past the full model, as worlds: graded on the first world's held-out period only."""
    return "full" not in result["quality"] and "worlds" in result


def _short(n: int) -> str:
    """A history's rows for an axis: 108k, 2.17M."""
    return f"{n / 1e6:.3g}M" if n >= 1_000_000 else f"{n / 1e3:.3g}k"


def picture(report: dict[str, Any]) -> bytes:
    """Peak RSS and PR-AUC against the history's rows, sample and full table (PNG). A size without the
    full model (past `--full-up-to`) is graded on its first world's held-out period, and says so."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r["history_rows"] for r in report["results"]]
    fig, (rss, quality) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, color in (("sampled", "#1f5fa8"), ("full", "#c0504d")):
        points = [(r["history_rows"], r[name]["peak_rss_mb"]) for r in report["results"] if name in r]
        if points:
            rss.plot(*zip(*points, strict=True), "o-", color=color,
                     label="training sample" if name == "sampled" else "full table")
        # a size without the full model, as worlds, is graded on its first world's held-out period: its own line
        scores = [(r["history_rows"], r["quality"][name]["pr_auc"]) for r in report["results"]
                  if name in r["quality"] and not _on_first_world(r)]
        if scores:
            quality.plot(*zip(*scores, strict=True), "o-", color=color,
                         label=("sampled" if name == "sampled" else "full-data") + " model, every held-out row")
    apart = [(r["history_rows"], r["quality"]["sampled"]["pr_auc"]) for r in report["results"] if _on_first_world(r)]
    if apart:
        quality.plot(*zip(*apart, strict=True), "s--", color="#1f5fa8", mfc="white",
                     label="sampled model, the first world's held-out rows")
    for r in report["results"]:
        rss.annotate(f"{r['sample_rows']:,} rows\nf={r['fraction']:.2%}", (r["history_rows"], r["sampled"]["peak_rss_mb"]),
                     textcoords="offset points", xytext=(-20, -24), fontsize=7, color="#1f5fa8")
    rss.set(xscale="log", xlabel="history (transactions, log)", ylabel="peak RSS of txguard train (MB)",
            title="memory: the sample's rows, not the history's", ylim=(0, None))
    quality.set(xscale="log", xlabel="history (transactions, log)", ylabel="PR-AUC on the held-out period",
                title="quality on the held-out period")
    for ax in (rss, quality):
        ax.minorticks_off()
        ax.set_xticks(rows, [_short(n) for n in rows], fontsize=7, rotation=45)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    draw = "hard negatives drawn" if report.get("hard_boost") else "plain draw"
    fig.suptitle(f"txguard bench train: ~{report['sample_rows_target']:,} drawn legitimate rows per sample, {draw}",
                 fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
