"""HTTP load at fixed concurrency for a fixed duration: wrk (C, low overhead) or a Python fallback.

wrk is installed with apt-get when missing and we are root; otherwise a threaded Python client
(keep-alive connections) is used and the result says so (`client: python`): it costs far more
CPU per request, so its figures are lower bounds on a shared machine.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

LUA = r"""
local bodies = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do
    if #line > 0 then bodies[#bodies + 1] = line end
  end
end
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[i])
end
done = function(summary, latency, requests)
  for _, p in ipairs(PERCENTILES) do
    io.write(string.format("PCT %g %d\n", p, latency:percentile(p)))
  end
end
"""
# The percentile table wrk prints at the end (microseconds), for the latency histograms.
PERCENTILES = (*[float(p) for p in range(1, 100)], 99.5, 99.9, 99.99)


@dataclass
class LoadResult:
    target: str
    client: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx answers plus socket errors
    cpu_s: float | None = None  # CPU the server's process group used meanwhile (set by the caller)
    percentiles: list[tuple[float, float]] = field(default_factory=list)  # (percentile, ms), the histograms

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def ensure_wrk(log=print) -> str | None:  # noqa: ANN001 - a print-like callable
    found = shutil.which("wrk")
    if found:
        return found
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk not found: installing it with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, capture_output=True, timeout=300)
        return shutil.which("wrk")
    return None


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"unparsable wrk latency {text!r}")
    return float(m.group(1)) * _UNIT[m.group(2)]


def parse_wrk(output: str, target: str) -> LoadResult:
    """Requests/sec, the 50% and 99% latency lines of `--latency`, and error counts."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))
    total = int(re.search(r"(\d+) requests in", output).group(1))
    table = [(float(p), int(us) / 1000.0) for p, us in re.findall(r"^PCT (\S+) (\d+)$", output, re.M)]
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        errors += sum(int(g) for g in m.groups())
    return LoadResult(target, "wrk", rps, p50, p99, total, errors, percentiles=table)


def run_wrk(wrk: str, url: str, bodies: list[str], duration: float, connections: int, target: str,
            threads: int = 1) -> LoadResult:
    with tempfile.TemporaryDirectory(prefix="txguard-wrk-") as tmp:
        script, data = Path(tmp) / "post.lua", Path(tmp) / "bodies.jsonl"
        script.write_text(f"PERCENTILES = {{{', '.join(f'{p:g}' for p in PERCENTILES)}}}\n{LUA}")
        data.write_text("\n".join(b.replace("\n", " ") for b in bodies) + "\n")
        argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
                "--timeout", "10s", "-s", str(script), url, "--", str(data)]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
    return parse_wrk(out.stdout, target)


def run_python(host: str, port: int, path: str, bodies: list[str], duration: float, connections: int,
               target: str) -> LoadResult:
    """Fallback: one thread per connection, keep-alive, same bodies in turn."""
    encoded = [b.encode() for b in bodies]
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    deadline = time.perf_counter() + duration

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        i = k
        while time.perf_counter() < deadline:
            body = encoded[i % len(encoded)]
            i += connections
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                ok = 200 <= resp.status < 300
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=10)
                ok = False
            latencies[k].append(time.perf_counter() - t0)
            errors[k] += 0 if ok else 1
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration + 30)
    elapsed = time.perf_counter() - started
    flat = sorted(x for lat in latencies for x in lat)
    if not flat:
        return LoadResult(target, "python", 0.0, float("nan"), float("nan"), 0, sum(errors))
    table = [(p, flat[min(len(flat) - 1, int(len(flat) * p / 100))] * 1e3) for p in PERCENTILES]
    return LoadResult(target, "python", len(flat) / elapsed, flat[len(flat) // 2] * 1e3,
                      flat[min(len(flat) - 1, int(len(flat) * 0.99))] * 1e3, len(flat), sum(errors),
                      percentiles=table)


def run_load(port: int, path: str, bodies: list[str], duration: float, connections: int, target: str,
             wrk: str | None) -> LoadResult:
    if wrk:
        return run_wrk(wrk, f"http://127.0.0.1:{port}{path}", bodies, duration, connections, target)
    return run_python("127.0.0.1", port, path, bodies, duration, connections, target)
