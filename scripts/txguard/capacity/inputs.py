"""The two measured inputs of `txguard capacity`, found or produced.

Capacity is computed from figures of this machine's benchmarks, never from constants: the last
JSON line of `txguard bench score` (scoring's per-server rate and p50) and of `txguard bench e2e`
(enrichment's time in the function). `--score`/`--enrich` take files holding those lines;
`--run-benches` runs both benchmarks first (short, without the comparisons the plan does not use),
so `txguard capacity` alone is a complete command.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

MISSING = ("txguard capacity needs two benchmark outputs: --score FILE (the output of "
           "`txguard bench score > score.out`) and --enrich FILE (the output of `txguard bench e2e > e2e.out`); "
           "or pass --run-benches to run both now (a few minutes)")


def bench_commands(duration_s: float, rate: float) -> dict[str, list[str]]:
    """The benchmark runs behind the plan's inputs (only what the plan reads)."""
    txguard = [sys.executable, "-m", "txguard.cli.main"]
    return {
        "score": [*txguard, "bench", "score", "--skip-mlserver", "--skip-coldstart", "--duration", f"{duration_s:g}"],
        "enrich": [*txguard, "bench", "e2e", "--no-search", "--rate", f"{rate:g}", "--duration", f"{duration_s:g}"],
    }


def run_benches(workdir: Path, duration_s: float, rate: float,
                log: Callable[[str], None] = lambda _m: None) -> tuple[Path, Path]:
    """Run both benchmarks, their progress on stderr, their output in `workdir`; the two files."""
    workdir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, argv in bench_commands(duration_s, rate).items():
        path = workdir / f"{name}.out"
        log(f"running {' '.join(['txguard', *argv[3:]])} > {path}")
        with path.open("w") as out:
            done = subprocess.run(argv, stdout=out, check=False)  # noqa: S603 - our own CLI
        if done.returncode != 0:
            raise RuntimeError(f"`txguard {' '.join(argv[3:])}` failed (exit {done.returncode}); output in {path}")
        paths[name] = path
    return paths["score"], paths["enrich"]
