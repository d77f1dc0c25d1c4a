"""`txguard bench train`: full history against training sample as the history doubles
(scripts/txguard/bench/train.py). Table on stderr; the last line is one JSON object."""

from __future__ import annotations

import argparse
import json

from txguard.cli.commands._group import command_group
from txguard.cli.commands.bench_batch import add_beam_bench_arguments

DEFAULT_WORKDIR = ".txguard/bench-train"


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = command_group(subparsers, "bench", "benchmarks (scoring function, local pipeline end to end)")
    p = bench.add_parser(
        "train",
        help="training on a weighted sample vs the full table as the history doubles: RSS, seconds, quality",
        description="For each --sizes N: simulate N labelled transactions, run the Beam job writing the full "
        "feature table and a training sample of about --sample-rows drawn rows (fraction = sample-rows / N; hard "
        "negatives drawn by a production stand-in fitted on another seed's plain sample, as `evaluate sample` does), "
        "then `txguard train --features` on the sample (and on the full table up to --full-up-to rows), each in "
        "its own process: peak RSS, CPU and wall seconds; both models graded on the full held-out period. Run it "
        "niced on a shared machine; figures are comparable within one run.",
    )
    p.add_argument("--sample-rows", type=int, default=25_000,
                   help="legitimate rows the sample draws, about (default 25000): fraction = this / N")
    p.add_argument("--full-up-to", type=int, default=2_000_000,
                   help="also train on the full table up to this many rows (default 2000000)")
    p.add_argument("--hard-boost", type=float, default=20.0,
                   help="draw hard negatives as `batch run --sample-hard-model` does, by a production stand-in trained "
                   "on another seed's plain sample, their wallet-days kept at this many times the fraction, at most "
                   "1 (default 20: all of them from a 5%% sample up, a constant number below); 0: the plain draw")
    p.add_argument("--hard-share", type=float, default=0.05,
                   help="the top share of the stand-in's scores marked hard, as `batch run --sample-hard-share` "
                   "(default 0.05); 0: its review band")
    p.add_argument("--stand-in-rounds", type=int, default=2,
                   help="the production stand-in's retrains: 1 = fitted on another seed's plain sample (a team's first "
                   "retrain), each further round on that seed's sample drawn by the previous round's model (default 2)")
    p.add_argument("--world-rows", type=int, default=None,
                   help="simulate a history past this many rows as worlds of at most this size that share no entity, "
                   "one Beam job each (the DirectRunner holds a job's shuffles in memory); the sample is their union. "
                   "Past --full-up-to the sizes must be multiples of it: they are then one series over shared worlds, "
                   "each world's job run once and each size's sample redrawn from their samples at its own fraction, "
                   "graded on the first world's held-out period (default: one world)")
    p.add_argument("--draws", type=int, default=1,
                   help="samples drawn and trained per size, with seeds 0, 2, 3, ...; the quality and its deltas are "
                   "their mean, each draw's figures beside it (default 1)")
    p.add_argument("--workers", type=int, default=1, help="DirectRunner worker processes (default 1)")
    p.add_argument("--seed", type=int, default=21, help="simulation seed (default 21)")
    p.add_argument("--label-maturity-days", type=float, default=None,
                   help="passed to txguard train (default: its estimate from the labels known at the cut)")
    p.add_argument("--picture", default=None, help="also draw peak RSS and PR-AUC against the history here (PNG)")
    p.add_argument("--render", default=None, metavar="REPORT[,REPORT...]",
                   help="draw --picture from earlier runs' JSON lines (files, comma-separated: their sizes in one "
                   "picture) instead of running")
    add_beam_bench_arguments(p, "50000,100000,200000", "history sizes, a doubling series", 16, DEFAULT_WORKDIR)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from txguard.bench.train import merged, picture, series_sizes, train_figures

    terminal = Console(stderr=True)
    if args.render:
        if not args.picture:
            terminal.print("[red]--render needs --picture[/red]")
            return 2
        reports = [json.loads(Path(f).read_text().splitlines()[-1]) for f in args.render.split(",") if f.strip()]
        Path(args.picture).write_bytes(picture(merged(reports)))
        print(json.dumps({"picture": args.picture}))
        return 0
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        terminal.print(f"[dim]{message}[/dim]")

    if args.hard_boost < 0:
        terminal.print(f"[red]--hard-boost must be >= 0 (0: the plain draw), got {args.hard_boost}[/red]")
        return 2
    if not 0 <= args.hard_share <= 1:
        terminal.print(f"[red]--hard-share must be in [0, 1] (0: the review band), got {args.hard_share}[/red]")
        return 2
    if args.stand_in_rounds < 1:
        terminal.print(f"[red]--stand-in-rounds must be >= 1, got {args.stand_in_rounds}[/red]")
        return 2
    if args.world_rows is not None and args.world_rows < 1:
        terminal.print(f"[red]--world-rows must be >= 1, got {args.world_rows}[/red]")
        return 2
    if args.draws < 1:
        terminal.print(f"[red]--draws must be >= 1, got {args.draws}[/red]")
        return 2
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    try:
        series_sizes(sizes, args.full_up_to, args.world_rows)  # before any work
    except ValueError as exc:
        terminal.print(f"[red]{exc} (--world-rows)[/red]")
        return 2
    report = train_figures(sizes, args.sample_rows, workdir, args.shards, args.workers, args.full_up_to, args.seed,
                           log, args.label_maturity_days, args.hard_boost or None, args.draws,
                           args.hard_share or None, args.stand_in_rounds, args.world_rows)
    drawn = f", the mean of {args.draws} draws (lowest-highest)" if args.draws > 1 else ""
    table = Table(title=f"training on a weighted sample (~{args.sample_rows:,} drawn rows{drawn}) vs the full history")
    for col in ("history rows", "fraction", "sample rows", "features s (CPU s)", "sampled: peak RSS MB, train s",
                "full: peak RSS MB, train s", "PR-AUC full / sampled", "recall@1%FPR full / sampled", "load"):
        table.add_column(col, justify="right")
    def sampled(r: dict, key: str) -> str:
        mean = f"{r['quality']['sampled'][key]:.4f}"
        if "draws" not in r:
            return mean
        each = [q[key] for q in r["draws"]["quality"].values()]
        return f"{mean} ({min(each):.4f}-{max(each):.4f})"

    for r in report["results"]:
        q = r["quality"]
        full = r.get("full")
        table.add_row(
            f"{r['history_rows']:,}", f"{r['fraction']:.4f}", f"{r['sample_rows']:,}",
            f"{r['features_seconds']:.1f} ({r['features_cpu_seconds']:.1f})",
            f"{r['sampled']['peak_rss_mb']:.0f}, {r['sampled']['train_seconds']}",
            f"{full['peak_rss_mb']:.0f}, {full['train_seconds']}" if full else "-",
            f"{q['full']['pr_auc']:.4f} / {sampled(r, 'pr_auc')}" if "full" in q else f"- / {sampled(r, 'pr_auc')}",
            f"{q['full']['recall_at_1pct_fpr']:.4f} / {sampled(r, 'recall_at_1pct_fpr')}" if "full" in q
            else f"- / {sampled(r, 'recall_at_1pct_fpr')}",
            f"{r['load_1m']:.1f}")
    terminal.print(table)
    if args.picture:
        Path(args.picture).write_bytes(picture(report))
        report["picture"] = args.picture
    print(json.dumps(report, separators=(",", ":")))
    return 0
