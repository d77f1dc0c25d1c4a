"""One way to a scorer: `open_scorer` and `load_scorer` run every check serving runs, and nothing else
in the code builds a scorer or a runtime from model bytes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.scoring_fixtures import THRESHOLDS, publish_disagreeing, publish_tiny, tiny_metadata, tiny_model
from txguard.contract.errors import (
    ChecksumMismatchError,
    IncompatibleModelError,
    ModelNotFoundError,
    ParityCheckError,
)
from txguard.scoring.loading import open_scorer, scorer_of

ROOT = Path(__file__).resolve().parents[3]
HOMES = ("shared", "scripts", "models", "functions")
BUILDERS = {"Scorer", "ModelRuntime"}
ALLOWED = {"shared/txguard/scoring/loading.py"}  # scorer_of: the one place they are built


def test_open_scorer_loads_the_production_model_and_refuses_a_tampered_artifact(tmp_path: Path) -> None:
    meta = publish_tiny(tmp_path / "registry")
    scorer = open_scorer(f"{tmp_path / 'registry'}@production")
    assert scorer.version == meta.version and scorer.thresholds == THRESHOLDS
    assert open_scorer(f"{tmp_path / 'registry'}@{meta.version}").version == meta.version
    assert open_scorer(f"{tmp_path / 'registry'}@latest").version == meta.version

    artifact = tmp_path / "registry" / "versions" / meta.version / "model.onnx"
    data = bytearray(artifact.read_bytes())
    data[-1] ^= 0xFF
    artifact.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError):
        open_scorer(f"{tmp_path / 'registry'}@production")


def test_open_scorer_with_no_model(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        open_scorer(f"{tmp_path / 'empty'}@production")


def test_a_model_whose_onnx_disagrees_with_its_metadata_is_refused(tmp_path: Path) -> None:
    publish_disagreeing(tmp_path / "registry")
    with pytest.raises(ParityCheckError, match="differ from the ones recorded at training"):
        open_scorer(f"{tmp_path / 'registry'}@production")


def test_model_bytes_at_hand_go_through_the_same_checks() -> None:
    scorer = scorer_of(tiny_model()[1], tiny_metadata(version="bench"))
    assert scorer.version == "bench"
    with pytest.raises(IncompatibleModelError):
        scorer_of(tiny_model()[1], tiny_metadata(features=["amount", "other"]))


def _builds(path: Path) -> list[str]:
    """Calls that construct a Scorer or a ModelRuntime (by name or attribute), with their line."""
    found = []
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name in BUILDERS:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}(...)")
    return found


def test_only_loading_builds_a_scorer_so_every_path_is_smoke_tested() -> None:
    """Serving, score-file, batch jobs and the benchmarks all get their scorer from loading.py, where
    the smoke test runs; a module that built one itself would score with an unchecked model."""
    paths = [p for home in HOMES for p in sorted((ROOT / home).rglob("*.py"))]
    assert len(paths) > 100
    builds = [b for p in paths if p.relative_to(ROOT).as_posix() not in ALLOWED for b in _builds(p)]
    assert not builds, f"a scorer built outside txguard.scoring.loading: {builds}"
    assert _builds(ROOT / "shared/txguard/scoring/loading.py")  # the check does see a construction
