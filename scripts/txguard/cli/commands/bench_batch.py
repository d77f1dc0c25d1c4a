"""`txguard bench batch`: Beam (DirectRunner, 1 and 2 workers) next to the single-process replay, and
score-file's columnar path next to its per-row path, in one run (scripts/txguard/bench/batch.py).

Tables on stderr; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json

from txguard.cli.commands._group import command_group

DEFAULT_WORKDIR = ".txguard/bench-batch"


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = command_group(subparsers, "bench", "benchmarks (scoring function, local pipeline end to end)")
    p = bench.add_parser(
        "batch",
        help="batch jobs: Beam with 1 and 2 workers vs one process; score-file columnar vs per-row",
        description="For each --sizes N: featurise and score N simulated raw transactions in one process, then "
        "with the Beam pipeline on the DirectRunner (1 worker in process, 2 worker processes); report tx/s, "
        "tx/s per worker core and the size where Beam on 2 workers overtakes one process. Then score "
        "--score-file-size enriched transactions with score-file's per-row and columnar paths (tx per "
        "CPU-second, ratio, identical output). Figures are only comparable within one run.",
    )
    p.add_argument("--score-file-size", type=int, default=100_000,
                   help="enriched transactions for the score-file comparison (default 100000; 0 skips it)")
    p.add_argument("--skip-beam", action="store_true", help="only the score-file comparison")
    p.add_argument("--model-uri", default=None, help="model to score with (default: a small one trained once)")
    add_beam_bench_arguments(p, "5000,20000,50000", "input sizes for the Beam comparison", 64, DEFAULT_WORKDIR)
    p.set_defaults(func=run)


def add_beam_bench_arguments(p: argparse.ArgumentParser, sizes: str, sizes_are: str, shards: int,
                             workdir: str) -> None:
    """What the benchmarks that run the Beam job (`bench batch`, `bench train`) both take: the sizes, the
    job's shards, the folder of their data and outputs."""
    p.add_argument("--sizes", default=sizes, help=f"comma-separated {sizes_are} (default {sizes})")
    p.add_argument("--shards", type=int, default=shards,
                   help="replay groups per family of the Beam job: wallets, label ledger, counterparties, devices, "
                   f"wallet labels (default {shards})")
    p.add_argument("--workdir", default=workdir, help=f"data, models and outputs (default {workdir})")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from txguard.bench.batch import batch_figures, score_file_figures

    terminal = Console(stderr=True)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        terminal.print(f"[dim]{message}[/dim]")

    report: dict = {}
    if not args.skip_beam:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        report["beam"] = beam = batch_figures(sizes, args.model_uri, workdir, args.shards, log)
        table = Table(title=f"featurise + score raw transactions, Beam with {beam['shards']} shards per family: "
                      "tx/s (tx/s per worker core) [tx per CPU-second]")
        for col in ("size", "one process", "Beam x1", "Beam x2"):
            table.add_column(col, justify="right")
        for r in beam["results"]:
            table.add_row(f"{r['size']:,}", *(f"{r[k]['tx_per_s']:,.0f} ({r[k]['tx_per_s_per_core']:,.0f}) "
                                              f"[{r[k]['tx_per_cpu_s']:,.0f}]" for k in ("single", "beam1", "beam2")))
        terminal.print(table)
        terminal.print(f"Beam x2 overtakes one process at {beam['beam2_overtakes_at'] or 'no measured size'} "
                       f"(fitted estimate: {beam['beam2_overtakes_at_estimate'] or 'never'})")
    if args.score_file_size:
        report["score_file"] = sf = score_file_figures(args.score_file_size, args.model_uri, workdir, log)
        terminal.print(
            f"score-file, {sf['size']:,} enriched tx: per-row JSONL {sf['per_row_jsonl']['tx_per_cpu_s']:,.0f}, "
            f"columnar JSONL {sf['columnar_jsonl']['tx_per_cpu_s']:,.0f}, columnar Parquet "
            f"{sf['columnar_parquet']['tx_per_cpu_s']:,.0f} tx per CPU-second ({sf['speedup_jsonl']}x on JSONL; "
            f"identical output: {sf['identical_output']})")
    print(json.dumps(report, separators=(",", ":")))
    return 0
