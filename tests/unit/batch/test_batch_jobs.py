"""`txguard batch run|status`: a job's status record, counts, errors output, and failure modes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.scoring_fixtures import publish_disagreeing, publish_tiny
from txguard.batch.jobs import JobSpec, JobState, read_status, run_job
from txguard.batch.staging import build_wheel, dataflow_flags
from txguard.cli.main import main as cli
from txguard.simulator.core import simulate

ROWS = [r.to_row() for r in simulate(days=2, wallets=30, seed=8)]


@pytest.fixture(scope="module")
def model_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    registry = tmp_path_factory.mktemp("jobs") / "registry"
    publish_tiny(registry)
    return f"{registry}@production"


def write_input(path: Path, bad_every: int) -> tuple[Path, list[int]]:
    """The simulated rows with every `bad_every`-th one broken (negative amount); returns the bad lines."""
    bad = []
    lines = []
    for i, row in enumerate(ROWS, start=1):
        if i % bad_every == 0:
            row = {**row, "amount": -1}
            bad.append(i)
        lines.append(json.dumps(row))
    path.write_text("\n".join(lines) + "\n")
    return path, bad


def errors_of(output: Path) -> list[dict]:
    return [json.loads(line) for p in sorted(output.glob("errors-*.jsonl")) for line in p.read_text().splitlines()]


def test_too_many_bad_rows_fail_the_job_and_each_is_in_the_errors_output(
        tmp_path: Path, model_uri: str, capsys: pytest.CaptureFixture[str]) -> None:
    src, bad = write_input(tmp_path / "tx.jsonl", bad_every=5)
    out = tmp_path / "out"
    status = run_job(JobSpec(input=str(src), output=str(out), model_uri=model_uri, shards=4), workers=1)
    assert status.state is JobState.FAILED
    assert status.counts == {"read": len(ROWS), "invalid": len(bad), "featurised": len(ROWS) - len(bad),
                             "decided": len(ROWS) - len(bad)}
    assert f"{len(bad)} of {len(ROWS)} rows invalid" in status.error
    errors = errors_of(out)
    assert sorted(e["line"] for e in errors) == bad
    assert {(e["field"], e["message"]) for e in errors} == {("amount", "Input should be greater than 0")}
    assert all(json.loads(e["raw"])["amount"] == -1 and e["source"] == str(src) for e in errors)
    assert set(status.timings) == {"queued_at", "started_at", "finished_at", "seconds"}

    assert cli(["batch", "status", str(out)]) == 0
    shown = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert shown["state"] == "failed" and shown["counts"]["invalid"] == len(bad)
    assert read_status(str(out)).job_id == status.job_id


def test_batch_run_refuses_a_model_whose_onnx_disagrees_with_its_metadata(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The parity smoke test serving runs at load (loading.open_scorer) also guards batch jobs: a
    version whose artifact does not reproduce the scores recorded at training scores nothing."""
    publish_disagreeing(tmp_path / "registry")
    src, _ = write_input(tmp_path / "tx.jsonl", bad_every=10_000)
    out = tmp_path / "out"
    code = cli(["batch", "run", "--input", str(src), "--output", str(out), "--model-uri",
                f"{tmp_path / 'registry'}@production", "--shards", "4"])
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 1 and last["state"] == "failed"
    assert last["error"].startswith("ParityCheckError: ") and "recorded at training" in last["error"]
    assert last["model_version"] is None and last["counts"]["decided"] == 0
    assert not list(out.glob("decisions-*.jsonl")) and read_status(str(out)).state is JobState.FAILED


def test_cli_run_on_two_worker_processes_completes_with_a_few_bad_rows(
        tmp_path: Path, model_uri: str, capsys: pytest.CaptureFixture[str]) -> None:
    src, bad = write_input(tmp_path / "tx.jsonl", bad_every=200)
    out = tmp_path / "out"
    code = cli(["batch", "run", "--input", str(src), "--output", str(out), "--model-uri", model_uri,
                "--features", "--workers", "2", "--shards", "8", "--max-invalid-ratio", "0.01"])
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0, last["error"]
    assert last["state"] == "completed" and last["workers"] == 2 and last["model_version"] == "v1"
    assert last["counts"]["decided"] == len(ROWS) - len(bad) == last["counts"]["featurised"]
    decided = [json.loads(line)["transaction_id"] for p in out.glob("decisions-*.jsonl")
               for line in p.read_text().splitlines()]
    assert sorted(decided) == sorted(r["transaction_id"] for i, r in enumerate(ROWS, 1) if i not in bad)
    assert list(out.glob("features-*.parquet"))

    assert cli(["batch", "run", "--input", str(src), "--output", str(out), "--features"]) == 2  # earlier outputs
    assert "--overwrite" in capsys.readouterr().err


def test_a_wrong_model_or_input_fails_before_any_worker_starts(tmp_path: Path) -> None:
    status = run_job(JobSpec(input=str(tmp_path / "none-*.jsonl"), output=str(tmp_path / "o1"), features=True))
    assert status.state is JobState.FAILED and "no input file matches" in status.error
    src, _ = write_input(tmp_path / "tx.jsonl", bad_every=10_000)
    status = run_job(JobSpec(input=str(src), output=str(tmp_path / "o2"), model_uri=f"{tmp_path}/empty@production"))
    assert status.state is JobState.FAILED and status.error.startswith("ModelNotFoundError")
    assert read_status(str(tmp_path / "o2")).state is JobState.FAILED


def test_nothing_to_write_is_refused(tmp_path: Path) -> None:
    assert cli(["batch", "run", "--input", "x.jsonl", "--output", str(tmp_path)]) == 2


def test_dataflow_workers_get_a_wheel_of_the_checkout(tmp_path: Path) -> None:
    given = ["--project=p", "--setup_file=./setup.py"]
    assert dataflow_flags(given) == given
    wheel = build_wheel(tmp_path)
    assert wheel.name.startswith("txguard-") and wheel.suffix == ".whl"
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "txguard/batch/pipeline.py" in names and "txguard/features/wallet.py" in names


def test_a_job_over_csv_and_parquet_files_decides_like_score_file(tmp_path: Path, model_uri: str) -> None:
    import csv

    import pyarrow as pa
    import pyarrow.parquet as pq

    from txguard.batch.score_file import score_file
    from txguard.scoring.loading import open_scorer

    (tmp_path / "in").mkdir()
    half = len(ROWS) // 2
    with (tmp_path / "in" / "a.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(ROWS[0]))
        writer.writeheader()
        writer.writerows({**r, "device_id": r["device_id"] or ""} for r in ROWS[:half])
    pq.write_table(pa.Table.from_pylist(ROWS[half:]), tmp_path / "in" / "b.parquet")
    status = run_job(JobSpec(input=str(tmp_path / "in" / "*"), output=str(tmp_path / "out"), model_uri=model_uri,
                             shards=4), workers=1)
    assert status.state is JobState.COMPLETED and status.files == 2, status.error
    beam = sorted(line for p in (tmp_path / "out").glob("decisions-*.jsonl") for line in p.read_text().splitlines())

    merged = tmp_path / "all.jsonl"
    merged.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    score_file(open_scorer(model_uri), str(merged), str(tmp_path / "single.jsonl"))
    assert beam == sorted((tmp_path / "single.jsonl").read_text().splitlines())
