"""`txguard local up` (the README's `make demo`): the whole pipeline locally, then a summary.

Starts the emulators (or the embedded stand-ins without gcloud), trains a model if the registry
has none, runs both functions with functions-framework, publishes a bounded simulated stream and
reports what came out. Everything is stopped at the end, on error, Ctrl-C or SIGTERM -- unless
--keep, which leaves the stack up (printing endpoints and env vars) until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys

from txguard.cli.commands.publish import add_stream_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("local", help="run the pipeline locally (emulators or embedded)")
    sub = parser.add_subparsers(dest="local_command", metavar="ACTION")
    up = sub.add_parser(
        "up",
        help="start the local pipeline, publish a stream, print a summary",
        description="Emulators (gcloud) or embedded mode, a model in the registry, both functions under "
        "functions-framework, a simulated stream through the pipeline; the last line is one JSON object.",
    )
    add_stream_options(up, count=2000, rate=None, rate_help=(
        "messages per second (default 25 with the emulators, below what one instance of each function "
        "sustains on a shared 2-core machine; 50 embedded)"))
    up.add_argument("--embedded", action="store_true",
                    help="embedded mode even if gcloud is installed (no emulators: in-process Pub/Sub, SQLite)")
    up.add_argument("--keep", action="store_true", help="leave the stack running after the stream, until Ctrl-C")
    up.add_argument("--drain-timeout", type=float, default=60.0,
                    help="stop draining after this many seconds without any new outcome; what is still "
                    "missing then counts as lost (default 60)")
    up.add_argument("--registry", default=None,
                    help="model registry (default gs://txguard-models/registry on the GCS emulator, "
                    "or a fresh folder in embedded mode); trained into if it has no production model")
    up.add_argument("--workdir", default=None, help="folder for logs and local state (default: a temp folder)")
    up.add_argument("--project", default="txguard-local", help="emulated project id (default txguard-local)")
    up.add_argument("--enrich-threads", type=int, default=8, help="enrichment THREADS (default 8)")
    up.add_argument("--scoring-threads", type=int, default=1, help="scoring THREADS (default 1: CPU-bound)")
    up.add_argument("--warmup", type=int, default=20,
                    help="transactions sent first on wallets of their own, left out of the summary (default 20)")
    add_push_options(up)
    up.add_argument("--no-emulator-retry-policy", dest="emulator_retry_policy", action="store_false",
                    help="with --push emulator: create its push subscription without production's retry policy: "
                    "the Pub/Sub emulator stops redelivering for good when several pushes fail at once with "
                    "it (docs/reliability.md); without it failures are redelivered after ~1 s")
    up.add_argument("--no-console", dest="analyst_console", action="store_false",
                    help="do not serve the analyst console next to the stack (it is served by default; "
                    "its URL is printed at start)")
    up.add_argument("--console-port", type=int, default=0,
                    help="port of the analyst console on 127.0.0.1 (default: a free one)")
    up.set_defaults(func=run_up)
    parser.set_defaults(func=lambda _args: (parser.print_help(), 0)[1])


def add_push_options(parser: argparse.ArgumentParser) -> None:
    """How the emulator's transactions subscription reaches the enrichment function."""
    parser.add_argument("--push", choices=("bridge", "emulator"), default="bridge",
                        help="emulator mode: 'bridge' pulls with a window of outstanding messages and posts the "
                        "production push body, one message per wallet at a time (default); 'emulator' is the "
                        "emulator's own push (2 at a time, no ordering)")
    parser.add_argument("--label-day-s", type=float, default=0.5,
                        help="labels of the stream's transactions follow them on the labels topic, a day of their "
                        "simulated delay compressed to this many seconds (default 0.5: a 7-day chargeback 3.5 s "
                        "later); 0: no labels")
    parser.add_argument("--push-window", type=int, default=1000,
                        help="bridge: most messages outstanding at once, like production's push window (default 1000)")


def _sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through the stack's finally: everything is stopped


def run_up(args: argparse.Namespace) -> int:
    from pathlib import Path

    from txguard.local import report, stream
    from txguard.local.stack import LocalStack, StackOptions
    from txguard.local.terminal import make_terminal

    terminal = make_terminal(stderr=True)
    out = make_terminal()
    options = StackOptions(
        count=args.count, rate=args.rate, speed=args.speed, scenario=args.scenario, seed=args.seed,
        drift=args.drift, invalid_fraction=args.invalid_fraction, embedded=args.embedded, keep=args.keep,
        drain_timeout_s=args.drain_timeout, project=args.project, registry=args.registry,
        workdir=Path(args.workdir) if args.workdir else None, enrich_threads=args.enrich_threads,
        scoring_threads=args.scoring_threads, warmup=args.warmup,
        emulator_retry_policy=args.emulator_retry_policy, push=args.push, push_window=args.push_window,
        label_day_s=args.label_day_s, analyst_console=args.analyst_console, console_port=args.console_port,
    )
    previous = signal.signal(signal.SIGTERM, _sigterm)
    stack = LocalStack(options, terminal)
    try:
        with stack:
            stack.up()
            if options.count > 0:
                stream.warm_up(stack)
            summary = stream.run_stream(stack) if options.count > 0 else None
            if summary is not None:
                out.print(report.summary_table(summary))
                print(json.dumps(summary), flush=True)
            if args.keep:
                stack.keep_running()
    except KeyboardInterrupt:
        terminal.print("stopping (interrupted)")
        return 130
    except Exception as exc:  # noqa: BLE001 - one readable line, the logs have the rest
        from txguard.cli.errors import Exit, run_failure

        emulator = stack.mode == "emulators" and type(exc).__name__ == "EmulatorError"
        fix = f"the logs are in {stack.workdir}" + (
            "; `txguard local up --embedded` runs without the gcloud emulators" if emulator else "")
        raise run_failure("the local stack failed", exc, fix, Exit.SETUP if emulator else Exit.FAILED) from exc
    finally:
        signal.signal(signal.SIGTERM, previous)
    if summary is None:
        return 0
    if summary["lost"] and stack.push_mode == "emulator" and options.emulator_retry_policy:
        terminal.print("hint: messages whose pushes failed together can be stranded by the Pub/Sub emulator's "
                       f"retry-policy bug (docs/reliability.md); see {stack.workdir}/enrich.log, and rerun "
                       "with --no-emulator-retry-policy")
    if summary["lost"] == summary["labels_lost"] == 0 and summary["publish_failed"] == 0:
        return 0
    from txguard.cli.errors import CliError, Exit, print_error

    print_error(CliError("the stream did not come out whole",
                         f"lost {summary['lost']}, labels lost {summary['labels_lost']}, publish failed "
                         f"{summary['publish_failed']}", f"the functions' logs are in {stack.workdir}", Exit.FAILED))
    return int(Exit.FAILED)


def main() -> int:  # pragma: no cover - convenience for `python -m scripts.commands.local`
    from txguard.cli.main import main as cli

    return cli(["local", "up", *sys.argv[1:]])
