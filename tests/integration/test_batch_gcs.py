"""Batch work against Cloud Storage (fake-gcs-server): a job reading a gs:// glob with a gs:// model,
status records and output housekeeping under a gs:// prefix, score-file from and to gs://.

Not covered here: Beam's own writes to gs:// (decisions-*, errors-*, features-*). Beam finalises
them with batched copy/delete requests, which fake-gcs-server does not implement ("Bad response:
not multi-part"); those run against real Cloud Storage only.
"""

from __future__ import annotations

import json
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.scoring_fixtures import publish_tiny
from txguard.batch.jobs import (
    JobSpec,
    JobState,
    clear_outputs,
    has_outputs,
    read_status,
    run_job,
    write_status,
)
from txguard.batch.score_file import score_file
from txguard.batch.storage import list_matching, read_bytes, write_bytes
from txguard.cli.main import main as cli
from txguard.local.emulators import Emulator
from txguard.scoring.loading import open_scorer
from txguard.simulator.core import simulate

pytestmark = pytest.mark.gcs


@pytest.fixture
def bucket(gcs_env: Emulator) -> str:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    name = f"batch-{uuid.uuid4().hex[:12]}"
    storage.Client(project="txguard-test", credentials=AnonymousCredentials()).create_bucket(name)
    return f"gs://{name}"


def test_a_job_reads_and_writes_cloud_storage(bucket: str, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [r.to_row() for r in simulate(days=2, wallets=40, seed=4)]
    half = len(rows) // 2
    write_bytes(f"{bucket}/inputs/tx-0.jsonl", "".join(json.dumps(r) + "\n" for r in rows[:half]).encode())
    write_bytes(f"{bucket}/inputs/tx-1.jsonl", "".join(json.dumps(r) + "\n" for r in rows[half:]).encode()
                + b'{"transaction_id": "broken"}\n')
    publish_tiny(f"{bucket}/registry")
    uri = f"{bucket}/registry@production"
    out = str(tmp_path / "run-1")
    status = run_job(JobSpec(input=f"{bucket}/inputs/tx-*.jsonl", output=out, model_uri=uri, features=True,
                             shards=4), workers=1)
    assert status.state is JobState.COMPLETED, status.error
    assert status.files == 2 and status.counts["read"] == len(rows) + 1 and status.counts["invalid"] == 1
    decided = [json.loads(line) for p in list_matching(out, ("decisions-",))
               for line in read_bytes(p).decode().splitlines()]
    assert status.model_version == "v1"
    assert sorted(d["transaction_id"] for d in decided) == sorted(r["transaction_id"] for r in rows)
    (errors,) = list_matching(out, ("errors-",))
    error = json.loads(read_bytes(errors))
    assert (error["source"], error["line"], error["field"]) == (f"{bucket}/inputs/tx-1.jsonl", len(rows) - half + 1,
                                                                "wallet_id")

    # The status record and the output housekeeping under a gs:// prefix.
    remote = f"{bucket}/outputs/run-1"
    status.output = remote
    write_status(status)
    write_bytes(f"{remote}/decisions-00000-of-00001.jsonl", b"{}\n")
    assert read_status(remote).job_id == status.job_id and has_outputs(remote)
    assert cli(["batch", "status", remote]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["state"] == "completed"
    clear_outputs(remote)
    assert not has_outputs(remote)

    # score-file on a gs:// Parquet file of the same raw transactions gives the same decisions.
    local = tmp_path / "tx.parquet"
    pq.write_table(pa.Table.from_pylist(rows), local)
    write_bytes(f"{bucket}/inputs/tx.parquet", local.read_bytes())
    scorer = open_scorer(uri)
    score_file(scorer, f"{bucket}/inputs/tx.parquet", f"{bucket}/outputs/single.jsonl")
    single = read_bytes(f"{bucket}/outputs/single.jsonl").decode().splitlines()
    assert sorted(single) == sorted(json.dumps(d, separators=(",", ":")) for d in decided)
