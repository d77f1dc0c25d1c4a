"""The gRPC call count of `bench e2e`: real calls on a loopback gRPC server, counted by method, per message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from txguard.bench import rpc_count


@pytest.fixture
def server():
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handlers = {
        "Commit": grpc.unary_unary_rpc_method_handler(lambda req, ctx: req),
        "BatchGetDocuments": grpc.unary_stream_rpc_method_handler(lambda req, ctx: iter([req, req])),
    }
    srv.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("google.firestore.v1.Firestore", handlers)])
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    yield f"127.0.0.1:{port}"
    srv.stop(None)


def test_counts_each_call_by_method_and_per_message(server: str, tmp_path: Path) -> None:
    rpc_count.install(tmp_path, interval_s=0.05)
    before = rpc_count.read(tmp_path, target="process")
    with grpc.insecure_channel(server) as channel:
        commit = channel.unary_unary("/google.firestore.v1.Firestore/Commit")
        batch_get = channel.unary_stream("/google.firestore.v1.Firestore/BatchGetDocuments")
        for _ in range(4):
            assert commit(b"x") == b"x"
            assert list(batch_get(b"y")) == [b"y", b"y"]
        commit.with_call(b"z")
    rpc_count.write(tmp_path / f"rpc-process-{os.getpid()}.json")
    after = rpc_count.read(tmp_path, target="process")
    assert after["/google.firestore.v1.Firestore/Commit"] - before.get("/google.firestore.v1.Firestore/Commit", 0) == 5
    assert after["/google.firestore.v1.Firestore/BatchGetDocuments"] - before.get(
        "/google.firestore.v1.Firestore/BatchGetDocuments", 0) == 4
    assert rpc_count.per_message(before, after, 2) == {
        "firestore": {"total": 4.5, "Commit": 2.5, "BatchGetDocuments": 2.0}}
    assert rpc_count.per_message(before, after, 0) == {}


def test_the_hook_counts_a_function_process_only_when_asked(server: str, tmp_path: Path) -> None:
    """What `bench e2e` gives the enrichment function: the hook on PYTHONPATH and the folder; files
    are named after the process's --target."""
    code = ("import grpc, time\n"
            f"ch = grpc.insecure_channel('{server}')\n"
            "ch.unary_unary('/google.firestore.v1.Firestore/Commit')(b'x')\n"
            "time.sleep(0.8)\n")
    env = {**os.environ, **rpc_count.hook_env(tmp_path, os.environ.get("PYTHONPATH", ""))}
    subprocess.run([sys.executable, "-c", code, "--target", "enrich"], env=env, check=True, timeout=60)
    counts = rpc_count.read(tmp_path)
    assert counts == {"/google.firestore.v1.Firestore/Commit": 1}
    files = list(tmp_path.glob("rpc-enrich-*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text()) == dict(counts)
    env.pop(rpc_count.DIR_ENV)  # the hook on the path, the count not asked for
    subprocess.run([sys.executable, "-c", code, "--target", "enrich"], env=env, check=True, timeout=60)
    assert list(tmp_path.glob("rpc-*.json")) == files
