"""`txguard bench features`: rows/s of building training features, the reference replay
(`timeline.replay`) vs its columnar twin (`timeline_columns.replay_columns`), on the same
Handbook-style rows in one run (scripts/txguard/bench/features.py).

Progress and a summary on stderr; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json

from txguard.cli.commands._group import command_group


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = command_group(subparsers, "bench", "benchmarks (scoring function, local pipeline end to end)")
    p = bench.add_parser(
        "features",
        help="training features: rows/s of the reference replay vs the columnar twin, same rows",
        description="Generate Handbook-style rows (customers paying terminals, four fraud kinds, labels known "
        "7 days later), build every row's model input with the reference replay (timeline.replay, row by "
        "row, what training ran before) and with the columnar twin datasets are built with; report rows per "
        "CPU-second of each, the ratio, and whether the rows are identical. Run it pinned to one core "
        "(taskset -c 0) for a one-core figure; figures are only comparable within one run.",
    )
    p.add_argument("--customers", type=int, default=1000, help="customers (default 1000)")
    p.add_argument("--terminals", type=int, default=2000, help="terminals (default 2000)")
    p.add_argument("--days", type=int, default=72, help="days (default 72, as `txguard evaluate handbook`)")
    p.add_argument("--seed", type=int, default=42, help="data seed (default 42)")
    p.add_argument("--reference-rows", type=int, default=0,
                   help="run the (slow) reference on the first N rows only (default 0: all rows)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from txguard.bench.features import feature_figures

    terminal = Console(stderr=True)
    report = feature_figures(args.customers, args.terminals, args.days, args.seed, args.reference_rows,
                             log=lambda m: terminal.print(f"[dim]{m}[/dim]"))
    ref, twin = report["reference"], report["twin"]
    terminal.print(f"reference replay: {ref['rows']:,} rows in {ref['cpu_s']:.1f} CPU-s = {ref['rows_per_cpu_s']:,.0f} "
                   f"rows/s; twin: {twin['rows']:,} rows in {twin['cpu_s']:.1f} CPU-s = {twin['rows_per_cpu_s']:,.0f} "
                   f"rows/s ({report['speedup']}x; identical rows: {report['identical_rows']})")
    print(json.dumps(report, separators=(",", ":")))
    return 0 if report["identical_rows"] else 1
