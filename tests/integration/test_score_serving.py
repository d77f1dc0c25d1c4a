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



def _raw(port: int, method: str, path: str, body: bytes | None, headers: dict[str, str],
         chunked: bool = False) -> bytes:
    """The response exactly as gunicorn sent it (status line, headers, body), `Date` aside and\n    `Content-Length` masked once checked."""
    import socket

    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
            *(f"{k}: {v}" for k, v in headers.items())]
    if body is not None:
        head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}")
    payload = ("\r\n".join(head) + "\r\n\r\n").encode()
    if body is not None:
        payload += b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if chunked else body
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(payload)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head_bytes, _, body_bytes = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head_bytes.split(b"\r\n")
    for line in lines:  # the length varies with the timings in the body: checked here, then masked
        if line.lower().startswith(b"content-length:") and method != "HEAD":
            assert int(line.split(b":")[1]) == len(body_bytes), head_bytes
    kept = [b"Content-Length: #" if line.lower().startswith(b"content-length:") else line
            for line in lines if not line.lower().startswith(b"date:")]
    return b"\r\n".join(kept) + b"\r\n\r\n" + body_bytes


def test_fast_routes_answer_what_flask_answers_byte_for_byte(tmp_path: Path) -> None:
    """The same function under the functions-framework CLI with FAST_ROUTES on and off: every corpus
    request, sent as raw HTTP (and each body once more chunked), gets the same bytes back from
    gunicorn, status line and headers included (timings and the log time masked)."""
    from tests import scoring_corpus as corpus

    registry = tmp_path / "registry"
    publish_tiny(registry)
    requests = [e["request"] for e in corpus.load()]
    answers: dict[str, list[bytes]] = {}
    for fast in ("true", "false"):
        port = free_port()
        env = {"MODEL_URI": f"{registry}@production", "MODEL_POLL_S": "0", "DRIFT_WINDOW_S": "0",
               "WORKERS": "1", "THREADS": "2", "FAST_ROUTES": fast}
        server = Server(f"score-{fast}", functions_framework_argv(SOURCE, names.SCORING_ENTRY_POINT, port), env,
                        tmp_path / f"score-{fast}.log", port)
        got: list[bytes] = []
        with running(server):
            server.wait("GET", "/health", timeout=90)
            for req in requests:
                body = corpus.body_of(req, requests)
                headers = {**req["headers"], **({"Content-Type": req["ctype"]} if req["ctype"] else {})}
                got.append(corpus.mask(_raw(port, req["method"], req["path"], body, headers)))
                if body is not None and req["method"] == "POST":
                    got.append(corpus.mask(_raw(port, req["method"], req["path"], body, headers, chunked=True)))
        answers[fast] = got
    assert len(answers["true"]) == len(answers["false"]) > len(requests)
    for i, (ours, flask) in enumerate(zip(answers["true"], answers["false"], strict=True)):
        assert ours == flask, i
    assert sum(a.startswith(b"HTTP/1.1 200 OK") for a in answers["true"]) > 20
