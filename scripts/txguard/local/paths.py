"""Where the checkout is: tooling runs from a clone (an editable install), never from a function."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]  # scripts/txguard/local/paths.py -> the repository root
FUNCTIONS = ROOT / "functions"
