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
    p.set_defaults(func=capacity.run)
