"""`txguard` entry point. Subcommands live in scripts/txguard/cli/commands/*.py, each with a
`register(subparsers)` function that adds its parser and sets `func` (returns an exit code)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import NoReturn

from txguard.cli import commands


class Parser(argparse.ArgumentParser):
    """argparse with the CLI's one error line: `error: txguard X: bad arguments, <why>, see ...` (exit 2)."""

    def error(self, message: str) -> NoReturn:
        from txguard.cli.errors import report, usage

        sys.exit(report(usage(f"{self.prog}: bad arguments", message, f"see `{self.prog} --help`")))


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
    """Run one command; a failure the user can fix is one line and its class's exit code
    (txguard.cli.errors), a bug keeps its traceback."""
    from txguard.cli.errors import Exit, classify, report

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return int(Exit.INTERRUPTED)
    except Exception as exc:
        error = classify(exc)
        if error is None:
            raise  # a bug: the traceback is what a report needs
        return report(error)


if __name__ == "__main__":
    sys.exit(main())
