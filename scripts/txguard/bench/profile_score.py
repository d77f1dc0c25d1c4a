"""CPU per request of the scoring function's WSGI app in process, through Flask or the hot routes.

The app is the one functions-framework builds (`create_app` on functions/score/main.py, the bench
model from `.txguard/bench/`), called as a WSGI app in a loop with the bench's request bodies: no
server, no sockets, so what is left is what the function's side of a request costs, Flask's
per-request machinery included or not. Each mode runs in a fresh process (the module executes
once per app). Process CPU time, not wall time: it moves least with the machine's load.

    python -m txguard.bench.profile_score [--requests 20000] [--profile 5000] [--top 15]

Prints, for `FAST_ROUTES=false` (every request through Flask) and `true` (POST /score answered at
the WSGI layer), the cProfile table of the slowest functions by own time, then one JSON line:
`{"flask_cpu_us_per_req", "fast_cpu_us_per_req", "ratio", "load_1min"}`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
SOURCE = ROOT / "functions" / "score" / "main.py"


def _environs(bodies: list[bytes]) -> list[dict[str, Any]]:
    from werkzeug.test import EnvironBuilder

    return [EnvironBuilder(method="POST", path="/score", data=b, content_type="application/json").get_environ()
            for b in bodies]


def child(n: int, profile: int, top: int, workdir: Path) -> dict[str, Any]:
    """In this process: build the app, time `n` requests, profile `profile` more."""
    import cProfile
    import pstats

    import functions_framework

    from txguard.bench.model import build
    from txguard.contract import names

    model = build(workdir, log=lambda m: print(m, file=sys.stderr))
    os.environ.update(MODEL_URI=f"{model.registry}@production", MODEL_POLL_S="0", DRIFT_WINDOW_S="0")
    app = functions_framework.create_app(target=names.SCORING_ENTRY_POINT, source=str(SOURCE),
                                         signature_type="http")
    bodies = [p.encode() for p in model.payloads[:500]]
    environs = _environs(bodies)

    def start_response(_status: str, _headers: Any) -> None:
        return None

    def run(count: int) -> None:
        for i in range(count):
            env = dict(environs[i % len(environs)])
            env["wsgi.input"] = io.BytesIO(bodies[i % len(bodies)])
            b"".join(app(env, start_response))

    real, sys.stdout = sys.stdout, open(os.devnull, "w")  # noqa: SIM115 - the request log lines
    try:
        run(2000)
        t0 = time.process_time()
        run(n)
        cpu_us = (time.process_time() - t0) / n * 1e6
        prof = cProfile.Profile()
        prof.enable()
        run(profile)
        prof.disable()
    finally:
        sys.stdout.close()
        sys.stdout = real
    table = io.StringIO()
    pstats.Stats(prof, stream=table).sort_stats("tottime").print_stats(top)
    return {"cpu_us_per_req": round(cpu_us, 1), "profile": table.getvalue()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000, help="requests timed per mode (default 20000)")
    parser.add_argument("--profile", type=int, default=5000, help="requests profiled per mode (default 5000)")
    parser.add_argument("--top", type=int, default=15, help="rows of each profile table (default 15)")
    parser.add_argument("--workdir", default=str(ROOT / ".txguard" / "bench"), help="bench model cache")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.requests, args.profile, args.top, Path(args.workdir))), flush=True)
        return 0
    out: dict[str, Any] = {}
    for mode in ("false", "true"):
        env = {**os.environ, "FAST_ROUTES": mode}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        proc = subprocess.run([sys.executable, "-m", "txguard.bench.profile_score", "--child",
                               "--requests", str(args.requests), "--profile", str(args.profile), "--top", str(args.top),
                               "--workdir", args.workdir], env=env, capture_output=True, text=True, check=True)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"FAST_ROUTES={mode}: {result['cpu_us_per_req']} us of CPU per request\n{result['profile']}")
        out["fast" if mode == "true" else "flask"] = result["cpu_us_per_req"]
    print(json.dumps({"flask_cpu_us_per_req": out["flask"], "fast_cpu_us_per_req": out["fast"],
                      "ratio": round(out["flask"] / out["fast"], 2) if out["fast"] else None,
                      "load_1min": os.getloadavg()[0]}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
