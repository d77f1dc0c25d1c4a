"""What the registry records about each model version (`metadata.json`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

ARTIFACT_NAME = "model.onnx"


class Thresholds(BaseModel):
    """Scores >= review go to review, >= block are blocked (derived at training time)."""

    model_config = ConfigDict(extra="forbid")

    review: float = Field(ge=0.0, le=1.0)
    block: float = Field(ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.block < self.review:
            raise ValueError("block threshold must be >= review threshold")
        return self


class Bins(BaseModel):
    """Quantile bins of one quantity at training time: `(-inf, e0], (e0, e1], ..., (e_last, inf)`.

    `expected` holds the share of the reference rows in each bin (len(edges) + 1 values). Edges
    are unique, so a flag (0/1) gets two bins and a continuous feature up to ten.
    """

    model_config = ConfigDict(extra="forbid")

    edges: list[float]
    expected: list[float]

    @model_validator(mode="after")
    def _consistent(self) -> Bins:
        if len(self.expected) != len(self.edges) + 1:
            raise ValueError(f"{len(self.edges)} edges need {len(self.edges) + 1} expected shares")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("edges must be strictly increasing")
        return self


class DriftReference(BaseModel):
    """What live traffic is compared with (PSI): per-feature bins and the score's, from held-out rows."""

    model_config = ConfigDict(extra="forbid")

    rows: int = Field(description="Number of reference rows the shares were counted on")
    period: str = Field("", description="Which rows: e.g. the held-out days of training")
    features: dict[str, Bins] = Field(description="Keyed by feature name (metadata.features)")
    score: Bins


class ParityProbe(BaseModel):
    """Rows and the scores onnxruntime gave them at training: a loading instance must reproduce them."""

    model_config = ConfigDict(extra="forbid")

    rows: list[list[float]]
    scores: list[float]
    tolerance: float = 1e-5

    @model_validator(mode="after")
    def _consistent(self) -> ParityProbe:
        if len(self.rows) != len(self.scores) or not self.rows:
            raise ValueError("a parity probe needs as many scores as rows, and at least one row")
        return self


class Calibration(BaseModel):
    """How training made the version's scores probabilities. The artifact already applies it (the
    calibration is folded into the trees), so every scoring path reads the probability straight
    from the graph; this record says what was fitted, and on which rows."""

    model_config = ConfigDict(extra="forbid")

    method: str = Field(description="platt: sigmoid(slope * margin + intercept) of the trees' margin")
    slope: float
    intercept: float
    rows: int = Field(description="Rows of the calibration slice (held out from the trees)")
    frauds: int
    period: str = Field(description="The slice's time span (ISO 8601, start to end)")
    label_maturity_days: float = Field(description="How long before the split the slice ends: the labels' delay")


class QualityGate(BaseModel):
    """The quality gate's verdict at training (txguard.training.gate): the bounds a version was held
    to and whether it met them. The console refuses to promote a version whose gate failed, or that
    records none (published without `txguard train`): docs/console.md."""

    model_config = ConfigDict(extra="forbid")

    passed: bool
    reasons: list[str] = Field(default_factory=list, description="Why it failed (empty when it passed)")
    policy: dict[str, float] = Field(default_factory=dict, description="The bounds it was checked against")
    compared_with: str | None = Field(None, description="The production version its PR-AUC had to match")


class ModelMetadata(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())

    version: str = Field("", description="v1, v2, ... assigned by the registry at publish time")
    created_at: datetime
    git_commit: str = "unknown"
    data_fingerprint: str = Field(description="SHA-256 of the training data (or of its generator's parameters)")
    features: list[str] = Field(description="Ordered input feature names the artifact expects")
    metrics: dict[str, float] = Field(default_factory=dict)
    thresholds: Thresholds
    library_versions: dict[str, str] = Field(default_factory=dict)
    sha256: str = Field("", description="SHA-256 of the artifact, set by the registry at publish time")
    artifact: str = ARTIFACT_NAME
    framework: str = "onnx"
    model_type: str = "HistGradientBoostingClassifier"
    # Optional: versions published before they existed load without them (sanity check only, no drift,
    # and a score that ranks but is not a probability).
    drift_reference: DriftReference | None = None
    parity_probe: ParityProbe | None = None
    calibration: Calibration | None = None
    quality_gate: QualityGate | None = None
