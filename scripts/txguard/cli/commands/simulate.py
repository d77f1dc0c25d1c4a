"""`txguard simulate`: write labelled simulated wallet transactions as JSONL, or CSV for a `.csv` name.

Both formats are what `txguard publish --file`, `txguard train --data` and the replay readers take.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="simulate wallet transactions with labelled fraud scenarios (JSONL)",
        description="Transaction JSON fields plus is_fraud and scenario, one per line, in time order: JSONL, "
        "or CSV with a header when --out ends in .csv.",
    )
    parser.add_argument("--days", type=int, default=30, help="days of history (default 30)")
    parser.add_argument("--wallets", type=int, default=3000, help="number of wallets (default 3000)")
    parser.add_argument("--seed", type=int, default=42, help="random seed: same seed, same output")
    parser.add_argument("--drift", type=float, default=0.0,
                        help="shift the normal population (amounts up, more web, more abroad); 0 = none")
    parser.add_argument("--attack", action="append", default=[], choices=("fake_shop",),
                        help="add a new attack no model was trained on (repeatable): fake_shop, a burst of first "
                        "payments above 500 to brand-new shops (docs/rules.md)")
    parser.add_argument("--start", default="2026-01-01T00:00:00+00:00", help="ISO start time (timezone-aware)")
    parser.add_argument("--out", default="data/simulated.jsonl",
                        help="output file: .jsonl, or .csv for CSV ('-' for JSONL on stdout)")
    parser.add_argument("--labels-out", default=None,
                        help="also write the label events known by now (LabelEvent JSONL: chargebacks, analyst "
                        "verdicts, reversals), for `txguard train --labels` and `txguard label --file`")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datetime import datetime

    from rich.progress import Progress

    from txguard.cli.errors import usage
    from txguard.local.terminal import make_terminal
    from txguard.simulator.core import Simulation

    try:
        start = datetime.fromisoformat(args.start)
    except ValueError:
        raise usage(f"--start {args.start} is not an ISO 8601 time", "it cannot be read",
                    "give e.g. 2026-01-01T00:00:00+00:00") from None
    if start.tzinfo is None:
        raise usage(f"--start {args.start} has no timezone", "times are compared in UTC",
                    "add one, e.g. 2026-01-01T00:00:00+00:00")
    t0 = time.perf_counter()
    sim = Simulation(days=args.days, wallets=args.wallets, seed=args.seed, start=start, drift=args.drift,
                     attacks=tuple(args.attack))
    fraud = 0
    scenarios: dict[str, int] = {}
    to_stdout = args.out == "-"
    as_csv = not to_stdout and Path(args.out).suffix.lower() == ".csv"
    for path in (None if to_stdout else args.out, args.labels_out):
        if path and not Path(path).parent.is_dir():  # created, and said so: never silently
            Path(path).parent.mkdir(parents=True)
            print(f"created folder {Path(path).parent}/ for {path}", file=sys.stderr)
    out = sys.stdout if to_stdout else open(args.out, "w", encoding="utf-8", newline="")  # noqa: SIM115
    try:
        write = _csv_writer(out) if as_csv else lambda row: out.write(row.to_json() + "\n")
        with Progress(transient=True, disable=to_stdout, console=make_terminal(stderr=True)) as progress:
            task = progress.add_task("writing transactions", total=len(sim))
            for n, row in enumerate(sim, 1):
                write(row)
                fraud += row.is_fraud
                scenarios[row.scenario] = scenarios.get(row.scenario, 0) + 1
                if n % 10000 == 0:
                    progress.update(task, completed=n)
    finally:
        if not to_stdout:
            out.close()
    labels = 0
    if args.labels_out:
        with open(args.labels_out, "w", encoding="utf-8") as fh:
            for label in sim.label_events():
                fh.write(label.model_dump_json())
                fh.write("\n")
                labels += 1
    summary = {
        "out": args.out,
        "labels_out": args.labels_out,
        "labels": labels,
        "format": "csv" if as_csv else "jsonl",
        "transactions": len(sim),
        "fraud": fraud,
        "fraud_rate": round(fraud / max(len(sim), 1), 5),
        "scenarios": dict(sorted(scenarios.items())),
        "seconds": round(time.perf_counter() - t0, 2),
        **{k: v for k, v in sim.params.items() if k != "id_prefix"},
    }
    print(json.dumps(summary, sort_keys=True), file=sys.stderr if to_stdout else sys.stdout)
    return 0


def _csv_writer(out: object):  # noqa: ANN202 - a row writer over `out`
    """One CSV row per transaction: the contract's fields, then the labels (empty for None)."""
    import csv

    from txguard.contract.models import Transaction

    writer = csv.DictWriter(out, [*Transaction.model_fields, "is_fraud", "scenario"])  # type: ignore[arg-type]
    writer.writeheader()
    return lambda row: writer.writerow({k: "" if v is None else v for k, v in row.to_row().items()})
