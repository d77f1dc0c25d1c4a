"""Decision lines written in bulk are byte for byte the contract's `Decision.model_dump_json`."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tests.scoring_fixtures import synthetic_rows, tiny_metadata, tiny_model
from txguard.batch.decisions import decide
from txguard.contract.models import Decision
from txguard.features.wallet import FEATURE_NAMES
from txguard.scoring.runtime import ModelRuntime
from txguard.scoring.scorer import Scorer


class ExtremeRuntime:
    """The tiny model's runtime with a few scores forced to the floats that print differently."""

    def __init__(self, runtime: ModelRuntime) -> None:
        self.inner, self.version, self.metadata = runtime, "v1 \"quoted\" é", runtime.metadata

    def predict(self, x: np.ndarray) -> np.ndarray:
        scores = self.inner.predict(x)
        scores[:6] = [0.0, 1.0, 1e-7, 2.5e-05, 0.3, 0.7]  # exponent forms and both thresholds exactly
        return scores


def test_bytes_equal_the_models_dump() -> None:
    scorer = Scorer(ModelRuntime(tiny_model()[1], tiny_metadata()))
    scorer.runtime = ExtremeRuntime(scorer.runtime)
    scorer.version = scorer.runtime.version
    x = synthetic_rows(3000, seed=9)
    ids = [f"tx-{i}" for i in range(len(x))]
    wallets = [f"w.{i % 17}:a-b" for i in range(len(x))]
    lines, tally = decide(scorer, x, pa.array(ids), pa.chunked_array([pa.array(wallets[:1000]), pa.array(wallets[1000:])]))
    expected = scorer.decide_matrix(x, ids, wallets, timings=False)
    assert lines == b"".join(d.model_dump_json().encode() + b"\n" for d in expected)
    assert sum(1 for d in expected if d.reasons) > 100  # the reasons path is exercised
    assert dict(tally) == {o: sum(d.outcome.value == o for d in expected) for o in tally}
    assert Decision.model_validate_json(lines.splitlines()[2]).score == 1e-7


def test_an_empty_matrix_writes_nothing() -> None:
    scorer = Scorer(ModelRuntime(tiny_model()[1], tiny_metadata()))
    lines, tally = decide(scorer, np.zeros((0, len(FEATURE_NAMES))), pa.array([], pa.string()), pa.array([], pa.string()))
    assert lines == b"" and not tally
