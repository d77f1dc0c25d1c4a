"""The measured inputs of `txguard capacity`, found or produced.

Capacity is computed from figures of this machine's benchmarks, never from constants: the last
JSON line of `txguard bench score` (scoring's per-server rate and p50), of `txguard bench e2e`
(enrichment's time in the function) and of `txguard bench counterparty` (the Bigtable store's
writes and snapshot reads on its emulator). `--score`/`--enrich`/`--counterparty` take files
holding those lines; `--run-benches` runs the missing benchmarks first (short, without the
comparisons the plan does not use), so `txguard capacity --run-benches` alone is a complete command.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

MISSING = ("txguard capacity needs two benchmark outputs: --score FILE (the output of "
           "`txguard bench score > score.out`) and --enrich FILE (the output of `txguard bench e2e > e2e.out`), "
           "and for the Bigtable nodes --counterparty FILE (`txguard bench counterparty > cp.out`); "
           "or pass --run-benches to run them now (a few minutes)")


def bench_commands(duration_s: float, rate: float) -> dict[str, list[str]]:
    """The benchmark runs behind the plan's inputs (only what the plan reads)."""
    txguard = [sys.executable, "-m", "txguard.cli.main"]
    return {
        "score": [*txguard, "bench", "score", "--skip-mlserver", "--skip-coldstart", "--duration", f"{duration_s:g}"],
        "enrich": [*txguard, "bench", "e2e", "--no-search", "--rate", f"{rate:g}", "--duration", f"{duration_s:g}"],
        "counterparty": [*txguard, "bench", "counterparty", "--seconds", f"{max(5.0, duration_s / 2):g}",
                         "--reads", "100"],
    }


def run_benches(workdir: Path, duration_s: float, rate: float, only: list[str] | None = None,
                log: Callable[[str], None] = lambda _m: None) -> dict[str, Path]:
    """Run the benchmarks (`only` those named), their progress on stderr, their output in `workdir`:
    the output file of each, by input name."""
    workdir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, argv in bench_commands(duration_s, rate).items():
        if only is not None and name not in only:
            continue
        path = workdir / f"{name}.out"
        log(f"running {' '.join(['txguard', *argv[3:]])} > {path}")
        with path.open("w") as out:
            done = subprocess.run(argv, stdout=out, check=False)  # noqa: S603 - our own CLI
        if done.returncode != 0:
            raise RuntimeError(f"`txguard {' '.join(argv[3:])}` failed (exit {done.returncode}); output in {path}")
        paths[name] = path
    return paths
