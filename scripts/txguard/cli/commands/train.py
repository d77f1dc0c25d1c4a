"""`txguard train`: train, check and gate a model, then publish it to the registry."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model (simulated data or --data FILE), gate it, publish it to the registry",
        description=(
            "Features replay the transactions and the label events (known later) on one timeline. "
            "Time-based split as of the cut (last 25% of the period held out; training uses the labels known "
            "when it starts), HistGradientBoosting on the training rows but a calibration slice, Platt "
            "calibration fitted on that slice and folded into the ONNX export (scores are probabilities), "
            "parity check, metrics (ranking and calibration) next to a rules baseline, quality gate, publish "
            "as 'staging' (and 'production' with --promote or when the registry has none). Exit 3 when the "
            "gate refuses the model (its metrics are printed all the same, then what was measured on how many "
            "held-out frauds and which flags give more data), 1 on a missing, empty or malformed data file, 4 "
            "on a registry that cannot be written. The last line is one JSON object."
        ),
    )
    parser.add_argument("--data", help="JSONL or CSV of Transaction records + is_fraud (+ optional label_time, "
                        "scenario)")
    parser.add_argument("--labels", help="with --data: JSONL or CSV of LabelEvents, replayed when they became known")
    parser.add_argument("--features", metavar="TABLE",
                        help="feature table or weighted training sample of `txguard batch run --features / --sample` "
                        "(its output folder: the sample when the job wrote one; a Parquet file or a glob; local or "
                        "gs://) instead of replaying --data here. Read a row group at a time into one float32 matrix; "
                        "a sample's weights reach the model, the calibration, the held-out figures and the gate")
    parser.add_argument("--days", type=int, default=30, help="simulated days (default 30)")
    parser.add_argument("--wallets", type=int, default=2000, help="simulated wallets (default 2000)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--drift", type=float, default=0.0, help="simulator drift (see txguard simulate)")
    parser.add_argument("--registry", default=None, help="registry folder or gs://bucket/prefix")
    parser.add_argument("--promote", action="store_true", help="also make the new version production")
    parser.add_argument("--max-iter", type=int, default=200, help="boosting iterations (default 200)")
    parser.add_argument("--label-maturity-days", type=float, default=None,
                        help="leave out of training the rows of this many days before the cut, whose labels had "
                             "little time to arrive (default: the time within which 95%% of the fraud labels "
                             "arrive, estimated from those known at the cut, at most half the data before it; "
                             "0: every earlier row, labelled as known at the cut)")
    parser.add_argument("--presume-fraud-at", type=float, default=0.0, metavar="SCORE",
                        help="a training row nobody reported trains as fraud when a model fitted without its wallet "
                             "scores it at least SCORE, on the trees' own scale: for data where many frauds are never "
                             "reported (default 0: off, every row keeps the label known at the cut; "
                             "docs/evaluation.md)")
    parser.add_argument("--fraud-weight", type=float, default=10.0,
                        help="weight of a fraud row in the loss, legitimate rows weigh 1 (default 10)")
    parser.add_argument("--calibration-fraction", type=float, default=0.2,
                        help="share of the training period held out from the trees to calibrate on: its most "
                             "recent rows whose labels are mature (default 0.2)")
    parser.add_argument("--threads", type=int, default=1, help="OpenMP threads for fitting (default 1)")
    parser.add_argument("--min-pr-auc", type=float, default=0.5, help="gate: PR-AUC floor (default 0.5)")
    parser.add_argument("--max-regression", type=float, default=0.02,
                        help="gate: max PR-AUC drop vs production on the same held-out rows (default 0.02)")
    parser.add_argument("--max-ece", type=float, default=0.02,
                        help="gate: max expected calibration error on the held-out rows, 10 equal-width bins "
                             "(default 0.02)")
    parser.add_argument("--max-calibration-gap", type=float, default=0.10,
                        help="gate: max |mean score - fraud rate| of a score bin holding >= 100 held-out rows "
                             "(default 0.10)")
    parser.add_argument("--pictures-dir", default=None,
                        help="also write the version's PNG pictures (curves, score histogram, per-scenario recall) here")
    parser.add_argument("--no-pictures", action="store_true", help="do not draw the pictures")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from txguard.cli.errors import usage
    from txguard.cli.inputs import presume_score, require_matches, require_rows
    from txguard.contract.errors import QualityGateError
    from txguard.local.terminal import make_terminal
    from txguard.training.gate import GatePolicy
    from txguard.training.train import TrainConfig, train_and_publish

    terminal = make_terminal(stderr=True)
    if args.labels and not args.data:
        raise usage("--labels needs --data", "the simulator makes its own labels", "give --data FILE with --labels",
                    extra={"version": None})
    if args.data and args.features:
        raise usage("--data and --features are both given", "one source of training rows at a time",
                    "give one of them", extra={"version": None})
    presume_at = presume_score(args.presume_fraud_at, extra={"version": None})
    if args.data:
        require_rows(args.data, "transactions", "give labelled transactions (`txguard simulate --out tx.csv`)")
    if args.labels:
        require_rows(args.labels, "label events", "give LabelEvents (`txguard simulate --labels-out labels.jsonl`)")
    if args.features:
        require_matches(args.features if args.features.endswith((".parquet", ".pq")) or "*" in args.features
                        else args.features.rstrip("/") + "/features-*.parquet", "feature rows")
    config = TrainConfig(
        days=args.days, wallets=args.wallets, seed=args.seed, drift=args.drift, data=args.data, labels=args.labels,
        features=args.features,
        registry=args.registry or "", promote=args.promote, max_iter=args.max_iter, threads=args.threads,
        fraud_weight=args.fraud_weight, calibration_fraction=args.calibration_fraction,
        label_maturity_days=args.label_maturity_days, presume_fraud_at=presume_at,
        policy=GatePolicy(min_pr_auc=args.min_pr_auc, max_regression=args.max_regression, max_ece=args.max_ece,
                          max_calibration_gap=args.max_calibration_gap),
        pictures=not args.no_pictures, pictures_dir=args.pictures_dir,
    )
    with terminal.status("training") as status:
        def log(message: str) -> None:
            status.update(message)
            terminal.log(message)

        try:
            report = train_and_publish(config, log=log)
        except QualityGateError as exc:
            if exc.report is not None:  # measured, then refused: every figure first, then the refusal
                print_report(terminal, exc.report)
            raise gate_refusal(exc, args) from None

    print_report(terminal, report)
    terminal.print(
        f"thresholds review={report['thresholds']['review']} block={report['thresholds']['block']}; "
        f"published {report['version']} as {', '.join(report['aliases'])}"
    )
    sys.stdout.flush()
    print(json.dumps({**report, "gate": "passed"}, sort_keys=True))
    return 0


def print_report(terminal: Console, report: dict) -> None:
    """The held-out metrics next to the rules baseline, the calibration, recall per scenario."""
    from rich.table import Table

    table = Table(title=f"held-out metrics ({report['n_test']} transactions after {report['split_at'][:10]})")
    for col in ("metric", "model", "rules baseline"):
        table.add_column(col)
    for key in ("pr_auc", "roc_auc", "recall_at_1pct_fpr", "wallet_precision_at_100"):
        table.add_row(key, f"{report[key]:.4f}", f"{report['baseline_' + key]:.4f}")
    terminal.print(table)
    calibrated = Table(title=(f"held-out calibration (Platt, fitted on {report['n_calibration']} rows held out from "
                              f"the trees; fraud rate {report['held_out_fraud_rate']:.4f})"))
    for col in ("metric", "served (calibrated)", "trees alone"):
        calibrated.add_column(col)
    for key, form in (("brier", ".5f"), ("ece", ".4f"), ("ece_max_gap", ".4f"), ("score_to_fraud_rate", ".3f"),
                      ("pr_auc", ".6f")):
        calibrated.add_row(key, format(report[key], form), format(report[key + "_uncalibrated"], form))
    for name in ("review", "block"):
        calibrated.add_row(f"alerts at {name}", str(report["alerts"][name]), str(report["alerts_uncalibrated"][name]))
    terminal.print(calibrated)
    if report["recall_by_scenario"]:
        scenarios = Table(title="held-out frauds at the review threshold, per scenario")
        for col in ("scenario", "frauds", "caught", "recall"):
            scenarios.add_column(col)
        for name, row in report["recall_by_scenario"].items():
            scenarios.add_row(name, str(row["frauds"]), str(row["caught"]), f"{row['recall']:.3f}")
        terminal.print(scenarios)


FEW_FRAUDS = 100  # held-out frauds below which a PR-AUC moves a lot from one seed to the next


def gate_refusal(exc: Exception, args: argparse.Namespace) -> Exception:
    """The quality gate's refusal in terms a user can act on: what was measured on how many held-out
    frauds, the floor, and the flags that give more data (or move the floor for a trial). Its JSON
    line carries every figure measured before the refusal (`QualityGateError.report`)."""
    from txguard.cli.errors import CliError, Exit

    report = getattr(exc, "report", None) or {}
    n_test = int(report.get("n_test") or 0)
    frauds = round(n_test * float(report.get("held_out_fraud_rate") or 0.0))
    measured = (f"measured on {n_test:,} held-out transactions after {str(report.get('split_at', ''))[:10]} "
                f"holding {frauds:,} frauds" if n_test else "")
    if frauds and frauds < FEW_FRAUDS:
        measured += " (too few for a steady figure)"
    if args.data or args.features:
        more = "give a longer or larger --data file"
    else:
        more = f"simulate more data: --days (now {args.days}) and --wallets (now {args.wallets})"
    text = str(exc).removeprefix("quality gate: ")
    floors = "--min-pr-auc, --max-ece, --max-calibration-gap or --max-regression set the gate for a trial run"
    return CliError(f"quality gate refused the model, nothing published: {text}", measured,
                    f"{more}; {floors}; `txguard compare` and `txguard drift` need a published version",
                    Exit.REFUSED, extra={**report, "gate": "failed", "version": None, "n_test": n_test,
                                         "held_out_frauds": frauds})
