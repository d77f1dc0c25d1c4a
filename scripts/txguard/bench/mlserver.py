"""MLServer 1.7.1 + mlserver-sklearn serving the same scikit-learn model, for comparison.

MLServer runs in its own virtualenv (its dependency pins clash with ours), created once and
cached under .txguard/bench/mlserver-venv. uvloop is pinned to 0.21.0: newer releases crash its
worker. The model is saved with joblib in MLServer's model-settings layout.

A fair peer is a tuned peer, so the bench runs MLServer in the configurations its settings
document (`mlserver/settings.py` of the installed package), and the comparison that counts is
against the best of them (`VARIANTS`):
- `defaults`: one inference worker process (`parallel_workers` = 1) behind the HTTP process, and
  scikit-learn's OpenMP using every core for each one-row `predict_proba`;
- `tuned`: `parallel_workers` = CPUs ("number of workers to run inference across", the
  setting's docstring) and one OpenMP thread per worker (`OMP_NUM_THREADS=1`): cores run requests
  side by side instead of threads fighting over each tiny row;
- `inline`: `parallel_workers` = 0 ("parallel inference disabled": the model runs in the HTTP
  process, no inter-process hop) and one OpenMP thread; the better of the two on a 2-CPU machine
  (the request is ~1 ms of work, so the IPC hop of the pool costs more than it parallelises).
Every variant runs with `debug` off (no per-request access log), metrics and gzip as shipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

MLSERVER_VERSION = "1.7.1"
PINS = (f"mlserver=={MLSERVER_VERSION}", f"mlserver-sklearn=={MLSERVER_VERSION}", "uvloop==0.21.0")
MODEL_NAME = "fraud"


@dataclass(frozen=True)
class Variant:
    """One MLServer configuration: environment variables over the repository's settings.json."""

    label: str
    env: dict[str, str] = field(default_factory=dict)


def variants(cpus: int | None = None) -> tuple[Variant, ...]:
    cpus = cpus or os.cpu_count() or 1
    one_thread = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return (
        Variant("defaults"),
        Variant("tuned", {"MLSERVER_PARALLEL_WORKERS": str(cpus), **one_thread}),
        Variant("inline", {"MLSERVER_PARALLEL_WORKERS": "0", **one_thread}),
    )


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(venv: Path, log: Any = print, pip_log: Path | None = None) -> Path:
    """Create (once) a venv with MLServer and the same scikit-learn/numpy versions as ours."""
    stamp = venv / ".txguard-ready"
    pins = [*PINS, f"scikit-learn=={metadata.version('scikit-learn')}", f"numpy=={metadata.version('numpy')}"]
    if stamp.exists() and stamp.read_text() == "\n".join(pins):
        return venv_python(venv)
    pip_log = pip_log or venv.parent / "mlserver-pip.log"
    log(f"creating MLServer venv in {venv} (one-off, a few minutes; pip output in {pip_log})")
    py = str(venv_python(venv))
    with open(pip_log, "ab") as out:
        for argv in ([sys.executable, "-m", "venv", "--clear", str(venv)],
                     [py, "-m", "pip", "install", "-q", "--upgrade", "pip"],
                     [py, "-m", "pip", "install", "-q", *pins]):
            subprocess.run(argv, check=True, stdout=out, stderr=subprocess.STDOUT, timeout=1800)
    stamp.write_text("\n".join(pins))
    return venv_python(venv)


def write_model_repository(estimator: Any, root: Path) -> Path:
    """<root>/fraud/{model.joblib, model-settings.json}: what `mlserver start <root>` loads."""
    import joblib  # scikit-learn's dependency, bench only

    folder = root / MODEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(estimator, folder / "model.joblib")
    (folder / "model-settings.json").write_text(json.dumps({
        "name": MODEL_NAME,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"},
    }, indent=2))
    (root / "settings.json").write_text(json.dumps({"debug": False}))
    return root


def infer_path() -> str:
    return f"/v2/models/{MODEL_NAME}/infer"


def infer_body(row: list[float]) -> str:
    """V2 inference protocol request for P(fraud) of one row (predict_proba output)."""
    return json.dumps({
        "inputs": [{"name": "input-0", "shape": [1, len(row)], "datatype": "FP32", "data": row}],
        "outputs": [{"name": "predict_proba"}],
    })


def server_argv(venv: Path, repository: Path) -> list[str]:
    return [str(venv / "bin" / "mlserver"), "start", str(repository)]


def server_env(http_port: int, grpc_port: int, metrics_port: int, variant: Variant | None = None) -> dict[str, str]:
    """Ports on 127.0.0.1, plus the variant's settings (env vars apply where settings.json is silent)."""
    return {
        "MLSERVER_HOST": "127.0.0.1",
        "MLSERVER_HTTP_PORT": str(http_port),
        "MLSERVER_GRPC_PORT": str(grpc_port),
        "MLSERVER_METRICS_PORT": str(metrics_port),
        **(variant.env if variant else {}),
    }
