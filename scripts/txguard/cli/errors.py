"""The CLI's one error path: what a user can fix is one line on stderr and a documented exit code.

Every failure a user can cause (a flag, a file, a registry, credentials, a service) ends as
`error: <what>, <why>, <what to do>` on stderr -- one line, wrapped only on a terminal -- and one
JSON object as stdout's last line (`{"error": ..., "exit_code": ...}` plus what the command adds),
with the exit code of its class (`Exit`, the README's table). Commands raise `CliError` for what
they check themselves; domain errors (`TxguardError`), credentials and cloud API errors, missing
files and bad settings reaching `txguard.cli.main` are classified by `classify`. Anything else is
a bug and keeps its traceback. A class name or a raw cloud exception never reaches the user.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from enum import IntEnum
from typing import Any, TextIO


class Exit(IntEnum):
    """Exit codes, one per class of failure (the README's table is tested against this one)."""

    OK = 0
    INPUT = 1  # a file: missing, empty, header only, malformed rows, or a job whose rows failed
    USAGE = 2  # flags or settings: unknown, contradictory or out of range
    REFUSED = 3  # a check said no: the quality gate, a stale schema or figure
    SETUP = 4  # registry, credentials, bucket, emulator or service: missing or unreachable
    FAILED = 5  # the work ran and something failed on the way: messages lost or not published
    INTERRUPTED = 130  # Ctrl-C or SIGTERM


EXIT_MEANINGS: dict[Exit, str] = {
    Exit.OK: "done",
    Exit.INPUT: "input: a file missing, empty, header only or with bad rows (each reported by line)",
    Exit.USAGE: "usage: a flag or setting unknown, contradictory or out of range",
    Exit.REFUSED: "refused: a check said no (the quality gate, a stale schema or figure)",
    Exit.SETUP: "setup: a registry, credentials, bucket, emulator or service missing or unreachable",
    Exit.FAILED: "failed: the work ran and something was lost or not published on the way",
    Exit.INTERRUPTED: "interrupted (Ctrl-C, SIGTERM)",
}

NO_CREDENTIALS = ("no Google Cloud credentials (Application Default Credentials)",
                  "run `gcloud auth application-default login`, or point PUBSUB_EMULATOR_HOST / "
                  "STORAGE_EMULATOR_HOST / FIRESTORE_EMULATOR_HOST at the emulators (`txguard local up --keep` "
                  "prints them)")


class CliError(Exception):
    """A failure the user can fix: what failed, why, and what to do, with its exit code.

    `extra` goes into the JSON last line (e.g. train's `"gate": "failed"`).
    """

    def __init__(self, what: str, why: str = "", fix: str = "", code: Exit = Exit.INPUT,
                 extra: dict[str, Any] | None = None) -> None:
        self.what, self.why, self.fix, self.code = what.strip(), why.strip(), fix.strip(), Exit(code)
        self.extra = extra or {}
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return ", ".join(part for part in (self.what, self.why, self.fix) if part)


def usage(what: str, why: str = "", fix: str = "", extra: dict[str, Any] | None = None) -> CliError:
    return CliError(what, why, fix, Exit.USAGE, extra)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def _cloud_message(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return one_line(text)[:200]


def classify(exc: BaseException) -> CliError | None:
    """The CliError a user should see for `exc`, or None for a bug (the traceback is the report)."""
    from pydantic import ValidationError

    from txguard.contract.errors import (
        DataFileError,
        QualityGateError,
        RegistryError,
        RetryableError,
        TxguardError,
    )

    if isinstance(exc, CliError):
        return exc
    module = type(exc).__module__
    if isinstance(exc, DataFileError):
        return CliError(one_line(str(exc)), fix=getattr(exc, "fix", "") or "fix the file or give another")
    if isinstance(exc, QualityGateError):
        return CliError(one_line(str(exc)), code=Exit.REFUSED)
    if isinstance(exc, RegistryError):
        return CliError(one_line(str(exc)), code=Exit.SETUP)
    if isinstance(exc, RetryableError):
        return CliError(one_line(str(exc)), "a service did not answer", "check it is running and try again",
                        Exit.SETUP)
    if isinstance(exc, TxguardError):
        return CliError(one_line(str(exc)), code=Exit.INPUT)
    if module.startswith("google.auth"):
        return CliError(*NO_CREDENTIALS, code=Exit.SETUP)
    if module.startswith("google.api_core"):
        return _cloud_error(exc)
    if isinstance(exc, ValidationError):  # a setting read from the environment
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or exc.title
        return usage(f"setting {where} is invalid", one_line(first.get("msg", "")),
                     "fix the environment variable (README, Configuration)")
    if isinstance(exc, IsADirectoryError):
        return CliError(f"cannot read {exc.filename}", "it is a folder, not a file", "give a file")
    if isinstance(exc, FileNotFoundError):
        return CliError(f"cannot read {exc.filename}", "no such file or folder", "check the path")
    if isinstance(exc, PermissionError):
        return CliError(f"cannot open {exc.filename}", "permission denied", "check the file's permissions")
    return None


def _cloud_error(exc: BaseException) -> CliError:
    """A Google Cloud API error (Pub/Sub, Storage, Firestore; or an emulator) as a user's line."""
    code = getattr(exc, "code", None)
    name = type(exc).__name__
    detail = _cloud_message(exc)
    if code == 404 or name == "NotFound":
        return CliError("a Google Cloud resource was not found", detail,
                        "check the project, topic, subscription or bucket (and PUBSUB_EMULATOR_HOST / "
                        "STORAGE_EMULATOR_HOST when you meant an emulator)", Exit.SETUP)
    if code in (401, 403) or name in ("Forbidden", "PermissionDenied", "Unauthenticated", "Unauthorized"):
        return CliError("Google Cloud refused the call", detail,
                        "check the account's roles (`gcloud auth application-default login` for yours)", Exit.SETUP)
    if code == 501 or name == "MethodNotImplemented":
        return CliError("the Pub/Sub endpoint does not offer this call", detail,
                        "use the gcloud emulators or Google Cloud (txguard local up without --embedded)", Exit.SETUP)
    return CliError("a Google Cloud call failed", detail,
                    "check that the service or emulator is up and reachable, then try again", Exit.SETUP)


def print_error(error: CliError, err: TextIO | None = None) -> None:
    """The error's one line on stderr (wrapped to the terminal's width only on a terminal)."""
    err = err or sys.stderr
    line = f"error: {error.message}"
    if getattr(err, "isatty", lambda: False)():
        width = max(40, shutil.get_terminal_size((100, 20)).columns)
        line = textwrap.fill(line, width=width, subsequent_indent="  ", break_on_hyphens=False,
                             break_long_words=False)
    sys.stdout.flush()
    print(line, file=err, flush=True)


def report(error: CliError, err: TextIO | None = None, out: TextIO | None = None) -> int:
    """Print `error` (one line on stderr, wrapped only on a terminal; a JSON last line on stdout)."""
    out = out or sys.stdout
    print_error(error, err)
    print(json.dumps({"error": error.message, "exit_code": int(error.code), **error.extra}), file=out, flush=True)
    return int(error.code)


def run_failure(what: str, exc: BaseException, fix: str, code: Exit = Exit.FAILED) -> CliError:
    """A long-running command's failure (a stack, a benchmark): the user's line when `exc` is one
    `classify` knows, else what failed with the exception's own words and where its logs are."""
    known = classify(exc)
    if known is not None:
        return known
    text = one_line(str(exc)) or "it stopped without a message"
    return CliError(what, text[:300], fix, code)
