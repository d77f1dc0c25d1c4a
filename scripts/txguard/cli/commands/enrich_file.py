"""`txguard enrich-file IN OUT`: Transactions (JSONL/CSV) -> the EnrichedTransactions `score-file` scores.

The chain from raw data to decisions offline:
`txguard simulate --out tx.jsonl` (or your own file) -> `txguard enrich-file tx.jsonl enriched.jsonl`
-> `txguard score-file enriched.jsonl decisions.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "enrich-file",
        help="compute point-in-time features of a Transactions file (input of score-file)",
        description="Replay a JSONL or CSV file of Transactions (as `txguard simulate` writes or `txguard publish "
        "--file` reads; label columns are dropped) in time order with the serving feature code (wallet history "
        "and counterparty aggregates; --labels replays label events when they became known), and write one "
        "EnrichedTransaction per line to OUT, the input of `txguard score-file`. The last line is one JSON object.",
    )
    p.add_argument("input", metavar="IN", help="Transactions, JSONL or .csv (local path or gs://bucket/object)")
    p.add_argument("output", metavar="OUT", help="EnrichedTransactions JSONL")
    p.add_argument("--labels", help="LabelEvents, JSONL or .csv (txguard simulate --labels-out writes them)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from txguard.batch.enrich_file import enrich_file
    from txguard.cli.inputs import require_output_folder, require_rows
    from txguard.training.dataset import read_labels

    require_rows(args.input, "transactions", "give a file with transactions (`txguard simulate --out tx.jsonl`)")
    if args.labels:
        require_rows(args.labels, "label events", "give a file of LabelEvents (`txguard simulate --labels-out`)")
    require_output_folder(args.output)
    counts = enrich_file(args.input, args.output, read_labels(args.labels) if args.labels else None)
    print(f"enriched {counts['transactions']:,} transactions of {counts['wallets']:,} wallets -> {args.output}",
          file=sys.stderr)
    print(json.dumps({"input": args.input, "output": args.output, **counts}))
    return 0
