"""The ONNX model runtime of the scoring function: load once, score one row in microseconds.

Built from (artifact bytes, ModelMetadata) so it does not care where the model came from;
txguard.scoring.loading opens models from the registry (which verifies the artifact's SHA-256)
and smoke-tests them before anything scores with them.

Why it is written this way (figures in docs/scoring.md, `txguard bench score`):
- onnxruntime with one intra-op and one inter-op thread and sequential execution: a single
  row is far too small to parallelise, and extra pool threads only fight the web server's threads.
- A version's graph gives the trees' margin (log-odds, the calibration folded in: one
  TreeEnsembleRegressor node, output `margin`) and the probability is its logistic, computed here in
  double precision (`probability`) for a single row and a matrix alike. The classifier form that
  skl2onnx writes (TreeEnsembleClassifier, output `probabilities`) costs about 1 us more per call in
  onnxruntime (it also fills an int64 label and a second column); versions published in that form
  keep serving exactly what they served, through that output.
- The single-row path asks only for the score output through an IOBinding whose input
  and output buffers are preallocated per thread (a `threading.local`), so a request allocates
  nothing in onnxruntime and never shares a buffer with a concurrent request. The row is packed
  into the float32 input with `struct` (half the cost of numpy's list conversion, the same C
  double -> float rounding; numpy only for values beyond float32's range), the run reuses one
  `RunOptions` (passing None makes onnxruntime build one per call) and the probability is read
  through a memoryview: about 1 us less per row than the plain numpy/IOBinding path.
- A request's transaction takes `predict_transaction`: its row from `vectorize.row_of` (the one row
  builder), packed into the bound input and scored, and the row handed back for the reasons and
  rules. Building the row inline here measured 0.98-1.00x this path (docs/scoring.md): not worth a
  second row builder.
- No scikit-learn or scipy here (the serving path must stay lean); numpy and onnxruntime only.
"""

from __future__ import annotations

import math
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort

from txguard.contract.errors import IncompatibleModelError
from txguard.features.wallet import FEATURE_NAMES
from txguard.registry.metadata import ModelMetadata
from txguard.scoring.vectorize import row_of

if TYPE_CHECKING:
    from txguard.contract.models import EnrichedTransaction

INPUT_NAME = "input"
PROBABILITIES = "probabilities"  # a classifier graph's (n, 2) output: P(fraud) in the second column
MARGIN = "margin"  # a margin graph's (n, 1) output: the log-odds whose logistic is P(fraud)
N_FEATURES = len(FEATURE_NAMES)


def probability(margin: float) -> float:
    """P(fraud) of a margin: its logistic in double precision, without overflow at either end."""
    if margin >= 0.0:
        return 1.0 / (1.0 + math.exp(-margin))
    odds = math.exp(margin)
    return odds / (1.0 + odds)


def _score_output(session: ort.InferenceSession) -> Any:
    """The score output a loaded graph has, MARGIN or PROBABILITIES, with its shape (IncompatibleModelError
    if neither)."""
    outputs = {o.name: o for o in session.get_outputs()}
    for name in (MARGIN, PROBABILITIES):
        if name in outputs:
            return outputs[name]
    raise IncompatibleModelError(
        f"ONNX model has neither a {MARGIN!r} nor a {PROBABILITIES!r} output (zipmap must be off)")


def graph_output(session: ort.InferenceSession) -> str:
    """The score output's name a loaded graph has: MARGIN or PROBABILITIES."""
    return str(_score_output(session).name)


