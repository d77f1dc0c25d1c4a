"""`txguard label`: publish label events (chargebacks, analyst verdicts, reversals), each on its route's topic.

From a JSONL/CSV file of LabelEvents (every row checked against the contract first; a file with
bad rows is refused, each reported by line, unless --skip-invalid) or from the simulator's delayed
labels known by now. Emulator if PUBSUB_EMULATOR_HOST is set, else the real project with ADC.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

SHOWN_BAD_ROWS = 10


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "label",
        help="publish label events (from a file or the simulator) to the labels topic",
        description="Publish LabelEvents to the labels topic, where the label function applies them to the "
        "counterparty aggregates (exactly once per label_id). --file checks every row against the contract first "
        "and refuses a file with bad rows (line numbers and reasons on stderr) unless --skip-invalid; --simulate "
        "publishes the simulator's labels known by now (chargebacks days to weeks late, analyst verdicts within "
        "hours, a few reversals). The last line is one JSON object.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", help="JSONL or CSV of LabelEvents (txguard simulate --labels-out writes one)")
    source.add_argument("--simulate", action="store_true", help="the simulator's delayed labels known by now")
    parser.add_argument("--days", type=int, default=30, help="with --simulate: simulated days (default 30)")
    parser.add_argument("--wallets", type=int, default=2000, help="with --simulate: wallets (default 2000)")
    parser.add_argument("--seed", type=int, default=42, help="with --simulate: seed (default 42)")
    parser.add_argument("--start", default="2026-01-01T00:00:00+00:00", help="with --simulate: ISO start time")
    parser.add_argument("--skip-invalid", action="store_true", help="with --file: publish the valid rows only")
    parser.add_argument("--rate", type=float, default=200.0, help="labels per second (default 200)")
    parser.add_argument("--project", default=None, help="project id (default GOOGLE_CLOUD_PROJECT)")
    parser.add_argument("--topic", default=None,
                        help="one topic for all (default: each label's route: analyst verdicts on labels-analyst, "
                             "chargebacks and reversals on labels)")
    parser.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="then wait up to this long for the label function's verdict on each label and report "
                        "applied / unchanged / duplicate / parked / pending counts (reads its log: --log)")
    parser.add_argument("--log", default=None,
                        help="with --wait: the label function's log (default $TXGUARD_LABEL_LOG, which "
                        "`txguard local up --keep` prints)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datetime import datetime

    from txguard.cli.errors import CliError, Exit, print_error, usage
    from txguard.cli.inputs import require_pubsub, require_rows
    from txguard.contract.settings import CommonSettings
    from txguard.local.terminal import make_terminal
    from txguard.publisher import Pacer, PubSubTransport, publish_all
    from txguard.publisher.label_sources import label_topic, read_labels, simulated_labels

    terminal = make_terminal(stderr=True)
    project = args.project or CommonSettings().google_cloud_project
    topic = args.topic
    log_path = args.log or os.environ.get("TXGUARD_LABEL_LOG")
    if args.wait < 0:
        raise usage(f"--wait {args.wait}", "it is a number of seconds", "give 0 (do not wait) or more")
    if args.wait and not log_path:
        raise usage("--wait needs the label function's log", "no --log and no TXGUARD_LABEL_LOG",
                    "give --log FILE (`txguard local up --keep` prints TXGUARD_LABEL_LOG); in Google Cloud the "
                    "label function's lines are in Cloud Logging")
    if args.file:
        require_rows(args.file, "label events", "give LabelEvents, JSONL or CSV (`txguard simulate --labels-out`)")
        messages = read_labels(args.file)
    else:
        start = datetime.fromisoformat(args.start)
        if start.tzinfo is None:
            raise usage(f"--start {args.start} has no timezone", "times are compared in UTC",
                        "add one, e.g. 2026-01-01T00:00:00+00:00")
        require_pubsub()  # before minutes of simulation
        terminal.print(f"simulating {args.days} days of {args.wallets} wallets (seed {args.seed}) for their labels")
        messages = simulated_labels(args.days, args.wallets, args.seed, start)
    rejected = [m for m in messages if m.problem is not None]
    source = {"file": args.file} if args.file else {"simulated": {"days": args.days, "wallets": args.wallets,
                                                                  "seed": args.seed}}
    if rejected:
        for m in rejected[:SHOWN_BAD_ROWS]:
            print(f"{args.file}: line {m.line}: {m.problem}", file=sys.stderr)
        if len(rejected) > SHOWN_BAD_ROWS:
            print(f"... and {len(rejected) - SHOWN_BAD_ROWS} more", file=sys.stderr)
        if not args.skip_invalid:
            raise CliError(f"{len(rejected)} of {len(messages)} rows of {args.file} would be rejected by the label "
                           "function", "nothing published", "fix them, or pass --skip-invalid",
                           extra={**source, "rows": len(messages), "rejected": len(rejected),
                                  "rejected_lines": [m.line for m in rejected], "published": 0})
        messages = [m for m in messages if m.problem is None]
    if not messages:
        raise CliError("no label to publish", "every row was left out" if rejected else "none is known yet",
                       "give a file with valid LabelEvents")
    require_pubsub()
    outcomes = None
    if args.wait:
        from pathlib import Path

        from txguard.local.label_outcomes import LabelOutcomes

        outcomes = LabelOutcomes(Path(log_path)).start()
        outcomes.expect(json.loads(m.data)["label_id"] for m in messages)
    target = os.environ.get("PUBSUB_EMULATOR_HOST") or "Google Cloud (ADC)"
    # Each label on its source's topic (analysts' verdicts on labels-analyst, the rest on labels), unless --topic.
    groups: dict[str, list] = {}
    for m in messages:
        groups.setdefault(topic or label_topic(m.data), []).append(m)
    from rich.progress import Progress

    totals: dict[str, Any] = {}
    failed = attempted = 0
    errors: dict[str, int] = {}
    for where, group in groups.items():
        terminal.print(f"publishing {len(group)} labels to projects/{project}/topics/{where} on {target}")
        transport = PubSubTransport(project, where, ordering=False)
        try:
            with Progress(console=terminal, transient=True, disable=not terminal.is_terminal) as progress:
                task = progress.add_task("publishing", total=len(group))
                stats = publish_all(group, transport, Pacer(rate=args.rate),
                                    on_sent=lambda _m, _t, task=task: progress.advance(task))
        finally:
            transport.close()
        failed += stats.failed
        attempted += stats.attempted
        for error, n in stats.errors.items():
            errors[error] = errors.get(error, 0) + n
        totals[where] = stats.as_dict()
    summary = {"project": project, "topics": totals, **source, "rows_skipped": len(rejected)}
    if outcomes is not None:
        with terminal.status(f"waiting up to {args.wait:g} s for the label function ({log_path})"):
            summary["outcomes"] = counts = outcomes.wait(args.wait)
        _print_outcomes(terminal, counts)
    if failed:
        print_error(CliError(f"{failed} of {attempted} labels were not published",
                             f"errors: {errors}", "check Pub/Sub (or the emulator) and publish again",
                             Exit.FAILED))
    sys.stdout.flush()
    print(json.dumps(summary))
    return int(Exit.FAILED) if failed else 0


def _print_outcomes(terminal: object, counts: dict[str, int]) -> None:
    from rich.table import Table

    from txguard.local.label_outcomes import MEANING

    table = Table(title="what the label function did")
    for col in ("labels", "count", "meaning"):
        table.add_column(col)
    for name, n in counts.items():
        if n or name in ("applied", "unchanged"):
            table.add_row(name, f"{n:,}", MEANING[name])
    terminal.print(table)  # type: ignore[attr-defined]
