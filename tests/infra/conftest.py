"""Fixtures: the dev stack as declared with its defaults, and with overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from pulumi_mocks import StackRun, run_program

BASE_CONFIG = {"gcp:project": "txguard-dev", "gcp:region": "europe-west1"}
OVERRIDES = {
    "txguard:scoringConcurrency": "4",
    "txguard:scoringMinInstances": "3",
    "txguard:scoringMaxInstances": "40",
    "txguard:scoringCpu": "4",
    "txguard:scoringMemory": "4Gi",
    "txguard:scoringWorkers": "4",
    "txguard:enrichConcurrency": "25",
    "txguard:enrichMinInstances": "1",
    "txguard:enrichMaxInstances": "12",
    "txguard:enrichCpu": "1",
    "txguard:enrichMemory": "1Gi",
    "txguard:maxDeliveryAttempts": "7",
    "txguard:minBackoffSeconds": "5",
    "txguard:maxBackoffSeconds": "300",
    "txguard:modelUri": "gs://elsewhere/registry@v3",
    "txguard:buildServiceAccount": "false",
    "txguard:alertEmails": '["oncall@example.com"]',
}


@pytest.fixture(scope="session")
def default_stack(tmp_path_factory: pytest.TempPathFactory) -> StackRun:
    return run_program(BASE_CONFIG, tmp_path_factory.mktemp("build-default"))


@pytest.fixture(scope="session")
def override_stack(tmp_path_factory: pytest.TempPathFactory) -> StackRun:
    return run_program({**BASE_CONFIG, **OVERRIDES}, tmp_path_factory.mktemp("build-override"))


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("archives")
