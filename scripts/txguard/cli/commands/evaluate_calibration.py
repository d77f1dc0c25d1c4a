"""`txguard evaluate calibration`: Platt against isotonic calibration on the same trees, both worlds."""

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

_SHOWN = (("pr_auc", ".6f"), ("brier", ".5f"), ("ece", ".4f"), ("ece_max_gap", ".4f"), ("score_to_fraud_rate", ".3f"))


def register(subparsers: argparse._SubParsersAction) -> None:
    group = command_group(subparsers, "evaluate", HELP)
    parser = group.add_parser(
        "calibration",
        help="compare Platt and isotonic calibration of txguard's scores on the held-out days",
        description=(
            "Fits txguard's model as `txguard train` does (trees on the training rows but a calibration slice: "
            "the most recent training rows whose labels are mature), then scores the held-out rows three ways: "
            "the trees alone, Platt (what a published version serves) and isotonic regression on the same slice. "
            "Worlds: the simulator with `txguard train`'s split, the Handbook data with `txguard evaluate "
            "handbook`'s split, and --data FILE with `txguard train`'s split. Table per world on stderr; the "
            "last stdout line is one JSON object. A few minutes with the defaults on a 2-vCPU machine."
        ),
    )
    parser.add_argument("--worlds", default="simulator,handbook",
                        help="comma-separated: simulator, handbook (default both; '' for none, with --data)")
    parser.add_argument("--data", help="also a `txguard train --data` file, with txguard train's split")
    add_simulator_world_arguments(parser)
    add_data_out_argument(parser)
    parser.set_defaults(func=run)


def _title(world: dict) -> str:
    return (f"{world['world']}: {world['n_test']} held-out rows (fraud rate {world['held_out_fraud_rate']:.4f}); "
            f"calibration slice {world['n_calibration']} rows ({world['n_calibration_fraud']} fraud), "
            f"{world['calibration_from'][:10]} to {world['calibration_until'][:10]}, labels mature after "
            f"{world['label_maturity_days']:.1f} days")


def _rows(table: Any, world: dict) -> None:
    for name, m in world["methods"].items():
        table.add_row(name, *(format(m[k], form) for k, form in _SHOWN),
                      f"{m['alerts']['review']} / {m['alerts']['block']}", f"{m['distinct_scores']:,}")


def _table(report: dict) -> None:
    world_tables(report, _title, ("method", *(k for k, _ in _SHOWN), "alerts review / block", "distinct scores"),
                 _rows)


def run(args: argparse.Namespace) -> int:
    from txguard.cli.inputs import require_rows
    from txguard.evaluation.calibration import run_calibration_comparison
    from txguard.local.terminal import make_terminal

    worlds = tuple(w.strip() for w in args.worlds.split(",") if w.strip())
    if args.data:
        require_rows(args.data, "transactions", "give a `txguard train --data` file (`txguard simulate --out tx.csv`)")

    def work(log: Callable[[str], None]) -> dict:
        if not worlds and not args.data:
            raise ValueError("--worlds is empty and no --data: nothing to evaluate")
        return run_calibration_comparison(worlds, args.seed, args.data, args.data_out, args.days, args.wallets,
                                          log=log)

    return run_reported(make_terminal(stderr=True), "calibrating", work, _table)
