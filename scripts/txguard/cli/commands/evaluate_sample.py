"""`txguard evaluate sample`: the quality a weighted training sample costs, on the full held-out period."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from txguard.cli.commands._group import command_group
from txguard.cli.commands.evaluate import (
    HELP,
    add_data_out_argument,
    add_simulator_world_arguments,
    run_reported,
    world_tables,
)

_SHOWN = (("pr_auc", ".4f"), ("recall_at_1pct_fpr", ".4f"), ("review_alert_rate", ".5f"), ("block_alert_rate", ".5f"),
          ("review_fpr", ".5f"))


def register(subparsers: argparse._SubParsersAction) -> None:
    group = command_group(subparsers, "evaluate", HELP)
    parser = group.add_parser(
        "sample",
        help="train on a weighted training sample and on the full data, grade both on the full held-out period",
        description=(
            "Fits txguard's model twice as `txguard train` does: on every training row, and on the training sample "
            "`txguard batch run --sample FRACTION` writes (every wallet-day holding a fraud, FRACTION of "
            "the others, weighted 1/FRACTION; the hard negatives kept at --hard, as --sample-hard-model draws them, "
            "weighted 1/HARD), with thresholds derived on the sample's weighted held-out rows. Both "
            "are graded on the full, unsampled held-out period: PR-AUC, recall at 1 % FPR, alert volume at their "
            "own thresholds, the review threshold's real false positive rate. Worlds: the simulator (txguard "
            "train's split) and the Handbook data (txguard evaluate handbook's split). Table per world on stderr; "
            "the last stdout line is one JSON object with the deltas and `within_bound`."
        ),
    )
    parser.add_argument("--worlds", default="simulator,handbook", help="comma-separated: simulator, handbook")
    parser.add_argument("--fraction", type=float, default=0.05,
                        help="share of the legitimate wallet-days kept (default 0.05)")
    parser.add_argument("--sample-seed", type=int, default=0, help="seed of the sample's draw (default 0)")
    parser.add_argument("--hard", type=float, default=1.0, metavar="FRACTION",
                        help="the hard negatives' chance to be kept: wallet-days holding a row among the top "
                        "--hard-share of the production stand-in's scores, as `batch run --sample-hard-model "
                        "--sample-hard-share` draws them (default 1; 0 for the plain draw)")
    parser.add_argument("--hard-share", type=float, default=0.05, metavar="SHARE",
                        help="the top share of the stand-in's scores marked hard (default 0.05; 0: its review band)")
    add_simulator_world_arguments(parser)
    parser.add_argument("--bound", type=float, default=0.01,
                        help="largest |sampled - full| accepted for each figure (default 0.01)")
    add_data_out_argument(parser)
    parser.set_defaults(func=run)


def _title(world: dict) -> str:
    return (f"{world['world']}: {world['n_test']:,} held-out rows ({world['n_test_fraud']} fraud), all graded; "
            f"sample {world['sample_rows']:,} of {world['rows']:,} rows ({world['sample_share']:.1%}) at "
            f"fraction {world['fraction']:g}" + _hard_title(world["hard"]))


def _hard_title(hard: dict | None) -> str:
    if not hard:
        return ", plain draw"
    stand_in = hard["production_stand_in"]
    band = "review band" if hard.get("share") is None else f"top {hard['share']:.0%}"
    return (f", hard negatives ({band}) kept at {hard['fraction']:g} ({stand_in['hard_legit_share']['train']:.2%} of the "
            f"legitimate training rows; production stand-in PR-AUC {stand_in['pr_auc']:.4f})")


def _rows(table: Any, world: dict) -> None:
    for name in ("full", "sampled"):
        m = world[name]
        table.add_row(name, f"{world['train_rows'][name]:,}", *(format(m[k], form) for k, form in _SHOWN),
                      f"{m['alerts']['review']} / {m['alerts']['block']}")
    d = world["deltas"]
    ok = "[green]within[/green]" if world["within_bound"] else "[red]outside[/red]"
    table.add_row("delta", "", *(format(d[k], "+.4f") if k in d else "" for k, _ in _SHOWN),
                  f"{ok} {world['bound']:g}")


def _table(report: dict) -> None:
    world_tables(report, _title, ("model", "train rows", *(k for k, _ in _SHOWN), "alerts review / block"), _rows)


def run(args: argparse.Namespace) -> int:
    from txguard.evaluation.sample import run_sample_comparison
    from txguard.local.terminal import make_terminal

    worlds = tuple(w.strip() for w in args.worlds.split(",") if w.strip())

    def work(log: Callable[[str], None]) -> dict:
        return run_sample_comparison(worlds, args.fraction, args.sample_seed, args.seed, args.data_out, args.days,
                                     args.wallets, args.bound, args.hard or None, log=log,
                                     hard_share=args.hard_share or None)

    return run_reported(make_terminal(stderr=True), "sampling", work, _table)
