"""`txguard train`: train, check and gate a model, then publish it to the registry."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model (simulated data or --data FILE), gate it, publish it to the registry",
        description=(
            "Features replay the transactions and the label events (known later) on one timeline. "
            "Time-based split (last 25% of the period held out), HistGradientBoosting on the training rows "
            "but a calibration slice, Platt calibration fitted on that slice and folded into the ONNX export "
            "(scores are probabilities), parity check, metrics (ranking and calibration) next to a rules "
            "baseline, quality gate, publish as 'staging' "
            "(and 'production' with --promote or when the registry has none). Exit 3 when the gate fails, "
            "2 on a malformed data file. The last line is one JSON object."
        ),
    )
    parser.add_argument("--data", help="JSONL or CSV of Transaction records + is_fraud (+ optional label_time, "
                        "scenario)")
    parser.add_argument("--labels", help="with --data: JSONL or CSV of LabelEvents, replayed when they became known")
    parser.add_argument("--features", metavar="TABLE",
                        help="feature table of `txguard batch run --features` (its output folder, a Parquet file "
                        "or a glob; local or gs://) instead of replaying --data here")
    parser.add_argument("--days", type=int, default=30, help="simulated days (default 30)")
    parser.add_argument("--wallets", type=int, default=2000, help="simulated wallets (default 2000)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--drift", type=float, default=0.0, help="simulator drift (see txguard simulate)")
    parser.add_argument("--registry", default=None, help="registry folder or gs://bucket/prefix")
    parser.add_argument("--promote", action="store_true", help="also make the new version production")
    parser.add_argument("--max-iter", type=int, default=200, help="boosting iterations (default 200)")
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
    from rich.table import Table

    from txguard.contract.errors import DataFileError, QualityGateError, RegistryError
    from txguard.local.terminal import make_terminal
    from txguard.training.gate import GatePolicy
    from txguard.training.train import TrainConfig, train_and_publish

    terminal = make_terminal(stderr=True)
    if args.labels and not args.data:
        terminal.print("[red]error:[/red] --labels needs --data (the simulator makes its own labels)")
        print(json.dumps({"error": "--labels needs --data", "version": None}))
        return 2
    if args.data and args.features:
        terminal.print("[red]error:[/red] give --data or --features, not both")
        return 2
    config = TrainConfig(
        days=args.days, wallets=args.wallets, seed=args.seed, drift=args.drift, data=args.data, labels=args.labels,
        features=args.features,
        registry=args.registry or "", promote=args.promote, max_iter=args.max_iter, threads=args.threads,
        fraud_weight=args.fraud_weight, calibration_fraction=args.calibration_fraction,
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
        except (DataFileError, RegistryError) as exc:
            terminal.print(f"[red]error:[/red] {exc}", soft_wrap=True)
            print(json.dumps({"error": str(exc), "version": None}))
            return 2
        except QualityGateError as exc:
            terminal.print(f"[red]rejected, nothing published:[/red] {exc}")
            print(json.dumps({"error": str(exc), "gate": "failed", "version": None}))
            return 3

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
    terminal.print(
        f"thresholds review={report['thresholds']['review']} block={report['thresholds']['block']}; "
        f"published {report['version']} as {', '.join(report['aliases'])}"
    )
    sys.stdout.flush()
    print(json.dumps({**report, "gate": "passed"}, sort_keys=True))
    return 0
