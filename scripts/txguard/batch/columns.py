"""The contract checked on columns: a whole chunk accepted by a few vectorised Arrow tests.

Validating row by row with pydantic costs microseconds per row; the same rules on Arrow columns
(patterns, ranges, enum sets, ISO timestamps) cost a fraction of that. The contract
(`txguard.contract.models`) stays the authority: these checks only ever *accept*. A chunk with
anything they do not recognise (a missing or extra field, a value out of range, a timestamp or
number written another way, a type the reader had to guess) returns None and goes to the per-row
path (`txguard.batch.validate`), where each row meets the pydantic model: a bad row gets exactly
the contract's error, an unusual but valid row exactly the contract's value. A test checks that
both paths agree on valid rows and that every rejected row is rejected by the contract too.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from txguard.batch.rows import (
    COUNTERPARTY_COLUMNS,
    FEATURE_COLUMNS,
    LABEL_FIELDS,
    NESTED_FEATURES,
    TIMESTAMP,
    TX_FIELDS,
    UNKNOWN_LABEL,
    schema_of,
)
from txguard.contract.codes import COUNTRIES, CURRENCIES
from txguard.contract.models import (
    IDENTIFIER_MAX_LENGTH,
    IDENTIFIER_PATTERN,
    MAX_AMOUNT,
    MAX_FUTURE_SKEW,
    MIN_TIMESTAMP,
    Channel,
    TxType,
)
from txguard.features.timeline import NEVER

# The one ISO 8601 form the fast path parses (what txguard and most encoders write); any other form
# the contract accepts (a space for T, a lower-case z, 7+ fraction digits) takes the per-row path.
ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"
# A decimal number as CSV writes it; anything else (a plus sign, spaces, underscores) takes the per-row path.
PLAIN_NUMBER = r"^-?\d+(\.\d+)?([eE][+-]?\d+)?$"
ID_FIELDS = ("transaction_id", "wallet_id", "counterparty_id")
CODE_SETS = {
    "currency": pa.array(sorted(CURRENCIES)),
    "country": pa.array(sorted(COUNTRIES)),
    "type": pa.array([t.value for t in TxType]),
    "channel": pa.array([c.value for c in Channel]),
}
SIGNED_FEATURES = frozenset({"amount_zscore_30d"})  # `Finite`; every other history feature is `NonNeg`
_MIN_US = int(MIN_TIMESTAMP.timestamp()) * 1_000_000
_TRUE_STRINGS = pa.array(["1", "true"])
_LABEL_STRINGS = pa.array(["0", "1", "true", "false", ""])


class _Refused(Exception):
    """Internal: the fast path does not vouch for this chunk."""


def _check(condition: object) -> None:
    if not condition:
        raise _Refused


def _all(mask: pa.Array | pa.ChunkedArray) -> bool:
    return bool(pc.all(mask).as_py()) if len(mask) else True


def _strings(table: pa.Table, name: str, nullable: bool = False) -> pa.ChunkedArray:
    _check(name in table.column_names)
    col = table.column(name)
    _check(pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or col.null_count == len(col))
    col = col.cast(pa.string())
    _check(nullable or col.null_count == 0)
    return col


def _identifiers(col: pa.ChunkedArray) -> pa.ChunkedArray:
    valid = col.drop_null()
    _check(_all(pc.match_substring_regex(valid, IDENTIFIER_PATTERN)))
    _check(len(valid) == 0 or pc.max(pc.utf8_length(valid)).as_py() <= IDENTIFIER_MAX_LENGTH)
    return col


def _numbers(col: pa.ChunkedArray) -> np.ndarray:
    """Finite float64 values from a numeric column, or a string column of plain decimals (CSV)."""
    _check(col.null_count == 0)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        _check(_all(pc.match_substring_regex(col, PLAIN_NUMBER)))
    else:
        _check(pa.types.is_floating(col.type) or pa.types.is_integer(col.type))
    values = col.cast(pa.float64()).to_numpy()
    _check(np.isfinite(values).all())
    return values


def _micros(col: pa.ChunkedArray, now_us: int) -> pa.Array:
    """Aware ISO 8601 strings (or tz-aware Arrow timestamps) -> UTC microseconds, within the contract's bounds."""
    _check(col.null_count == 0)
    if pa.types.is_timestamp(col.type):
        _check(col.type.tz is not None and col.type.unit in ("s", "ms", "us"))
    else:
        col = _strings_only(col)
        _check(_all(pc.match_substring_regex(col, ISO_TIMESTAMP)))
    stamps = col.cast(TIMESTAMP)
    micros = stamps.cast(pa.int64()).to_numpy()
    _check(len(micros) == 0 or (micros.min() >= _MIN_US and micros.max() <= now_us))
    return stamps.combine_chunks()


def _strings_only(col: pa.ChunkedArray) -> pa.ChunkedArray:
    _check(pa.types.is_string(col.type) or pa.types.is_large_string(col.type))
    return col.cast(pa.string())


