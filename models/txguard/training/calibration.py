"""Calibrated scores: the score a version serves is the probability that such a transaction is fraud.

Why: the loss weighs a fraud row `fraud_weight` times a legitimate one (right for ranking), so the
trees' own probability is not one. An analyst reads the score as a probability, a rule tests
`score > 0.8`, a team sets review budgets and compares versions by it.

What: Platt scaling of the boosting margin (the log-odds the trees sum before their sigmoid),

    P(fraud) = sigmoid(slope * margin + intercept),

fitted by logistic regression on a calibration slice. Chosen over isotonic regression by
measurement (`txguard evaluate calibration`, docs/evaluation.md#calibration): both meet the bounds,
but Platt is strictly increasing, so the ranking (PR-AUC) and the rows above any threshold stay
exactly those of the trees, while isotonic's flat steps tie scores (PR-AUC lower) and leave sparse
score bins further off.

Where: the margin is `base + sum of leaf values`, so `slope * margin + intercept` is the same tree
ensemble with every leaf value times `slope` and the base `slope * base + intercept`.
`fold_into_onnx` writes exactly that into the exported graph: it stays one TreeEnsembleClassifier
node (published as its margin graph, txguard.training.onnx_export.margin_graph), every path that
runs it (serving's single-row fast path and batches, `score-file`, `batch run`, shadow scoring)
serves the calibrated score, and a row costs what it cost before.

The slice: training rows the trees never see, the most recent ones whose labels are mature. It
ends `label_maturity` before `as_of` (when the training labels were read), the maturity being the
95th percentile of the fraud labels' delays, estimated from the labels known by then without the
truncation the cut puts on them (`txguard.training.split.label_delay_quantile`), and spans `fraction` of the
training period; the trees are fitted on every other training row, before and after it. Fitted on
the last days before the split instead, it would read frauds whose labels had not arrived yet as
missing, and make every score too low.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from txguard.contract.errors import QualityGateError
from txguard.training.split import MATURITY_QUANTILE, label_delay_quantile

METHOD = "platt"
_TREES = "TreeEnsembleClassifier"


@dataclass(frozen=True)
class CalibrationSlice:
    rows: np.ndarray  # boolean mask over the dataset's rows
    start: float  # epoch seconds, inclusive
    end: float  # epoch seconds, exclusive
    label_maturity_s: float


def label_maturity(ts: np.ndarray, y: np.ndarray, label_time: np.ndarray, as_of: float,
                   quantile: float = MATURITY_QUANTILE) -> float:
    """Seconds within which `quantile` of the fraud labels arrive, estimated from those known at `as_of`
    without the truncation the cut puts on them (`txguard.training.split.label_delay_quantile`)."""
    return label_delay_quantile(ts, y, label_time, as_of, quantile)


def calibration_slice(ts: np.ndarray, y: np.ndarray, label_time: np.ndarray, train: np.ndarray, as_of: float,
                      fraction: float) -> CalibrationSlice:
    """The training rows of the most recent `fraction` of the training period whose labels are mature
    at `as_of`; never later than the training rows, never earlier than the period allows."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"calibration fraction must be in (0, 1), got {fraction}")
    first, last = float(ts[train].min()), float(ts[train].max())
    width = fraction * (last - first)
    maturity = label_maturity(ts, y, label_time, as_of)
    end = max(min(np.nextafter(last, np.inf), as_of - maturity), first + width)
    rows = train & (ts >= end - width) & (ts < end)
    return CalibrationSlice(rows=rows, start=end - width, end=end, label_maturity_s=maturity)


@dataclass(frozen=True)
class Platt:
    slope: float
    intercept: float

    def __call__(self, margin: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (float64) of boosting margins."""
        z = self.slope * np.asarray(margin, dtype=np.float64) + self.intercept
        return 0.5 * (1.0 + np.tanh(0.5 * z))  # the sigmoid, without overflow for large |z|


def fit_platt(margin: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> Platt:
    """Logistic regression of the labels on the margin, with Platt's targets ((n+ + 1) / (n+ + 2) for a
    fraud, 1 / (n- + 2) for a legitimate row): finite even when the slice separates perfectly.

    Weighted (a training sample): each row counts its weight, and n- is the legitimate traffic the
    sample stands for, so the probabilities are those of the full traffic, not of the sample."""
    from sklearn.linear_model import LogisticRegression

    margin, y = np.asarray(margin, dtype=np.float64), np.asarray(y)
    frauds, legit = int((y == 1).sum()), int((y == 0).sum())
    if weight is not None and frauds and legit:
        weight = np.asarray(weight, dtype=np.float64)
        frauds, legit = max(1, round(float(weight[y == 1].sum()))), max(1, round(float(weight[y == 0].sum())))
    if frauds == 0 or legit == 0:
        raise QualityGateError(
            f"cannot calibrate: the calibration slice has {frauds} frauds and {legit} legitimate rows "
            "(both are needed): use more data")
    target = np.where(y == 1, (frauds + 1) / (frauds + 2), 1 / (legit + 2))
    scale = float(margin.std()) or 1.0  # conditioning: lbfgs on a unit-scale feature
    x = np.concatenate([margin, margin])[:, None] / scale
    labels = np.concatenate([np.ones(len(margin)), np.zeros(len(margin))])
    weights = np.concatenate([target, 1.0 - target])
    if weight is not None:
        weights = weights * np.concatenate([weight, weight])
    model = LogisticRegression(C=np.inf, max_iter=1000).fit(x, labels, sample_weight=weights)
    return Platt(slope=float(model.coef_[0][0]) / scale, intercept=float(model.intercept_[0]))


def _trees(model) -> object:  # noqa: ANN001
    nodes = [n for n in model.graph.node if n.op_type == _TREES]
    if len(model.graph.node) != 1 or len(nodes) != 1:
        raise ValueError(f"expected one {_TREES} node, the graph has {[n.op_type for n in model.graph.node]}")
    return nodes[0]


def fold_into_onnx(artifact: bytes, platt: Platt) -> bytes:
    """The exported graph with the calibration in its trees: leaf values times `slope`, base
    `slope * base + intercept`, the sigmoid unchanged. Refuses a graph of another shape."""
    import onnx

    model = onnx.load_from_string(artifact)
    node = _trees(model)
    attrs = {a.name: a for a in node.attribute}
    if "class_weights_as_tensor" in attrs or "base_values_as_tensor" in attrs:
        raise ValueError("the tree ensemble stores its values as tensors: not a graph this export makes")
    if attrs["post_transform"].s != b"LOGISTIC" or len(attrs["base_values"].floats) != 1:
        raise ValueError("expected a binary tree ensemble with one base value and a logistic output")
    weights = np.asarray(attrs["class_weights"].floats, dtype=np.float64) * platt.slope
    attrs["class_weights"].floats[:] = weights.tolist()
    attrs["base_values"].floats[:] = [attrs["base_values"].floats[0] * platt.slope + platt.intercept]
    entry = model.metadata_props.add()
    entry.key, entry.value = "txguard.calibration", f"{METHOD} slope={platt.slope!r} intercept={platt.intercept!r}"
    return model.SerializeToString()