def graph_scores(session: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    """P(fraud) of each row of a float32 matrix through a loaded graph of either form, as float64:
    what `ModelRuntime.predict_row` serves for each row, to the last bit."""
    output = graph_output(session)
    (values,) = session.run([output], {INPUT_NAME: x})
    if output == PROBABILITIES:
        return values[:, 1].astype(np.float64)
    return np.fromiter(map(probability, values[:, 0].tolist()), dtype=np.float64, count=len(values))


def session_options(threads: int = 1) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning threads burn the CPU the other requests need; a row takes microseconds anyway.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # A single row allocates nothing (its buffers are bound) and a matrix one output: the arena and
    # its memory pattern only add their bookkeeping to every run (about 80 ns of a 2.2 us row).
    opts.enable_cpu_mem_arena = False
    opts.enable_mem_pattern = False
    opts.log_severity_level = 3
    return opts


_PACK = struct.Struct(f"{N_FEATURES}f")


@dataclass(slots=True)
class _RowBuffers:
    """One thread's preallocated input row, output matrix and the IOBinding tying them together."""

    row: np.ndarray  # (1, N_FEATURES) float32
    out: np.ndarray  # (1, 1) margin or (1, 2) probabilities, float32
    binding: ort.IOBinding
    run: Any  # zero-argument callable running the session on this binding
    row_bytes: memoryview  # `row`'s memory, written by `_PACK.pack_into`
    values: memoryview  # `out` as Python floats


class ModelRuntime:
    """A loaded, verified model: `predict_row` for one transaction, `predict` for a matrix."""

    native_run = True  # call the C++ session directly (False: the public wrapper; tests compare both)

    def __init__(self, artifact: bytes, metadata: ModelMetadata, threads: int = 1) -> None:
        if tuple(metadata.features) != FEATURE_NAMES:
            missing = [f for f in FEATURE_NAMES if f not in metadata.features]
            extra = [f for f in metadata.features if f not in FEATURE_NAMES]
            raise IncompatibleModelError(
                f"model {metadata.version or '?'} expects other features than this code computes "
                f"(missing {missing[:5]}, unknown {extra[:5]}, or another order): refusing to serve it"
            )
        if metadata.framework != "onnx":
            raise IncompatibleModelError(f"model {metadata.version} is {metadata.framework!r}, not ONNX")
        try:
            self.session = ort.InferenceSession(
                artifact, session_options(threads), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise IncompatibleModelError(f"model {metadata.version}: not a loadable ONNX file ({exc})") from exc
        self._check_signature()
        self.metadata = metadata
        self.version = metadata.version
        self._local = threading.local()

    def _check_signature(self) -> None:
        inputs = {i.name: i for i in self.session.get_inputs()}
        if INPUT_NAME not in inputs or len(inputs) != 1:
            raise IncompatibleModelError(f"ONNX model must have exactly one input {INPUT_NAME!r}, has {list(inputs)}")
        width = inputs[INPUT_NAME].shape[-1]
        if width not in (N_FEATURES, None) and not isinstance(width, str):
            raise IncompatibleModelError(f"ONNX input has {width} columns, the code computes {N_FEATURES}")
        if inputs[INPUT_NAME].type != "tensor(float)":
            raise IncompatibleModelError(f"ONNX input must be float32, is {inputs[INPUT_NAME].type}")
        output = _score_output(self.session)
        self.output = str(output.name)
        self.margin = self.output == MARGIN
        width = output.shape[-1]
        if width not in (1 if self.margin else 2, None) and not isinstance(width, str):
            raise IncompatibleModelError(f"ONNX output {self.output!r} has {width} columns")

    # Single row --------------------------------------------------------------------------------
    def _buffers(self) -> _RowBuffers:
        buf = getattr(self._local, "buf", None)
        if buf is None:
            row = np.zeros((1, N_FEATURES), dtype=np.float32)
            out = np.zeros((1, 1 if self.margin else 2), dtype=np.float32)
            binding = self.session.io_binding()
            # OrtValues over the numpy buffers (no copy): writing `row` changes the next input,
            # onnxruntime writes the score output straight into `out`.
            binding.bind_ortvalue_input(INPUT_NAME, ort.OrtValue.ortvalue_from_numpy(row))
            binding.bind_ortvalue_output(self.output, ort.OrtValue.ortvalue_from_numpy(out))
            buf = self._local.buf = _RowBuffers(row, out, binding, self._runner(binding),
                                                memoryview(row).cast("B"), memoryview(out).cast("B").cast("f"))
        return buf

    def predict_row(self, row: Sequence[float]) -> float:
        """P(fraud) of one feature row (FEATURE_NAMES order), thread-safe: a ready row (loading's smoke
        test, tools); a request's transaction takes `predict_transaction`."""
        try:
            buf = self._local.buf
        except AttributeError:  # this thread's first row
            buf = self._buffers()
        try:
            _PACK.pack_into(buf.row_bytes, 0, *row)
        except (OverflowError, struct.error):  # beyond float32 (inf, as numpy casts it) or not N_FEATURES
            buf.row[0] = row
        buf.run()
        return probability(buf.values[0]) if self.margin else buf.values[1]

    def predict_transaction(self, tx: EnrichedTransaction) -> tuple[float, list[float]]:
        """P(fraud) of one validated transaction and its row (FEATURE_NAMES order, what the reasons
        and rules read): the serving fast path, thread-safe. Equal to `predict_row(row_of(tx))`."""
        try:
            buf = self._local.buf
        except AttributeError:  # this thread's first row
            buf = self._buffers()
        row = row_of(tx)
        try:
            _PACK.pack_into(buf.row_bytes, 0, *row)
        except (OverflowError, struct.error):  # beyond float32: numpy's cast to inf, as predict_row
            buf.row[0] = row
        buf.run()
        if self.margin:
            return probability(buf.values[0]), row
        return buf.values[1], row

    def bound_steps(self) -> tuple[Callable[[Sequence[float]], None], Callable[[], Any], Callable[[], float]]:
        """This thread's three steps of a single-row prediction: write a row into the bound input, run
        onnxruntime on what the input holds (the score left in the bound output), read P(fraud) from
        the output. `txguard bench score` times the run alone with them (`inference_only`)."""
        buf = self._buffers()

        def write(row: Sequence[float]) -> None:
            try:
                _PACK.pack_into(buf.row_bytes, 0, *row)
            except (OverflowError, struct.error):
                buf.row[0] = row

        def read() -> float:
            return probability(buf.values[0]) if self.margin else buf.values[1]

        return write, buf.run, read

    def _runner(self, binding: ort.IOBinding) -> Any:
        """The C++ session's run on `binding` with one reused `RunOptions`, skipping the Python
        wrapper's per-call WebGPU capture checks (~5 us, for a feature a CPU session never uses);
        the public method if this onnxruntime version has other internals (tests check both paths
        give equal scores)."""
        options = ort.RunOptions()
        sess, native = getattr(self.session, "_sess", None), getattr(binding, "_iobinding", None)
        if self.native_run and sess is not None and native is not None and hasattr(sess, "run_with_iobinding"):
            return partial(sess.run_with_iobinding, native, options)
        return partial(self.session.run_with_iobinding, binding, options)

    # Matrix ------------------------------------------------------------------------------------
    def predict(self, x: np.ndarray) -> np.ndarray:
        """P(fraud) of each row of an (n, N_FEATURES) matrix, as float64 (one onnxruntime call)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != N_FEATURES:
            raise ValueError(f"expected an (n, {N_FEATURES}) matrix, got {x.shape}")
        if x.shape[0] == 0:
            return np.zeros(0, dtype=np.float64)
        return graph_scores(self.session, x)
