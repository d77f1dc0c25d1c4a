"""`txguard score-file IN OUT`: score a file of transactions into a JSONL of decisions, in one process.

The vectorised path of the scoring function (same runtime, thresholds and reasons), in chunks,
with a progress bar; local paths or gs:// objects. EnrichedTransactions are scored as they are;
raw Transactions get their history features by replay first. Prints a throughput line, then one
JSON object.
"""

from __future__ import annotations

import argparse


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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from txguard.batch.score_file import dumps_report, score_file
    from txguard.contract.errors import DataFileError, RegistryError
    from txguard.contract.settings import scoring_settings
    from txguard.local.terminal import make_terminal
    from txguard.scoring.loading import open_rules, open_scorer

    terminal = make_terminal(stderr=True)
    uri = args.model_uri or scoring_settings().model_uri
    try:
        scorer = open_scorer(uri)
    except RegistryError as exc:
        terminal.print(f"[red]cannot load model {uri}: {exc}[/red]")
        return 2
    rules = None if args.no_rules else open_rules(args.rules or uri)
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("line {task.fields[line]:,}"),
               TextColumn("{task.fields[n]:,} tx scored"), TimeElapsedColumn()]
    with Progress(*columns, console=terminal, transient=True) as progress:
        task = progress.add_task(f"scoring with {scorer.version}", total=None, n=0, line=0)

        def advance(n: int, line: int) -> None:
            progress.update(task, n=n, line=line)

        try:
            report = score_file(scorer, args.input, args.output, chunk=args.chunk, kind=args.input_kind,
                                progress=advance, rules=rules)
        except DataFileError as exc:
            terminal.print(f"[red]error:[/red] {exc}", soft_wrap=True)
            if args.input_kind == "enriched" and "field 'features" in str(exc):  # 'features' or 'features.x'
                terminal.print(f"hint: {args.input} looks like plain Transactions; without --input-kind enriched "
                               "score-file replays their history first", soft_wrap=True)
            return 1
        except FileNotFoundError as exc:
            terminal.print(f"[red]error:[/red] {exc}", soft_wrap=True)
            return 1
    terminal.print(
        f"scored {report.transactions:,} transactions in {report.seconds:.2f} s: "
        f"{report.tx_per_s:,.0f} tx/s ({report.tx_per_cpu_s:,.0f} per CPU-second on one core) "
        f"with model {scorer.version}" + (f" and rule set {rules.version}" if rules else "")
        + f" ({report.kind} input) -> {args.output}"
    )
    print(dumps_report(report))
    return 0
