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
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message = user_error(exc)
        if message is None:
            raise  # a bug: the traceback is what a report needs
        print(f"error: {message}", file=sys.stderr)
        return 1


NO_CREDENTIALS = ("no Google Cloud credentials (Application Default Credentials): run "
                  "`gcloud auth application-default login`, or point PUBSUB_EMULATOR_HOST / "
                  "STORAGE_EMULATOR_HOST / FIRESTORE_EMULATOR_HOST at the emulators "
                  "(`txguard local up --keep` prints them)")


def user_error(exc: BaseException) -> str | None:
    """One line for an error the user can fix (setup, input, cloud access), None for a bug.

    Commands handle their own expected failures; this is the net for the ones that reach here
    from a library (google-auth, google-api-core) or from a domain error raised deep inside.
    """
    from txguard.contract.errors import TxguardError

    module = type(exc).__module__
    if isinstance(exc, TxguardError):
        return str(exc)
    if module.startswith("google.auth"):
        return NO_CREDENTIALS
    if module.startswith("google.api_core"):
        text = " ".join(str(getattr(exc, "message", None) or exc).split())
        return f"{type(exc).__name__}: {text[:300]}"
    if isinstance(exc, FileNotFoundError | IsADirectoryError | PermissionError):
        return str(exc)
    return None


if __name__ == "__main__":
    sys.exit(main())
