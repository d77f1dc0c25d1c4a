"""`txguard batch run|status`: batch jobs on Apache Beam (DirectRunner locally, Dataflow in the cloud).

`run` replays raw Transaction files (JSONL/CSV/Parquet, local or gs://, globs) per wallet in time
order through the functions' feature code and writes decisions (`--model-uri`) and/or the
training feature table (`--features`), bad rows to an errors output; the last line is the job's
status as one JSON object. Arguments after `--` go to Beam as pipeline options (Dataflow's
`--project`, `--region`, `--temp_location`, ...). `status` reads a job's record.
"""

from __future__ import annotations

import argparse
import json
import sys

from txguard.cli.commands._group import command_group


def register(subparsers: argparse._SubParsersAction) -> None:
    group = command_group(subparsers, "batch", "batch jobs on Apache Beam: features and decisions of whole files")
    run = group.add_parser(
        "run", help="featurise and/or score raw transaction files (Beam: DirectRunner or DataflowRunner)",
        description="Read raw Transactions (JSONL, CSV or Parquet; a file or a glob; local or gs://), replay each "
        "wallet in time order through the feature code of the functions, and write to OUTPUT: decisions-*.jsonl "
        "(with --model-uri), features-*.parquet (with --features: what `txguard train --features` takes), "
        "errors-*.jsonl (every bad row with its line, field and reason) and status.json. Options after `--` "
        "are passed to Beam (e.g. -- --project P --region R --temp_location gs://B/tmp for Dataflow). "
        "Exit 0 completed, 1 failed. The last line is the job status as one JSON object.",
    )
    run.add_argument("--input", required=True, help="file or glob of raw transactions (local or gs://)")
    run.add_argument("--output", required=True, help="output folder or gs:// prefix")
    run.add_argument("--model-uri", default=None, help="score with this model (registry@ref): writes decisions")
    run.add_argument("--features", action="store_true", help="write the training feature table (Parquet)")
    run.add_argument("--runner", default="DirectRunner", help="Beam runner (default DirectRunner; DataflowRunner)")
    run.add_argument("--workers", type=int, default=2,
                     help="DirectRunner worker processes (default 2; 1 runs in this process)")
    run.add_argument("--shards", type=int, default=64,
                     help="replay groups per family: wallets, label ledger, counterparties, devices, wallet labels "
                     "(default 64)")
    run.add_argument("--chunk-rows", type=int, default=20_000, help="rows per chunk element (default 20000)")
    run.add_argument("--max-invalid-ratio", type=float, default=0.01,
                     help="fail the job when more than this fraction of rows is invalid (default 0.01)")
    run.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier job in OUTPUT")
    run.add_argument("beam_args", nargs=argparse.REMAINDER, help="-- then Beam pipeline options")
    run.set_defaults(func=run_command)

    status = group.add_parser("status", help="show batch jobs' state, counts and timings",
                              description="Read status.json of each OUTPUT (folder or gs:// prefix). "
                              "The last line is one JSON object (a list when several jobs are given).")
    status.add_argument("outputs", nargs="+", metavar="OUTPUT", help="job output folder(s) or gs:// prefix(es)")
    status.set_defaults(func=status_command)


def run_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    from txguard.batch.jobs import JobSpec, JobState, clear_outputs, has_outputs, run_job
    from txguard.batch.staging import dataflow_flags

    terminal = Console(stderr=True)
    if not args.model_uri and not args.features:
        terminal.print("[red]nothing to write: give --model-uri (decisions) and/or --features[/red]")
        return 2
    if has_outputs(args.output):
        if not args.overwrite:
            terminal.print(f"[red]{args.output} holds an earlier job's outputs: use --overwrite or another folder[/red]")
            return 2
        clear_outputs(args.output)
    beam_args = [a for a in args.beam_args if a != "--"]
    if args.runner == "DataflowRunner":
        beam_args = dataflow_flags(beam_args, log=terminal.log)
    spec = JobSpec(input=args.input, output=args.output, model_uri=args.model_uri, features=args.features,
                   shards=args.shards, chunk_rows=args.chunk_rows)
    with terminal.status("batch job") as progress:
        def log(message: str) -> None:
            progress.update(message)
            terminal.log(message)

        status = run_job(spec, runner=args.runner, workers=args.workers, beam_args=beam_args,
                         max_invalid_ratio=args.max_invalid_ratio, log=log)
    _print_table(terminal, [status])
    sys.stdout.flush()
    print(json.dumps(status.to_dict(), sort_keys=True))
    return 0 if status.state is JobState.COMPLETED else 1


def status_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    from txguard.batch.jobs import read_status

    terminal = Console(stderr=True)
    found, missing = [], []
    for output in args.outputs:
        try:
            found.append(read_status(output))
        except FileNotFoundError as exc:
            missing.append(str(exc))
            terminal.print(f"[red]{exc}[/red]")
    _print_table(terminal, found)
    records = [s.to_dict() for s in found]
    print(json.dumps(records[0] if len(args.outputs) == 1 and records else records, sort_keys=True))
    return 1 if missing else 0


def _print_table(terminal: object, statuses: list) -> None:
    from rich.table import Table

    table = Table(title="batch jobs")
    for col in ("job", "state", "read", "decided", "featurised", "invalid", "seconds", "runner", "output"):
        table.add_column(col)
    for s in statuses:
        colour = {"completed": "green", "failed": "red"}.get(s.state.value, "yellow")
        table.add_row(s.job_id, f"[{colour}]{s.state.value}[/{colour}]", *(f"{s.counts.get(k, 0):,}" for k in
                      ("read", "decided", "featurised", "invalid")), str(s.timings.get("seconds", "")),
                      f"{s.runner} x{s.workers}", s.output)
    terminal.print(table)  # type: ignore[attr-defined]
    for s in statuses:
        if s.error:
            terminal.print(f"[red]{s.job_id} failed: {s.error}[/red]", soft_wrap=True)  # type: ignore[attr-defined]
