"""`txguard bench score` helpers: wrk output parsing and the summary line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from txguard.bench import mlserver, proc_cpu
from txguard.bench.load import parse_wrk
from txguard.bench.runner import best_peer, summary

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:40000/score
  1 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     6.21ms    3.02ms  48.11ms   80.12%
    Req/Sec     1.62k   120.33     1.90k    70.00%
  Latency Distribution
     50%    5.85ms
     75%    7.12ms
     90%    9.80ms
     99%  812.00us
  16123 requests in 10.00s, 5.01MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   1612.30
Transfer/sec:    512.90KB
"""


def test_parse_wrk_reads_rate_percentiles_in_any_unit_and_errors() -> None:
    r = parse_wrk(WRK_OUTPUT, "score")
    assert r.rps == pytest.approx(1612.30)
    assert r.p50_ms == pytest.approx(5.85)
    assert r.p99_ms == pytest.approx(0.812)
    assert r.requests == 16123
    assert r.errors == 4 + 2 + 1


def test_summary_ratios_come_from_the_same_report() -> None:
    report = {
        "inproc": {"fast": {"p50_us": 20.0, "p99_us": 40.0}, "sklearn": {"p50_us": 900.0, "p99_us": 2000.0}},
        "hello": {"rps": 2000.0, "p50_ms": 3.0, "p99_ms": 6.0, "errors": 0, "cpu_us_per_req": 300.0},
        "mlserver": {
            "defaults": {"rps": 100.0, "p50_ms": 80.0, "p99_ms": 900.0, "errors": 0},
            "tuned": {"rps": 300.0, "p50_ms": 30.0, "p99_ms": 60.0, "errors": 0, "cpu_us_per_req": 2000.0},
            "inline": {"error": "failed to start"},
        },
        "coldstart": {"median_s": 0.8, "cpu_ms_median": 280.0, "hello_median_s": 0.4, "hello_cpu_ms_median": 130.0},
        "workers": 2, "threads": 1, "load_client": "wrk",
        "rules": {"added_us_p50": 2.5, "rules_only": {"p50_us": 2.345}, "fast_rules": {"p50_us": 22.51}},
    }
    main = {"rps": 1500.0, "p50_ms": 4.0, "p99_ms": 9.0, "errors": 0, "cpu_us_per_req": 400.0}
    s = summary(report, main)
    assert (s["rules50_added_us_p50"], s["rules50_eval_us_p50"], s["fast_rules50_us_p50"]) == (2.5, 2.35, 22.5)
    del report["rules"]
    assert summary(report, main)["rules50_added_us_p50"] is None  # that step failed: the rest still reports
    assert s["cpu_vs_hello"] == 0.75 and s["cpu_vs_mlserver"] == 5.0 and s["http_cpu_us_per_req"] == 400.0
    # Cold start next to the server stack's floor (the constant function started the same way).
    assert (s["coldstart_s"], s["coldstart_cpu_ms"], s["coldstart_hello_s"], s["coldstart_hello_cpu_ms"]) == (
        0.8, 280.0, 0.4, 130.0)
    # The ratio that counts is against the best configuration of the peer, not its defaults.
    assert s["vs_hello"] == 0.75 and s["vs_mlserver"] == 5.0 and s["vs_mlserver_defaults"] == 15.0
    assert s["mlserver_config"] == "tuned" and s["mlserver_p99_ms"] == 60.0
    assert s["mlserver_defaults_rps"] == 100.0 and s["mlserver_defaults_p99_ms"] == 900.0
    for key in ("fast_us_p50", "sklearn_us_p50", "http_rps", "http_p99_ms", "hello_rps", "mlserver_rps",
                "mlserver_p99_ms", "coldstart_s"):
        assert s[key] is not None, key


def test_summary_splits_the_fast_path_into_its_pieces() -> None:
    """The Python around the model (the row built, the row written) and the run alone (both graph forms)
    are command output; absent measurements are None, not a failure."""
    inproc = {"fast": {"p50_us": 4.62, "p99_us": 9.0}, "sklearn": {"p50_us": 500.0, "p99_us": 900.0},
              "row": {"p50_us": 1.504}, "write": {"p50_us": 0.75},
              "inference_only": {"p50_us": 2.214}, "inference_only_classifier": {"p50_us": 3.187}}
    report = {"inproc": inproc, "hello": {"rps": 2000.0, "p50_ms": 3.0, "p99_ms": 6.0, "errors": 0},
              "workers": 2, "threads": 1, "load_client": "wrk"}
    main = {"rps": 1500.0, "p50_ms": 4.0, "p99_ms": 9.0, "errors": 0}
    s = summary(report, main)
    assert (s["fast_us_p50"], s["row_us_p50"], s["write_us_p50"]) == (4.6, 1.5, 0.75)
    assert (s["inference_only_us_p50"], s["inference_only_classifier_us_p50"]) == (2.21, 3.19)
    for key in ("row", "write", "inference_only", "inference_only_classifier"):
        del inproc[key]
    s = summary(report, main)
    assert s["row_us_p50"] is None and s["write_us_p50"] is None and s["inference_only_us_p50"] is None
    assert s["inference_only_classifier_us_p50"] is None and s["fast_us_p50"] == 4.6


