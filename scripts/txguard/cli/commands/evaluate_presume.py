"""`txguard evaluate presume`: the presumed-fraud score chosen on a validation world of a design."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from txguard.cli.commands._group import command_group
from txguard.cli.commands.evaluate import HELP, run_reported
from txguard.evaluation.presume import DESIGNS, GRID, VALIDATION_SEED


def register(subparsers: argparse._SubParsersAction) -> None:
    group = command_group(subparsers, "evaluate", HELP)
    parser = group.add_parser(
        "presume",
        help="choose txguard's --presume-fraud-at for a design on a validation world (not a results seed)",
        description=(
            "Generates one world of a design (p2p or handbook) at a validation seed, fits txguard as `evaluate "
            "p2p` / `evaluate handbook` do at each presumed-fraud score of the grid (off included; one "
            "out-of-fold pass shared by all) and grades each on the world's test period: PR-AUC, recall at 1 % "
            "FPR, rows presumed and how many of them the truth says are fraud. The chosen score is the best "
            "PR-AUC (off on a tie): the default that design's evaluate command trains txguard with. Table on "
            "stderr; the last stdout line is one JSON object."
        ),
    )
    parser.add_argument("--design", choices=DESIGNS, required=True)
    parser.add_argument("--seed", type=int, default=VALIDATION_SEED,
                        help=f"the validation world's seed (default {VALIDATION_SEED}; not 42, 7 or 123, the results' "
                        "seeds)")
    parser.add_argument("--grid", default=",".join("0" if a is None else f"{a:g}" for a in GRID),
                        help="scores to try, comma-separated, 0 for off (default %(default)s)")
    parser.add_argument("--data-out", default="data/presume.jsonl",
                        help="where the generated data file is written (default data/presume.jsonl, git-ignored)")
    parser.set_defaults(func=run)


def _table(report: dict) -> None:
    from rich.table import Table

    from txguard.local.terminal import make_terminal

    table = Table(title=(f"{report['design']} validation world (seed {report['seed']}): "
                         f"{report['n_train_fraud_known']} training frauds known at the cut, "
                         f"{report['n_train_fraud_unknown_at_cut']} not"))
    for col in ("presume-fraud-at", "PR-AUC", "recall@1%FPR", "rows presumed (truly fraud)"):
        table.add_column(col, justify="right")
    for name, row in report["by_score"].items():
        mark = " (chosen)" if (report["chosen"] is None and name == "off") or name == (
            None if report["chosen"] is None else f"{report['chosen']:g}") else ""
        table.add_row(name + mark, f"{row['pr_auc']:.4f}", f"{row['recall_at_1pct_fpr']:.4f}",
                      f"{row['n_train_presumed_fraud']} ({row['n_train_presumed_truly_fraud']})")
    make_terminal(stderr=True).print(table)


def run(args: argparse.Namespace) -> int:
    from txguard.cli.inputs import presume_score
    from txguard.evaluation.presume import choose
    from txguard.local.terminal import make_terminal

    def work(log: Callable[[str], None]) -> dict:
        grid = [presume_score(float(part), "--grid score") for part in (p.strip() for p in args.grid.split(","))
                if part]
        if not grid:
            raise ValueError("--grid is empty")
        return choose(args.design, args.seed, tuple(grid), args.data_out, log=log)

    return run_reported(make_terminal(stderr=True), "presuming", work, _table)
