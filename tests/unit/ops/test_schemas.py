"""The checked-in JSON Schemas match the pydantic contract (regenerate with `txguard schemas export`)."""

from __future__ import annotations

import json
from pathlib import Path

from txguard.contract.models import CONTRACT_MODELS
from txguard.ops.schemas import SCHEMA_DIR, export, render, stale


def test_checked_in_schemas_match_the_code() -> None:
    out = stale()
    assert not out, f"schemas/ differs from shared/txguard/contract/models.py for {out}: run `txguard schemas export`"


def test_export_is_stable_and_complete(tmp_path: Path) -> None:
    export(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.json" for n in CONTRACT_MODELS)
    first = {p.name: p.read_text() for p in tmp_path.iterdir()}
    export(tmp_path)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == first
    tx = json.loads(first["Transaction.json"])
    assert tx["additionalProperties"] is False
    assert {"transaction_id", "wallet_id", "amount", "timestamp"} <= set(tx["required"])
    (tmp_path / "Decision.json").write_text(render("Decision").replace("score", "scores"))
    assert stale(tmp_path) == ["Decision"]
    assert SCHEMA_DIR.name == "schemas"
