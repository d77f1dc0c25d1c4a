"""`txguard evaluate tune`: txguard's hyperparameters chosen on the Handbook data's training period."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from txguard.cli.commands._group import command_group
from txguard.cli.commands.evaluate import HELP, add_data_arguments, add_data_out_argument, run_reported

_SHOWN = ("pr_auc", "roc_auc", "recall_at_1pct_fpr")


def register(subparsers: argparse._SubParsersAction) -> None:
    group = command_group(subparsers, "evaluate", HELP)
    parser = group.add_parser(
        "tune",
        help="choose the fraud weight and tree shape on a validation slice of the training period",
        description=(
            "Builds the data and the split of `txguard evaluate handbook` (same options, same seed), keeps "
            "only the TRAINING period, fits txguard's model (its training code, one TrainConfig per "
            "candidate) on its first --fit-days days and scores the rest with the ONNX model; the delay and "
            "test periods are never read. Candidates, one factor at a time: each --fraud-weights value with "
            "TrainConfig's tree shape, then each --leaves and --min-leaf value at --base-weight (--grid: "
            "every combination). The chosen one has the highest validation PR-AUC. Table on stderr; the "
            "last stdout line is one JSON object. A few minutes with the defaults on a 2-vCPU machine."
        ),
    )
    add_data_arguments(parser)
    parser.add_argument("--fit-days", type=int, default=14,
                        help="training days the model is fitted on; the remaining training days validate (default 14)")
    parser.add_argument("--fraud-weights", default="1,5,10,20",
                        help="fraud weights to try, comma-separated (default 1,5,10,20)")
    parser.add_argument("--leaves", default="15",
                        help="leaf counts to try besides TrainConfig's 31, comma-separated (default 15; '' for none)")
    parser.add_argument("--min-leaf", default="100",
                        help="least rows a leaf to try besides TrainConfig's 20, comma-separated (default 100; '' for none)")
    parser.add_argument("--base-weight", type=float, default=1.0,
                        help="fraud weight of the --leaves and --min-leaf candidates (default 1: no weight)")
    parser.add_argument("--grid", action="store_true", help="try every combination instead of one factor at a time")
    parser.add_argument("--max-iter", type=int, default=200, help="boosting iterations of every candidate (default 200)")
    parser.add_argument("--drop-known-compromised", action="store_true",
                        help="leave out validation transactions of customers already known to be defrauded, "
                             "as `evaluate handbook` does on the test period (default: every training row of "
                             "the validation days)")
    add_data_out_argument(parser)
    parser.set_defaults(func=run)


def _numbers(option: str, text: str, kind: type) -> list:
    try:
        return [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{option}: expected comma-separated {kind.__name__} values, got {text!r}") from None


def _table(report: dict) -> None:
    from rich.table import Table

    from txguard.local.terminal import make_terminal

    split = report["split"]
    table = Table(title=(
        f"validation: {split['n_validation']} transactions ({split['n_validation_fraud']} fraud), "
        f"{split['validation_start'][:10]} to {split['validation_end'][:10]}; fitted on {split['n_fit']} "
        f"({split['n_fit_fraud']} fraud) from {split['fit_start'][:10]}; test period from "
        f"{split['test_start'][:10]} not used"
        + (f"; {split['known_compromised_dropped']} rows of known-defrauded customers left out"
           if split["known_compromised_dropped"] else "")
    ))
    for col in ("candidate", *(f"validation {k}" for k in _SHOWN), "fit s"):
        table.add_column(col)
    for row in report["candidates"]:
        mark = row["name"] == report["chosen"]["name"]
        cells = [row["name"], *(f"{row[k]:.4f}" for k in _SHOWN), f"{row['fit_seconds']:.1f}"]
        table.add_row(*(f"[bold]{c}[/bold]" if mark else c for c in cells))
    make_terminal(stderr=True).print(table)


def run(args: argparse.Namespace) -> int:
    from txguard.evaluation.compare import SplitDays
    from txguard.evaluation.handbook_data import HandbookConfig
    from txguard.evaluation.tune import candidates, run_tuning
    from txguard.local.terminal import make_terminal
    from txguard.training.train import TrainConfig

    terminal = make_terminal(stderr=True)

    def work(log: Callable[[str], None]) -> dict:
        if args.max_iter < 1:
            raise ValueError(f"--max-iter must be >= 1, got {args.max_iter}")
        base = TrainConfig(seed=args.seed, max_iter=args.max_iter)
        grid = candidates(_numbers("--fraud-weights", args.fraud_weights, float),
                          _numbers("--leaves", args.leaves, int), _numbers("--min-leaf", args.min_leaf, int),
                          args.base_weight, args.grid, base)
        days = SplitDays(args.history_days, args.train_days, args.delay_days, args.test_days)
        return run_tuning(HandbookConfig(customers=args.customers, terminals=args.terminals, seed=args.seed), days,
                          args.fit_days, grid, args.data_out, args.drop_known_compromised, base, log=log)

    return run_reported(terminal, "tuning", work, _table)
