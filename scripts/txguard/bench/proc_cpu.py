"""CPU time of running processes whose command line matches, over a bounded window.

The enrichment function is sized by concurrency (Little's law) only while its CPU per message
stays small; this measures that CPU while a load runs. Start `txguard bench e2e --no-search`
(or `txguard local up`), then sample the enrichment processes over the steady part of the stage:

    python -m txguard.bench.proc_cpu --match 'target enrich' --duration 20

CPU per message = `cpu_per_s` / the decided messages per second of the same window (the stage's
`achieved_tps`). Reads /proc (Linux) only; it never signals or changes the processes. A process
that appears during the window counts from its first sample, one that exits keeps its last one.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

PROC = Path("/proc")


def cpu_seconds(stat_line: str, ticks_per_s: float) -> float:
    """utime + stime of one /proc/<pid>/stat line (fields 14 and 15, after the `(comm)` field)."""
    fields = stat_line[stat_line.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / ticks_per_s


def matching_pids(pattern: str, proc: Path = PROC) -> list[int]:
    me = os.getpid()
    pids = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if pattern in cmdline:
            pids.append(int(entry.name))
    return pids


def sample(pattern: str, proc: Path = PROC) -> dict[int, float]:
    ticks = float(os.sysconf("SC_CLK_TCK"))
    out = {}
    for pid in matching_pids(pattern, proc):
        try:
            out[pid] = cpu_seconds((proc / str(pid) / "stat").read_text(), ticks)
        except (OSError, ValueError, IndexError):
            continue
    return out


def group_cpu_seconds(pgid: int, proc: Path = PROC) -> float:
    """CPU seconds used so far by a process group: its live processes (user + system) plus the
    children they have reaped (gunicorn's replaced workers). `txguard bench score` samples each
    server's group around a load round: CPU per request holds on a shared machine, where
    requests per second do not."""
    ticks = float(os.sysconf("SC_CLK_TCK"))
    total = 0.0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            line = (entry / "stat").read_text()
        except OSError:
            continue
        fields = line[line.rindex(")") + 2:].split()
        if int(fields[2]) == pgid:
            total += sum(int(f) for f in fields[11:15]) / ticks
    return total


def measure(pattern: str, duration_s: float, interval_s: float = 0.5) -> dict[str, object]:
    first = sample(pattern)
    last = dict(first)
    t0 = time.monotonic()
    while time.monotonic() - t0 < duration_s:
        time.sleep(interval_s)
        last.update(sample(pattern))
    wall = time.monotonic() - t0
    used = sum(cpu - first.get(pid, 0.0) for pid, cpu in last.items())
    return {"pattern": pattern, "processes": len(last), "cpu_s": round(used, 3), "wall_s": round(wall, 2),
            "cpu_per_s": round(used / wall, 4) if wall > 0 else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--match", required=True, help="substring of the command line (e.g. 'target enrich')")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds to sample (default 20)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before sampling (default 0)")
    args = parser.parse_args(argv)
    time.sleep(max(0.0, args.delay))
    result = measure(args.match, args.duration)
    print(json.dumps(result), flush=True)
    return 0 if result["processes"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
