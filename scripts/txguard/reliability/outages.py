"""Taking parts of the local stack down and bringing them back on the same port.

- Scoring function: its process group is killed (SIGTERM, then SIGKILL), and the same
  `FunctionProcess` is spawned again on the same port once the outage is over.
- Firestore emulator: it keeps its data in memory, so a plain restart would come back empty, which
  no real Firestore outage does. Before stopping it we export its data over the emulator's REST
  endpoint (`POST /emulator/v1/projects/<p>:export`) and restart it with `--import-data`; the
  enrichment function is frozen (SIGSTOP on its process group) for the second the snapshot takes,
  so that no write commits between the snapshot and the stop (it would be an artefact of the
  simulation, not of the pipeline). While the emulator is down the function runs normally and
  gets connection errors: the outage itself is real.
- Enrichment workers: the gunicorn workers under the function's arbiter are killed with SIGKILL
  (no clean-up, like an instance that disappears); requests they were serving are cut, and the
  arbiter forks new workers, which cold-start while new connections wait in its backlog.
- Bigtable emulator: frozen (`Freeze`: SIGSTOP on the process group the stack started for it, by
  its leader's PID) and resumed (SIGCONT) with its data intact, as a store that stops answering:
  clients wait until their deadlines, requests sent meanwhile are served on resume. The freeze is
  bounded by a timer and always ended in `finally`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

IMPORT_FLAG = "--import-data="


def stop_function(fn: Any) -> None:
    fn.stop()


def restart_function(fn: Any, ready_path: str = "/health", ready_ok: tuple[int, ...] = (200,)) -> None:
    """Spawn the stopped function again, on the same port, and wait until it is ready."""
    fn.spawn().wait_ready(ready_path, ready_ok)


@contextlib.contextmanager
def frozen(fn: Any) -> Iterator[None]:
    """SIGSTOP the function's process group for the duration of the block, then SIGCONT."""
    pid = fn.proc.pid if fn is not None and fn.proc is not None and fn.proc.poll() is None else None
    if pid is not None:
        os.killpg(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGCONT)


class Freeze:
    """SIGSTOP one process group that we started (`start_new_session`: its leader's PID is the group id),
    then SIGCONT on `resume()` or, whatever happens to the caller, `max_s` after the stop (a timer).
    `resume()` is idempotent: callers also call it in `finally`."""

    def __init__(self, proc: subprocess.Popen | None, max_s: float) -> None:
        self.proc = proc
        self.max_s = max_s
        self.stopped_at: float | None = None
        self.resumed_at: float | None = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            raise RuntimeError("nothing to freeze: the process is not running")
        if os.getpgid(proc.pid) != proc.pid:  # never signal a group we did not start
            raise RuntimeError(f"process {proc.pid} does not lead its own process group: not freezing it")
        with self._lock:
            if self.stopped_at is not None:
                return
            os.killpg(proc.pid, signal.SIGSTOP)
            self.stopped_at = time.monotonic()
            self._timer = threading.Timer(self.max_s, self.resume)
            self._timer.daemon = True
            self._timer.start()

    def resume(self) -> None:
        with self._lock:
            if self.stopped_at is None or self.resumed_at is not None:
                return
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGCONT)  # type: ignore[union-attr]
            self.resumed_at = time.monotonic()
            if self._timer is not None:
                self._timer.cancel()

    @property
    def frozen_s(self) -> float | None:
        if self.stopped_at is None or self.resumed_at is None:
            return None
        return round(self.resumed_at - self.stopped_at, 1)


def worker_pids(fn: Any) -> list[int]:
    """The gunicorn workers of a function process (children of its arbiter), from /proc."""
    if fn.proc is None or fn.proc.poll() is not None:
        return []
    arbiter, found = fn.proc.pid, []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])  # after "pid (comm) state"
            if ppid == arbiter:
                found.append(int(entry.name))
    return sorted(found)


def kill_workers(fn: Any, timeout_s: float = 30.0) -> dict[str, Any]:
    """SIGKILL every worker of `fn`; wait until the arbiter has forked new ones (returned with the old)."""
    killed = worker_pids(fn)
    for pid in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    replaced: list[int] = []
    while time.monotonic() < deadline:
        replaced = [p for p in worker_pids(fn) if p not in killed]
        if replaced:
            break
        time.sleep(0.05)
    return {"killed": killed, "replaced_by": replaced}


def export_firestore(host: str, project: str, directory: Path, timeout_s: float = 60.0) -> Path:
    """Export the emulator's data into `directory`; returns the `.overall_export_metadata` file."""
    directory.mkdir(parents=True, exist_ok=True)
    before = set(directory.glob("*/*.overall_export_metadata"))
    body = json.dumps({"database": f"projects/{project}/databases/(default)", "export_directory": str(directory)})
    req = urllib.request.Request(f"http://{host}/emulator/v1/projects/{project}:export", data=body.encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:
        resp.read()
    made = sorted(set(directory.glob("*/*.overall_export_metadata")) - before, key=lambda p: p.stat().st_mtime)
    if not made:
        raise RuntimeError(f"Firestore emulator export wrote no metadata file in {directory}")
    return made[-1]


def stop_firestore(stack: Any, export_dir: Path) -> Path:
    """Snapshot then stop the stack's Firestore emulator (the enrichment function frozen meanwhile)."""
    emu = stack.emulators["firestore"]
    with frozen(stack.functions.get("enrich")):
        snapshot = export_firestore(emu.host, stack.options.project, export_dir)
        emu.stop()
    return snapshot


def restart_firestore(stack: Any, snapshot: Path, timeout_s: float = 60.0) -> float:
    """Start the Firestore emulator again on the same port with the snapshot; returns seconds taken."""
    emu = stack.emulators["firestore"]
    emu.argv = [a for a in emu.argv if not a.startswith(IMPORT_FLAG)] + [f"{IMPORT_FLAG}{snapshot}"]
    started = time.monotonic()
    emu.start(f"http://{emu.host}/", timeout=timeout_s)
    return time.monotonic() - started
