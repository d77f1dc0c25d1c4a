"""`txguard evaluate p2p`: txguard against a competent baseline on a peer-to-peer mobile-money world."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from txguard.cli.commands._group import command_group
from txguard.cli.commands.evaluate import HELP, add_presume_argument, presume_config, run_reported
from txguard.evaluation.presume import P2P_PRESUME_CHOSEN, P2P_PRESUME_FRAUD_AT

_MAIN = ("pr_auc", "roc_auc", "recall_at_1pct_fpr", "wallet_precision_at_100")


def register(subparsers: argparse._SubParsersAction) -> None:
    group = command_group(subparsers, "evaluate", HELP)
    parser = group.add_parser(
        "p2p",
        help="generate a peer-to-peer mobile-money world, run txguard and a competent baseline on one split",
        description=(
            "Generates people sending each other money, paying merchants and using cash agents, with four "
            "kinds of fraud (account takeover, mule rings, push-payment scams, credential testing), the "
            "honest traffic that looks like each, and labels that arrive days to weeks late or never; writes "
            "it as a `txguard train --data` file; trains txguard (its training code path, ONNX scores) and a "
            "baseline (rolling per-wallet, per-payee and per-device features and known-fraud counts, the same "
            "gradient boosting) on the same rows: history, train, label-maturity delay, test. Training uses "
            "the labels known when the test starts; the test is graded on the truth. Also: a shuffled-label "
            "check, recall per kind with its noise, and the honest patterns at the top of each ranking. "
            "Tables on stderr; the last stdout line is one JSON object. A few minutes on a 2-vCPU machine "
            "(docs/evaluation.md)."
        ),
    )
    parser.add_argument("--seed", type=int, default=42, help="world and model seed (default 42)")
    parser.add_argument("--users", type=int, default=8000, help="people with a wallet (default 8000)")
    parser.add_argument("--history-days", type=int, default=30, help="days that only feed features (default 30)")
    parser.add_argument("--train-days", type=int, default=28, help="training days (default 28)")
    parser.add_argument("--delay-days", type=int, default=7,
                        help="label-maturity window left out between training and test (default 7)")
    parser.add_argument("--test-days", type=int, default=14, help="test days (default 14)")
    parser.add_argument("--no-shuffled-check", action="store_true",
                        help="skip the shuffled-label check (two more fits)")
    add_presume_argument(parser, P2P_PRESUME_FRAUD_AT, P2P_PRESUME_CHOSEN)
    parser.add_argument("--data-out", default="data/p2p.jsonl",
                        help="where the generated data file is written (default data/p2p.jsonl, git-ignored)")
    parser.set_defaults(func=run)


def _table(report: dict) -> None:
    from rich.table import Table

    from txguard.local.terminal import make_terminal

    split = report["split"]
    table = Table(title=(
        f"held-out: {split['n_test']} transactions ({split['n_test_fraud']} fraud), "
        f"{split['test_start'][:10]} to {split['test_end'][:10]}; trained on {split['n_train']} "
        f"({split['n_train_fraud']} frauds known at the cut, {split['n_train_fraud_unknown_at_cut']} not yet)"
    ))
    for col in ("metric", "txguard", "baseline", "best possible"):
        table.add_column(col)
    for key in _MAIN:
        best = f"{report['txguard']['wallet_precision_at_100_ceiling']:.4f}" if key == "wallet_precision_at_100" else ""
        table.add_row(key, f"{report['txguard'][key]:.4f}", f"{report['baseline'][key]:.4f}", best)
    for name, row in report["by_kind"].items():
        table.add_row(f"recall@1%FPR {name} ({row['frauds']})", f"{row['ours']:.4f}", f"{row['theirs']:.4f}",
                      f"{row['verdict']} (noise {row['noise']:.3f})")
    checked = report.get("shuffled_labels")
    if checked:
        table.add_row("PR-AUC on shuffled labels", f"{checked['txguard_pr_auc']:.4f}",
                      f"{checked['baseline_pr_auc']:.4f}", f"fraud rate {checked['test_fraud_rate']:.4f}")
    terminal = make_terminal(stderr=True)
    terminal.print(table)
    top = Table(title="what the top of each ranking gets wrong: the 200 highest-scored legitimate test rows")
    for col in ("honest pattern", "txguard", "baseline"):
        top.add_column(col)
    patterns = report["top_legit_patterns"]
    for name in sorted(set(patterns["txguard"]) | set(patterns["baseline"]),
                       key=lambda n: -(patterns["txguard"].get(n, 0) + patterns["baseline"].get(n, 0))):
        top.add_row(name, str(patterns["txguard"].get(name, 0)), str(patterns["baseline"].get(name, 0)))
    terminal.print(top)


def run(args: argparse.Namespace) -> int:
    from txguard.evaluation.compare import SplitDays
    from txguard.evaluation.p2p_compare import run_p2p
    from txguard.evaluation.p2p_data import P2PConfig
    from txguard.local.terminal import make_terminal

    def work(log: Callable[[str], None]) -> dict:
        days = SplitDays(args.history_days, args.train_days, args.delay_days, args.test_days)
        return run_p2p(P2PConfig(users=args.users, seed=args.seed), days, args.data_out,
                       train_config=presume_config(args.seed, args.presume_fraud_at),
                       shuffled_check=not args.no_shuffled_check, log=log)

    return run_reported(make_terminal(stderr=True), "evaluating", work, _table)
