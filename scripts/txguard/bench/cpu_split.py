"""Where the machine's CPU goes during an end-to-end stage: emulators, functions, the bench process.

`txguard bench e2e` runs everything on one machine: the emulators (Pub/Sub, Firestore, Bigtable,
fake-gcs-server: JVMs and Go binaries), the functions (scoring, enrichment, labels under
functions-framework) and the bench process itself (the push bridge, the publisher and the
outcome consumers: threads of one process). A figure limited by the emulators' CPU says nothing
about the functions, so each stage reports the CPU seconds each part used over the stage
(publishing and drain), per decided message and as cores, next to the machine's busy cores
(`/proc/stat`: other people's work included) so that a stage starved by the rest of the machine
shows it. Reads /proc only (Linux); never signals anything.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from txguard.bench.proc_cpu import group_cpu_seconds

PROC = Path("/proc")


def _group(proc: Any) -> int | None:
    """The process group of a process the stack started in its own session (its pid)."""
    if proc is None or proc.poll() is not None:
        return None
    return int(proc.pid)


def machine_busy_seconds(proc: Path = PROC) -> float:
    """CPU seconds all CPUs spent busy since boot (`cpu` line of /proc/stat: all but idle and iowait)."""
    fields = [int(x) for x in (proc / "stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / float(os.sysconf("SC_CLK_TCK"))


def groups(stack: Any) -> dict[str, list[int]]:
    """Process groups by part: `emulators` (each emulator's), `functions` (each function's)."""
    out: dict[str, list[int]] = {"emulators": [], "functions": []}
    for emulator in getattr(stack, "emulators", {}).values():
        if (g := _group(getattr(emulator, "proc", None))) is not None:
            out["emulators"].append(g)
    for function in getattr(stack, "functions", {}).values():
        if (g := _group(getattr(function, "proc", None))) is not None:
            out["functions"].append(g)
    return out


def snapshot(stack: Any) -> dict[str, float]:
    """CPU seconds used so far by each part, the bench process and the whole machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out = {part: sum(group_cpu_seconds(g) for g in pgids) for part, pgids in groups(stack).items()}
    out["bench_process"] = usage.ru_utime + usage.ru_stime  # bridge, publisher, consumers
    out["machine"] = machine_busy_seconds()
    out["wall"] = time.monotonic()
    return out


def split(before: Mapping[str, float], after: Mapping[str, float], decided: int | None) -> dict[str, Any]:
    """Each part's CPU between two snapshots: ms per decided message and cores (CPU s per wall s);
    `others` is the machine's busy time none of the parts account for (other work on the machine)."""
    wall = after["wall"] - before["wall"]
    used = {k: max(0.0, after[k] - before[k]) for k in ("emulators", "functions", "bench_process", "machine")}
    used["others"] = max(0.0, used["machine"] - used["emulators"] - used["functions"] - used["bench_process"])
    per = {f"{k}_ms_per_msg": round(v * 1e3 / decided, 2) if decided else None
           for k, v in used.items() if k not in ("machine", "others")}
    cores = {f"{k}_cores": round(v / wall, 2) if wall > 0 else None for k, v in used.items()}
    return {"wall_s": round(wall, 1), "cpus": os.cpu_count(), **per, **cores}
