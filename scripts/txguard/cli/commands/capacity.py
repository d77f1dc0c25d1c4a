"""`txguard capacity`: instances, cost drivers and binding limits at sustained rates (scripts/txguard/capacity/plan.py)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from txguard.capacity import plan as capacity  # stdlib only at import, cheap

    p = subparsers.add_parser(
        "capacity",
        help="instances, cost per transaction and binding limits at 1k/10k tx/s from benchmark JSON lines",
        description="From the last JSON line of `txguard bench score` and of the enrichment latency summary "
        "(or `txguard bench e2e`), or from both benchmarks run first with --run-benches, compute per function the instances Cloud Run needs at each rate, resource "
        "use and list-price cost per transaction, and the Firestore / Pub/Sub limits that bind. "
        "See docs/capacity.md.",
    )
    capacity.add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The benchmark files are checked as every command checks its inputs, then the plan runs."""
    from txguard.capacity import plan as capacity
    from txguard.cli.inputs import require_rows

    for flag, bench in (("score", "score"), ("enrich", "e2e"), ("counterparty", "counterparty")):
        path = getattr(args, flag)
        if path is not None:
            require_rows(str(path), "benchmark lines", f"give the output of `txguard bench {bench}` (or --run-benches)")
    return capacity.run(args)
