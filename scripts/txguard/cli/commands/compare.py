"""`txguard compare`: champion (production) against challenger (staging) on labelled traffic.

Reads the scoring function's `shadow_score` lines: from `--log FILE` with `--labels FILE`, or, by
default, from simulated labelled traffic scored in process by the scoring service with shadow
scoring on (SHADOW_ENABLED=true, every transaction sampled).
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="champion vs challenger (shadow scores) on labelled traffic: PR-AUC, recall, calibration, decision flips",
        description="PR-AUC, recall at the review and block thresholds, legitimate traffic flagged, calibration "
        "(Brier, ECE, largest bin gap, mean score to fraud rate), and the decisions that would flip if staging "
        "were promoted. Without --log, simulated labelled traffic is "
        "scored in process with shadow scoring on. The last line is one JSON object.",
    )
    parser.add_argument("--log", default=None, help="read shadow_score lines from this log file")
    parser.add_argument("--labels", default=None,
                        help="JSONL or CSV with transaction_id and is_fraud (with --log; e.g. `txguard simulate` output)")
    parser.add_argument("--registry", default=None, help="registry folder or gs://bucket/prefix")
    parser.add_argument("--scenario", choices=("normal", "drift"), default="normal", help="simulated population")
    parser.add_argument("--days", type=int, default=None,
                        help="simulated days, the last quarter scored (default: the days the version was trained on, "
                        "read from its metadata, else 30)")
    parser.add_argument("--wallets", type=int, default=None,
                        help="simulated wallets (default: as many as the version was trained on, read from its "
                        "metadata, else 600; the counterparty features depend on the population's size)")
    parser.add_argument("--seed", type=int, default=8, help="simulation seed (default 8)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from txguard.cli.errors import CliError, usage
    from txguard.cli.inputs import require_rows
    from txguard.contract.logs import SHADOW_EVENT
    from txguard.local.terminal import make_terminal
    from txguard.ops import logfile
    from txguard.ops.compare import compare

    terminal = make_terminal(stderr=True)
    if args.log:
        if not args.labels:
            raise usage("--log needs --labels", "the shadow scores are compared on known outcomes",
                        "give --labels FILE (transaction_id, is_fraud; e.g. `txguard simulate` output)")
        require_rows(args.log, "log lines", "give the scoring function's log with shadow scoring on")
        require_rows(args.labels, "labels", "give transaction_id and is_fraud per row (`txguard simulate` output)")
        shadow, labels = logfile.events(path=args.log, event=SHADOW_EVENT), logfile.read_labels(args.labels)
        source: dict[str, object] = {"log": args.log, "labels": args.labels}
    else:
        shadow, labels, source = _simulated(args, terminal)
    try:
        result = {**source, **compare(shadow, labels)}
    except (LookupError, ValueError) as exc:
        raise CliError(f"nothing to compare in {args.log or 'the simulated traffic'}", str(exc),
                       "check the log holds shadow_score lines (SHADOW_ENABLED=true) for labelled transactions") from None
    table = Table(title=f"champion {result['champion_version']} vs challenger {result['challenger_version']} "
                        f"on {result['transactions']:,} labelled transactions ({result['frauds']} frauds)")
    for col in ("", "PR-AUC", "recall@review", "recall@block", "legit flagged", "legit blocked"):
        table.add_column(col, justify="right")
    calibration = Table(title="calibration of each version's scores on the same transactions")
    for col in ("", "Brier", "ECE", "largest bin gap (>= 100 rows)", "mean score / fraud rate"):
        calibration.add_column(col, justify="right")
    for side in ("champion", "challenger"):
        m, c = result[side], result[side]["calibration"]
        table.add_row(side, *(str(m[k]) for k in ("pr_auc", "recall_review", "recall_block", "legit_flagged_rate",
                                                  "legit_blocked_rate")))
        calibration.add_row(side, *(str(c.get(k, "n/a")) for k in ("brier", "ece", "ece_max_gap", "score_to_fraud_rate")))
    terminal.print(table)
    terminal.print(calibration)
    terminal.print(f"decision flips: {result['decision_flips']} ({result['flip_rate']:.3%}) {result['flips']}; "
                   f"frauds caught only by the challenger {result['frauds_caught_only_by_challenger']}, "
                   f"only by the champion {result['frauds_caught_only_by_champion']}")
    sys.stdout.flush()
    print(json.dumps(result, sort_keys=True))
    return 0


def _simulated(args: argparse.Namespace, terminal) -> tuple[list[dict], dict[str, int], dict[str, object]]:  # noqa: ANN001
    from txguard.cli.commands.registry import default_registry
    from txguard.cli.errors import CliError, Exit
    from txguard.cli.inputs import require_registry
    from txguard.contract.logs import SHADOW_EVENT
    from txguard.ops import logfile
    from txguard.ops.replay import run_service, simulated_traffic, training_simulation
    from txguard.publisher.sources import DRIFT
    from txguard.registry import PRODUCTION, STAGING, open_registry

    location = args.registry or default_registry()
    require_registry(location)
    registry = open_registry(location)
    aliases = registry.aliases()
    if STAGING not in aliases or PRODUCTION not in aliases:
        raise CliError(f"{location} has no champion and challenger to compare",
                       f"it needs both a {PRODUCTION} and a {STAGING} alias (has {aliases or 'none'})",
                       "train one with `txguard train --registry " + location + "`", Exit.SETUP)
    if aliases[STAGING] == aliases[PRODUCTION]:
        raise CliError(f"nothing to compare in {location}",
                       f"{STAGING} and {PRODUCTION} are both {aliases[PRODUCTION]}",
                       "train a challenger with `txguard train` without --promote", Exit.SETUP)
    drift = DRIFT if args.scenario == "drift" else 0.0
    trained_days, trained_wallets = training_simulation(registry.metadata(registry.resolve("production")))
    days = args.days or trained_days or 30
    wallets = args.wallets or trained_wallets or 600
    with terminal.status(f"simulating {days} days of {wallets} wallets") as status:
        traffic = simulated_traffic(days, wallets, args.seed, drift)

        def progress(done: int, total: int) -> None:
            status.update(f"scoring with shadow on: {done:,}/{total:,}")

        env = {"MODEL_URI": f"{location}@{PRODUCTION}", "MODEL_POLL_S": 3600, "SHADOW_ENABLED": "true",
               "SHADOW_SAMPLE_RATE": 1.0, "DRIFT_WINDOW_S": 0}
        lines = run_service(traffic.transactions, env, progress)
    source = {"scenario": args.scenario, "traffic": traffic.description, "registry": location}
    return logfile.events(lines, event=SHADOW_EVENT), traffic.labels, source
