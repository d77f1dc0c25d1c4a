"""`txguard score-file IN OUT`: score a JSONL/CSV file of enriched transactions into decisions.

The vectorised path of the scoring function (same runtime, thresholds and reasons), in chunks,
with a progress bar; local paths or gs:// objects. Prints a throughput line, then one JSON object.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "score-file",
        help="score a JSONL/CSV file of enriched transactions into a JSONL of decisions",
        description="Read EnrichedTransactions (JSONL, or CSV with flat feature columns) from IN, score them "
        "with the model at --model-uri in chunks, write one Decision per line to OUT. IN/OUT may be gs://. "
        "A file of plain Transactions (`txguard simulate`, your own data) gets its features first from "
        "`txguard enrich-file IN enriched.jsonl`.",
    )
    p.add_argument("input", metavar="IN", help="JSONL or .csv file (local path or gs://bucket/object)")
    p.add_argument("output", metavar="OUT", help="decisions JSONL (local path or gs://bucket/object)")
    p.add_argument("--model-uri", default=None, help="registry@ref (default: MODEL_URI / shared.settings)")
    p.add_argument("--chunk", type=int, default=5000, help="transactions per vectorised chunk (default 5000)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from txguard.batch.score_file import dumps_report, score_file
    from txguard.cli.console import make_console
    from txguard.contract.errors import DataFileError, RegistryError
    from txguard.contract.settings import scoring_settings
    from txguard.scoring.runtime import ModelRuntime
    from txguard.scoring.scorer import Scorer

    console = make_console(stderr=True)
    uri = args.model_uri or scoring_settings().model_uri
    try:
        scorer = Scorer(ModelRuntime.from_uri(uri))
    except RegistryError as exc:
        console.print(f"[red]cannot load model {uri}: {exc}[/red]")
        return 2
    total = os.path.getsize(args.input) if not args.input.startswith("gs://") else None
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[n]:,} tx"),
               TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"scoring with {scorer.version}", total=total, n=0)

        def advance(n: int, read: int) -> None:
            progress.update(task, completed=read or None, n=n)

        try:
            report = score_file(scorer, args.input, args.output, chunk=args.chunk, progress=advance)
        except DataFileError as exc:
            console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
            if "field 'features" in str(exc):  # 'features' (JSONL) or 'features.x' (CSV)
                console.print(f"hint: {args.input} looks like plain Transactions; `txguard enrich-file "
                              f"{args.input} enriched.jsonl` computes their features first", soft_wrap=True)
            return 1
        except FileNotFoundError as exc:
            console.print(f"[red]{exc}[/red]")
            return 1
    console.print(
        f"scored {report.transactions:,} transactions in {report.seconds:.2f} s: "
        f"{report.tx_per_s:,.0f} tx/s ({report.tx_per_cpu_s:,.0f} per CPU-second on one core) "
        f"with model {scorer.version} -> {args.output}"
    )
    print(dumps_report(report))
    return 0
