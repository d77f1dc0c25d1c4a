"""The Beam job's score step (`txguard.batch.pipeline.Score`): one model run per shard serves both the
decisions and the sample's hard-negative marks when the sample model is the decisions' model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.scoring_fixtures import publish_tiny
from txguard.batch.pipeline import Score
from txguard.features.wallet import FEATURE_NAMES


def _counted(score: Score) -> list[int]:
    """Count the model runs of each distinct scorer the step holds."""
    calls: list[int] = []
    for scorer in {id(s): s for s in (score.scorer, score.hard_scorer) if s is not None}.values():
        predict = scorer.runtime.predict

        def counting(x: np.ndarray, _predict=predict) -> np.ndarray:  # noqa: ANN001
            calls.append(len(x))
            return _predict(x)

        scorer.runtime.predict = counting
    return calls


@pytest.fixture
def matrix() -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.abs(rng.normal(size=(500, len(FEATURE_NAMES)))) * 10


def test_one_run_serves_decisions_and_hard_marks(tmp_path: Path, matrix: np.ndarray) -> None:
    publish_tiny(tmp_path / "reg")
    uri = f"{tmp_path / 'reg'}@production"
    score = Score(uri, features=False, sample=0.2, sample_model=uri)
    score.setup()
    expected = score.scorer.runtime.predict(matrix)
    calls = _counted(score)
    scores, hard = score.scored(matrix)
    assert calls == [len(matrix)]
    assert np.array_equal(scores, expected)
    assert np.array_equal(hard, expected >= score.scorer.thresholds.review)
    assert 0 < hard.sum() < len(matrix)  # the check means something: both kinds of rows


def test_another_sample_model_runs_on_its_own(tmp_path: Path, matrix: np.ndarray) -> None:
    publish_tiny(tmp_path / "a")
    publish_tiny(tmp_path / "b")
    score = Score(f"{tmp_path / 'a'}@production", features=False, sample=0.2,
                  sample_model=f"{tmp_path / 'b'}@production")
    score.setup()
    assert score.hard_scorer is not score.scorer
    calls = _counted(score)
    scores, hard = score.scored(matrix)
    assert calls == [len(matrix), len(matrix)]
    assert np.array_equal(hard, score.hard_scorer.runtime.predict(matrix) >= score.hard_scorer.thresholds.review)
    assert scores is not None


def test_without_models_nothing_runs(matrix: np.ndarray) -> None:
    score = Score(None, features=True, sample=0.2)
    score.setup()
    assert score.scored(matrix) == (None, None)


def test_decisions_from_given_scores_are_the_same_lines(tmp_path: Path, matrix: np.ndarray) -> None:
    import pyarrow as pa

    from txguard.batch.decisions import decide
    from txguard.scoring.loading import open_scorer

    publish_tiny(tmp_path / "reg")
    scorer = open_scorer(f"{tmp_path / 'reg'}@production")
    ids = pa.array([f"t{i}" for i in range(len(matrix))])
    wallets = pa.array([f"w{i % 7}" for i in range(len(matrix))])
    plain = decide(scorer, matrix, ids, wallets)
    given = decide(scorer, matrix, ids, wallets, scores=scorer.runtime.predict(matrix))
    assert plain == given and plain[1]["review"] + plain[1]["block"] > 0
