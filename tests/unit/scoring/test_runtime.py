"""ModelRuntime: ONNX/scikit-learn parity, the single-row fast path, refusals, thread safety.

Every test of a loaded runtime runs on both graph forms: the margin graph a version is published as
and the classifier graph skl2onnx writes (what versions published before serve)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tests.scoring_fixtures import (
    IX,
    THRESHOLDS,
    enriched_transactions,
    synthetic_rows,
    tiny_metadata,
    tiny_model,
)
from txguard.contract.errors import IncompatibleModelError
from txguard.contract.models import ENRICHED_ADAPTER, EnrichedTransaction
from txguard.features.wallet import FEATURE_NAMES
from txguard.scoring.runtime import MARGIN, PROBABILITIES, ModelRuntime, probability
from txguard.scoring.vectorize import matrix_of, row_of
from txguard.training.onnx_export import margin_graph

FORMS = {MARGIN: lambda: margin_graph(tiny_model()[1]), PROBABILITIES: lambda: tiny_model()[1]}


@pytest.fixture(scope="module", params=sorted(FORMS))
def graph(request: pytest.FixtureRequest) -> bytes:
    return FORMS[request.param]()


@pytest.fixture(scope="module")
def runtime(graph: bytes) -> ModelRuntime:
    return ModelRuntime(graph, tiny_metadata())


def test_onnx_matches_sklearn_on_100k_rows(runtime: ModelRuntime) -> None:
    est, _ = tiny_model()
    x = synthetic_rows(100_000, seed=7)
    # The graph's input is float32 (the model was fitted on float32 too): scikit-learn reads the same
    # values. On float64 inputs a value within float32 rounding of a split goes the other way.
    sk = est.predict_proba(x.astype(np.float32))[:, 1]
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


def test_public_run_path_scores_like_the_native_one(graph: bytes) -> None:
    """Serving calls the C++ session directly; the public wrapper (used if onnxruntime's internals
    move) must give the same scores."""
    native = ModelRuntime(graph, tiny_metadata())
    public = ModelRuntime(graph, tiny_metadata())
    public.native_run = False  # before its first row: the buffers pick the runner once
    rows = synthetic_rows(300, seed=12).tolist()
    assert [public.predict_row(r) for r in rows] == [native.predict_row(r) for r in rows]


def test_rows_are_scored_from_the_current_buffer_not_a_stale_one(runtime: ModelRuntime) -> None:
    x = synthetic_rows(50, seed=9)
    expected = runtime.predict(x)
    got = [runtime.predict_row(row) for row in x.tolist()]
    assert len(set(got)) > 10  # different rows really give different scores
    assert np.allclose(got, expected, atol=0, rtol=0)


def _mismatches_across_threads(predict, items, expected, n_threads: int) -> list[int]:  # noqa: ANN001
    """The indexes whose score differs from `expected` when `n_threads` threads score the items at once."""
    mismatches: list[int] = []

    def worker(offset: int) -> None:
        for i in range(offset, len(items), n_threads):
            if predict(items[i]) != expected[i]:
                mismatches.append(i)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return mismatches


def test_concurrent_threads_each_get_their_own_rows_score(runtime: ModelRuntime) -> None:
    x = synthetic_rows(4000, seed=10)
    expected = runtime.predict(x)
    assert _mismatches_across_threads(runtime.predict_row, x.tolist(), expected, 8) == []


# The serving path: a validated transaction ----------------------------------------------------
@pytest.fixture(scope="module")
def transactions() -> tuple[EnrichedTransaction, ...]:
    return enriched_transactions(days=3, wallets=200, seed=5)


def test_transaction_path_equals_row_of_and_predict_row(
        runtime: ModelRuntime, transactions: tuple[EnrichedTransaction, ...]) -> None:
    """The row built inline and its score are `row_of`'s row and `predict_row`'s score, to the last bit."""
    assert len(transactions) > 1000
    got = [runtime.predict_transaction(tx) for tx in transactions]
    assert [row for _p, row in got] == [row_of(tx) for tx in transactions]
    scores = [p for p, _row in got]
    assert scores == [runtime.predict_row(row_of(tx)) for tx in transactions]
    assert np.array_equal(np.array(scores), runtime.predict(matrix_of(transactions)))
    assert len(set(scores)) > 100  # real transactions, really different scores


def test_transaction_path_whatever_the_offset(runtime: ModelRuntime,
                                              transactions: tuple[EnrichedTransaction, ...]) -> None:
    """UTC read from the fields, any other offset through row_of's arithmetic: the same rows either way."""
    body = transactions[7].model_dump(mode="json")
    for stamp in ("2026-12-04T23:30:00Z", "2026-12-04T23:30:00+00:00", "2026-12-05T01:30:00+02:00",
                  "2026-12-04T20:00:00-03:30", "2026-12-06T23:59:59.999-00:00"):
        tx = ENRICHED_ADAPTER.validate_python({**body, "timestamp": stamp})
        p, row = runtime.predict_transaction(tx)
        assert row == row_of(tx), stamp
        assert p == runtime.predict_row(row_of(tx)), stamp


