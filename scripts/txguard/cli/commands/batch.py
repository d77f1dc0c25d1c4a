"""`txguard batch run|status`: batch jobs on Apache Beam (DirectRunner locally, Dataflow in the cloud).

`run` replays raw Transaction files (JSONL/CSV/Parquet, local or gs://, globs) per wallet in time
order through the functions' feature code and writes decisions (`--model-uri`) and/or the
training feature table (`--features`) and/or a weighted training sample of it (`--sample`), bad rows to an errors output; the last line is the job's
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
        "Exit 0 completed, 1 when rows failed it (too many invalid, or none read), 5 when the runner failed; "
        "a missing or empty input, a missing model or an earlier job's outputs are refused before anything is "
        "queued. The last line is the job status as one JSON object.",
    )
    run.add_argument("--input", required=True, help="file or glob of raw transactions (local or gs://)")
    run.add_argument("--output", required=True, help="output folder or gs:// prefix")
    run.add_argument("--model-uri", default=None, help="score with this model (registry@ref): writes decisions")
    run.add_argument("--features", action="store_true", help="write the training feature table (Parquet)")
    run.add_argument("--sample", type=float, default=0.0, metavar="FRACTION",
                     help="write the training sample (sample-*.parquet, with a weight column): every row of a wallet-day "
                     "holding a fraud, and this fraction of the other wallet-days, drawn per day and wallet, "
                     "weighted 1/FRACTION; features computed on the full history first. Beside the full table with "
                     "--features, instead of it without")
    run.add_argument("--sample-seed", type=int, default=0, help="seed of the sample's draw (default 0)")
    run.add_argument("--sample-hard-model", default=None, metavar="MODEL_URI",
                     help="draw hard negatives more often: a wallet-day holding a row this model (registry@ref, the "
                     "production alias) scores at or above its review threshold is kept with probability "
                     "--sample-hard, weighted 1/that (default: no hard stratum)")
    run.add_argument("--sample-hard", type=float, default=1.0, metavar="FRACTION",
                     help="with --sample-hard-model: the hard wallet-days' chance to be kept (default 1: all)")
    run.add_argument("--sample-hard-share", type=float, default=None, metavar="SHARE",
                     help="with --sample-hard-model: mark hard the top SHARE of each wallet shard's rows by that "
                     "model's score instead of those at or above its review threshold (e.g. 0.05: wider than "
                     "the review band, so it covers where recall at 1%% FPR is decided)")
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
    from txguard.batch.jobs import JobSpec, JobState, clear_outputs, has_outputs, run_job
    from txguard.batch.staging import dataflow_flags
    from txguard.cli.errors import CliError, Exit, print_error, usage
    from txguard.cli.inputs import require_matches, require_model
    from txguard.local.terminal import make_terminal

    terminal = make_terminal(stderr=True)
    if not args.model_uri and not args.features and not args.sample:
        raise usage("nothing to write", "neither --model-uri (decisions), --features (feature table) nor --sample "
                    "(training sample) is given", "give one or more")
    if not 0 <= args.max_invalid_ratio <= 1:
        raise usage(f"--max-invalid-ratio {args.max_invalid_ratio}", "it is a fraction", "give a value from 0 to 1")
    try:  # the job's own checks (JobSpec), worded as a usage error
        spec = JobSpec(input=args.input, output=args.output, model_uri=args.model_uri, features=args.features,
                       sample=args.sample, sample_seed=args.sample_seed, sample_model=args.sample_hard_model,
                       sample_hard=args.sample_hard, sample_hard_share=args.sample_hard_share, shards=args.shards,
                       chunk_rows=args.chunk_rows)
    except ValueError as exc:
        raise usage(f"--sample {args.sample} --sample-seed {args.sample_seed} --sample-hard {args.sample_hard}"
                    + (" --sample-hard-model" if args.sample_hard_model else "")
                    + ("" if args.sample_hard_share is None else f" --sample-hard-share {args.sample_hard_share}"),
                    str(exc),
                    "give --sample in (0, 1], --sample-seed >= 0, --sample-hard from --sample to 1 (the hard "
                    "negatives are a stratum of the sample, kept at least as often as the rest) and "
                    "--sample-hard-share in (0, 1] with --sample-hard-model") from None
    # Everything a user can get wrong is refused here, before a job is queued or a status written.
    require_matches(args.input)
    for uri in (args.model_uri, args.sample_hard_model):
        if uri:
            require_model(uri)
    if has_outputs(args.output):
        if not args.overwrite:
            raise usage(f"{args.output} holds an earlier job's outputs", "two jobs' files are never mixed",
                        "pass --overwrite to replace them, or choose another --output")
        clear_outputs(args.output)
    beam_args = [a for a in args.beam_args if a != "--"]
    if args.runner == "DataflowRunner":
        beam_args = dataflow_flags(beam_args, log=terminal.log)
    with terminal.status("batch job") as progress:
        def log(message: str) -> None:
            progress.update(message)
            terminal.log(message)

        status = run_job(spec, runner=args.runner, workers=args.workers, beam_args=beam_args,
                         max_invalid_ratio=args.max_invalid_ratio, log=log)
    _print_table(terminal, [status])
    code = Exit.OK
    if status.state is not JobState.COMPLETED:
        rows_failed = status.counts.get("invalid", 0) > 0 or status.counts.get("read", 0) == 0
        code = Exit.INPUT if rows_failed else Exit.FAILED
        print_error(CliError(f"batch job {status.job_id} failed", status.error or "see its status",
                             f"the record is {status.output}/status.json; bad rows are in "
                             f"{status.outputs['errors']}" if rows_failed else
                             f"the record is {status.output}/status.json", code))
    sys.stdout.flush()
    print(json.dumps(status.to_dict(), sort_keys=True))
    return int(code)


def status_command(args: argparse.Namespace) -> int:
    from txguard.batch.jobs import read_status
    from txguard.cli.errors import CliError, print_error
    from txguard.local.terminal import make_terminal

    terminal = make_terminal(stderr=True)
    found, missing = [], []
    for output in args.outputs:
        try:
            found.append(read_status(output))
        except FileNotFoundError:
            missing.append(output)
    if found:
        _print_table(terminal, found)
    for s in found:
        if s.error:
            terminal.print(f"{s.job_id} {s.state.value}: {s.error}", soft_wrap=True, highlight=False)
    records = [s.to_dict() for s in found]
    if missing:
        error = CliError(f"no batch job status in {', '.join(missing)}", "no status.json there",
                         "check the --output folder given to `txguard batch run`")
        if not found:
            raise error  # the one error path: its line and a JSON last line with the error
        print_error(error)
        print(json.dumps({"jobs": records, "error": error.message, "exit_code": int(error.code)}, sort_keys=True))
        return int(error.code)
    print(json.dumps(records[0] if len(args.outputs) == 1 else records, sort_keys=True))
    return 0


def _print_table(terminal: object, statuses: list) -> None:
    from rich.table import Table

    table = Table(title="batch jobs")
    for col in ("job", "state", "read", "decided", "featurised", "sampled", "invalid", "seconds", "runner", "output"):
        table.add_column(col, no_wrap=True, overflow="fold")
    for s in statuses:
        colour = {"completed": "green", "failed": "red"}.get(s.state.value, "yellow")
        table.add_row(s.job_id, f"[{colour}]{s.state.value}[/{colour}]", *(f"{s.counts.get(k, 0):,}" for k in
                      ("read", "decided", "featurised", "sampled", "invalid")), str(s.timings.get("seconds", "")),
                      f"{s.runner} x{s.workers}", s.output)
    terminal.print(table)  # type: ignore[attr-defined]
