"""`txguard` entry point. Subcommands live in scripts/txguard/cli/commands/*.py, each with a
`register(subparsers)` function that adds its parser and sets `func` (returns an exit code)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from txguard.cli import commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="txguard", description="Real-time fraud scoring of wallet transactions on Google Cloud serverless."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
