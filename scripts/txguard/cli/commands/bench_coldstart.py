"""`txguard bench coldstart`: the scoring function's cold start next to the server stack's floor.

The cold start part of `txguard bench score` alone (scripts/txguard/bench/coldstart.py): each run
starts the scoring function (model from the Cloud Storage emulator) and then the constant
"hello" function the same way, and times both to their first 200, with the CPU each used. The
last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json

from txguard.cli.commands._group import command_group

DEFAULT_WORKDIR = ".txguard/bench"


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = command_group(subparsers, "bench", "benchmarks (scoring function, local pipeline end to end)")
    p = bench.add_parser(
        "coldstart",
        help="scoring function cold start (process start -> first 200) next to a constant function's",
        description="Start the scoring function (model on fake-gcs-server) and the constant function "
        "alternately, RUNS times each; time each to its first 200 and read the CPU it used.",
    )
    p.add_argument("--runs", type=int, default=5, help="cold starts of each function (default 5)")
    p.add_argument("--workdir", default=DEFAULT_WORKDIR, help=f"model cache (default {DEFAULT_WORKDIR})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    import tempfile
    from pathlib import Path

    from txguard.bench import coldstart
    from txguard.bench.model import build
    from txguard.bench.procs import ROOT
    from txguard.contract.settings import SCORING_THREADS, SCORING_WORKERS

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    workdir = Path(args.workdir) if Path(args.workdir).is_absolute() else ROOT / args.workdir
    model = build(workdir, log=log)
    env = {"WORKERS": str(SCORING_WORKERS), "THREADS": str(SCORING_THREADS), "LOG_LEVEL": "INFO"}
    with tempfile.TemporaryDirectory(prefix="txguard-coldstart-") as tmp:
        result = coldstart.measure(model.artifact, model.payloads[0], Path(tmp), env, args.runs, log=log)
    print(json.dumps(result, separators=(",", ":")))
    return 0 if "median_s" in result else 1
