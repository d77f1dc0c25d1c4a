"""Every command at its edges: a missing file, an empty file, a header-only file, a missing registry
and a gs:// path without credentials each end as one `error: <what>, <why>, <what to do>` line on
stderr, a JSON last line on stdout and the exit code of their class (txguard.cli.errors.Exit).

Each command that reads a file or a registry is run, in process, with each edge that applies to
it; nothing is started and nothing may be written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from txguard.cli.errors import Exit
from txguard.cli.main import main

GS = "gs://txguard-no-such-bucket"

# (name, argv with {file} / {registry} / {out} placeholders): the commands that read a file.
FILE_COMMANDS: tuple[tuple[str, list[str]], ...] = (
    ("score-file", ["score-file", "{file}", "{out}/decisions.jsonl", "--model-uri", "{model}"]),
    ("enrich-file", ["enrich-file", "{file}", "{out}/enriched.jsonl"]),
    ("enrich-file --labels", ["enrich-file", "{tx}", "{out}/enriched.jsonl", "--labels", "{file}"]),
    ("batch run", ["batch", "run", "--input", "{file}", "--output", "{out}/job", "--features"]),
    ("train --data", ["train", "--data", "{file}", "--registry", "{out}/registry"]),
    ("train --labels", ["train", "--data", "{tx}", "--labels", "{file}", "--registry", "{out}/registry"]),
    ("publish --file", ["publish", "--file", "{file}"]),
    ("label --file", ["label", "--file", "{file}"]),
    ("drift --log", ["drift", "--log", "{file}"]),
    ("compare --log", ["compare", "--log", "{file}", "--labels", "{tx}"]),
    ("compare --labels", ["compare", "--log", "{tx}", "--labels", "{file}"]),
    ("capacity --score", ["capacity", "--score", "{file}", "--enrich", "{file}"]),
    ("evaluate calibration --data", ["evaluate", "calibration", "--worlds", "", "--data", "{file}",
                                     "--data-out", "{out}/h.jsonl"]),
)
# The commands that read a registry (a folder or gs:// prefix), given one that is not there.
REGISTRY_COMMANDS: tuple[tuple[str, list[str]], ...] = (
    ("registry list", ["registry", "list", "--registry", "{registry}"]),
    ("registry promote", ["registry", "promote", "v1", "--registry", "{registry}"]),
    ("registry rollback", ["registry", "rollback", "--registry", "{registry}"]),
    ("score-file --model-uri", ["score-file", "{tx}", "{out}/decisions.jsonl", "--model-uri", "{registry}@production"]),
    ("batch run --model-uri", ["batch", "run", "--input", "{tx}", "--output", "{out}/job", "--model-uri",
                               "{registry}@production"]),
    ("drift --registry", ["drift", "--registry", "{registry}"]),
    ("compare --registry", ["compare", "--registry", "{registry}"]),
)
# gs:// paths: read without credentials (Cloud Storage), or Pub/Sub without an emulator.
GS_COMMANDS: tuple[tuple[str, list[str]], ...] = (
    *((name, argv) for name, argv in FILE_COMMANDS
      if name in ("score-file", "enrich-file", "batch run", "train --data")),
    *REGISTRY_COMMANDS,
    ("batch status", ["batch", "status", f"{GS}/job"]),
    ("train --registry", ["train", "--registry", f"{GS}/registry"]),
    ("train --features", ["train", "--features", f"{GS}/features", "--registry", "{out}/registry"]),
)
PUBSUB_COMMANDS: tuple[tuple[str, list[str]], ...] = (
    ("publish", ["publish", "--count", "3"]),
    ("label --simulate", ["label", "--simulate", "--days", "2", "--wallets", "20"]),
    ("decisions", ["decisions", "--max", "1"]),
    ("dead-letter redrive", ["dead-letter", "redrive", "--max", "1"]),
)

TX_ROW = {"transaction_id": "t1", "wallet_id": "w1", "counterparty_id": "m1", "amount": 12.5, "currency": "EUR",
          "type": "payment", "channel": "app", "country": "NL", "device_id": "d1",
          "timestamp": "2026-01-01T08:00:00Z", "is_fraud": 0}


@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Input files, an empty output folder, and an environment with no credentials and no emulator."""
    for var in ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST",
                "FIRESTORE_EMULATOR_HOST", "BIGTABLE_EMULATOR_HOST", "TXGUARD_REGISTRY", "MODEL_URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))  # an empty gcloud config
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")  # nothing listens: not on Google Cloud
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    monkeypatch.chdir(tmp_path)
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "empty.jsonl").write_bytes(b"")
    (inputs / "empty.csv").write_bytes(b"")
    (inputs / "header.csv").write_text(",".join(TX_ROW) + "\n")
    (inputs / "tx.jsonl").write_text(json.dumps(TX_ROW) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    return {"in": str(inputs), "out": str(out), "tx": str(inputs / "tx.jsonl"),
            "registry": str(tmp_path / "no-registry"), "model": str(tmp_path / "no-registry") + "@production"}


def fill(argv: list[str], world: dict[str, str], **given: str) -> list[str]:
    values = {**world, **given}
    return [re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], arg) for arg in argv]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, dict]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    last = captured.out.strip().splitlines()[-1] if captured.out.strip() else "{}"
    return code, captured.err, json.loads(last)


