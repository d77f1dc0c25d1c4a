"""`txguard bench score` helpers: wrk output parsing and the summary line."""

from __future__ import annotations

import pytest

from txguard.bench.load import parse_wrk
from txguard.bench.runner import summary

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
        "mlserver": {"rps": 300.0, "p50_ms": 30.0, "p99_ms": 60.0, "errors": 0},
        "coldstart": {"median_s": 0.8},
        "workers": 2, "threads": 1, "load_client": "wrk",
    }
    main = {"rps": 1500.0, "p50_ms": 4.0, "p99_ms": 9.0, "errors": 0}
    s = summary(report, main)
    assert s["vs_hello"] == 0.75 and s["vs_mlserver"] == 5.0
    for key in ("fast_us_p50", "sklearn_us_p50", "http_rps", "http_p99_ms", "hello_rps", "mlserver_rps",
                "mlserver_p99_ms", "coldstart_s"):
        assert s[key] is not None, key


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
