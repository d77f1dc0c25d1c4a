"""`txguard evaluate handbook`: txguard against the Fraud Detection Handbook's recipe on its data;
`txguard evaluate tune`: txguard's hyperparameters chosen on that data's training period only."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from txguard.cli.commands._group import command_group
from txguard.evaluation import CLASSIFIERS
from txguard.evaluation.presume import HANDBOOK_PRESUME_CHOSEN, HANDBOOK_PRESUME_FRAUD_AT

HELP = "evaluate txguard on independent data: against a published recipe, and to choose its hyperparameters"
_MAIN = ("pr_auc", "roc_auc", "recall_at_1pct_fpr", "wallet_precision_at_100")


def register(subparsers: argparse._SubParsersAction) -> None:
    group = command_group(subparsers, "evaluate", HELP)
    parser = group.add_parser(
        "handbook",
        help="generate the Handbook's simulated data, run txguard and the Handbook's recipe on one split",
        description=(
            "Generates customers paying terminals with four fraud scenarios and a label delay (the Fraud "
            "Detection Handbook's simulator design, plus card testing), writes it as a `txguard train --data` "
            "file, then trains txguard (its training code path, ONNX scores) and the Handbook's baseline "
            "recipe (its features, five classifiers) on the same rows: history, train, delay and test "
            "periods. Tables on stderr; the last stdout line is one JSON object. A few minutes with the "
            "defaults on a 2-vCPU machine (docs/evaluation.md)."
        ),
    )
    add_data_arguments(parser)
    parser.add_argument("--classifiers", default=",".join(CLASSIFIERS),
                        help=f"recipe classifiers, comma-separated (default all: {','.join(CLASSIFIERS)})")
    parser.add_argument("--keep-known-compromised", action="store_true",
                        help="keep test transactions of customers already known to be defrauded "
                             "(the Handbook drops them)")
    add_presume_argument(parser, HANDBOOK_PRESUME_FRAUD_AT, HANDBOOK_PRESUME_CHOSEN)
    add_data_out_argument(parser)
    parser.set_defaults(func=run)


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The data and its periods: `evaluate tune` builds exactly what `evaluate handbook` does."""
    parser.add_argument("--seed", type=int, default=42, help="data and model seed (default 42)")
    parser.add_argument("--customers", type=int, default=5000, help="customers (default 5000, as the Handbook)")
    parser.add_argument("--terminals", type=int, default=10000, help="terminals (default 10000, as the Handbook)")
    parser.add_argument("--history-days", type=int, default=30, help="days that only feed features (default 30)")
    parser.add_argument("--train-days", type=int, default=21, help="training days (default 21)")
    parser.add_argument("--delay-days", type=int, default=7,
                        help="label delay, and the gap between training and test (default 7)")
    parser.add_argument("--test-days", type=int, default=14, help="test days (default 14)")


def add_presume_argument(parser: argparse.ArgumentParser, default: float | None, chosen: str) -> None:
    """txguard's `--presume-fraud-at` for one design, its default chosen on a validation seed of it."""
    parser.add_argument("--presume-fraud-at", type=float, default=default or 0.0, metavar="SCORE",
                        help="txguard's training: a row nobody reported at the cut trains as fraud when a model fitted "
                             f"without its wallet scores it at least SCORE (txguard train --presume-fraud-at; {chosen}; "
                             "0: off)")


def presume_config(seed: int, score: float) -> Any:
    """txguard's TrainConfig for an evaluation: the model seed and the presumed-fraud score (0: off)."""
    from txguard.cli.inputs import presume_score
    from txguard.training.train import TrainConfig

    return TrainConfig(seed=seed, presume_fraud_at=presume_score(score))


def add_simulator_world_arguments(parser: argparse.ArgumentParser) -> None:
    """The simulator's world as `txguard train` simulates it: --seed, --days, --wallets."""
    parser.add_argument("--seed", type=int, default=42, help="data and model seed (default 42)")
    parser.add_argument("--days", type=int, default=30, help="simulator world: days (default 30, as txguard train)")
    parser.add_argument("--wallets", type=int, default=2000,
                        help="simulator world: wallets (default 2000, as txguard train)")


def add_data_out_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-out", default="data/handbook.jsonl",
                        help="where the generated data file is written (default data/handbook.jsonl, git-ignored)")


