"""Fixtures: the dev stack as declared with its defaults, and with overrides."""

from __future__ import annotations

import pytest
from pulumi_mocks import BASE_CONFIG, OVERRIDES, StackRun, run_program


@pytest.fixture(scope="session")
def default_stack(tmp_path_factory: pytest.TempPathFactory) -> StackRun:
    return run_program(BASE_CONFIG, tmp_path_factory.mktemp("build-default"))


@pytest.fixture(scope="session")
def override_stack(tmp_path_factory: pytest.TempPathFactory) -> StackRun:
    return run_program({**BASE_CONFIG, **OVERRIDES}, tmp_path_factory.mktemp("build-override"))

