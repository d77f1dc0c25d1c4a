"""`txguard score-file IN OUT`: score a file of transactions into a JSONL of decisions, in one process.

The vectorised path of the scoring function (same runtime, thresholds and reasons), in chunks,
with a progress bar; local paths or gs:// objects. EnrichedTransactions are scored as they are;
raw Transactions get their history features by replay first. Prints a throughput line, then one
JSON object.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "score-file",
        help="score a JSONL/CSV/Parquet file of transactions (raw or enriched) into a JSONL of decisions",
        description="Read Transactions or EnrichedTransactions (JSONL; CSV or Parquet with flat feature columns) "
        "from IN, score them with the model at --model-uri in chunks, write one Decision per line to OUT, in "
        "input order. Plain Transactions (`txguard simulate`, your own data) get their wallet history features "
        "by replaying the whole file in time order first (`txguard enrich-file` writes those features to a "
        "file; for files beyond one machine: `txguard batch run`). IN/OUT may be gs://.",
    )
    p.add_argument("input", metavar="IN", help="JSONL, .csv or .parquet file (local path or gs://bucket/object)")
    p.add_argument("output", metavar="OUT", help="decisions JSONL (local path or gs://bucket/object)")
    p.add_argument("--model-uri", default=None, help="registry@ref (default: MODEL_URI, txguard.contract.settings)")
    p.add_argument("--chunk", type=int, default=20000, help="transactions per vectorised chunk (default 20000)")
    p.add_argument("--rules", default=None,
                   help="rule set applied after the model: registry@alias or @rN (default: the model URI's alias, "
                        "as serving applies it; none when there is no rule set)")
    p.add_argument("--no-rules", action="store_true", help="the model alone, no rule set")
    p.add_argument("--input-kind", choices=("auto", "enriched", "transactions"), default="auto",
                   help="what IN holds (default auto: enriched when the first row has history features)")
    p.add_argument("--skip-invalid", action="store_true",
                   help="score the valid rows and leave out the bad ones (default: one bad row refuses the file; "
                   "either way every bad row goes to --errors with its line, field and reason)")
    p.add_argument("--max-invalid-ratio", type=float, default=0.01,
                   help="with --skip-invalid: refuse the file when more than this fraction of rows is bad "
                   "(default 0.01, as batch run)")
    p.add_argument("--errors", default=None,
                   help="where every bad row is written, one JSON object each (default: OUT's name with "
                   ".errors.jsonl)")
    p.set_defaults(func=run)


SHOWN_BAD_ROWS = 10


def errors_path(output: str) -> str:
    stem = output[: -len(".jsonl")] if output.endswith(".jsonl") else output
    return f"{stem}.errors.jsonl"


def run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from txguard.batch.score_file import InvalidRowsError, dumps_report, score_file
    from txguard.cli.errors import CliError, usage
    from txguard.cli.inputs import require_model, require_output_folder, require_rows
    from txguard.contract.settings import scoring_settings
    from txguard.local.terminal import make_terminal
    from txguard.scoring.loading import open_rules, open_scorer

    if not 0 <= args.max_invalid_ratio <= 1:
        raise usage(f"--max-invalid-ratio {args.max_invalid_ratio}", "it is a fraction", "give a value from 0 to 1")
    terminal = make_terminal(stderr=True)
    uri = args.model_uri or scoring_settings().model_uri
    require_rows(args.input, "transactions", "give a file with transactions (`txguard simulate --out tx.jsonl`)")
    errors_out = args.errors or errors_path(args.output)
    require_output_folder(args.output)
    require_output_folder(errors_out)
    require_model(uri)
    scorer = open_scorer(uri)
    rules = None if args.no_rules else open_rules(args.rules or uri)
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("line {task.fields[line]:,}"),
               TextColumn("{task.fields[n]:,} tx scored"), TimeElapsedColumn()]
    with Progress(*columns, console=terminal, transient=True, disable=not terminal.is_terminal) as progress:
        task = progress.add_task(f"scoring with {scorer.version}", total=None, n=0, line=0)

        def advance(n: int, line: int) -> None:
            progress.update(task, n=n, line=line)

        try:
            report = score_file(scorer, args.input, args.output, chunk=args.chunk, kind=args.input_kind,
                                progress=advance, skip_invalid=args.skip_invalid,
                                max_invalid_ratio=args.max_invalid_ratio, rules=rules)
        except InvalidRowsError as exc:
            _write_errors(errors_out, exc.errors)
            for row in exc.errors[:SHOWN_BAD_ROWS]:
                print(row.describe(), file=sys.stderr)
            if len(exc.errors) > SHOWN_BAD_ROWS:
                print(f"... and {len(exc.errors) - SHOWN_BAD_ROWS} more", file=sys.stderr)
            hint = ("fix them, or pass --skip-invalid to score the rest" if not args.skip_invalid
                    else "fix them, or raise --max-invalid-ratio")
            if args.input_kind == "enriched" and any(r.field.startswith("features") for r in exc.errors):
                hint = "the file looks like plain Transactions: drop --input-kind enriched to replay their history"
            raise CliError(f"{len(exc.errors)} of {exc.rows} rows of {args.input} are invalid",
                           f"nothing written to {args.output} (every bad row is in {errors_out})", hint,
                           extra={"rows": exc.rows, "invalid": len(exc.errors),
                                  "invalid_lines": [r.line for r in exc.errors[:1000]], "errors": errors_out}) from None
    if report.errors:
        _write_errors(errors_out, report.errors)
        terminal.print(f"left out {len(report.errors):,} bad row(s) of {report.rows:,} (--skip-invalid): each with "
                       f"its line and reason in {errors_out}", soft_wrap=True)
    terminal.print(
        f"scored {report.transactions:,} transactions in {report.seconds:.2f} s: "
        f"{report.tx_per_s:,.0f} tx/s ({report.tx_per_cpu_s:,.0f} per CPU-second on one core) "
        f"with model {scorer.version}" + (f" and rule set {rules.version}" if rules else "")
        + f" ({report.kind} input) -> {args.output}", soft_wrap=True
    )
    print(dumps_report(report))
    return 0


def _write_errors(path: str, errors: list) -> None:
    import json

    from txguard.batch.storage import write_bytes

    write_bytes(path, b"".join(json.dumps(e.to_dict()).encode() + b"\n" for e in errors))
