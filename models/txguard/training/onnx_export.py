"""Convert a fitted scikit-learn classifier to ONNX, the serving artifact.

ONNX is what the scoring function loads: onnxruntime scores one row in microseconds (scikit-learn
costs ~1 ms per single-row call) and loading it executes no code from the file, unlike pickle.
"""

from __future__ import annotations

import warnings
from typing import Any

INPUT_NAME = "input"


def to_onnx(estimator: Any, n_features: int) -> bytes:
    """ONNX bytes whose second output is the (n, 2) float32 probability matrix."""
    from skl2onnx import to_onnx as _to_onnx  # heavy, training-time only
    from skl2onnx.common.data_types import FloatTensorType

    with warnings.catch_warnings():
        # skl2onnx passes bools where onnx wants ints: protobuf 6 warns once per tree (protobuf 7
        # rejects it, hence the protobuf<7 pin). The parity check after export guards the result.
        warnings.filterwarnings("ignore", message=".*Expected an int, got a boolean", category=DeprecationWarning)
        onx = _to_onnx(
            estimator,
            initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
            options={id(estimator): {"zipmap": False}},
            target_opset={"": 17, "ai.onnx.ml": 3},
        )
    return onx.SerializeToString()
