"""`txguard bench score` helpers: wrk output parsing and the summary line."""

from __future__ import annotations

import pytest

from txguard.bench import mlserver
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
        "hello": {"rps": 2000.0, "p50_ms": 3.0, "p99_ms": 6.0, "errors": 0},
        "mlserver": {
            "defaults": {"rps": 100.0, "p50_ms": 80.0, "p99_ms": 900.0, "errors": 0},
            "tuned": {"rps": 300.0, "p50_ms": 30.0, "p99_ms": 60.0, "errors": 0},
            "inline": {"error": "failed to start"},
        },
        "coldstart": {"median_s": 0.8},
        "workers": 2, "threads": 1, "load_client": "wrk",
    }
    main = {"rps": 1500.0, "p50_ms": 4.0, "p99_ms": 9.0, "errors": 0}
    s = summary(report, main)
    # The ratio that counts is against the best configuration of the peer, not its defaults.
    assert s["vs_hello"] == 0.75 and s["vs_mlserver"] == 5.0 and s["vs_mlserver_defaults"] == 15.0
    assert s["mlserver_config"] == "tuned" and s["mlserver_p99_ms"] == 60.0
    assert s["mlserver_defaults_rps"] == 100.0 and s["mlserver_defaults_p99_ms"] == 900.0
    for key in ("fast_us_p50", "sklearn_us_p50", "http_rps", "http_p99_ms", "hello_rps", "mlserver_rps",
                "mlserver_p99_ms", "coldstart_s"):
        assert s[key] is not None, key


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
