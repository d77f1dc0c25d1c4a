"""`txguard labels held list|release|discard`: review the labels the label function held.

A label over its source's or its counterparty's limit is kept whole in the review store instead of
being applied (txguard.enrichment.label_limits; docs/counterparty.md, "Who may label"). These commands
read the store the label function's settings name (COUNTERPARTY_STORE: Bigtable, emulator if
BIGTABLE_EMULATOR_HOST is set, or the SQLite file), select held labels by `--source`,
`--counterparty` or `--label-id`, and:

- `list`: one JSON line per held label (its id, route, source, counterparty, verdict, reason);
- `release`: apply each after checking its route and record again (exactly once per label id: a
  second release is a duplicate), then forget the hold;
- `discard --why TEXT`: forget each without applying it.

Each release and discard is logged with `--by` (who reviewed it). The last line is a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from txguard.cli.commands._group import command_group


def register(subparsers: argparse._SubParsersAction) -> None:
    group = command_group(subparsers, "labels", "labels held for review (over a source or counterparty limit)")
    held = group.add_parser("held", help="list, release or discard labels held for review",
                            description="List, release or discard the labels the label function held for review.")
    actions = held.add_subparsers(dest="held_command", metavar="ACTION", required=True)
    for name, text in (("list", "list the held labels (one JSON line each)"),
                       ("release", "apply the selected held labels (checked again) and forget their holds"),
                       ("discard", "forget the selected held labels without applying them")):
        parser = actions.add_parser(name, help=text, description=text)
        parser.add_argument("--source", default=None, help="only labels of this source (e.g. analyst:a1)")
        parser.add_argument("--counterparty", default=None, help="only labels naming this counterparty")
        parser.add_argument("--label-id", action="append", default=[], help="only this label id (repeatable)")
        if name != "list":
            parser.add_argument("--by", default=None, help="who reviewed them (logged; default $USER)")
            parser.add_argument("--all", action="store_true",
                                help="act on every held label when no --source/--counterparty/--label-id is given")
        if name == "discard":
            parser.add_argument("--why", required=True, help="why they are discarded (logged)")
        parser.set_defaults(func=run, action=name)


def selected(held: list[Any], source: str | None, counterparty: str | None, label_ids: list[str]) -> list[Any]:
    """The held labels matching every filter given."""
    return [h for h in held
            if (source is None or (h.label.source or h.route) == source)
            and (counterparty is None or h.label.counterparty_id == counterparty)
            and (not label_ids or h.label.label_id in label_ids)]


def describe(held: Any) -> dict[str, Any]:
    from txguard.enrichment.label_applier import verdict

    label = held.label
    return {"label_id": label.label_id, "transaction_id": label.transaction_id, "route": held.route,
            "source": label.source or held.route, "kind": label.kind.value, "verdict": verdict(label),
            "counterparty_id": label.counterparty_id, "reason": held.reason, "held_at": held.held_at}


def run(args: argparse.Namespace) -> int:
    import getpass

    from txguard.contract.errors import LabelRefusedError
    from txguard.contract.logs import get_logger
    from txguard.contract.settings import LabelSettings
    from txguard.enrichment.counterparty import create_counterparty_store
    from txguard.enrichment.label_applier import discard, release
    from txguard.enrichment.label_review import create_label_review
    from txguard.enrichment.transaction_index import create_transaction_index

    settings = LabelSettings()
    store = create_counterparty_store(settings)
    client = getattr(store, "client", None)
    review = create_label_review(settings, client)
    index = create_transaction_index(settings, client)
    try:
        chosen = selected(review.held(), args.source, args.counterparty, args.label_id)
        if args.action == "list":
            for held in chosen:
                print(json.dumps(describe(held)))
            print(json.dumps({"action": "list", "held": len(chosen)}))
            return 0
        if not (args.source or args.counterparty or args.label_id or args.all):
            print("error: name what to act on (--source, --counterparty, --label-id) or pass --all", file=sys.stderr)
            return 2
        by = args.by or getpass.getuser()
        log = get_logger("label")
        done, refused = 0, []
        for held in chosen:
            if args.action == "discard":
                discard(held, review, log, by=by, why=args.why)
                done += 1
                continue
            try:
                release(held, store, index, review, log, by=by)
                done += 1
            except LabelRefusedError as exc:
                refused.append({"label_id": held.label.label_id, "reason": str(exc)})
                print(f"{held.label.label_id}: not released: {exc}", file=sys.stderr)
        print(json.dumps({"action": args.action, "selected": len(chosen), "done": done, "refused": refused, "by": by}))
        return 0 if not refused else 1
    finally:
        for closable in (index, review, store):
            closable.close()
