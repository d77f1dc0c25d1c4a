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
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
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
