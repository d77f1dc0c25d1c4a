"""`txguard bench rules`: 50 rules on the scoring fast path, and the rule-language candidates compared.

The fast path with and without the rules, paired call by call (the figure `bench score` reports
too), then our compiler against the Common Expression Language runtimes on PyPI on the same rules
and rows (in a venv of their own, created once under the work folder). The last line is one JSON
object; docs/rules.md quotes it.
"""

from __future__ import annotations

import argparse
import json

from txguard.cli.commands._group import command_group

DEFAULT_WORKDIR = ".txguard/bench"


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = command_group(subparsers, "bench", "benchmarks (scoring function, local pipeline end to end)")
    p = bench.add_parser("rules", help="rules on the fast path, and our rule compiler against the CEL runtimes",
                         description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--rules", type=int, default=50, help="rules in the set (default 50)")
    p.add_argument("--calls", type=int, default=20000, help="paired calls on the fast path (default 20000)")
    p.add_argument("--skip-cel", action="store_true", help="skip the CEL runtimes (no venv)")
    p.add_argument("--workdir", default=DEFAULT_WORKDIR, help=f"cache (default {DEFAULT_WORKDIR})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from txguard.bench import rules
    from txguard.bench.model import build
    from txguard.contract.models import ENRICHED_ADAPTER
    from txguard.local.terminal import make_terminal
    from txguard.scoring.loading import scorer_of
    from txguard.scoring.vectorize import row_of

    terminal = make_terminal(stderr=True)
    log = lambda m: terminal.print(f"[dim]{m}[/dim]")  # noqa: E731
    workdir = Path(args.workdir)
    model = build(workdir, log=log)
    from txguard.bench.model import _metadata

    scorer = scorer_of(model.artifact, _metadata().model_copy(update={"version": "bench"}))
    txs = [ENRICHED_ADAPTER.validate_json(p.encode()) for p in model.payloads]
    log(f"fast path with and without {args.rules} rules, {args.calls} paired calls")
    fast = rules.measure_fast_path(scorer.runtime, txs, args.calls, args.rules)
    out = {"rules": args.rules, "fast_us_p50": round(fast["fast"]["p50_us"], 2),
           "fast_rules_us_p50": round(fast["fast_rules"]["p50_us"], 2), "added_us_p50": fast["added_us_p50"],
           "rules_only_us_p50": round(fast["rules_only"]["p50_us"], 2),
           "rows_with_a_hit": fast["share_of_rows_with_a_hit"]}
    if not args.skip_cel:
        rows = np.array([row_of(tx) for tx in txs])
        scores = [scorer.runtime.predict_row(r) for r in rows.tolist()]
        texts = [{name: str(getattr(tx, name) or "") for name in ("type", "channel", "country", "currency",
                                                                   "counterparty_id", "wallet_id", "device_id")}
                 for tx in txs]
        log("the CEL runtimes on the same rules and rows")
        peers = rules.candidates(rows, scores, texts, workdir, args.rules, log=log)
        out["candidates"] = peers
        for name, peer in peers.items():
            if isinstance(peer, dict):
                terminal.print(f"{name:40s} {peer.get('us_per_row_p50', '-'):>10} us/row "
                               f"x{peer.get('vs_txguard', 1)} agree={peer.get('agree')}")
    print(json.dumps(out, separators=(",", ":")))
    return 0
