"""`txguard schemas export|check`: the contract's JSON Schemas under schemas/."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("schemas", help="export or check the contract's JSON Schemas")
    sub = parser.add_subparsers(dest="schemas_command", metavar="ACTION", required=True)
    for action, help_text in (("export", "write schemas/<Name>.json from the pydantic models"),
                              ("check", "exit 1 if the checked-in schemas differ from the code")):
        p = sub.add_parser(action, help=help_text)
        p.add_argument("--dir", default=None, help="schema folder (default: the repository's schemas/)")
        p.set_defaults(func=_export if action == "export" else _check)


def _dir(args: argparse.Namespace) -> Path:
    from txguard.ops.schemas import SCHEMA_DIR

    return Path(args.dir) if args.dir else SCHEMA_DIR


def _export(args: argparse.Namespace) -> int:
    from txguard.ops.schemas import export

    paths = export(_dir(args))
    print(json.dumps({"written": [str(p) for p in paths]}))
    return 0


def _check(args: argparse.Namespace) -> int:
    from txguard.cli.errors import CliError, Exit, print_error
    from txguard.ops.schemas import stale

    out = stale(_dir(args))
    if out:
        print_error(CliError(f"schemas {out} differ from the code", "the contract changed since they were exported",
                             "run `txguard schemas export` and commit them", Exit.REFUSED))
    print(json.dumps({"stale": out, "ok": not out}))
    return int(Exit.REFUSED) if out else 0
