"""The enrichment latency summary reads the function's own log lines."""

from __future__ import annotations

import json
from pathlib import Path

from txguard.bench.enrich_latency import main, percentile, read_timings, summarize


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 99) == 99.0
    assert percentile([], 50) is None


def test_reads_decided_lines_only(tmp_path: Path, capsys) -> None:
    log = tmp_path / "enrich.log"
    lines = [json.dumps({"status": "decided", "timings": {"store_ms": s, "scoring_ms": 2.0, "total_ms": s + 3}})
             for s in (1.0, 3.0, 5.0)]
    lines += [json.dumps({"status": "retry", "timings": {"store_ms": 99.0, "total_ms": 99.0}}), "Traceback ..."]
    log.write_text("\n".join(lines) + "\n")
    timings = read_timings([log])
    assert timings["store_ms"] == [1.0, 3.0, 5.0]
    assert summarize(timings)["store_plus_scoring_ms"] == {"p50": 5.0, "p99": 7.0}
    assert main([str(log)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["messages"] == 3
