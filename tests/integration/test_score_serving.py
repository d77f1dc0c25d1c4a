"""The scoring function as deployed: model from Cloud Storage (fake-gcs-server), served by the
functions-framework CLI (gunicorn), imports kept lean. Real processes, loopback only."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from tests.scoring_fixtures import enriched_transactions, publish_tiny, tiny_model
from txguard.bench.procs import Server, functions_framework_argv, running
from txguard.contract import names
from txguard.contract.errors import ChecksumMismatchError
from txguard.contract.settings import SCORING_WORKERS
from txguard.local.emulators import Emulator, free_port
from txguard.registry import open_registry
from txguard.registry.gcs import GcsReader
from txguard.scoring.loading import open_scorer

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "functions" / "score" / "main.py"


@pytest.fixture
def gcs_registry(gcs_env: Emulator) -> str:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="txguard-test", credentials=AnonymousCredentials())
    bucket = f"score-{uuid.uuid4().hex[:10]}"
    client.create_bucket(bucket)
    location = f"gs://{bucket}/registry"
    publish_tiny(location)
    return location


@pytest.mark.gcs
def test_lean_reader_reads_what_the_registry_published(gcs_registry: str) -> None:
    writer, reader = open_registry(gcs_registry), GcsReader(gcs_registry)
    assert reader.list("versions/") == writer.store.list("versions/")
    assert reader.read("versions/v1/model.onnx")[0] == tiny_model()[1]
    assert reader.read("aliases/nope.json") is None
    assert open_scorer(f"{gcs_registry}@production").version == "v1"
    assert open_scorer(f"{gcs_registry}@latest").version == "v1"


@pytest.mark.gcs
def test_a_tampered_artifact_in_cloud_storage_is_refused(gcs_registry: str) -> None:
    store = open_registry(gcs_registry).store
    store.bucket.blob(store._name("versions/v1/model.onnx")).upload_from_string(tiny_model()[1] + b"\0")
    with pytest.raises(ChecksumMismatchError):
        open_scorer(f"{gcs_registry}@production")


def _import_report(env: dict[str, str]) -> dict:
    code = (
        "import json, sys, time\n"
        "t0 = time.perf_counter()\n"
        "import functions_framework\n"
        "t1 = time.perf_counter()\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('main', {str(SOURCE)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "t2 = time.perf_counter()\n"
        "heavy = sorted({k.split('.')[0] for k in sys.modules} & {'sklearn', 'scipy', 'pandas', 'skl2onnx'})\n"
        "print(json.dumps({'framework_s': t1 - t0, 'function_s': t2 - t1, 'heavy': heavy,\n"
        "  'gcs_client': 'google.cloud.storage' in sys.modules, 'loaded': m.SERVICE.state.champion is not None}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_serving_import_is_lean_with_a_local_registry(tmp_path: Path) -> None:
    publish_tiny(tmp_path / "registry")
    report = _import_report({**os.environ, "MODEL_URI": f"{tmp_path / 'registry'}@production"})
    assert report["loaded"]
    assert report["heavy"] == []
    assert not report["gcs_client"]
    # A generous budget that catches regressions (an accidental scikit-learn import costs ~1 s);
    # the real figure is measured by `txguard bench score` (cold start), never asserted.
    assert report["function_s"] < 3.0, report


@pytest.mark.gcs
def test_serving_import_is_lean_with_a_cloud_storage_registry(gcs_registry: str, gcs_env: Emulator) -> None:
    report = _import_report({**os.environ, "MODEL_URI": f"{gcs_registry}@production",
                             "STORAGE_EMULATOR_HOST": gcs_env.env_value})
    assert report["loaded"]
    assert report["heavy"] == []
    assert not report["gcs_client"], "the serving path must read gs:// without google-cloud-storage"
    assert report["function_s"] < 3.0, report


def _post(port: int, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


@pytest.mark.gcs
def test_gunicorn_serves_the_cloud_storage_model_to_concurrent_clients(
    gcs_registry: str, gcs_env: Emulator, tmp_path: Path
) -> None:
    port = free_port()
    env = {"MODEL_URI": f"{gcs_registry}@production", "STORAGE_EMULATOR_HOST": gcs_env.env_value,
           "WORKERS": str(SCORING_WORKERS), "THREADS": "4", "MAX_BODY_BYTES": "65536"}
    server = Server("score", functions_framework_argv(SOURCE, names.SCORING_ENTRY_POINT, port), env,
                    tmp_path / "score.log", port)
    txs = enriched_transactions()
    with running(server):
        server.wait("GET", "/health", timeout=90)
        expected = {}
        for tx in txs[:60]:
            status, body = _post(port, "/score", tx.model_dump_json().encode())
            assert status == 200, body
            expected[tx.transaction_id] = body["score"]
        wrong: list[str] = []

        def client(k: int) -> None:
            for tx in txs[k:60:6]:
                status, body = _post(port, "/score", tx.model_dump_json().encode())
                if status != 200 or body["score"] != expected[tx.transaction_id]:
                    wrong.append(tx.transaction_id)

        threads = [threading.Thread(target=client, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert wrong == []

        # A chunked upload (no Content-Length) over MAX_BODY_BYTES is refused, not buffered.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.putrequest("POST", "/score/batch")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        chunk = b" " * 32768
        for _ in range(4):
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.send(b"0\r\n\r\n")
        assert conn.getresponse().status == 413
        conn.close()

        log = server.log_path.read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(line.get("message") == "model v1 loaded" for line in lines)
    scored = [line for line in lines if line.get("outcome")]
    assert len(scored) >= 120 and all(line["model_version"] == "v1" for line in scored)

