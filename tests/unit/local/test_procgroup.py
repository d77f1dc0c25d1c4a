"""stop_group stops a child and what it spawned (the gcloud wrapper's JVM, gunicorn's workers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from txguard.local.procgroup import stop_group

# A leader that ignores SIGTERM and a grandchild in the same group: both must end.
STUBBORN = (
    "import signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(60)\n"
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is not alive
        return stat.read().split()[2] != "Z"


def test_stops_a_stubborn_leader_and_its_children() -> None:
    proc = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    grandchild = int(proc.stdout.readline())
    assert _alive(grandchild)
    started = time.monotonic()
    stop_group(proc, timeout=1.0)
    assert proc.poll() == -signal.SIGKILL  # SIGTERM ignored: killed after the timeout
    assert time.monotonic() - started < 5
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)
    proc.stdout.close()


def test_already_stopped_and_never_started_are_fine() -> None:
    stop_group(None)
    proc = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    proc.wait()
    stop_group(proc)
    assert proc.returncode == 0
