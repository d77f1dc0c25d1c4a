"""ModelRuntime: ONNX/scikit-learn parity, the single-row fast path, refusals, thread safety."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tests.scoring_fixtures import THRESHOLDS, synthetic_rows, tiny_metadata, tiny_model
from txguard.contract.errors import IncompatibleModelError
from txguard.features.wallet import FEATURE_NAMES
from txguard.scoring.runtime import ModelRuntime


@pytest.fixture(scope="module")
def runtime() -> ModelRuntime:
    return ModelRuntime(tiny_model()[1], tiny_metadata())


def test_onnx_matches_sklearn_on_100k_rows(runtime: ModelRuntime) -> None:
    est, _ = tiny_model()
    x = synthetic_rows(100_000, seed=7)
    sk = est.predict_proba(x)[:, 1]
    onnx = runtime.predict(x)
    assert onnx.shape == (100_000,)
    assert float(np.max(np.abs(sk - onnx))) <= 1e-6
    for threshold in (THRESHOLDS.review, THRESHOLDS.block):
        assert int(np.sum((sk >= threshold) != (onnx >= threshold))) == 0
    # The data exercises both sides of both thresholds (otherwise "no flips" proves nothing).
    assert 0.01 < float(np.mean(onnx >= THRESHOLDS.block)) < float(np.mean(onnx >= THRESHOLDS.review)) < 0.99


def test_single_row_path_equals_matrix_path(runtime: ModelRuntime) -> None:
    x = synthetic_rows(2000, seed=8)
    batch = runtime.predict(x)
    single = np.array([runtime.predict_row(row) for row in x.tolist()])
    assert np.array_equal(single, batch)


def test_packed_rows_round_like_numpy_and_out_of_range_values_fall_back(runtime: ModelRuntime) -> None:
    """struct's double -> float packing and numpy's astype(float32) give the same bits; beyond
    float32's range struct refuses and the numpy path (inf, as the matrix path casts it) is used."""
    x = synthetic_rows(200, seed=11) * np.float64(1.0 + 2**-30)  # digits float32 must round away
    x[:5, 0] = [1e300, -1e300, 3.5e38, np.inf, np.nan]
    got = np.array([runtime.predict_row(row) for row in x.tolist()])
    assert np.array_equal(got, runtime.predict(x), equal_nan=True)
    with pytest.raises(ValueError):  # a row of the wrong width is an error, not a silent short row
        runtime.predict_row([0.0] * (len(FEATURE_NAMES) - 1))


def test_public_run_path_scores_like_the_native_one() -> None:
    """Serving calls the C++ session directly; the public wrapper (used if onnxruntime's internals
    move) must give the same scores."""
    native = ModelRuntime(tiny_model()[1], tiny_metadata())
    public = ModelRuntime(tiny_model()[1], tiny_metadata())
    public.native_run = False  # before its first row: the buffers pick the runner once
    rows = synthetic_rows(300, seed=12).tolist()
    assert [public.predict_row(r) for r in rows] == [native.predict_row(r) for r in rows]


def test_rows_are_scored_from_the_current_buffer_not_a_stale_one(runtime: ModelRuntime) -> None:
    x = synthetic_rows(50, seed=9)
    expected = runtime.predict(x)
    got = [runtime.predict_row(row) for row in x.tolist()]
    assert len(set(got)) > 10  # different rows really give different scores
    assert np.allclose(got, expected, atol=0, rtol=0)


def test_concurrent_threads_each_get_their_own_rows_score(runtime: ModelRuntime) -> None:
    x = synthetic_rows(4000, seed=10)
    expected = runtime.predict(x)
    rows = x.tolist()
    mismatches: list[int] = []

    def worker(offset: int) -> None:
        for i in range(offset, len(rows), 8):
            if runtime.predict_row(rows[i]) != expected[i]:
                mismatches.append(i)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert mismatches == []


def test_empty_and_malformed_matrices(runtime: ModelRuntime) -> None:
    assert runtime.predict(np.zeros((0, len(FEATURE_NAMES)))).shape == (0,)
    with pytest.raises(ValueError, match="matrix"):
        runtime.predict(np.zeros((3, 5)))


def test_refuses_a_model_with_other_features() -> None:
    _, artifact = tiny_model()
    reordered = list(reversed(FEATURE_NAMES))
    with pytest.raises(IncompatibleModelError, match="other features"):
        ModelRuntime(artifact, tiny_metadata(features=reordered))
    with pytest.raises(IncompatibleModelError, match="missing"):
        ModelRuntime(artifact, tiny_metadata(features=list(FEATURE_NAMES[:-1])))


def test_refuses_bytes_that_are_not_onnx() -> None:
    with pytest.raises(IncompatibleModelError, match="not a loadable ONNX"):
        ModelRuntime(b"definitely not onnx", tiny_metadata())


def test_refuses_an_onnx_model_without_probabilities_output() -> None:
    import onnx

    model = onnx.load_from_string(tiny_model()[1])
    for node in model.graph.node:
        node.output[:] = ["proba" if o == "probabilities" else o for o in node.output]
    for out in model.graph.output:
        if out.name == "probabilities":
            out.name = "proba"
    with pytest.raises(IncompatibleModelError, match="probabilities"):
        ModelRuntime(model.SerializeToString(), tiny_metadata())
