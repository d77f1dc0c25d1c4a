"""The functions as functions-framework processes (gunicorn, as Cloud Run serves them).

Each runs the `functions-framework` CLI in its own process group on a free loopback port, with
its log in the stack's work folder, and is stopped by killing the group. `THREADS` defaults to
1 for the CPU-bound scoring function (gthread's default of 4 x CPUs only adds contention) and
to a small pool for the I/O-bound enrichment function.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from txguard.local.emulators import free_port
from txguard.local.paths import ROOT
from txguard.local.procgroup import stop_group


class FunctionStartError(RuntimeError):
    pass


def functions_framework_argv() -> list[str]:
    """The CLI next to this interpreter (the venv's), else the module through this interpreter."""
    script = Path(sys.executable).parent / "functions-framework"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from functions_framework._cli import _cli; _cli()"]


@dataclass
class FunctionProcess:
    name: str
    source: Path
    target: str
    signature_type: str
    port: int
    env: dict[str, str]
    workdir: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def argv(self) -> list[str]:
        return [
            *functions_framework_argv(), "--target", self.target, "--source", str(self.source),
            "--signature-type", self.signature_type, "--host", "127.0.0.1", "--port", str(self.port),
        ]

    def spawn(self) -> FunctionProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(
            self.argv(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=self.env, cwd=str(ROOT), start_new_session=True,
        )
        log.close()
        return self

    def wait_ready(self, ready_path: str = "/", ready_ok: tuple[int, ...] = (), timeout: float = 90.0) -> FunctionProcess:
        """Wait until `ready_path` answers (any status < 500, or one of `ready_ok` if given)."""
        assert self.proc is not None, "spawn() first"
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise FunctionStartError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}\n"
                                         + self.tail())
            status = _status(self.url + ready_path)
            if status is not None:
                last = str(status)
                if status in ready_ok or (not ready_ok and status < 500):
                    return self
            time.sleep(0.25)
        self.stop()
        raise FunctionStartError(f"{self.name} not ready after {timeout:.0f}s (last: {last}); see {self.log_path}\n"
                                 + self.tail())

    def start(self, ready_path: str = "/", ready_ok: tuple[int, ...] = (), timeout: float = 90.0) -> FunctionProcess:
        return self.spawn().wait_ready(ready_path, ready_ok, timeout)

    def tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout: float = 10.0) -> None:
        stop_group(self.proc, timeout)  # gunicorn workers included


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return None


def function_env(overrides: Mapping[str, str], threads: int) -> dict[str, str]:
    env = dict(os.environ)
    # The stack decides these explicitly; inherited values would point a function elsewhere.
    for key in ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST", "BIGTABLE_EMULATOR_HOST",
                "MODEL_URI", "SCORING_URL", "HISTORY_STORE", "COUNTERPARTY_STORE", "SQLITE_PATH", "WORKERS", "THREADS",
                "DEBUG"):
        env.pop(key, None)
    env.update({"THREADS": str(threads), "WORKERS": "1", "PYTHONUNBUFFERED": "1"})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(overrides)
    return env


def scoring_process(workdir: Path, env: Mapping[str, str], threads: int = 1, port: int | None = None) -> FunctionProcess:
    from txguard.contract import names

    return FunctionProcess(
        "score", ROOT / "functions" / "score" / "main.py", names.SCORING_ENTRY_POINT, "http",
        port or free_port(), function_env(env, threads), workdir,
    )


def enrich_process(workdir: Path, env: Mapping[str, str], threads: int = 8, port: int | None = None) -> FunctionProcess:
    from txguard.contract import names

    return FunctionProcess(
        "enrich", ROOT / "functions" / "enrich" / "main.py", names.ENRICH_ENTRY_POINT, "cloudevent",
        port or free_port(), function_env(env, threads), workdir,
    )


def label_process(workdir: Path, env: Mapping[str, str], threads: int = 8, port: int | None = None) -> FunctionProcess:
    from txguard.contract import names

    return FunctionProcess(
        "label", ROOT / "functions" / "label" / "main.py", names.LABEL_ENTRY_POINT, "cloudevent",
        port or free_port(), function_env(env, threads), workdir,
    )
