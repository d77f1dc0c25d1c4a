"""The per-row contract path: each row meets the pydantic model (the reference the fast path mirrors).

Used for a chunk the vectorised checks did not vouch for. A bad row becomes a `RowError` with the
contract's own field and message and the row as read (nothing is dropped silently); the valid rows
come out as the same normalised table the fast path builds.

Labels of a training file (`is_fraud`, `label_time`, `scenario`) are not Transaction fields: they
are taken off the row first, with the rules of `txguard train --data` (0/1, true/false; a
timezone-aware ISO 8601 label time, or `never`), except that a missing `is_fraud` means "not known" here
(scoring files carry no labels).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pydantic_core
from pydantic import ValidationError

from txguard.batch.rows import LABEL_FIELDS, NESTED_FEATURES, TIMESTAMP, UNKNOWN_LABEL, RowError, schema_of
from txguard.contract.models import ENRICHED_ADAPTER, TRANSACTION_ADAPTER, Transaction
from txguard.features.timeline import NEVER

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_TX_FIELDS = tuple(Transaction.model_fields)
# flat column -> (nested object, feature): bare names and `features.` / `counterparty.` prefixes
_FEATURE_KEYS = {key: (nested, name) for nested, fields in NESTED_FEATURES.items() for name in fields
                 for key in (name, f"{nested}.{name}")}


class RowProblem(ValueError):
    """A row refused before the model sees it (not JSON, a bad label); `field` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def take_labels(row: dict[str, Any]) -> tuple[int, float, str]:
    """Pop the label fields off `row`: (is_fraud or -1, label time in epoch seconds or NaN, scenario)."""
    value = row.pop("is_fraud", None)
    if isinstance(value, str):
        value = value.strip().lower()
        value = {"": None, "0": 0, "1": 1, "true": 1, "false": 0}.get(value, value)
    if isinstance(value, bool):
        value = int(value)
    if value is None:
        label = UNKNOWN_LABEL
    elif isinstance(value, int | float) and value in (0, 1):
        label = int(value)
    else:
        raise RowProblem("is_fraud", f"must be 0 or 1, got {value!r}")
    label_time = row.pop("label_time", None)
    seconds = math.nan
    if isinstance(label_time, str) and label_time.strip().lower() == NEVER:
        seconds = math.inf  # a fraud nobody reported: never known (features.timeline.NEVER)
    elif label_time not in (None, ""):
        if not isinstance(label_time, str):
            raise RowProblem("label_time", f"not a timezone-aware ISO 8601 time ({label_time!r})")
        try:
            parsed = datetime.fromisoformat(label_time.replace("Z", "+00:00"))
        except ValueError as exc:
            raise RowProblem("label_time", f"not a timezone-aware ISO 8601 time ({exc})") from None
        if parsed.tzinfo is None:
            raise RowProblem("label_time", "not a timezone-aware ISO 8601 time (no timezone)")
        seconds = micros_of(parsed) / 1e6
    scenario = row.pop("scenario", None)
    return label, seconds, "" if scenario is None else str(scenario)


def micros_of(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICRO


def _nest_features(row: dict[str, Any]) -> dict[str, Any]:
    """Flat feature columns (CSV, Parquet) -> the contract's nested `features` and `counterparty` objects."""
    flat = [key for key in row if key in _FEATURE_KEYS]
    if not flat:
        return row
    nested = {name: dict(row.get(name) or {}) for name in NESTED_FEATURES}
    for key in flat:
        obj, name = _FEATURE_KEYS[key]
        nested[obj][name] = row.pop(key)
    row.update({name: values for name, values in nested.items() if values})
    return row


def _as_text(raw: Any) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="replace")
    return json.dumps(raw, default=str, ensure_ascii=False)


def _parse(raw: Any) -> dict[str, Any]:
    if isinstance(raw, bytes):
        try:
            row = pydantic_core.from_json(raw)
        except ValueError as exc:
            raise RowProblem("(row)", f"Invalid JSON: {exc}") from None
        if not isinstance(row, dict):
            raise RowProblem("(row)", "not a JSON object")
        return row
    if isinstance(raw, list):
        raise RowProblem("(row)", "more values than header columns")
    return dict(raw)


def contract_rows(raw_rows: list[tuple[int, Any]], kind: str, source: str,
                  file_index: int) -> tuple[pa.Table, list[RowError]]:
    """Validate each (line, raw row) with the contract: (normalised table of the valid ones, errors)."""
    adapter = ENRICHED_ADAPTER if kind == "enriched" else TRANSACTION_ADAPTER
    schema = schema_of(kind)
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    errors: list[RowError] = []
    for line, raw in raw_rows:
        try:
            row = _parse(raw)
            labels = (UNKNOWN_LABEL, math.nan, "") if kind == "enriched" else take_labels(row)
            model = adapter.validate_python(_nest_features(row) if kind == "enriched" else row)
        except RowProblem as exc:
            errors.append(RowError(source, line, exc.field, str(exc), _as_text(raw)))
            continue
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in err["loc"]) or "(row)"
            errors.append(RowError(source, line, where, err["msg"], _as_text(raw)))
            continue
        for name in _TX_FIELDS:
            value = getattr(model, name)
            columns[name].append(micros_of(value) if name == "timestamp" else value)
        columns["file_index"].append(file_index)
        columns["line"].append(line)
        for name, value in zip(LABEL_FIELDS, labels, strict=True):
            columns[name].append(value)
        if kind == "enriched":
            for nested, fields in NESTED_FEATURES.items():
                values = getattr(model, nested)
                for name in fields:
                    columns[name].append(getattr(values, name))
    arrays = []
    for field in schema:
        values = columns[field.name]
        if field.name == "timestamp":
            arrays.append(pa.array(np.asarray(values, dtype=np.int64)).cast(TIMESTAMP))
        elif field.name in ("type", "channel"):
            arrays.append(pa.array([v.value for v in values], pa.string()))
        else:
            arrays.append(pa.array(values, field.type))
    return pa.table(arrays, schema=schema), errors
