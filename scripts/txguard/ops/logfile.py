"""The scoring function's log lines from a file, whatever wrote it.

- the function's stdout (a local stack's `score.log`, `functions-framework` output): one JSON
  object per line, fields at the top level;
- an export of Cloud Logging, `gcloud logging read 'jsonPayload.event="drift_window"' --format=json`:
  one JSON array of entries whose fields are under `jsonPayload`.

Lines that are not JSON (gunicorn's own) are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _entries(text: str) -> Iterator[dict[str, Any]]:
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            exported = json.loads(stripped)
        except ValueError:
            exported = None  # not an export: a log whose first line starts with "[" (gunicorn's)
        if isinstance(exported, list):
            yield from (entry for entry in exported if isinstance(entry, dict))
            return
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                yield entry


def events(lines: list[dict[str, Any]] | None = None, path: str | Path | None = None,
           event: str | None = None) -> list[dict[str, Any]]:
    """The lines (given, or read from `path`) whose `event` field is `event` (all if None)."""
    if lines is None:
        if path is None:
            raise ValueError("give lines or a path")
        lines = list(_entries(Path(path).read_text(errors="replace")))
    out = []
    for line in lines:
        payload = line.get("jsonPayload", line)
        if event is None or payload.get("event") == event:
            out.append(payload)
    return out


def read_labels(path: str | Path) -> dict[str, int]:
    """transaction_id -> is_fraud from a JSONL or CSV file (e.g. `txguard simulate` output)."""
    import csv

    path = Path(path)
    labels: dict[str, int] = {}
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            rows: Iterator[dict[str, Any]] = iter(list(csv.DictReader(fh)))
    else:
        rows = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    for n, row in enumerate(rows, 1):
        if "transaction_id" not in row or "is_fraud" not in row:
            raise ValueError(f"{path}: row {n}: needs the fields 'transaction_id' and 'is_fraud'")
        value = str(row["is_fraud"]).strip().lower()
        if value not in ("0", "1", "true", "false"):
            raise ValueError(f"{path}: row {n}: field 'is_fraud' must be 0 or 1, got {row['is_fraud']!r}")
        labels[str(row["transaction_id"])] = int(value in ("1", "true"))
    return labels
