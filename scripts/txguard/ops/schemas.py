"""JSON Schemas of the contract, for publishers and consumers in other languages.

Generated from the pydantic models (`txguard.contract.models.CONTRACT_MODELS`) and checked in under
`schemas/`; a test fails when the files differ from the code, so the published schema can never
silently drift from what the functions validate. Regenerate with `txguard schemas export`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from txguard.contract.models import CONTRACT_MODELS
from txguard.local.paths import ROOT

SCHEMA_DIR = ROOT / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
# What we emit is described as serialised; what we accept, as validated.
OUTPUT_MODELS = frozenset({"Decision", "BatchResponse"})


def schema(name: str) -> dict[str, Any]:
    mode: Literal["validation", "serialization"] = "serialization" if name in OUTPUT_MODELS else "validation"
    body = CONTRACT_MODELS[name].model_json_schema(mode=mode)
    return {"$schema": DIALECT, "$id": f"https://txguard.dev/schemas/{name}.json", **body}


def render(name: str) -> str:
    """Stable text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(schema(name), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in sorted(CONTRACT_MODELS):
        path = directory / f"{name}.json"
        text = render(name)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names whose checked-in schema file is missing or differs from the code."""
    out = []
    for name in sorted(CONTRACT_MODELS):
        path = directory / f"{name}.json"
        if not path.exists() or path.read_text(encoding="utf-8") != render(name):
            out.append(name)
    return out
