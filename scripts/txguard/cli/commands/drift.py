"""`txguard drift`: PSI of traffic against the model version's training reference, and the alert.

Reads the scoring function's `drift_window` lines: from `--log FILE` (a local stack's score.log
or a Cloud Logging export), or, by default, from a run of simulated traffic through the scoring
service in process (`--scenario normal` or `drift`, the simulator's drifted population).
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    from txguard.ops.drift_report import SUSTAINED, THRESHOLD

    parser = subparsers.add_parser(
        "drift",
        help="feature and score drift (PSI per window) against the model's training reference",
        description="PSI per feature and for the score, per window of scored traffic, against the bins the "
        "training stored with the version; alert when the largest PSI stays above --threshold for --sustained "
        "windows in a row. Without --log, simulated traffic (--scenario) is scored in process by the scoring "
        "service, which logs the windows. The last line is one JSON object (psi_max, feature_max, alert).",
    )
    parser.add_argument("--scenario", choices=("normal", "drift"), default="normal",
                        help="simulated population: normal (as trained) or drift (the simulator's drift 0.6)")
    parser.add_argument("--log", default=None, help="read drift_window lines from this log file instead")
    parser.add_argument("--registry", default=None, help="registry folder or gs://bucket/prefix")
    parser.add_argument("--ref", default="production", help="model alias or version (default production)")
    parser.add_argument("--days", type=int, default=None,
                        help="simulated days, the last quarter scored (default: the days the version was trained on, "
                        "read from its metadata, else 30)")
    parser.add_argument("--wallets", type=int, default=None,
                        help="simulated wallets (default: as many as the version was trained on, read from its "
                        "metadata, else 600; the counterparty features depend on the population's size)")
    parser.add_argument("--seed", type=int, default=7, help="simulation seed (default 7; training uses 42)")
    parser.add_argument("--window-rows", type=int, default=2000, help="rows per window (default 2000)")
    parser.add_argument("--threshold", type=float, default=THRESHOLD, help=f"PSI alert level (default {THRESHOLD})")
    parser.add_argument("--sustained", type=int, default=SUSTAINED,
                        help=f"windows in a row above the threshold to alert (default {SUSTAINED})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from txguard.contract.logs import DRIFT_EVENT
    from txguard.ops import logfile
    from txguard.ops.drift_report import assess

    terminal = Console(stderr=True)
    source: dict[str, object] = {}
    if args.log:
        windows = logfile.events(path=args.log, event=DRIFT_EVENT)
        source = {"log": args.log}
    else:
        try:
            windows, source = _simulated(args, terminal)
        except (LookupError, RuntimeError, ValueError) as exc:
            terminal.print(f"[red]error:[/red] {exc}")
            print(json.dumps({"error": str(exc), "alert": None}))
            return 2
    if not windows:
        message = "no drift_window lines (fewer rows than a window, or drift off: DRIFT_WINDOW_S=0)"
        terminal.print(f"[red]error:[/red] {message}")
        print(json.dumps({"error": message, "alert": None, **source}))
        return 2
    result = {**source, **assess(windows, args.threshold, args.sustained)}
    table = Table(title=f"drift windows ({result['windows']}), alert at PSI > {args.threshold} "
                        f"for {args.sustained} in a row")
    for col in ("window end", "version", "rows", "psi_max", "feature_max", "psi score"):
        table.add_column(col, justify="left" if col in ("window end", "feature_max", "version") else "right")
    for w in sorted(windows, key=lambda w: w.get("window_end", "")):
        flag = "[red]" if w["psi_max"] > args.threshold else ""
        table.add_row(str(w.get("window_end", "")), str(w.get("model_version")), str(w.get("rows")),
                      f"{flag}{w['psi_max']:.3f}", str(w["feature_max"]), f"{w.get('psi_score', 0.0):.3f}")
    terminal.print(table)
    terminal.print(f"largest PSI per feature: {result['top_features']}")
    terminal.print("[red bold]ALERT[/]: the population drifted" if result["alert"] else "no alert")
    sys.stdout.flush()
    print(json.dumps(result, sort_keys=True))
    return 0


def _simulated(args: argparse.Namespace, terminal) -> tuple[list[dict], dict[str, object]]:  # noqa: ANN001
    from txguard.cli.commands.registry import default_registry
    from txguard.contract.logs import DRIFT_EVENT
    from txguard.ops import logfile
    from txguard.ops.replay import run_service, simulated_traffic, training_simulation
    from txguard.publisher.sources import DRIFT
    from txguard.registry import open_registry

    location = args.registry or default_registry()
    registry = open_registry(location)
    version = registry.resolve(args.ref)
    if registry.metadata(version).drift_reference is None:
        raise LookupError(f"model {version} in {location} has no drift reference (published before drift "
                          f"monitoring): train a new version with `txguard train`")
    drift = DRIFT if args.scenario == "drift" else 0.0
    trained_days, trained_wallets = training_simulation(registry.metadata(version))
    days = args.days or trained_days or 30
    wallets = args.wallets or trained_wallets or 600
    with terminal.status(f"simulating {days} days of {wallets} wallets ({args.scenario})") as status:
        traffic = simulated_traffic(days, wallets, args.seed, drift)
        status.update(f"scoring {len(traffic.transactions):,} transactions with {version}")

        def progress(done: int, total: int) -> None:
            status.update(f"scoring with {version}: {done:,}/{total:,}")

        env = {"MODEL_URI": f"{location}@{version}", "MODEL_POLL_S": 0, "DRIFT_WINDOW_S": 10**9,
               "DRIFT_WINDOW_ROWS": args.window_rows, "DRIFT_SAMPLE_RATE": 1.0}  # every simulated row counts
        lines = run_service(traffic.transactions, env, progress)
    source = {"scenario": args.scenario, "drift": drift, "traffic": traffic.description,
              "transactions": len(traffic.transactions), "model_version": version, "registry": location}
    return logfile.events(lines, event=DRIFT_EVENT), source
