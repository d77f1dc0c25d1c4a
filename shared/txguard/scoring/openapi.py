"""The scoring function's own response models and its OpenAPI 3.1 document.

The document is generated from the pydantic models (shared/txguard/contract/models.py plus the error, health
and model-info bodies below), so it cannot drift from what the code validates. It is built on
first request of /openapi.json, never at cold start.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from txguard.contract.models import MAX_BATCH, BatchRequest, BatchResponse, Decision, EnrichedTransaction
from txguard.registry.metadata import Calibration, Thresholds

API_VERSION = "1.0.0"


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Path to the offending field in the request body")
    msg: str
    type: str = Field(description="pydantic error type, e.g. missing, greater_than, json_invalid")


class ErrorInfo(BaseModel):
    status: int
    message: str
    errors: list[FieldError] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    model_config = ConfigDict(title="ErrorResponse")

    error: ErrorInfo


class HealthResponse(BaseModel):
    status: str = Field(description="ok | unavailable")
    model_version: str | None = None
    reason: str | None = Field(None, description="Why the model is not loaded (503 only)")
    challenger_version: str | None = Field(None, description="Version shadow-scoring next to it, when enabled")
    refused: dict[str, str] = Field(default_factory=dict,
                                    description="Versions an alias pointed at that failed their checks, with why")


class ModelInfo(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    version: str
    model_uri: str
    sha256: str
    created_at: str
    model_type: str
    features: list[str]
    thresholds: Thresholds
    metrics: dict[str, float]
    calibration: Calibration | None = Field(
        None, description="How the scores were made probabilities (null: a version trained before calibration, "
                          "whose score ranks but is not a probability)")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "Malformed JSON", 404: "Unknown route", 405: "Method not allowed", 413: "Body too large",
            415: "Content-Type is not application/json", 422: "Schema validation failed (field-level errors)",
            503: "Model not loaded"}
    return {str(c): _json(_ref("ErrorResponse"), text[c]) for c in codes}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 of every route the scoring function serves."""
    _, defs = models_json_schema(
        [
            (EnrichedTransaction, "validation"),
            (BatchRequest, "validation"),
            (Decision, "serialization"),
            (BatchResponse, "serialization"),
            (ErrorResponse, "serialization"),
            (HealthResponse, "serialization"),
            (ModelInfo, "serialization"),
        ],
        ref_template="#/components/schemas/{model}",
    )
    body_errors = _errors(400, 413, 415, 422, 503)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "txguard scoring",
            "version": API_VERSION,
            "description": "Fraud score, decision and reasons for enriched wallet transactions.",
        },
        "paths": {
            "/score": {"post": {
                "operationId": "score",
                "summary": "Score one enriched transaction",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _ref("EnrichedTransaction")}}},
                "responses": {"200": _json(_ref("Decision"), "The decision"), **body_errors},
            }},
            "/score/batch": {"post": {
                "operationId": "scoreBatch",
                "summary": f"Score up to {MAX_BATCH} transactions in one call (decisions in input order)",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _ref("BatchRequest")}}},
                "responses": {"200": _json(_ref("BatchResponse"), "The decisions, in order"), **body_errors},
            }},
            "/health": {"get": {
                "operationId": "health",
                "summary": "Readiness: 200 once the model is loaded",
                "responses": {"200": _json(_ref("HealthResponse"), "Model loaded"),
                              "503": _json(_ref("HealthResponse"), "Model not loaded, with the reason")},
            }},
            "/model": {"get": {
                "operationId": "model",
                "summary": "Metadata of the loaded model",
                "responses": {"200": _json(_ref("ModelInfo"), "The loaded model"), **_errors(503)},
            }},
            "/openapi.json": {"get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1 document",
                                      "content": {"application/json": {"schema": {"type": "object"}}}}},
            }},
        },
        "components": {"schemas": defs["$defs"]},
    }
