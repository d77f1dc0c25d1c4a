"""Servers the benchmark starts: each in its own process group on a loopback port, always stopped.

`functions-framework` is run as Cloud Run runs it (the CLI -> gunicorn, not --debug), with
WORKERS/THREADS in its environment.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from txguard.local.paths import ROOT
from txguard.local.procgroup import stop_group


class ServerError(RuntimeError):
    pass


def functions_framework_argv(source: Path, target: str, port: int) -> list[str]:
    cli = Path(sys.executable).parent / "functions-framework"
    base = [str(cli)] if cli.exists() else [sys.executable, "-m", "functions_framework"]
    return [*base, "--target", target, "--source", str(source), "--signature-type", "http",
            "--host", "127.0.0.1", "--port", str(port)]


def request(port: int, method: str, path: str, body: bytes | None = None, timeout: float = 5.0) -> int | None:
    """Status of one request, None if nothing answers (yet)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except OSError:
        return None
    finally:
        conn.close()


class Server:
    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_path: Path, port: int) -> None:
        self.name, self.argv, self.port, self.log_path = name, argv, port, log_path
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), self.env.get("PYTHONPATH", "")) if p)
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0

    def start(self) -> Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.started_at = time.perf_counter()
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=self.env, cwd=str(ROOT), start_new_session=True)
        return self

    def wait(self, method: str, path: str, body: bytes | None = None, ok: tuple[int, ...] = (200,),
             timeout: float = 120.0, interval: float = 0.005) -> float:
        """Poll until `method path` answers one of `ok`; seconds since start()."""
        assert self.proc is not None
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            if request(self.port, method, path, body, timeout=2.0) in ok:
                return time.perf_counter() - self.started_at
            time.sleep(interval)
        raise ServerError(f"{self.name} not ready after {timeout:.0f}s:\n{self.tail()}")

    def cpu_seconds(self) -> float:
        """CPU used so far by the server's process group (it leads its own session)."""
        from txguard.bench.proc_cpu import group_cpu_seconds

        return group_cpu_seconds(self.proc.pid) if self.proc is not None else 0.0

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout: float = 10.0) -> None:
        stop_group(self.proc, timeout)  # workers included


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server.start()
    finally:
        server.stop()
