"""`outages.Freeze`: SIGSTOP on a process group we started, resumed on time, by its timer, or again
harmlessly; never on a process that does not lead its own group."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from txguard.local.procgroup import stop_group
from txguard.reliability.outages import Freeze


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    yield proc
    stop_group(proc, timeout=5)


def _wait_for(pid: int, states: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _state(pid) not in states:
        time.sleep(0.02)
    return _state(pid)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_stopped_then_resumed_and_resume_is_idempotent(sleeper: subprocess.Popen) -> None:
    freeze = Freeze(sleeper, max_s=30)
    freeze.stop()
    assert _wait_for(sleeper.pid, "T") == "T"
    freeze.resume()
    freeze.resume()
    assert _wait_for(sleeper.pid, "SR") in "SR"
    assert freeze.frozen_s is not None and freeze.frozen_s < 30


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_the_timer_resumes_it_when_nobody_does(sleeper: subprocess.Popen) -> None:
    freeze = Freeze(sleeper, max_s=0.3)
    freeze.stop()
    assert _wait_for(sleeper.pid, "T") == "T"
    assert _wait_for(sleeper.pid, "SR") in "SR"
    assert freeze.frozen_s is not None and freeze.frozen_s >= 0.3


def test_refuses_a_process_that_does_not_lead_its_group_or_is_gone() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # our own group
    try:
        with pytest.raises(RuntimeError, match="process group"):
            Freeze(proc, max_s=1).stop()
    finally:
        proc.kill()
        proc.wait()
    with pytest.raises(RuntimeError, match="not running"):
        Freeze(proc, max_s=1).stop()
    Freeze(None, max_s=1).resume()  # nothing stopped: nothing to do
