"""Model registry on the local-folder backend: versions, aliases, rollback, integrity, races."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from txguard.contract.errors import (
    ChecksumMismatchError,
    ConcurrentUpdateError,
    ModelNotFoundError,
    RegistryError,
)
from txguard.registry import open_registry, parse_model_uri
from txguard.registry.metadata import ModelMetadata, Thresholds


def meta(**kw: object) -> ModelMetadata:
    return ModelMetadata(
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        data_fingerprint="abc",
        features=["a", "b"],
        thresholds=Thresholds(review=0.5, block=0.9),
        metrics={"pr_auc": 0.8},
        **kw,
    )


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("gs://bucket/prefix@production", ("gs://bucket/prefix", "production")),
        ("models/registry@v3", ("models/registry", "v3")),
        ("models/registry", ("models/registry", "production")),
        ("gs://bucket/a/b/@staging", ("gs://bucket/a/b", "staging")),
        ("/tmp/x@y/z", ("/tmp/x@y/z", "production")),
    ],
)
def test_parse_model_uri(uri: str, expected: tuple[str, str]) -> None:
    assert parse_model_uri(uri) == expected


def test_publish_assigns_versions_and_checksums(tmp_path: Path) -> None:
    reg = open_registry(str(tmp_path / "reg"))
    assert reg.versions() == [] and reg.aliases() == {}
    m1 = reg.publish(b"model-one", meta())
    m2 = reg.publish(b"model-two", meta())
    assert (m1.version, m2.version) == ("v1", "v2")
    assert len(m1.sha256) == 64 and m1.sha256 != m2.sha256
    assert [m.version for m in reg.versions()] == ["v1", "v2"]
    assert (tmp_path / "reg/versions/v2/model.onnx").read_bytes() == b"model-two"
    stored = json.loads((tmp_path / "reg/versions/v1/metadata.json").read_text())
    assert stored["version"] == "v1" and stored["sha256"] == m1.sha256
    loaded = reg.load("v2")
    assert loaded.artifact == b"model-two" and loaded.metadata.version == "v2"
    assert reg.resolve("latest") == "v2"


def test_promote_and_rollback(tmp_path: Path) -> None:
    reg = open_registry(str(tmp_path))
    for i in range(3):
        reg.publish(f"m{i}".encode(), meta())
    with pytest.raises(ModelNotFoundError):
        reg.load("production")
    reg.promote("v1")
    reg.promote("v2")
    reg.promote("v3", alias="staging")
    assert reg.aliases() == {"production": "v2", "staging": "v3"}
    assert reg.load().metadata.version == "v2"
    reg.promote("v3")
    record, _ = reg.read_alias("production")
    assert record.version == "v3" and record.history == ["v1", "v2"]
    assert reg.rollback() == "v2"
    assert reg.rollback() == "v1"
    assert reg.resolve("production") == "v1"
    with pytest.raises(RegistryError, match="no previous version"):
        reg.rollback()
    with pytest.raises(ModelNotFoundError):
        reg.promote("v9")
    with pytest.raises(ModelNotFoundError):
        reg.rollback("canary")


def test_unknown_refs_raise_model_not_found(tmp_path: Path) -> None:
    reg = open_registry(str(tmp_path))
    reg.publish(b"x", meta())
    for ref in ("v2", "canary", "Bad Alias!", "v0"):
        with pytest.raises(ModelNotFoundError):
            reg.resolve(ref)


def test_tampered_artifact_is_refused(tmp_path: Path) -> None:
    reg = open_registry(str(tmp_path))
    reg.publish(b"genuine", meta())
    (tmp_path / "versions/v1/model.onnx").write_bytes(b"tampered")
    with pytest.raises(ChecksumMismatchError, match="refusing"):
        reg.load("v1")


def test_missing_artifact_is_a_clear_not_found(tmp_path: Path) -> None:
    reg = open_registry(str(tmp_path))
    reg.publish(b"genuine", meta())
    reg.promote("v1")
    (tmp_path / "versions/v1/model.onnx").unlink()
    with pytest.raises(ModelNotFoundError, match="artifact .* is missing"):
        reg.load()


def test_versions_are_immutable(tmp_path: Path) -> None:
    reg = open_registry(str(tmp_path))
    reg.publish(b"one", meta())
    with pytest.raises(ConcurrentUpdateError):
        reg.store.create("versions/v1/model.onnx", b"overwrite")
    assert reg.load("v1").artifact == b"one"


def test_concurrent_publishers_get_distinct_versions(tmp_path: Path) -> None:
    reg_dir = str(tmp_path)
    results: list[str] = []
    barrier = threading.Barrier(8)

    def publish(i: int) -> None:
        reg = open_registry(reg_dir)
        barrier.wait()
        results.append(reg.publish(f"model-{i}".encode(), meta()).version)

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=lambda v: int(v[1:])) == [f"v{i}" for i in range(1, 9)]
    reg = open_registry(reg_dir)
    artifacts = {reg.load(v).artifact for v in results}
    assert len(artifacts) == 8


def test_stale_alias_update_is_rejected(tmp_path: Path) -> None:
    reg = open_registry(str(tmp_path))
    reg.publish(b"a", meta())
    reg.publish(b"b", meta())
    reg.promote("v1")
    record, stale_generation = reg.read_alias("production")
    reg.promote("v2")  # someone else moves the alias meanwhile
    with pytest.raises(ConcurrentUpdateError):
        reg.set_alias("production", record, stale_generation)
    assert reg.resolve("production") == "v2"
    with pytest.raises(ConcurrentUpdateError):  # "must not exist" precondition
        reg.set_alias("production", record, None)


def test_cli_promote_rollback_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from txguard.cli.main import main

    reg = open_registry(str(tmp_path))
    reg.publish(b"a", meta())
    reg.publish(b"b", meta())
    assert main(["registry", "--registry", str(tmp_path), "promote", "v1"]) == 0
    assert main(["registry", "promote", "v2", "--registry", str(tmp_path)]) == 0
    assert main(["registry", "rollback", "--registry", str(tmp_path)]) == 0
    assert main(["registry", "rollback", "--registry", str(tmp_path)]) == 4  # nothing to roll back to
    capsys.readouterr()
    assert main(["registry", "list", "--registry", str(tmp_path)]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["aliases"] == {"production": "v1"}
    assert [v["version"] for v in last["versions"]] == ["v1", "v2"]


def test_a_path_that_is_not_a_registry_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from txguard.cli.main import main

    real = tmp_path / "registry"
    open_registry(str(real)).publish(b"a", meta())
    open_registry(str(real)).check()  # a registry
    typo = tmp_path / "regsitry"
    with pytest.raises(RegistryError, match="no model registry at .*regsitry, nothing is there"):
        open_registry(str(typo)).check()
    open_registry(str(typo)).check(writable=True)  # training may start one there
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"x")
    for writable in (False, True):
        with pytest.raises(RegistryError, match="not a model registry, it holds files"):
            open_registry(str(other)).check(writable=writable)
    with pytest.raises(RegistryError, match="is a file"):
        open_registry(str(other / "cat.jpg")).check(writable=True)

    capsys.readouterr()
    assert main(["registry", "--registry", str(typo), "list"]) == 4
    out = capsys.readouterr()
    message = (f"no model registry at {typo}, nothing is there, check the path (a typo?) or create one with "
               f"`txguard train --registry {typo}`")
    assert json.loads(out.out) == {"error": message, "exit_code": 4}
    assert out.err.strip().splitlines() == [f"error: {message}"]
    assert not typo.exists()  # listing created nothing


def test_gs_registry_without_credentials_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """No ADC anywhere (no env file, no gcloud config, no metadata server): one line, exit 4 (setup)."""
    from txguard.cli.main import main

    for var in ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))  # an empty gcloud config
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")  # nothing listens: not on Google Cloud
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    assert main(["registry", "--registry", "gs://txguard-no-such-bucket/registry", "list"]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: cannot reach gs://txguard-no-such-bucket/registry, no Google Cloud credentials, run "
                   "`gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS; "
                   "STORAGE_EMULATOR_HOST for the emulator)"]


def test_train_checks_the_registry_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import time

    from txguard.cli.main import main

    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"x")
    started = time.monotonic()
    assert main(["train", "--registry", str(other)]) == 4
    assert time.monotonic() - started < 5  # refused before building features (a full run takes ~20 s)
    out = capsys.readouterr()
    assert json.loads(out.out.strip().splitlines()[-1]) == {
        "error": f"{other} is not a model registry, it holds files but no versions/ or aliases/, give the "
                 "registry's own folder or gs:// prefix", "exit_code": 4}
    assert "building features" not in out.err


def test_cli_turns_user_errors_into_one_line_and_keeps_bugs_loud() -> None:
    from google.api_core import exceptions as gexc
    from google.auth.exceptions import DefaultCredentialsError

    from txguard.cli.errors import NO_CREDENTIALS, Exit, classify

    assert classify(RegistryError("bucket gone")).message == "bucket gone"
    assert classify(RegistryError("bucket gone")).code == Exit.SETUP
    assert classify(DefaultCredentialsError("x")).message == ", ".join(NO_CREDENTIALS)
    cloud = classify(gexc.NotFound("Resource not found (resource=transactions)."))
    assert cloud.code == Exit.SETUP and "NotFound" not in cloud.message
    assert "Resource not found (resource=transactions)" in cloud.message
    missing = classify(FileNotFoundError(2, "No such file", "in.jsonl"))
    assert missing.message == "cannot read in.jsonl, no such file or folder, check the path"
    assert "Errno" not in missing.message and missing.code == Exit.INPUT
    assert classify(KeyError("bug")) is None
