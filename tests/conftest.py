"""Shared fixtures: emulators started once per session and stopped by process group.

Tests that need an emulator skip with a clear reason when it cannot run here, except under CI
(`CI` set), where they fail instead: CI must exercise the real parts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from txguard.local import emulators  # noqa: E402

PROJECT = "txguard-test"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def require(condition: bool, reason: str) -> None:
    """Skip (locally) or fail (in CI) when a real dependency is missing."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"{reason} (CI is set: emulator tests must run, not skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[emulators.Emulator]:
    require(emulators.fake_gcs_binary() is not None, "fake-gcs-server binary not installed")
    emu = emulators.start_gcs(tmp_path_factory.mktemp("gcs"))
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[emulators.Emulator]:
    require(emulators.gcloud_available(), "gcloud (with Java) not on PATH: Pub/Sub emulator unavailable")
    emu = emulators.start_pubsub(PROJECT, tmp_path_factory.mktemp("pubsub"))
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[emulators.Emulator]:
    require(emulators.gcloud_available(), "gcloud (with Java) not on PATH: Firestore emulator unavailable")
    emu = emulators.start_firestore(PROJECT, tmp_path_factory.mktemp("firestore"))
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def bigtable_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[emulators.Emulator]:
    require(emulators.gcloud_available(), "gcloud (with its Bigtable emulator) not on PATH: Bigtable emulator unavailable")
    emu = emulators.start_bigtable(tmp_path_factory.mktemp("bigtable"))
    yield emu
    emu.stop()


@pytest.fixture
def gcs_env(gcs_emulator: emulators.Emulator, monkeypatch: pytest.MonkeyPatch) -> emulators.Emulator:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.env_value)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    return gcs_emulator