def _labels(table: pa.Table, n: int, now_us: int) -> dict[str, pa.Array]:
    """is_fraud (0/1, -1 when not given), label_time (epoch seconds, NaN = at once, inf = never), scenario."""
    names = table.column_names
    if "is_fraud" in names and table.column("is_fraud").null_count < n:
        col = table.column("is_fraud")
        if pa.types.is_string(col.type):
            lowered = pc.utf8_lower(col.fill_null(""))
            _check(_all(pc.is_in(lowered, _LABEL_STRINGS)))
            known = pc.not_equal(lowered, "")
            fraud = pc.if_else(known, pc.is_in(lowered, _TRUE_STRINGS).cast(pa.int8()), UNKNOWN_LABEL)
        else:
            _check(pa.types.is_integer(col.type) or pa.types.is_boolean(col.type))
            fraud = col.cast(pa.int8())
            _check(_all(pc.is_in(fraud.drop_null(), pa.array([0, 1], pa.int8()))))
            fraud = fraud.fill_null(UNKNOWN_LABEL)
    else:
        fraud = pa.array(np.full(n, UNKNOWN_LABEL, dtype=np.int8))
    label_time = np.full(n, np.nan)
    if "label_time" in names:
        col = _strings_only(table.column("label_time")).fill_null("")
        never = pc.equal(pc.utf8_lower(pc.utf8_trim_whitespace(col)), NEVER)
        label_time[never.to_numpy(zero_copy_only=False)] = np.inf  # never known (features.timeline.NEVER)
        given = pc.and_(pc.not_equal(col, ""), pc.invert(never))
        if pc.any(given).as_py():
            stamps = col.filter(given)
            _check(_all(pc.match_substring_regex(stamps, ISO_TIMESTAMP)))
            micros = stamps.cast(TIMESTAMP).cast(pa.int64()).to_numpy()
            label_time[np.flatnonzero(given.to_numpy(zero_copy_only=False))] = micros.astype(np.float64) / 1e6
    scenario = (_strings(table, "scenario", nullable=True).fill_null("") if "scenario" in names
                else pa.array([""] * n))
    return {"is_fraud": pa.chunked_array([fraud]) if isinstance(fraud, pa.Array) else fraud,
            "label_time": pa.array(label_time), "scenario": scenario}


def _features(table: pa.Table) -> dict[str, np.ndarray]:
    """History and counterparty features from the `features` and `counterparty` structs (JSON) or flat
    columns, bare or `features.` / `counterparty.`-prefixed."""
    names = set(table.column_names)
    columns = {}
    for nested, fields in NESTED_FEATURES.items():
        if nested in names:
            struct = table.column(nested)
            _check(pa.types.is_struct(struct.type) and struct.null_count == 0)
            _check({struct.type.field(i).name for i in range(struct.type.num_fields)} == set(fields))
            flat = struct.combine_chunks()
            columns.update({name: pa.chunked_array([flat.field(name)]) for name in fields})
        else:
            for name in fields:
                key = name if name in names else f"{nested}.{name}"
                _check(key in names)
                columns[name] = table.column(key)
    out = {}
    for name, col in columns.items():
        values = _numbers(col)
        _check(name in SIGNED_FEATURES or (values >= 0).all())
        out[name] = values
    return out


def _allowed_columns(kind: str) -> set[str]:
    if kind == "enriched":
        return set(TX_FIELDS).union(*({nested, *fields, *(f"{nested}.{n}" for n in fields)}
                                      for nested, fields in NESTED_FEATURES.items()))
    return set(TX_FIELDS) | set(LABEL_FIELDS)


def accept(table: pa.Table, kind: str, file_index: int, lines: np.ndarray,
           now: datetime | None = None) -> pa.Table | None:
    """The normalised table (`txguard.batch.rows`) if every row passes, else None (per-row path)."""
    now_us = int(((now or datetime.now(UTC)) + MAX_FUTURE_SKEW).timestamp() * 1_000_000)
    try:
        return _accept(table, kind, file_index, lines, now_us)
    except (_Refused, pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None


def _accept(table: pa.Table, kind: str, file_index: int, lines: np.ndarray, now_us: int) -> pa.Table:
    n = table.num_rows
    _check(set(table.column_names) <= _allowed_columns(kind))
    columns: dict[str, object] = {name: _identifiers(_strings(table, name)) for name in ID_FIELDS}
    amount = _numbers(table.column("amount")) if "amount" in table.column_names else None
    _check(amount is not None and (amount > 0).all() and (amount <= MAX_AMOUNT).all())
    columns["amount"] = amount
    for name, allowed in CODE_SETS.items():
        col = _strings(table, name)
        _check(_all(pc.is_in(col, allowed)))
        columns[name] = col
    device = (_strings(table, "device_id", nullable=True) if "device_id" in table.column_names
              else pa.chunked_array([pa.nulls(n, pa.string())]))
    columns["device_id"] = _identifiers(device)
    _check("timestamp" in table.column_names)
    columns["timestamp"] = _micros(table.column("timestamp"), now_us)
    columns["file_index"] = np.full(n, file_index, dtype=np.int32)
    columns["line"] = np.asarray(lines, dtype=np.int64)
    if kind == "enriched":
        columns.update(is_fraud=np.full(n, UNKNOWN_LABEL, dtype=np.int8), label_time=np.full(n, np.nan),
                       scenario=pa.array([""] * n))
        columns.update(_features(table))
    else:
        columns.update(_labels(table, n, now_us))
    schema = schema_of(kind)
    return pa.table([pa.chunked_array([c]) if isinstance(c, pa.Array) else c
                     if isinstance(c, pa.ChunkedArray) else pa.array(c)
                     for c in (columns[f.name] for f in schema)], schema=schema)


def json_schema(kind: str) -> pa.Schema:
    """What the JSONL bulk reader is told to expect (it then refuses any other type or an extra key)."""
    fields = [
        pa.field(name, pa.float64() if name == "amount" else pa.string()) for name in TX_FIELDS
    ]
    if kind == "enriched":
        fields.append(pa.field("features", pa.struct(list(FEATURE_COLUMNS))))
        fields.append(pa.field("counterparty", pa.struct(list(COUNTERPARTY_COLUMNS))))
    else:
        fields += [pa.field("is_fraud", pa.int64()), pa.field("label_time", pa.string()),
                   pa.field("scenario", pa.string())]
    return pa.schema(fields)
