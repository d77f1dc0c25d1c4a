"""Cold start: process start -> first 200 from POST /score, model fetched from the GCS emulator.

The function is started exactly as in the HTTP benchmark (functions-framework CLI -> gunicorn);
the clock starts just before the process is spawned and stops at the first 200 (polled every
5 ms), so it includes interpreter start, imports, the registry download, SHA-256 check, ONNX
session creation and gunicorn's worker fork.

Each run also starts the constant "hello" function the same way, right after: the floor of the
server stack (interpreter, functions-framework, gunicorn) measured in the same minute, so the
difference is what the scoring function adds even on a busy machine. Both report the CPU their
process group used up to the first 200, which background load disturbs less than the wall clock.

Both functions' sources are compiled to bytecode first, as Cloud Functions' Python buildpack does at
deploy (`python3 -m compileall -f -q .` over the function's source): a deployed instance imports
`.pyc` files. Without it, a machine with PYTHONDONTWRITEBYTECODE set (this one) compiles the ~40
txguard modules the scoring function imports on every start, which no deployed instance does.
"""

from __future__ import annotations

import compileall
import os
import statistics
import uuid
from pathlib import Path
from typing import Any

from txguard.bench.procs import ROOT, Server, functions_framework_argv, running

HELLO = Path(__file__).resolve().parent / "hello" / "main.py"


def measure(artifact: bytes, payload: str, workdir: Path, env: dict[str, str], runs: int = 3,
            log: Any = print) -> dict[str, Any]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from txguard.bench.model import publish_to
    from txguard.contract import names
    from txguard.local import emulators

    if emulators.fake_gcs_binary() is None:
        return {"skipped": "fake-gcs-server not installed"}
    precompile()
    emu = emulators.start_gcs(workdir / "gcs")
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    try:
        os.environ["STORAGE_EMULATOR_HOST"] = emu.env_value  # for publishing from this process
        client = storage.Client(project="txguard-bench", credentials=AnonymousCredentials())
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        client.create_bucket(bucket)
        model_uri = publish_to(f"gs://{bucket}/registry", artifact)
        times: dict[str, list[float]] = {"score": [], "hello": []}
        cpu: dict[str, list[float]] = {"score": [], "hello": []}
        sources = {"score": (ROOT / "functions" / "score" / "main.py", names.SCORING_ENTRY_POINT),
                   "hello": (HELLO, "hello")}
        for i in range(runs):
            for label, (source, target) in sources.items():
                port = emulators.free_port()
                server = Server(
                    f"coldstart-{label}-{i}", functions_framework_argv(source, target, port),
                    {**env, "MODEL_URI": model_uri, "STORAGE_EMULATOR_HOST": emu.env_value,
                     "GOOGLE_CLOUD_PROJECT": "txguard-bench"},
                    workdir / f"coldstart-{label}-{i}.log", port,
                )
                with running(server):
                    times[label].append(server.wait("POST", "/score", payload.encode(), timeout=60.0,
                                                    interval=0.005))
                    cpu[label].append(server.cpu_seconds())
            log(f"cold start {i + 1}/{runs}: {times['score'][-1]:.3f} s (CPU {cpu['score'][-1]:.3f} s), "
                f"hello {times['hello'][-1]:.3f} s (CPU {cpu['hello'][-1]:.3f} s)")
    finally:
        emu.stop()
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous
    return {"runs_s": [round(t, 3) for t in times["score"]], "median_s": round(statistics.median(times["score"]), 3),
            "min_s": round(min(times["score"]), 3),
            "cpu_ms_median": round(statistics.median(cpu["score"]) * 1000, 1),
            "hello_median_s": round(statistics.median(times["hello"]), 3),
            "hello_cpu_ms_median": round(statistics.median(cpu["hello"]) * 1000, 1),
            "model_uri": "gs://<bucket>/registry@production (fake-gcs-server)"}



def precompile() -> None:
    """Bytecode for what the two functions import from the repository, as a deploy's build makes it."""
    for folder in (ROOT / "functions" / "score", ROOT / "shared" / "txguard", HELLO.parent):
        if not compileall.compile_dir(str(folder), quiet=1):
            raise RuntimeError(f"compileall failed in {folder}")