def test_transaction_path_beyond_float32(runtime: ModelRuntime, transactions: tuple[EnrichedTransaction, ...]) -> None:
    """Finite values the contract accepts but float32 cannot hold are scored as numpy casts them (inf),
    as the row and matrix paths do; the row handed back keeps the values as they came."""
    body = transactions[11].model_dump(mode="json")
    for field, group, value in (("amount_ratio_30d", "features", 1e300), ("amount_sum_7d", "features", 3.5e38),
                                ("cp_amount_ratio_30d", "counterparty", 1e39)):
        tx = ENRICHED_ADAPTER.validate_python({**body, group: {**body[group], field: value}})
        p, row = runtime.predict_transaction(tx)
        assert row[IX[field]] == value and row == row_of(tx)
        assert p == runtime.predict_row(row) == float(runtime.predict(np.array([row]))[0])
    ordinary = transactions[12]  # the next row after a fallback is packed again, not left stale
    assert runtime.predict_transaction(ordinary)[0] == runtime.predict_row(row_of(ordinary))


def test_transaction_path_is_thread_safe(runtime: ModelRuntime, transactions: tuple[EnrichedTransaction, ...]) -> None:
    txs = transactions[:2000]
    expected = runtime.predict(matrix_of(txs)).tolist()
    assert _mismatches_across_threads(lambda tx: runtime.predict_transaction(tx)[0], txs, expected, 6) == []


def test_bound_steps_write_run_and_read_what_predict_row_does(runtime: ModelRuntime) -> None:
    write, run, read = runtime.bound_steps()
    rows = synthetic_rows(100, seed=14).tolist()
    got = []
    for row in rows:
        write(row)
        run()
        got.append(read())
    assert got == [runtime.predict_row(row) for row in rows]
    write(rows[0])  # written but not run: the output still holds the last run's score
    assert read() == got[-1]


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


def test_the_margin_graph_serves_the_classifier_graphs_scores_and_decisions() -> None:
    """The same trees in either form: the margin graph's scores are the classifier's within float32's
    rounding of its logistic, in the same order, and no decision moves but a tie at a threshold."""
    x = synthetic_rows(50_000, seed=13)
    margin = ModelRuntime(margin_graph(tiny_model()[1]), tiny_metadata())
    classifier = ModelRuntime(tiny_model()[1], tiny_metadata())
    assert (margin.output, classifier.output) == (MARGIN, PROBABILITIES)
    new, old = margin.predict(x), classifier.predict(x)
    assert float(np.max(np.abs(new - old))) <= 2e-7
    order = np.argsort(new, kind="stable")
    assert np.all(np.diff(old[order]) >= -2e-7)  # the ranking is the same but for float32 ties
    for threshold in (THRESHOLDS.review, THRESHOLDS.block):
        moved = (new >= threshold) != (old >= threshold)
        assert np.all(np.abs(old[moved] - threshold) <= 2e-7)


def test_probability_is_the_logistic_without_overflow() -> None:
    assert probability(0.0) == 0.5
    for m in (-3.0, -1e-3, 0.7, 12.0):
        assert probability(m) == pytest.approx(1.0 / (1.0 + np.exp(-m)), rel=1e-15)
        assert probability(m) + probability(-m) == pytest.approx(1.0, abs=1e-15)
    assert probability(-1000.0) == 0.0 and probability(1000.0) == 1.0  # math.exp(1000) would raise


def test_margin_graph_refuses_another_shape_and_keeps_the_metadata() -> None:
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_from_string(tiny_model()[1])
    model.metadata_props.add(key="txguard.calibration", value="platt slope=1.0 intercept=0.0")
    kept = onnx.load_from_string(margin_graph(model.SerializeToString()))
    assert {p.key: p.value for p in kept.metadata_props}["txguard.calibration"] == "platt slope=1.0 intercept=0.0"
    identity = helper.make_model(helper.make_graph(
        [helper.make_node("Identity", ["input"], ["probabilities"])], "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])]))
    with pytest.raises(ValueError, match="TreeEnsembleClassifier"):
        margin_graph(identity.SerializeToString())


def test_refuses_an_onnx_model_without_probabilities_output() -> None:
    import onnx

    model = onnx.load_from_string(tiny_model()[1])
    for node in model.graph.node:
        node.output[:] = ["proba" if o == "probabilities" else o for o in node.output]
    for out in model.graph.output:
        if out.name == "probabilities":
            out.name = "proba"
    with pytest.raises(IncompatibleModelError, match="neither a 'margin' nor a 'probabilities' output"):
        ModelRuntime(model.SerializeToString(), tiny_metadata())
