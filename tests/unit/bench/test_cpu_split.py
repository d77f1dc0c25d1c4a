"""The CPU split of an end-to-end stage: parts found by process group, arithmetic, /proc/stat."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from txguard.bench import cpu_split


def test_machine_busy_time_leaves_idle_and_iowait_out(tmp_path: Path) -> None:
    (tmp_path / "stat").write_text("cpu  100 5 50 1000 40 3 2 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
    import os

    ticks = os.sysconf("SC_CLK_TCK")
    assert cpu_split.machine_busy_seconds(tmp_path) == pytest.approx((100 + 5 + 50 + 3 + 2) / ticks)


def test_split_per_message_and_cores_with_the_rest_of_the_machine() -> None:
    before = {"emulators": 10.0, "functions": 5.0, "bench_process": 1.0, "machine": 100.0, "wall": 0.0}
    after = {"emulators": 16.0, "functions": 7.0, "bench_process": 2.0, "machine": 112.0, "wall": 10.0}
    out = cpu_split.split(before, after, decided=200)
    assert out["emulators_ms_per_msg"] == 30.0 and out["functions_ms_per_msg"] == 10.0
    assert out["bench_process_ms_per_msg"] == 5.0
    assert out["emulators_cores"] == 0.6 and out["machine_cores"] == 1.2 and out["others_cores"] == 0.3
    assert cpu_split.split(before, after, decided=0)["functions_ms_per_msg"] is None


def test_a_busy_child_group_is_counted_as_its_part() -> None:
    burn = "import time\nt=time.process_time()\nwhile time.process_time()-t<0.3: pass\ntime.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", burn], start_new_session=True)
    try:
        stack = SimpleNamespace(emulators={}, functions={"score": SimpleNamespace(proc=proc)})
        assert cpu_split.groups(stack) == {"emulators": [], "functions": [proc.pid]}
        deadline = time.monotonic() + 60
        while cpu_split.snapshot(stack)["functions"] < 0.3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert cpu_split.snapshot(stack)["functions"] >= 0.3
    finally:
        proc.kill()
        proc.wait()
    assert cpu_split.groups(stack)["functions"] == []  # exited: nothing to sample
