"""The columnar checks never accept what the contract rejects, and give the contract's values.

Every test compares `validate_chunk` (bulk reader + vectorised checks, per-row fallback) with the
per-row contract path on the same raw rows: same valid rows (same values, same order), same errors
(line, field, message).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.scoring_fixtures import enriched_transactions
from txguard.batch.columns import accept
from txguard.batch.readers import bulk_table, read_chunks, validate_chunk
from txguard.batch.rows import TX_FIELDS
from txguard.batch.validate import contract_rows
from txguard.contract.models import TRANSACTION_ADAPTER
from txguard.simulator.core import simulate

ROWS = [r.to_row() for r in simulate(days=2, wallets=40, seed=5)]


def assert_same(a: pa.Table, b: pa.Table) -> None:
    assert a.schema.equals(b.schema)
    for name in a.column_names:
        x, y = a.column(name).to_numpy(zero_copy_only=False), b.column(name).to_numpy(zero_copy_only=False)
        if x.dtype.kind == "f":
            assert np.array_equal(x, y, equal_nan=True), name
        else:
            assert list(x) == list(y), name


def both_paths(path: Path, kind: str = "transactions") -> tuple[pa.Table, list]:
    (chunk,) = list(read_chunks(str(path), 3, chunk_rows=100_000))
    fast, fast_errors = validate_chunk(chunk, kind)
    slow, slow_errors = contract_rows(chunk.raw_rows(), kind, chunk.source, chunk.file_index)
    assert_same(fast, slow)
    assert fast_errors == slow_errors
    return fast, fast_errors


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_valid_files_take_the_fast_path_in_every_format(tmp_path: Path) -> None:
    jsonl = write_jsonl(tmp_path / "tx.jsonl", ROWS)
    (chunk,) = list(read_chunks(str(jsonl), 0))
    assert accept(bulk_table(chunk, "transactions"), "transactions", 0, chunk.lines) is not None
    table, errors = both_paths(jsonl)
    assert table.num_rows == len(ROWS) and not errors
    assert table.column("line").to_pylist() == list(range(1, len(ROWS) + 1))

    with (tmp_path / "tx.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(ROWS[0]))
        writer.writeheader()
        writer.writerows({**r, "device_id": r["device_id"] or ""} for r in ROWS)
    (chunk,) = list(read_chunks(str(tmp_path / "tx.csv"), 0))
    assert accept(bulk_table(chunk, "transactions"), "transactions", 0, chunk.lines) is not None
    from_csv, _ = both_paths(tmp_path / "tx.csv")

    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "tx.parquet")
    from_parquet, _ = both_paths(tmp_path / "tx.parquet")
    for other in (from_csv, from_parquet):  # same rows whatever the format (lines aside)
        for name in (*TX_FIELDS, "is_fraud", "scenario"):
            assert other.column(name).to_pylist() == table.column(name).to_pylist(), name


def test_enriched_rows_in_jsonl_and_flat_parquet(tmp_path: Path) -> None:
    txs = enriched_transactions()[:300]
    jsonl = write_jsonl(tmp_path / "e.jsonl", [tx.model_dump_json() for tx in txs])
    table, _ = both_paths(jsonl, "enriched")
    assert table.column("tx_count_24h").to_pylist() == [tx.features.tx_count_24h for tx in txs]
    flat = []
    for tx in txs:
        row = tx.model_dump(mode="json")
        flat.append({**row, **row.pop("features")})
    pq.write_table(pa.Table.from_pylist(flat), tmp_path / "e.parquet")
    parquet, _ = both_paths(tmp_path / "e.parquet", "enriched")
    assert parquet.column("amount_zscore_30d").to_pylist() == table.column("amount_zscore_30d").to_pylist()


BAD_OR_ODD = [
    ("amount", 0), ("amount", -3.5), ("amount", 2e6), ("amount", "12.5"), ("amount", True), ("amount", None),
    ("currency", "eur"), ("currency", "XXX"), ("type", "refund"), ("channel", "fax"), ("country", "ZZ"),
    ("timestamp", "2026-01-01T10:00:00"), ("timestamp", "2026-01-01 10:00:00Z"), ("timestamp", "2099-01-01T00:00:00Z"),
    ("timestamp", "1999-12-31T23:59:59Z"), ("timestamp", 1767225600), ("timestamp", "2026-02-30T00:00:00Z"),
    ("timestamp", "2026-01-01T10:00:00.1234567+02:00"), ("timestamp", "2026-01-01t10:00:00z"),
    ("transaction_id", "has space"), ("transaction_id", "x" * 65), ("transaction_id", ""), ("wallet_id", 42),
    ("counterparty_id", "-leading-dash"), ("device_id", ""), ("device_id", None), ("extra_field", 1),
    ("is_fraud", 2), ("is_fraud", "yes"), ("is_fraud", True), ("is_fraud", "1"), ("is_fraud", None),
    ("label_time", "soon"), ("label_time", "2026-01-03T00:00:00"), ("label_time", "2026-01-03T00:00:00Z"),
    ("label_time", 5), ("label_time", "never"), ("label_time", "Never "), ("scenario", None),
]


@pytest.mark.parametrize(("field", "value"), BAD_OR_ODD, ids=[f"{f}={v!r}"[:40] for f, v in BAD_OR_ODD])
def test_an_odd_row_gets_the_contracts_verdict(tmp_path: Path, field: str, value: object) -> None:
    rows = [dict(r) for r in ROWS[:50]]
    rows[17][field] = value
    del rows[30]["device_id"]  # a missing optional field is fine everywhere
    table, errors = both_paths(write_jsonl(tmp_path / "odd.jsonl", rows))
    assert table.num_rows + len(errors) == 50
    for e in errors:
        assert e.line == 18 and e.raw == json.dumps(rows[17])


def test_a_label_time_of_never_is_a_fraud_never_known(tmp_path: Path) -> None:
    rows = [dict(r) for r in ROWS[:20]]
    rows[3].update(is_fraud=1, label_time="never")
    rows[4].update(is_fraud=1, label_time="2026-01-03T00:00:00+00:00")
    table, errors = both_paths(write_jsonl(tmp_path / "never.jsonl", rows))
    assert not errors
    label_time = table.column("label_time").to_pylist()
    assert label_time[3] == float("inf") and label_time[4] == 1767398400.0 and math.isnan(label_time[0])


def test_missing_fields_bad_json_and_blank_lines_keep_their_line_numbers(tmp_path: Path) -> None:
    rows = [json.dumps(r) for r in ROWS[:20]]
    missing = dict(ROWS[5])
    del missing["amount"]
    lines = [*rows[:3], "", "   ", rows[3], json.dumps(missing), "{not json", "[1, 2]", *rows[6:]]
    table, errors = both_paths(write_jsonl(tmp_path / "gaps.jsonl", lines))
    assert [(e.line, e.field) for e in errors] == [(7, "amount"), (8, "(row)"), (9, "(row)")]
    assert errors[0].message == "Field required"
    assert table.column("line").to_pylist() == [1, 2, 3, 6, *range(10, 10 + len(rows) - 6)]


def test_csv_quirks_go_to_the_contract(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        header = [f for f in ROWS[0] if f != "scenario"]
        writer.writerow(header)
        for r in ROWS[:10]:
            writer.writerow([r[h] if r[h] is not None else "" for h in header])
        writer.writerow([ROWS[10][h] or "" for h in header] + ["surplus"])
        writer.writerow([" 12.5" if h == "amount" else (ROWS[11][h] or "") for h in header])
    table, errors = both_paths(path)
    assert [(e.line, e.field) for e in errors] == [(12, "(row)")]
    assert table.num_rows == 11  # " 12.5" is a number to the contract: the per-row path took it


IDS = st.text(alphabet="aZ09_.:-é \"\\", min_size=0, max_size=70)
STAMPS = st.builds(
    lambda y, mo, d, h, mi, s, frac, tz: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}{tz}",
    st.integers(1998, 2030), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25), st.integers(0, 60),
    st.integers(0, 60), st.sampled_from(["", ".5", ".123456", ".1234567"]),
    st.sampled_from(["Z", "+00:00", "-05:30", "+23:59", "+24:00", ""]),
)
AMOUNTS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 2_000_000))


@settings(max_examples=150, deadline=None)
@given(tid=IDS, stamp=STAMPS, amount=AMOUNTS)
def test_fast_acceptance_implies_the_contracts_value(tid: str, stamp: str, amount: float) -> None:
    row = {**ROWS[0], "transaction_id": tid, "timestamp": stamp, "amount": amount}
    row.pop("is_fraud"), row.pop("scenario")
    table = pa.Table.from_pylist([row])
    got = accept(table, "transactions", 0, np.array([1]))
    try:
        model = TRANSACTION_ADAPTER.validate_python(dict(row))
    except Exception:
        assert got is None
        return
    if got is not None:
        assert got.column("transaction_id")[0].as_py() == model.transaction_id
        assert got.column("amount")[0].as_py() == model.amount
        micros = got.column("timestamp").cast(pa.int64())[0].as_py()
        assert micros / 1e6 == model.timestamp.timestamp() and not math.isnan(micros)
