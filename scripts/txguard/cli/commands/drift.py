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
        "service, which logs the windows. With fewer windows than --sustained there is no verdict (alert null, "
        "a warning). The last line is one JSON object (psi_max, feature_max, alert).",
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
    parser.add_argument("--window-rows", type=int, default=2000,
                        help=f"rows per window (default 2000, at least {500}); the alert needs --sustained windows: "
                        "with fewer the command warns and gives no verdict")
    parser.add_argument("--threshold", type=float, default=THRESHOLD, help=f"PSI alert level (default {THRESHOLD})")
    parser.add_argument("--sustained", type=int, default=SUSTAINED,
                        help=f"windows in a row above the threshold to alert (default {SUSTAINED})")
    parser.set_defaults(func=run)


MIN_WINDOW_ROWS = 500  # the scoring function's own floor (DRIFT_WINDOW_ROWS): PSI on fewer rows is noise


def check_flags(args: argparse.Namespace) -> None:
    """The flags, checked here in the flags' words (not as the scoring settings they become)."""
    from txguard.cli.errors import usage

    if args.window_rows < MIN_WINDOW_ROWS:
        raise usage(f"--window-rows {args.window_rows} is too small",
                    f"a window needs at least {MIN_WINDOW_ROWS} rows (PSI over fewer rows is noise)",
                    f"give {MIN_WINDOW_ROWS} or more, or score more traffic with --days / --wallets")
    if args.sustained < 1:
        raise usage(f"--sustained {args.sustained}", "the alert needs at least one window", "give 1 or more")
    if not args.threshold > 0:
        raise usage(f"--threshold {args.threshold}", "a PSI level is above 0", "give e.g. 0.2")
    for flag in ("days", "wallets"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise usage(f"--{flag} {value}", "it counts something", "give 1 or more")


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from txguard.cli.errors import CliError
    from txguard.cli.inputs import require_rows
    from txguard.contract.logs import DRIFT_EVENT
    from txguard.local.terminal import make_terminal
    from txguard.ops import logfile
    from txguard.ops.drift_report import assess

    check_flags(args)
    terminal = make_terminal(stderr=True)
    source: dict[str, object] = {}
    if args.log:
        require_rows(args.log, "log lines", "give the scoring function's log (a local stack's score.log)")
        windows = logfile.events(path=args.log, event=DRIFT_EVENT)
        source = {"log": args.log}
    else:
        windows, source = _simulated(args, terminal)
    if not windows:
        fix = ("score more traffic (--days, --wallets) or lower --window-rows" if not args.log
               else "give a longer log, or check DRIFT_WINDOW_S is not 0")
        raise CliError("no drift window to assess", "fewer rows than one window, or drift off", fix,
                       extra={"alert": None, **source})
    result = {**source, **assess(windows, args.threshold, args.sustained)}
    table = Table(title=f"drift windows ({result['windows']}), alert at PSI > {args.threshold} "
                        f"for {args.sustained} in a row")
    for col in ("window end (UTC)", "version", "rows", "psi_max", "feature_max", "psi score"):
        table.add_column(col, justify="left" if col in ("window end (UTC)", "feature_max", "version") else "right")
    for w in sorted(windows, key=lambda w: w.get("window_end", "")):
        flag = "[red]" if w["psi_max"] > args.threshold else ""
        table.add_row(str(w.get("window_end", "")), str(w.get("model_version")), f"{int(w.get('rows', 0)):,}",
                      f"{flag}{w['psi_max']:.3f}", str(w["feature_max"]), f"{w.get('psi_score', 0.0):.3f}")
    terminal.print(table)
    terminal.print(f"largest PSI per feature: {result['top_features']}")
    if result["windows"] < args.sustained:
        # One window cannot say "no alert": the alert needs `sustained` of them in a row.
        result["alert"] = None
        result["warning"] = (f"only {result['windows']} window(s) fit the traffic and the alert needs {args.sustained} "
                             f"in a row: no verdict")
        terminal.print(f"[yellow]warning:[/] {result['warning']} ({result['windows_over']} above {args.threshold}; "
                       f"largest PSI {result['psi_max']:.3f}); score more traffic (--days, --wallets) or lower "
                       f"--window-rows (>= {MIN_WINDOW_ROWS})", soft_wrap=True)
    else:
        terminal.print("[red bold]ALERT[/]: the population drifted" if result["alert"] else "no alert")
    sys.stdout.flush()
    print(json.dumps(result, sort_keys=True))
    return 0


def _simulated(args: argparse.Namespace, terminal) -> tuple[list[dict], dict[str, object]]:  # noqa: ANN001
    from txguard.cli.commands.registry import default_registry
    from txguard.cli.errors import CliError, Exit
    from txguard.cli.inputs import require_registry
    from txguard.contract.logs import DRIFT_EVENT
    from txguard.ops import logfile
    from txguard.ops.replay import run_service, simulated_traffic, training_simulation
    from txguard.publisher.sources import DRIFT
    from txguard.registry import open_registry

    location = args.registry or default_registry()
    require_registry(location)
    registry = open_registry(location)
    version = registry.resolve(args.ref)
    if registry.metadata(version).drift_reference is None:
        raise CliError(f"model {version} in {location} has no drift reference",
                       "it was published before drift monitoring", "train a new version with `txguard train`",
                       Exit.SETUP)
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
