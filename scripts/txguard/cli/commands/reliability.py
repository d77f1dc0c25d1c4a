"""`txguard reliability`: failure scenarios on the local emulator stack; figures for docs/reliability.md.

Duplicates, poison messages, a scoring outage, a store outage, broken model versions and a 10x
burst, each on transactions of its own, every message accounted for and every wallet's history
compared with the sequential replay. Loopback only, bounded, stops everything it started. Prints
a table, then one JSON object as its last line; exit 0 only if nothing is lost or double counted
and every scenario's checks hold.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    from txguard.reliability import SCENARIO_NAMES

    parser = subparsers.add_parser(
        "reliability",
        help="run the failure scenarios on the local stack (duplicates, poison, outages, bad model, burst)",
        description="Runs the reliability scenarios on the emulator stack (or --embedded) and prints a table "
        "and, as its last line, one JSON object per scenario. Exit 0 only if lost = 0 and double_counted = 0 "
        "everywhere and every scenario's own checks hold.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="short version (about 3 minutes): fewer transactions, shorter outages and burst")
    parser.add_argument("--only", default="", help=f"comma-separated scenarios (default all: {', '.join(SCENARIO_NAMES)})")
    parser.add_argument("--embedded", action="store_true",
                        help="embedded mode (no gcloud: in-process Pub/Sub, SQLite; the store outage is skipped)")
    parser.add_argument("--push", choices=("bridge", "emulator"), default="bridge",
                        help="'bridge': production-like push with production's subscription settings, ordering "
                        "by wallet included (default); 'emulator': the emulator's own push, unordered")
    parser.add_argument("--unordered", action="store_true",
                        help="deliver without per-wallet order (production orders): the skew the feature check "
                        "then finds must all be flagged late")
    parser.add_argument("--keep-retry-policy", action="store_true",
                        help="with --push emulator: create its push subscription WITH production's retry policy "
                        "(reproduces the emulator stall described in docs/reliability.md)")
    parser.add_argument("--write-doc", default=None, metavar="PATH", help="write the report (markdown) to PATH")
    parser.add_argument("--workdir", default=None, help="folder for logs and local state (default: a temp folder)")
    parser.add_argument("--project", default="txguard-reliability", help="emulated project id")
    parser.set_defaults(func=run)


def _sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from txguard.local.terminal import make_terminal
    from txguard.reliability import report, runner
    from txguard.reliability.notes import NOTES

    terminal = make_terminal(stderr=True)
    out = make_terminal()  # wide when piped
    options = runner.RunOptions(
        quick=args.quick, only=[s.strip() for s in args.only.split(",") if s.strip()], embedded=args.embedded,
        keep_retry_policy=args.keep_retry_policy, workdir=Path(args.workdir) if args.workdir else None,
        project=args.project, push=args.push, unordered=args.unordered,
    )
    previous = signal.signal(signal.SIGTERM, _sigterm)
    try:
        run_result = runner.run(options, terminal)
    except KeyboardInterrupt:
        terminal.print("stopping (interrupted)")
        return 130
    except Exception as exc:  # noqa: BLE001 - one readable line, the logs have the rest
        from txguard.cli.errors import run_failure

        raise run_failure("the reliability run failed", exc, "the stack's logs are in its work folder (printed at start)") from exc
    finally:
        signal.signal(signal.SIGTERM, previous)
    results, meta = run_result["results"], run_result["meta"]
    ok = runner.passed(results)
    out.print(report.table(results))
    if args.write_doc:
        command = "txguard " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["reliability"] \
            else "txguard reliability " + " ".join(shlex.quote(a) for a in _argv(args))
        Path(args.write_doc).write_text(report.markdown(results, meta, ok, command, NOTES))
        terminal.print(f"wrote {args.write_doc}")
    print(report.last_line(results, meta, ok), flush=True)
    if meta.get("unmatched_outputs"):
        terminal.print(f"outputs matching no scenario: {json.dumps(meta['unmatched_outputs'])}")
    return 0 if ok else 1


def _argv(args: argparse.Namespace) -> list[str]:
    """The options as given (for the doc, when not run from the command line)."""
    out = []
    for flag in ("quick", "embedded", "unordered", "keep_retry_policy"):
        if getattr(args, flag):
            out.append("--" + flag.replace("_", "-"))
    if args.push != "bridge":
        out += ["--push", args.push]
    if args.only:
        out += ["--only", args.only]
    if args.write_doc:
        out += ["--write-doc", args.write_doc]
    return out