def test_wrk_percentile_table_feeds_the_latency_histogram(tmp_path) -> None:  # noqa: ANN001
    import numpy as np

    from txguard.bench.load import PERCENTILES
    from txguard.bench.pictures import percentile_histogram, samples_histogram, shares_from_percentiles

    table = "".join(f"PCT {p:g} {int(1000 + 40 * p)}\n" for p in PERCENTILES)  # 1.04 ms .. 5.0 ms
    r = parse_wrk(WRK_OUTPUT + table, "score")
    assert len(r.percentiles) == len(PERCENTILES)
    assert r.percentiles[49] == (50.0, 3.0) and r.percentiles[-1] == (99.99, 4.999)
    edges = np.logspace(-1, 1, 41)  # 0.1 .. 10 ms covers the whole table
    shares = shares_from_percentiles(r.percentiles, edges)
    assert shares.sum() == pytest.approx(1.0)  # the 1 % below the 1st percentile lands in its bin
    assert shares[edges[:-1] > 5.0].sum() == 0.0
    png = percentile_histogram({"score": [r.percentiles, r.percentiles]}, "t", tmp_path / "lat.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    samples = samples_histogram({"100 tx/s": list(np.random.default_rng(0).lognormal(3, 0.5, 500))}, "t",
                                tmp_path / "e2e.png")
    assert samples.stat().st_size > 5000


def test_summary_without_mlserver_has_no_peer_ratio() -> None:
    report = {
        "inproc": {"fast": {"p50_us": 20.0, "p99_us": 40.0}, "sklearn": {"p50_us": 900.0, "p99_us": 2000.0}},
        "hello": {"rps": 2000.0, "p50_ms": 3.0, "p99_ms": 6.0, "errors": 0},
        "mlserver": {"error": "pip failed"}, "workers": 2, "threads": 1, "load_client": "wrk",
    }
    s = summary(report, {"rps": 1500.0, "p50_ms": 4.0, "p99_ms": 9.0, "errors": 0})
    assert s["vs_mlserver"] is None and s["mlserver_config"] is None and s["vs_hello"] == 0.75
    assert best_peer({"a": {"error": "x"}}) is None


def test_mlserver_variants_follow_its_settings() -> None:
    """defaults leave MLServer alone; tuned = one inference worker per CPU and one OpenMP thread each;
    inline = no worker pool (the model in the HTTP process), one OpenMP thread."""
    by_label = {v.label: v for v in mlserver.variants(cpus=2)}
    assert by_label["defaults"].env == {}
    assert by_label["tuned"].env["MLSERVER_PARALLEL_WORKERS"] == "2"
    assert by_label["inline"].env["MLSERVER_PARALLEL_WORKERS"] == "0"
    for label in ("tuned", "inline"):
        assert by_label[label].env["OMP_NUM_THREADS"] == "1"
    env = mlserver.server_env(1, 2, 3, by_label["tuned"])
    assert env["MLSERVER_HOST"] == "127.0.0.1" and env["MLSERVER_PARALLEL_WORKERS"] == "2"


def test_group_cpu_counts_every_process_of_the_group_and_reaped_children(tmp_path: Path) -> None:
    # comm may hold spaces and parentheses; pgrp is the 3rd field after it, utime..cstime the 12th-15th.
    stats = {
        10: "10 (gunicorn: master (x)) S 1 10 10 0 -1 0 0 0 0 0 100 50 30 20 20 0 3 0",  # leader, reaped 0.5 s
        11: "11 (worker) S 10 10 10 0 -1 0 0 0 0 0 200 100 0 0 20 0 1 0",
        12: "12 (other) S 1 12 12 0 -1 0 0 0 0 0 999 999 0 0 20 0 1 0",  # another group
    }
    for pid, line in stats.items():
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(line)
    ticks = float(os.sysconf("SC_CLK_TCK"))
    assert proc_cpu.group_cpu_seconds(10, tmp_path) == pytest.approx((100 + 50 + 30 + 20 + 200 + 100) / ticks)


def test_group_cpu_of_a_real_process_grows_while_it_works() -> None:
    busy = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\ntime.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", busy], start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while proc_cpu.group_cpu_seconds(proc.pid) < 0.25 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc_cpu.group_cpu_seconds(proc.pid) >= 0.25
    finally:
        proc.kill()
        proc.wait()
