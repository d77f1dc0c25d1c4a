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