def world_tables(report: dict, title: Callable[[dict], str], columns: tuple[str, ...],
                 fill: Callable[[Any, dict], None]) -> None:
    """One table per world of a report (`evaluate calibration`, `evaluate sample`), on stderr:
    `title(world)`, the columns, then `fill(table, world)` adds the rows."""
    from rich.table import Table

    from txguard.local.terminal import make_terminal

    terminal = make_terminal(stderr=True)
    for world in report["worlds"]:
        table = Table(title=title(world))
        for col in columns:
            table.add_column(col)
        fill(table, world)
        terminal.print(table)


def _table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    terminal = Console(stderr=True)
    split, rec = report["split"], report["recipe"]
    table = Table(title=(
        f"held-out: {split['n_test']} transactions ({split['n_test_fraud']} fraud), "
        f"{split['test_start'][:10]} to {split['test_end'][:10]}; trained on {split['n_train']}"
    ))
    for col in ("metric", "txguard", f"Handbook recipe ({rec['classifier']})", "best possible"):
        table.add_column(col)
    for key in _MAIN:
        best = f"{report['txguard']['wallet_precision_at_100_ceiling']:.4f}" if key == "wallet_precision_at_100" else ""
        table.add_row(key, f"{report['txguard'][key]:.4f}", f"{rec[key]:.4f}", best)
    for name, n in split["test_fraud_by_scenario"].items():
        table.add_row(
            f"recall@1%FPR {name} ({n})",
            f"{report['txguard']['recall_at_1pct_fpr_by_scenario'].get(name, 0.0):.4f}",
            f"{rec['recall_at_1pct_fpr_by_scenario'].get(name, 0.0):.4f}", "",
        )
    terminal.print(table)
    t = report["txguard"]
    calibrated = Table(title=f"txguard's calibration on the test rows (Platt, fitted on {t['n_calibration']} training "
                             "rows held out from the trees)")
    for col in ("metric", "served (calibrated)", "trees alone"):
        calibrated.add_column(col)
    for key, form in (("brier", ".5f"), ("ece", ".4f"), ("ece_max_gap", ".4f"), ("score_to_fraud_rate", ".3f"),
                      ("pr_auc", ".4f")):
        calibrated.add_row(key, format(t[key], form), format(t[key + "_uncalibrated"], form))
    terminal.print(calibrated)
    per = Table(title="the recipe's classifiers, same rows")
    for col in ("classifier", *_MAIN):
        per.add_column(col)
    for name, m in report["recipe_classifiers"].items():
        per.add_row(name, *(f"{m[k]:.4f}" for k in _MAIN))
    terminal.print(per)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from txguard.evaluation.compare import SplitDays, run_comparison
    from txguard.evaluation.handbook_data import HandbookConfig

    terminal = Console(stderr=True)
    classifiers = tuple(c.strip() for c in args.classifiers.split(",") if c.strip())
    unknown = sorted(set(classifiers) - set(CLASSIFIERS))
    if unknown or not classifiers:
        from txguard.cli.errors import usage

        raise usage(f"--classifiers names unknown classifiers {unknown}" if unknown else "--classifiers is empty",
                    "no such recipe classifier" if unknown else "nothing to compare with",
                    f"choose from {', '.join(CLASSIFIERS)}")
    return run_reported(terminal, "evaluating", lambda log: run_comparison(
        HandbookConfig(customers=args.customers, terminals=args.terminals, seed=args.seed),
        SplitDays(args.history_days, args.train_days, args.delay_days, args.test_days),
        classifiers, args.data_out, not args.keep_known_compromised,
        train_config=presume_config(args.seed, args.presume_fraud_at), log=log,
    ), _table)


def label_command(label: str) -> str:
    return {"evaluating": "handbook", "calibrating": "calibration", "sampling": "sample",
            "presuming": "presume"}.get(label, "tune")


def run_reported(terminal: Any, label: str, work: Callable[[Callable[[str], None]], dict],
                 table: Callable[[dict], None]) -> int:
    """The evaluate commands' shape: `work(log)` under a status line, a bad input (ValueError) as
    one error line and exit 2, else the report's table on stderr and its JSON as the last line."""
    from txguard.cli.errors import usage

    try:
        with terminal.status(label) as status:
            def log(message: str) -> None:
                status.update(message)
                terminal.log(message)

            report = work(log)
    except ValueError as exc:
        raise usage(str(exc), fix=f"see `txguard evaluate {label_command(label)} --help`") from None
    table(report)
    sys.stdout.flush()
    print(json.dumps(report, sort_keys=True))
    return 0
