"""Convert a fitted scikit-learn classifier to ONNX, the serving artifact.

ONNX is what the scoring function loads: onnxruntime scores one row in microseconds (scikit-learn
costs ~1 ms per single-row call) and loading it executes no code from the file, unlike pickle.

skl2onnx writes a classifier graph (`to_onnx`); a version is published as its margin graph
(`margin_graph`): the same trees in one TreeEnsembleRegressor node whose output is the log-odds, the
logistic taken by the runtime (txguard.scoring.runtime.probability). onnxruntime runs it about 1 us
faster per row: it fills no int64 label and no second probability column.
"""

from __future__ import annotations

import warnings
from typing import Any

from txguard.scoring.runtime import INPUT_NAME, MARGIN  # the names the runtime reads the graph by

_CLASSIFIER = "TreeEnsembleClassifier"


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


def margin_graph(artifact: bytes) -> bytes:
    """A binary classifier graph of one TreeEnsembleClassifier node with a logistic output (what
    `to_onnx` writes, calibrated or not) as the same trees in one TreeEnsembleRegressor node whose
    (n, 1) output `margin` is the sum the classifier's logistic is taken of: the same nodes, leaf
    values and base, in the same order, so onnxruntime adds the same float32 numbers. Refuses a graph
    of another shape. The graph's metadata (the calibration record) is kept."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_from_string(artifact)
    nodes = list(model.graph.node)
    if len(nodes) != 1 or nodes[0].op_type != _CLASSIFIER:
        raise ValueError(f"expected one {_CLASSIFIER} node, the graph has {[n.op_type for n in nodes]}")
    attrs = {a.name: helper.get_attribute_value(a) for a in nodes[0].attribute}
    if attrs.get("post_transform") != b"LOGISTIC" or len(attrs.get("base_values", [])) != 1:
        raise ValueError("expected a binary tree ensemble with one base value and a logistic output")
    if set(attrs.get("class_ids", [])) != {0} or "class_weights_as_tensor" in attrs:
        raise ValueError("expected the positive class's weights only, as floats")
    node = helper.make_node(
        "TreeEnsembleRegressor", [INPUT_NAME], [MARGIN], domain="ai.onnx.ml",
        n_targets=1, aggregate_function="SUM", post_transform="NONE",
        base_values=list(attrs["base_values"]),
        target_ids=list(attrs["class_ids"]), target_nodeids=list(attrs["class_nodeids"]),
        target_treeids=list(attrs["class_treeids"]), target_weights=list(attrs["class_weights"]),
        **{name: value for name, value in attrs.items() if name.startswith("nodes_")},
    )
    graph = helper.make_graph([node], model.graph.name, list(model.graph.input),
                              [helper.make_tensor_value_info(MARGIN, TensorProto.FLOAT, [None, 1])])
    margin = helper.make_model(graph, opset_imports=list(model.opset_import), producer_name="txguard")
    margin.ir_version = model.ir_version
    margin.metadata_props.extend(model.metadata_props)
    onnx.checker.check_model(margin)
    return margin.SerializeToString()
