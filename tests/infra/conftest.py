"""Fixtures: the dev stack as declared with its defaults, with overrides, and with the console."""

from __future__ import annotations

import json

import pytest
from pulumi_mocks import BASE_CONFIG, OVERRIDES, StackRun, run_program


@pytest.fixture(scope="session")
def default_stack(tmp_path_factory: pytest.TempPathFactory) -> StackRun:
    return run_program(BASE_CONFIG, tmp_path_factory.mktemp("build-default"))


@pytest.fixture(scope="session")
def override_stack(tmp_path_factory: pytest.TempPathFactory) -> StackRun:
    return run_program({**BASE_CONFIG, **OVERRIDES}, tmp_path_factory.mktemp("build-override"))



# The analysts group of the console stack, and the analysts among them who may move production.
GROUP = "fraud-analysts@example.com"
APPROVERS = ("carol@example.com", "dan@example.com")


@pytest.fixture(scope="session")
def console_stack(tmp_path_factory: pytest.TempPathFactory) -> StackRun:
    return run_program({**BASE_CONFIG, "txguard:analystsGroup": GROUP,
                        "txguard:productionApprovers": json.dumps(list(APPROVERS))},
                       tmp_path_factory.mktemp("build-console"))