def assert_one_error_line(err: str, code: int, expected: Exit, last: dict, *words: str) -> str:
    """The edge's answer: its class's exit code, one `error:` line (what, why, what to do), a JSON
    last line that says the same, and nothing a user cannot act on."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert code == expected, err
    assert len(errors) == 1 and errors[0] == lines[-1], err
    line = errors[0]
    assert line.count(", ") >= 2, line  # what, why, what to do
    for bad in ("Traceback", "Errno", "Error:", "Exception", "DefaultCredentials", "google.", "NotFound"):
        assert bad not in err, err
    assert last["exit_code"] == expected and last["error"] == line.removeprefix("error: ")
    for word in words:
        assert word in line, line
    return line


@pytest.mark.parametrize(("name", "argv"), FILE_COMMANDS, ids=[n for n, _ in FILE_COMMANDS])
def test_a_missing_an_empty_and_a_header_only_file(name: str, argv: list[str], world: dict[str, str],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    edges = (("missing.jsonl", "no such file"), ("empty.jsonl", "the file is empty"),
             ("empty.csv", "the file is empty"), ("header.csv", "a header line and no rows"))
    for file, why in edges:
        path = str(Path(world["in"]) / file)
        code, err, last = run(fill(argv, world, file=path), capsys)
        assert_one_error_line(err, code, Exit.INPUT, last, path, why)
    assert sorted(p.name for p in Path(world["out"]).iterdir()) == [], f"{name} wrote on a refused input"


@pytest.mark.parametrize(("name", "argv"), REGISTRY_COMMANDS, ids=[n for n, _ in REGISTRY_COMMANDS])
def test_a_missing_registry_is_worded_once(name: str, argv: list[str], world: dict[str, str],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, err, last = run(fill(argv, world), capsys)
    line = assert_one_error_line(err, code, Exit.SETUP, last, world["registry"])
    assert line == (f"error: no model registry at {world['registry']}, nothing is there, check the path (a typo?) "
                    f"or create one with `txguard train --registry {world['registry']}`"), name
    assert not Path(world["registry"]).exists() and not list(Path(world["out"]).iterdir())


@pytest.mark.parametrize(("name", "argv"), GS_COMMANDS, ids=[n for n, _ in GS_COMMANDS])
def test_a_gs_path_without_credentials(name: str, argv: list[str], world: dict[str, str],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, err, last = run(fill(argv, world, file=f"{GS}/tx.jsonl", registry=f"{GS}/registry"), capsys)
    assert_one_error_line(err, code, Exit.SETUP, last, "no Google Cloud credentials",
                          "gcloud auth application-default login")


@pytest.mark.parametrize(("name", "argv"), PUBSUB_COMMANDS, ids=[n for n, _ in PUBSUB_COMMANDS])
def test_pubsub_without_an_emulator_or_credentials(name: str, argv: list[str], world: dict[str, str],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, err, last = run(fill(argv, world), capsys)
    assert_one_error_line(err, code, Exit.SETUP, last, "no Google Cloud credentials", "PUBSUB_EMULATOR_HOST")


def test_usage_errors_are_one_line_and_exit_2(world: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    cases = (
        (["score-file"], "the following arguments are required"),
        (["score-file", world["tx"], "o.jsonl", "--no-such-flag"], "unrecognized arguments"),
        (["drift", "--window-rows", "100"], "--window-rows 100 is too small"),
        (["batch", "run", "--input", world["tx"], "--output", "job"], "nothing to write"),
        (["batch", "run", "--input", world["tx"], "--output", "job", "--sample", "1.5"], "sample fraction must be"),
        (["batch", "run", "--input", world["tx"], "--output", "job", "--sample", "0.05", "--sample-seed", "-1"],
         "sample seed must be"),
        (["batch", "run", "--input", world["tx"], "--output", "job", "--sample", "0.05", "--sample-hard", "0.01"],
         "sample hard fraction must be in"),
        (["batch", "run", "--input", world["tx"], "--output", "job", "--features", "--sample-hard-model", "r@p"],
         "a sample model marks the hard negatives"),
        (["batch", "run", "--input", world["tx"], "--output", "job", "--sample", "0.05", "--sample-hard-model", "r@p",
          "--sample-hard-share", "1.5"], "sample hard share must be in"),
        (["batch", "run", "--input", world["tx"], "--output", "job", "--sample", "0.05", "--sample-hard-share", "0.05"],
         "a hard share is the top share of a sample model's scores"),
        (["train", "--labels", world["tx"]], "--labels needs --data"),
        (["label", "--file", world["tx"], "--wait", "5"], "--wait needs the label function's log"),
    )
    for argv, words in cases:
        try:
            code, err, last = run(argv, capsys)
        except SystemExit as exc:  # argparse's own refusals exit from parse_args
            code = int(exc.code or 0)
            captured = capsys.readouterr()
            err, last = captured.err, json.loads(captured.out.strip().splitlines()[-1])
        assert_one_error_line(err, code, Exit.USAGE, last, words)


def test_an_output_folder_is_never_created_silently(world: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["score-file", world["tx"], "nowhere/decisions.jsonl", "--model-uri", world["model"]],
                 ["enrich-file", world["tx"], "nowhere/enriched.jsonl"]):
        code, err, last = run(argv, capsys)
        assert_one_error_line(err, code, Exit.INPUT, last, "the folder nowhere does not exist", "mkdir -p nowhere")
        assert not Path("nowhere").exists()


def test_an_error_wraps_only_on_a_terminal() -> None:
    import io

    from txguard.cli.errors import CliError, print_error

    error = CliError("x" * 30, "y " * 80, "z" * 30)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    piped, terminal = io.StringIO(), Terminal()
    print_error(error, piped)
    print_error(error, terminal)
    assert piped.getvalue().count("\n") == 1
    assert terminal.getvalue().count("\n") > 1 and " ".join(terminal.getvalue().split()) == " ".join(
        piped.getvalue().split())


def test_the_readme_documents_every_exit_code() -> None:
    from txguard.cli.errors import EXIT_MEANINGS

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    for code in Exit:
        assert re.search(rf"^\| `{int(code)}` \| {re.escape(EXIT_MEANINGS[code].split(':')[0])}", readme, re.M), code


def test_batch_status_of_a_folder_without_a_job(world: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, err, last = run(["batch", "status", "no-job"], capsys)
    assert_one_error_line(err, code, Exit.INPUT, last, "no batch job status in no-job", "no status.json there")
    job = Path(world["out"]) / "job"
    job.mkdir()
    (job / "status.json").write_text(json.dumps({
        "job_id": "batch-1", "state": "completed", "input": "tx.jsonl", "output": str(job), "runner": "DirectRunner",
        "workers": 1, "outputs": {}, "model_uri": "m@production", "counts": {"read": 1, "decided": 1}}))
    code, err, last = run(["batch", "status", str(job), "no-job"], capsys)  # one found, one not: both said
    assert code == Exit.INPUT and err.strip().splitlines()[-1].startswith("error: no batch job status in no-job")
    assert [j["job_id"] for j in last["jobs"]] == ["batch-1"] and last["exit_code"] == Exit.INPUT
