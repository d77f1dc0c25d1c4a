"""`txguard registry list|promote|rollback`: inspect and move the aliases of the model registry."""

from __future__ import annotations

import argparse
import json
import os
import sys


def default_registry() -> str:
    from txguard.contract.settings import DEFAULT_LOCAL_REGISTRY

    return os.environ.get("TXGUARD_REGISTRY") or DEFAULT_LOCAL_REGISTRY


def add_registry_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--registry",
        default=argparse.SUPPRESS,  # accepted before or after the action without clobbering
        help="registry location: a folder or gs://bucket/prefix (default: $TXGUARD_REGISTRY or models/registry)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("registry", help="list model versions, promote or roll back an alias")
    add_registry_argument(parser)
    sub = parser.add_subparsers(dest="registry_command", metavar="ACTION", required=True)

    p_list = sub.add_parser("list", help="versions with their metrics and aliases")
    add_registry_argument(p_list)
    p_list.set_defaults(func=_list)

    p_promote = sub.add_parser("promote", help="point an alias (default production) at a version")
    p_promote.add_argument("version", help="vN (or 'latest')")
    p_promote.add_argument("--alias", default="production")
    add_registry_argument(p_promote)
    p_promote.set_defaults(func=_promote)

    p_rollback = sub.add_parser("rollback", help="point an alias back at its previous version")
    p_rollback.add_argument("--alias", default="production")
    add_registry_argument(p_rollback)
    p_rollback.set_defaults(func=_rollback)


def _open(args: argparse.Namespace):  # noqa: ANN202
    """The registry named on the command line, refused (one line, exit 4) unless it is one."""
    from txguard.cli.inputs import require_registry
    from txguard.registry import open_registry

    location = getattr(args, "registry", None) or default_registry()
    require_registry(location)  # RegistryError -> one `error:` line, exit 4 (txguard.cli.errors)
    return open_registry(location)


def _list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from txguard.local.terminal import make_terminal

    info = _open(args).describe()
    table = Table(title=f"Model registry {info['location']}")
    for col in ("version", "created", "aliases", "PR-AUC", "ROC-AUC", "recall@1%FPR", "commit"):
        table.add_column(col)
    for v in info["versions"]:
        m = v["metrics"]
        table.add_row(
            v["version"],
            v["created_at"][:19],
            ",".join(v["aliases"]),
            *(f"{m[k]:.4f}" if k in m else "-" for k in ("pr_auc", "roc_auc", "recall_at_1pct_fpr")),
            v["git_commit"][:10],
        )
    make_terminal(stderr=True).print(table)
    sys.stderr.flush()  # the table first, then the JSON last line, whichever stream is buffered
    print(json.dumps(info, sort_keys=True))
    return 0


def _promote(args: argparse.Namespace) -> int:
    reg = _open(args)
    reg.promote(args.version, alias=args.alias)  # RegistryError -> one `error:` line, exit 4
    print(json.dumps({"alias": args.alias, "version": reg.resolve(args.alias), "location": reg.location}))
    return 0


def _rollback(args: argparse.Namespace) -> int:
    reg = _open(args)
    version = reg.rollback(alias=args.alias)  # RegistryError -> one `error:` line, exit 4
    print(json.dumps({"alias": args.alias, "version": version, "location": reg.location}))
    return 0
