"""`txguard late-updates`: counterparty updates applied after reads that missed them, and those decisions.

`list LOG...` reads the enrichment and label functions' `late_update` lines (a local stack's
enrich.log / label.log, or `gcloud logging read 'jsonPayload.event="late_update"' --format=json`).
`decisions` lists, for each of them (or for one window given by hand), the decisions at that
counterparty, device or wallet whose event time is in the window of missed reads, from the
history store; `--recompute` reads the counterparty store (read only) and marks those whose
counterparty features differ now: the decisions made without an update that has landed since.
Stores come from the environment, as for the enrichment function (HISTORY_STORE, COUNTERPARTY_STORE, ...).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

from txguard.cli.commands._group import command_group


def register(subparsers: argparse._SubParsersAction) -> None:
    group = command_group(subparsers, "late-updates",
                          "counterparty updates applied after reads that missed them, and the decisions they missed")
    listing = group.add_parser(
        "list", help="the late_update lines of function logs, one row each",
        description="Read late_update lines from log files (function stdout, or a Cloud Logging JSON export) and "
        "print them; the last line is one JSON object with the counts by entity and source and the lag.")
    listing.add_argument("logs", nargs="+", help="log files (enrich.log, label.log, or a gcloud logging export)")
    listing.add_argument("--prefix", default="", help="only entities whose id starts with this")
    listing.set_defaults(func=run_list)

    decisions = group.add_parser(
        "decisions", help="the decisions at the entity of each late update, within its window of missed reads",
        description="For each late update in LOG (or the window given by --counterparty/--device/--wallet, --from, "
        "--to), list the decisions at that entity with an event time in [visible_from, read_through), read from the "
        "history store (HISTORY_STORE, ...). --recompute says which ones' counterparty features differ from a read "
        "of the counterparty store now. The last line is one JSON object.")
    decisions.add_argument("logs", nargs="*", help="log files with late_update lines")
    for kind in ("counterparty", "device", "wallet"):
        decisions.add_argument(f"--{kind}", default=None, help=f"a {kind} id (instead of a log)")
    decisions.add_argument("--from", dest="start", default=None, help="window start, ISO 8601 (with an id)")
    decisions.add_argument("--to", dest="end", default=None, help="window end, ISO 8601, excluded (with an id)")
    decisions.add_argument("--recompute", action="store_true",
                           help="read the counterparty store now and mark the decisions whose features differ")
    decisions.add_argument("--limit", type=int, default=1000, help="decisions per window at most (default 1000)")
    decisions.set_defaults(func=run_decisions)


def run_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from txguard.local.ledger import percentile
    from txguard.local.terminal import make_terminal
    from txguard.ops.late_updates import distinct, read_lines

    terminal = make_terminal(stderr=True)
    lines = read_lines(args.logs, args.prefix)
    unique = distinct(lines)
    table = Table(title=f"late updates ({len(unique)} distinct, {len(lines)} lines)")
    for col in ("entity", "id", "transaction / label", "event time", "missed reads from", "to", "lag s"):
        table.add_column(col, justify="right" if col == "lag s" else "left")
    for line in sorted(unique, key=lambda u: (u.event_time, u.entity_id)):
        d = line.as_dict()
        table.add_row(line.kind, line.entity_id, line.label_id or line.transaction_id, d["event_time"],
                      d["visible_from"], d["read_through"], f"{line.lag_s:g}")
    terminal.print(table)
    lags = [u.lag_s for u in unique]
    print(json.dumps({"late_updates": len(unique), "lines": len(lines),
                      "by_entity": dict(Counter(u.kind for u in unique)),
                      "by_source": dict(Counter("label" if u.label_id else "transaction" for u in unique)),
                      "lag_s": {"p50": percentile(lags, 50), "max": max(lags) if lags else None}}))
    return 0


def run_decisions(args: argparse.Namespace) -> int:
    from txguard.contract.settings import EnrichSettings
    from txguard.enrichment.counterparty import create_counterparty_store
    from txguard.enrichment.history import create_store
    from txguard.local.terminal import make_terminal
    from txguard.ops.late_updates import decisions_in_window, distinct, read_lines

    terminal = make_terminal(stderr=True)
    try:
        windows = distinct(read_lines(args.logs)) if args.logs else [_window(args)]
    except ValueError as exc:
        terminal.print(f"[red]error:[/] {exc}")
        print(json.dumps({"error": str(exc)}))
        return 2
    settings = EnrichSettings()
    history = create_store(settings)
    counterparties = create_counterparty_store(settings) if args.recompute else None
    outcomes: Counter[str] = Counter()
    total = missed = 0
    try:
        for window in windows:
            affected = decisions_in_window(history, window, counterparties, args.limit)
            d = window.as_dict()
            terminal.print(f"[bold]{window.kind} {window.entity_id}[/]: {window.label_id or window.transaction_id or '-'}"
                          f" late; reads from {d['visible_from']} to {d['read_through']}: {len(affected)} decisions")
            for a in affected:
                row = a.as_dict()
                terminal.print(f"  {row['event_time']}  {a.transaction_id}  {a.outcome or '-':<6} "
                              f"{'-' if a.score is None else f'{a.score:.4f}'}"
                              + ("" if a.missed is None else f"  missed: {a.missed}"))
                outcomes[a.outcome or "undecided"] += 1
                missed += bool(a.missed)
            total += len(affected)
    finally:
        history.close()
        if counterparties is not None:
            counterparties.close()
    print(json.dumps({"windows": len(windows), "decisions": total, "outcomes": dict(outcomes),
                      "missed": missed if args.recompute else None}))
    return 0


def _window(args: argparse.Namespace):  # noqa: ANN202 - a LateLine for the window given by hand
    from txguard.features.counterparty import Entity, entity_key
    from txguard.ops.late_updates import LateLine, epoch

    given = [(kind, getattr(args, kind)) for kind in ("counterparty", "device", "wallet") if getattr(args, kind)]
    if len(given) != 1 or not args.start or not args.end:
        raise ValueError("give late_update log files, or one of --counterparty/--device/--wallet with --from and --to")
    kind, ident = given[0]
    start, end = epoch(args.start), epoch(args.end)
    if end <= start:
        raise ValueError("--to must be after --from")
    return LateLine(kind, ident, entity_key(Entity(kind[0]), ident), "", None, start, start, end, 0.0, None)
