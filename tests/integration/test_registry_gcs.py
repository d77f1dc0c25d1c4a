"""Model registry against a real Cloud Storage emulator (fake-gcs-server): the serving path's backend."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from txguard.contract.errors import ChecksumMismatchError, ConcurrentUpdateError, ModelNotFoundError
from txguard.local.emulators import Emulator
from txguard.registry import open_registry
from txguard.registry.metadata import ModelMetadata, Thresholds
from txguard.registry.store import GcsBlobStore

pytestmark = pytest.mark.gcs


def meta() -> ModelMetadata:
    return ModelMetadata(
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        data_fingerprint="abc",
        features=["a"],
        thresholds=Thresholds(review=0.3, block=0.8),
    )


@pytest.fixture
def location(gcs_env: Emulator) -> str:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="txguard-test", credentials=AnonymousCredentials())
    name = f"reg-{uuid.uuid4().hex[:12]}"
    client.create_bucket(name)
    return f"gs://{name}/models/fraud"


def test_publish_list_promote_rollback(location: str) -> None:
    reg = open_registry(location)
    assert isinstance(reg.store, GcsBlobStore)
    assert reg.versions() == []
    v1 = reg.publish(b"artifact-1", meta())
    v2 = reg.publish(b"artifact-2", meta())
    assert (v1.version, v2.version) == ("v1", "v2")
    assert [m.version for m in open_registry(location).versions()] == ["v1", "v2"]
    reg.promote("v1")
    reg.promote("v2", alias="staging")
    reg.promote("v2")
    assert reg.aliases() == {"production": "v2", "staging": "v2"}
    loaded = open_registry(location + "/").load("production")
    assert loaded.artifact == b"artifact-2" and loaded.metadata.sha256 == v2.sha256
    assert reg.rollback() == "v1"
    assert reg.load().artifact == b"artifact-1"
    names = sorted(b.name for b in reg.store.client.list_blobs(reg.store.bucket))
    assert "models/fraud/versions/v1/model.onnx" in names
    assert "models/fraud/aliases/production.json" in names


def test_tampered_artifact_is_refused(location: str) -> None:
    reg = open_registry(location)
    reg.publish(b"genuine", meta())
    reg.promote("v1")
    # Overwrite the object behind the registry's back.
    reg.store.bucket.blob("models/fraud/versions/v1/model.onnx").upload_from_string(b"evil")
    with pytest.raises(ChecksumMismatchError):
        open_registry(location).load("production")


def test_missing_artifact_and_unknown_alias(location: str) -> None:
    reg = open_registry(location)
    with pytest.raises(ModelNotFoundError):
        reg.load("production")
    reg.publish(b"genuine", meta())
    reg.store.bucket.blob("models/fraud/versions/v1/model.onnx").delete()
    with pytest.raises(ModelNotFoundError, match="missing"):
        reg.load("v1")


def test_concurrent_publishers_get_distinct_versions(location: str) -> None:
    def publish(i: int) -> str:
        return open_registry(location).publish(f"model-{i}".encode(), meta()).version

    with ThreadPoolExecutor(max_workers=6) as pool:
        versions = list(pool.map(publish, range(6)))
    assert sorted(versions) == sorted(f"v{i}" for i in range(1, 7))
    reg = open_registry(location)
    assert {reg.load(v).artifact for v in versions} == {f"model-{i}".encode() for i in range(6)}


def test_stale_alias_update_raises(location: str) -> None:
    reg = open_registry(location)
    reg.publish(b"a", meta())
    reg.publish(b"b", meta())
    reg.promote("v1")
    record, generation = reg.read_alias("production")
    open_registry(location).promote("v2")
    with pytest.raises(ConcurrentUpdateError):
        reg.set_alias("production", record, generation)
    with pytest.raises(ConcurrentUpdateError):
        reg.store.create("versions/v1/model.onnx", b"overwrite")
    assert reg.resolve("production") == "v2"


def test_training_publishes_to_gcs_registry(location: str) -> None:
    from txguard.training.gate import GatePolicy
    from txguard.training.train import TrainConfig, train_and_publish

    config = TrainConfig(days=10, wallets=600, seed=5, max_iter=30, registry=location, label_maturity_days=0.0,
                         policy=GatePolicy(min_pr_auc=0.3, max_ece=0.05))
    report = train_and_publish(config)
    assert report["version"] == "v1" and "production" in report["aliases"]
    loaded = open_registry(f"{location}").load("production")
    assert loaded.metadata.sha256 == report["sha256"] and len(loaded.artifact) > 1000


def test_missing_bucket_or_empty_prefix_is_a_clear_error(location: str, capsys: pytest.CaptureFixture) -> None:
    from txguard.cli.main import main
    from txguard.contract.errors import RegistryError

    missing = f"gs://no-such-bucket-{uuid.uuid4().hex[:8]}/registry"
    with pytest.raises(RegistryError, match="bucket of .* does not exist"):
        open_registry(missing).check(writable=True)
    assert main(["registry", "--registry", missing, "list"]) == 4  # setup: the bucket is missing (cli/errors.py)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: bucket of {missing} does not exist")
    with pytest.raises(RegistryError, match="no model registry at"):
        open_registry(location).check()  # the bucket exists, nothing under the prefix yet
    open_registry(location).check(writable=True)
