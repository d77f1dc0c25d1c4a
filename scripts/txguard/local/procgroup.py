"""Stop a child started with `start_new_session=True` together with everything it spawned.

The gcloud wrapper leaves its Java child running if only the wrapper is killed, and gunicorn's
workers can outlive their arbiter: everything we start gets its own process group, and this is
the one way we stop one. SIGTERM to the group, wait, then SIGKILL to whatever is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def stop_group(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """Terminate `proc`'s process group (no-op if it never started); never raises if already gone."""
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
    # Whatever the leader left behind (the JVM under gcloud, gunicorn workers), and the leader
    # itself if SIGTERM was not enough.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout)
