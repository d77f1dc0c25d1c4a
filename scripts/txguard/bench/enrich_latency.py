"""Per-message enrichment time from the enrichment function's JSON log lines.

Every delivery logs one line with `timings` (validation_us, store_ms, scoring_ms, publish_ms,
total_ms). This reads such logs (the `enrich.log` of `txguard local up` or of an integration
test) and prints p50/p99 per stage, plus `store_ms + scoring_ms` (the enrichment work per
message, without Pub/Sub), for the decided messages. Last line: one JSON object.

    python -m txguard.bench.enrich_latency .txguard/local/enrich.log
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

STAGES = ("validation_us", "store_ms", "scoring_ms", "publish_ms", "total_ms")


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: p99 of 100 values is the 99th)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def read_timings(paths: list[Path], status: str = "decided") -> dict[str, list[float]]:
    out: dict[str, list[float]] = {k: [] for k in (*STAGES, "store_plus_scoring_ms")}
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            if not line.startswith("{") or '"timings"' not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            timings = entry.get("timings")
            if entry.get("status") != status or not isinstance(timings, dict):
                continue
            for key in STAGES:
                if isinstance(timings.get(key), int | float):
                    out[key].append(float(timings[key]))
            if isinstance(timings.get("store_ms"), int | float) and isinstance(timings.get("scoring_ms"), int | float):
                out["store_plus_scoring_ms"].append(timings["store_ms"] + timings["scoring_ms"])
    return out


def summarize(timings: dict[str, list[float]]) -> dict[str, object]:
    summary: dict[str, object] = {"messages": len(timings["total_ms"])}
    for key, values in timings.items():
        p50, p99 = percentile(values, 50), percentile(values, 99)
        summary[key] = {"p50": None if p50 is None else round(p50, 2), "p99": None if p99 is None else round(p99, 2)}
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logs", nargs="+", type=Path, help="enrichment function log file(s)")
    parser.add_argument("--status", default="decided", help="which delivery status to measure (default: decided)")
    args = parser.parse_args(argv)
    summary = summarize(read_timings(args.logs, args.status))
    for key in ("store_ms", "scoring_ms", "store_plus_scoring_ms", "publish_ms", "total_ms"):
        print(f"{key:>22}: p50 {summary[key]['p50']} ms, p99 {summary[key]['p99']} ms")
    print(json.dumps(summary, separators=(",", ":")))
    return 0 if summary["messages"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
